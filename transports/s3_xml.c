/* SPDX-License-Identifier: MIT */
#include "transports/s3_xml.h"

#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define TEXT_MAX  4096
#define DEPTH_MAX 8

struct list_ctx {
	const char *prefix, *uri_base;
	struct stk_catalog *cat;
	bool *truncated;
	char *token;
	size_t tokcap;
	int depth;
	char path[DEPTH_MAX][32]; /* element names from the root */
	char text[TEXT_MAX + 1];
	size_t tlen;
	bool text_over;
	char key[TEXT_MAX + 1];
	char etag[TEXT_MAX + 1];
	unsigned long long size;
	bool have_key, have_size, have_etag;
	int err;
	char *errbuf;
	size_t errlen;
	XML_Parser p;
};

static void stop(struct list_ctx *c, int err, const char *what)
{
	if (!c->err) {
		c->err = err;
		snprintf(c->errbuf, c->errlen, "ListObjectsV2: %s", what);
	}
	XML_StopParser(c->p, XML_FALSE);
}

/*
 * The entry just added gets the object's ETag as its version (as S3 lists it,
 * quotes included, the form of the ETag header), or NULL when the listing
 * gives none.  0 or -ENOMEM.
 */
static int add_version(struct list_ctx *c)
{
	struct stk_catalog_entry *e = &c->cat->e[c->cat->n - 1];
	e->version = c->have_etag ? strdup(c->etag) : NULL;
	return c->have_etag && !e->version ? -ENOMEM : 0;
}

static void on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct list_ctx *c = arg;
	if (c->depth < DEPTH_MAX)
		snprintf(c->path[c->depth], sizeof(c->path[0]), "%s", name);
	c->depth++;
	c->tlen = 0;
	c->text_over = false;
	if (c->depth == 2 && !strcmp(name, "Contents"))
		c->have_key = c->have_size = c->have_etag = false;
}

static void on_text(void *arg, const XML_Char *s, int len)
{
	struct list_ctx *c = arg;
	if ((size_t)len > TEXT_MAX - c->tlen) {
		c->text_over = true;
		return;
	}
	memcpy(c->text + c->tlen, s, (size_t)len);
	c->tlen += (size_t)len;
}

static void on_end(void *arg, const XML_Char *name)
{
	struct list_ctx *c = arg;
	c->text[c->tlen] = 0;
	const char *parent = c->depth >= 2 && c->depth - 2 < DEPTH_MAX ? c->path[c->depth - 2] : "";
	if (c->depth == 3 && !strcmp(parent, "Contents")) {
		if (c->text_over) {
			stop(c, -EINVAL, "an element's text is longer than 4096 bytes");
		} else if (!strcmp(name, "Key")) {
			memcpy(c->key, c->text, c->tlen + 1);
			c->have_key = true;
		} else if (!strcmp(name, "Size")) {
			char *end;
			errno = 0;
			c->size = strtoull(c->text, &end, 10);
			if (errno || end == c->text || *end || c->text[0] == '-')
				stop(c, -EINVAL, "a <Size> is not a byte count");
			c->have_size = true;
		} else if (!strcmp(name, "ETag")) {
			memcpy(c->etag, c->text, c->tlen + 1);
			c->have_etag = c->tlen > 0;
		}
	} else if (c->depth == 2 && !strcmp(name, "Contents")) {
		if (!c->have_key || !c->have_size) {
			stop(c, -EINVAL, "a <Contents> lacks <Key> or <Size>");
		} else {
			size_t pl = strlen(c->prefix);
			size_t kl = strlen(c->key);
			if (kl > pl && !strncmp(c->key, c->prefix, pl) && c->key[kl - 1] != '/') {
				char *uri = malloc(strlen(c->uri_base) + kl + 1);
				if (!uri) {
					stop(c, -ENOMEM, "out of memory");
				} else {
					memcpy(uri, c->uri_base, strlen(c->uri_base));
					memcpy(uri + strlen(c->uri_base), c->key, kl + 1);
					if (stk__catalog_add(c->cat, c->key + pl, kl - pl, uri,
							     c->size))
						stop(c, -ENOMEM, "out of memory");
					else if (add_version(c))
						stop(c, -ENOMEM, "out of memory");
					free(uri);
				}
			}
		}
	} else if (c->depth == 2 && !strcmp(name, "IsTruncated")) {
		*c->truncated = !strcmp(c->text, "true");
	} else if (c->depth == 2 && !strcmp(name, "NextContinuationToken")) {
		if (c->tlen >= c->tokcap)
			stop(c, -EINVAL, "NextContinuationToken is too long");
		else
			memcpy(c->token, c->text, c->tlen + 1);
	}
	c->depth--;
	c->tlen = 0;
}

int stk__s3_parse_list(const char *xml, size_t len, const char *prefix, const char *uri_base,
		       struct stk_catalog *cat, bool *truncated, char *token, size_t tokcap,
		       char *err, size_t errlen)
{
	struct list_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->prefix = prefix;
	c->uri_base = uri_base;
	c->cat = cat;
	c->truncated = truncated;
	c->token = token;
	c->tokcap = tokcap;
	c->errbuf = err;
	c->errlen = errlen;
	*truncated = false;
	token[0] = 0;
	int r = 0;
	c->p = XML_ParserCreate(NULL);
	if (!c->p) {
		free(c);
		return -ENOMEM;
	}
	XML_SetUserData(c->p, c);
	XML_SetElementHandler(c->p, on_start, on_end);
	XML_SetCharacterDataHandler(c->p, on_text);
	if (len > INT32_MAX || XML_Parse(c->p, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR) {
		if (!c->err) {
			snprintf(err, errlen, "ListObjectsV2: malformed XML at line %lu: %s",
				 (unsigned long)XML_GetCurrentLineNumber(c->p),
				 XML_ErrorString(XML_GetErrorCode(c->p)));
			r = -EINVAL;
		}
	}
	if (c->err)
		r = c->err;
	XML_ParserFree(c->p);
	free(c);
	return r;
}

struct err_ctx {
	int depth;
	char cur[16];
	char *code, *msg;
	size_t codecap, msgcap, codelen, msglen;
	bool is_error;
};

static void e_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct err_ctx *c = arg;
	c->depth++;
	if (c->depth == 1)
		c->is_error = !strcmp(name, "Error");
	snprintf(c->cur, sizeof(c->cur), "%s", c->depth == 2 ? name : "");
}

static void e_text(void *arg, const XML_Char *s, int len)
{
	struct err_ctx *c = arg;
	char *dst = NULL;
	size_t cap = 0, *l = NULL;
	if (c->depth == 2 && !strcmp(c->cur, "Code")) {
		dst = c->code;
		cap = c->codecap;
		l = &c->codelen;
	} else if (c->depth == 2 && !strcmp(c->cur, "Message")) {
		dst = c->msg;
		cap = c->msgcap;
		l = &c->msglen;
	}
	if (!dst || !cap)
		return;
	size_t k = (size_t)len < cap - 1 - *l ? (size_t)len : cap - 1 - *l;
	memcpy(dst + *l, s, k);
	*l += k;
	dst[*l] = 0;
}

static void e_end(void *arg, const XML_Char *name)
{
	struct err_ctx *c = arg;
	c->depth--;
	c->cur[0] = 0;
}

int stk__s3_parse_error(const char *xml, size_t len, char *code, size_t codecap, char *msg,
			size_t msgcap)
{
	struct err_ctx c = { .code = code, .msg = msg, .codecap = codecap, .msgcap = msgcap };
	if (codecap)
		code[0] = 0;
	if (msgcap)
		msg[0] = 0;
	XML_Parser p = XML_ParserCreate(NULL);
	if (!p)
		return -ENOMEM;
	XML_SetUserData(p, &c);
	XML_SetElementHandler(p, e_start, e_end);
	XML_SetCharacterDataHandler(p, e_text);
	int ok = len <= INT32_MAX && XML_Parse(p, xml, (int)len, XML_TRUE) != XML_STATUS_ERROR;
	XML_ParserFree(p);
	return ok && c.is_error && c.codelen ? 0 : -EINVAL;
}
