/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int stk__log_level = STK_LOG_INFO;

static atomic_int log_format = STK_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

#define MSG_MAX	  2048 /* a message or an event's fields, formatted */
#define LINE_MAX_ 8192 /* a whole line, escaped */
#define RESERVE	  64   /* room kept for closing a cut line */
#define FIELDS	  64

int stk__log_set_format(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "text"))
		atomic_store_explicit(&log_format, STK_LOG_TEXT, memory_order_relaxed);
	else if (!strcmp(s, "json"))
		atomic_store_explicit(&log_format, STK_LOG_JSON, memory_order_relaxed);
	else
		return -EINVAL;
	return 0;
}

int stk__log_format(void)
{
	return atomic_load_explicit(&log_format, memory_order_relaxed);
}

/* Components */

/* Basename to component; a name ending in '*' is a prefix. */
static const struct {
	const char *name;
	const char *comp;
} components[] = {
	{ "main.c", "stokerd" },     { "sched.c", "sched" },	 { "dataset.c", "dataset" },
	{ "server.c", "server" },    { "session.c", "server" },	 { "listen.c", "server" },
	{ "fast.c", "server" },	     { "metrics.c", "metrics" }, { "file*", "file" },
	{ "http*", "http" },	     { "web.c", "http" },	 { "s3*", "s3" },
	{ "sigv4.c", "s3" },	     { "aws_creds.c", "s3" },	 { "catalog.c", "catalog" },
	{ "registry.c", "catalog" }, { "obs.c", "stall" },
};

const char *stk__log_component(const char *file, size_t *len)
{
	if (!file || !*file) {
		*len = 7;
		return "stokerd";
	}
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	/* Everything in cache/ is the cache, whatever its file. */
	if (base - file >= 6 && !memcmp(base - 6, "cache/", 6) &&
	    (base - file == 6 || base[-7] == '/')) {
		*len = 5;
		return "cache";
	}
	for (size_t i = 0; i < sizeof(components) / sizeof(components[0]); i++) {
		const char *name = components[i].name;
		size_t n = strlen(name);
		if (name[n - 1] == '*' ? !strncmp(base, name, n - 1) : !strcmp(base, name)) {
			*len = strlen(components[i].comp);
			return components[i].comp;
		}
	}
	const char *dot = strrchr(base, '.');
	*len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	return base;
}

/* The scrubber */

enum { SEC_HEADER, SEC_PARAM };

/*
 * Names whose values are secrets, lower case.  A header's value runs to the
 * end of the line (or its closing quote); a parameter's to the next
 * delimiter.  Every name starts with 'a', 's' or 'x', which is what the scan
 * looks for before it compares anything.
 */
static const struct {
	const char *name;
	unsigned char len;
	unsigned char kind;
} secrets[] = {
	{ "authorization", 13, SEC_HEADER },	{ "awsaccesskeyid", 14, SEC_PARAM },
	{ "aws_access_key_id", 17, SEC_PARAM }, { "aws_secret_access_key", 21, SEC_PARAM },
	{ "aws_session_token", 17, SEC_PARAM }, { "x-amz-signature", 15, SEC_PARAM },
	{ "x-amz-credential", 16, SEC_PARAM },	{ "x-amz-security-token", 20, SEC_PARAM },
	{ "signature", 9, SEC_PARAM },
};

static bool param_end(char c)
{
	switch (c) {
	case 0:
	case ' ':
	case '\t':
	case '\r':
	case '\n':
	case '&':
	case '"':
	case '\'':
	case ',':
	case ';':
	case ':':
	case '#':
	case '<':
	case '>':
	case ')':
	case ']':
	case '}':
		return true;
	default:
		return false;
	}
}

/*
 * s[at, at + nlen) is a secret's name.  When a value follows ("name=value",
 * "name: value", "\"name\": \"value\""), replaces it with REDACTED.  Returns
 * the position to scan on from; *len and *hits are updated.
 */
static size_t redact(char *s, size_t *len, size_t cap, size_t at, size_t nlen, int kind,
		     unsigned *hits)
{
	size_t p = at + nlen;
	if (s[p] == '\\' && s[p + 1] == '"') /* JSON inside a message: \"name\": \"value\" */
		p++;
	if (s[p] == '"' || s[p] == '\'')
		p++;
	while (s[p] == ' ' || s[p] == '\t')
		p++;
	if (s[p] == '%' && s[p + 1] == '3' && (s[p + 2] | 0x20) == 'd') /* a URL in a URL */
		p += 2;
	else if (s[p] != '=' && s[p] != ':')
		return at + nlen;
	p++;
	while (s[p] == ' ' || s[p] == '\t')
		p++;
	char q = 0;
	if (s[p] == '\\' && s[p + 1] == '"')
		p++;
	if (s[p] == '"' || s[p] == '\'')
		q = s[p++];
	else if (kind == SEC_HEADER && at > 0 && (s[at - 1] == '"' || s[at - 1] == '\''))
		q = s[at - 1]; /* key="Authorization: Bearer ..." */
	size_t v = p, e = p;
	if (q) {
		while (s[e] && s[e] != q && s[e] != '\r' && s[e] != '\n')
			e++;
		if (e > v && s[e] == q && s[e - 1] == '\\')
			e--;
	} else if (kind == SEC_HEADER) {
		while (s[e] && s[e] != '\r' && s[e] != '\n')
			e++;
	} else {
		/* An encoded '&' (%26) ends it too: no secret holds one. */
		while (!param_end(s[e]) && !(s[e] == '%' && s[e + 1] == '2' && s[e + 2] == '6'))
			e++;
	}
	static const char red[] = "REDACTED";
	if (e == v || (e - v == 8 && !memcmp(s + v, red, 8)))
		return e;
	size_t max = cap - 1, rl = 8;
	if (v + rl > max)
		rl = max - v;
	size_t tail = *len - e;
	if (v + rl + tail > max)
		tail = max - v - rl;
	memmove(s + v + rl, s + e, tail);
	memcpy(s + v, red, rl);
	*len = v + rl + tail;
	s[*len] = 0;
	(*hits)++;
	return v + rl;
}

unsigned stk__log_scrub(char *s, size_t cap)
{
	if (!s || cap == 0)
		return 0;
	size_t len = strlen(s);
	unsigned hits = 0;
	for (size_t i = 0; i < len;) {
		char c = (char)(s[i] | 0x20);
		if (c != 'a' && c != 's' && c != 'x') {
			i++;
			continue;
		}
		size_t next = i + 1;
		for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]); k++) {
			if (secrets[k].name[0] != c || len - i < secrets[k].len ||
			    strncasecmp(s + i, secrets[k].name, secrets[k].len))
				continue;
			next = redact(s, &len, cap, i, secrets[k].len, secrets[k].kind, &hits);
			break;
		}
		i = next;
	}
	return hits;
}

/* Escaping */

/* Returns the length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t stk__log_json_escape(const char *s, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, room = cap ? cap - 1 : 0;
	size_t i = 0;
	while (i < len) {
		char esc[8];
		const char *piece = esc;
		size_t n = 0, adv = 1;
		unsigned char c = u[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			/* A run of plain bytes at once. */
			size_t j = i + 1;
			while (j < len && u[j] >= 0x20 && u[j] != '"' && u[j] != '\\' &&
			       u[j] < 0x80)
				j++;
			piece = s + i;
			n = adv = j - i;
			if (n > room - o) {
				n = adv = room - o;
				if (!n)
					break;
			}
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			esc[0] = '\\';
			switch (c) {
			case '\n':
				esc[1] = 'n';
				n = 2;
				break;
			case '\r':
				esc[1] = 'r';
				n = 2;
				break;
			case '\t':
				esc[1] = 't';
				n = 2;
				break;
			case '\b':
				esc[1] = 'b';
				n = 2;
				break;
			case '\f':
				esc[1] = 'f';
				n = 2;
				break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				n = 6;
			}
		} else {
			size_t ul = utf8_len(u + i, len - i);
			if (ul) {
				piece = s + i;
				n = adv = ul;
			} else {
				piece = "\\ufffd";
				n = 6;
			}
		}
		if (n > room - o)
			break;
		memcpy(out + o, piece, n);
		o += n;
		i += adv;
	}
	if (cap)
		out[o] = 0;
	return i < len ? o | STK__LOG_CUT : o;
}

/*
 * The text format's escaping: control characters as \n, \r, \t or \xHH so
 * that an event stays on its line, and with quoted set " and \ too.  Other
 * bytes are written as they are.  Same contract as stk__log_json_escape.
 */
static size_t text_escape(const char *s, size_t len, char *out, size_t cap, bool quoted)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, room = cap ? cap - 1 : 0, i = 0;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4] = { '\\', (char)c };
		size_t n = 2;
		if (c == '\n')
			esc[1] = 'n';
		else if (c == '\r')
			esc[1] = 'r';
		else if (c == '\t')
			esc[1] = 't';
		else if (c < 0x20 || c == 0x7f) {
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			n = 4;
		} else if (!quoted || (c != '"' && c != '\\')) {
			esc[0] = (char)c;
			n = 1;
		}
		if (n > room - o)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	if (cap)
		out[o] = 0;
	return i < len ? o | STK__LOG_CUT : o;
}

/* Fields */

bool stk__log_is_number(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * A quote closes a quoted value only where whitespace or the end follows, so
 * that a value formatted with quotes in it unescaped ("who=\"%s\"" with
 * a "b") still reads as the caller meant in most cases.
 */
static bool closing_quote(const char *p)
{
	return *p == '"' && (!p[1] || is_space(p[1]));
}

/* Returns the end of the field at p, leaving it as it is. */
static const char *field_end(const char *p)
{
	while (*p && !is_space(*p) && *p != '=')
		p++;
	if (*p != '=')
		return p;
	if (*++p == '"') {
		for (p++; *p && !closing_quote(p); p++)
			if (*p == '\\' && p[1])
				p++;
		return *p ? p + 1 : p;
	}
	while (*p && !is_space(*p))
		p++;
	return p;
}

int stk__log_fields(char *buf, struct stk__log_field *f, int max)
{
	static char rest[] = "_rest", empty[] = "";
	int n = 0;
	char *p = buf;
	while (p && n < max) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		if (n == max - 1) {
			/* One slot left: it takes the rest, unless the rest is one field. */
			const char *e = field_end(p);
			while (is_space(*e))
				e++;
			if (*e) {
				f[n++] = (struct stk__log_field){ rest, p, STK__LOG_STR };
				break;
			}
		}
		struct stk__log_field *x = &f[n++];
		x->key = p;
		while (*p && !is_space(*p) && *p != '=')
			p++;
		if (*p != '=') {
			x->val = empty;
			x->type = STK__LOG_TRUE;
			if (*p)
				*p++ = 0;
			continue;
		}
		*p++ = 0;
		if (*p == '"') {
			/* Quoted: \" and \\ stand for themselves; the value is a string. */
			char *w = ++p;
			x->val = w;
			x->type = STK__LOG_STR;
			while (*p && !closing_quote(p)) {
				if (*p == '\\' && p[1])
					p++;
				*w++ = *p++;
			}
			if (*p)
				p++;
			*w = 0; /* w < p, or both at the terminating NUL */
			continue;
		}
		x->val = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = 0;
		x->type = stk__log_is_number(x->val) ? STK__LOG_NUM : STK__LOG_STR;
	}
	return n;
}

/* Lines */

struct line {
	char b[LINE_MAX_];
	size_t n;
	size_t lim; /* content stops here; the rest is for closing */
	bool cut;
};

static void put(struct line *l, const char *s, size_t len)
{
	if (l->cut)
		return;
	if (len > l->lim - l->n) {
		l->cut = true;
		return;
	}
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* Appends past lim, into the reserve: for what closes a line. */
static void put_close(struct line *l, const char *s)
{
	size_t len = strlen(s);
	if (len > sizeof(l->b) - l->n)
		len = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

static void put_json(struct line *l, const char *s)
{
	if (l->cut)
		return;
	size_t r = stk__log_json_escape(s, strlen(s), l->b + l->n, l->lim - l->n + 1);
	l->n += r & ~STK__LOG_CUT;
	if (r & STK__LOG_CUT)
		l->cut = true;
}

static void put_text(struct line *l, const char *s, bool quoted)
{
	if (l->cut)
		return;
	size_t r = text_escape(s, strlen(s), l->b + l->n, l->lim - l->n + 1, quoted);
	l->n += r & ~STK__LOG_CUT;
	if (r & STK__LOG_CUT)
		l->cut = true;
}

static bool reserved_key(const char *k)
{
	static const char *const names[] = { "time",  "level", "component",
					     "event", "msg",   "truncated" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(k, names[i]))
			return true;
	return false;
}

static bool needs_quotes(const char *v)
{
	if (!*v)
		return true;
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || *v == '"' || *v == '\\' || *v == 0x7f)
			return true;
	return false;
}

/*
 * Builds and writes a line: msg (NULL for an event), or event and its n
 * fields.  msg_cut: the message or fields were cut before they got here.
 */
static void emit(int level, const char *file, const char *msg, const char *event,
		 const struct stk__log_field *f, int n, bool msg_cut)
{
	int saved = errno;
	struct line l;
	l.n = 0;
	l.lim = sizeof(l.b) - RESERVE;
	l.cut = false;

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[80];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ts.tv_nsec / 1000000));
	const char *lv = level >= 0 && level <= STK_LOG_DEBUG ? level_names[level] : "debug";
	size_t clen;
	const char *comp = stk__log_component(file, &clen);

	if (stk__log_format() == STK_LOG_JSON) {
		puts_(&l, "{\"time\":\"");
		puts_(&l, when);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, lv);
		puts_(&l, "\",\"component\":\"");
		char cbuf[64];
		snprintf(cbuf, sizeof(cbuf), "%.*s", (int)clen, comp);
		put_json(&l, cbuf);
		if (msg) {
			puts_(&l, "\",\"msg\":\"");
			put_json(&l, msg);
			if (l.cut)
				put_close(&l, "\"");
			else
				puts_(&l, "\"");
		} else {
			puts_(&l, "\",\"event\":\"");
			put_json(&l, event);
			if (l.cut)
				put_close(&l, "\"");
			else
				puts_(&l, "\"");
			for (int i = 0; i < n && !l.cut; i++) {
				size_t mark = l.n;
				puts_(&l, ",\"");
				if (reserved_key(f[i].key) || !*f[i].key)
					puts_(&l, "_");
				put_json(&l, f[i].key);
				puts_(&l, "\":");
				if (f[i].type == STK__LOG_NUM) {
					puts_(&l, f[i].val);
				} else if (f[i].type == STK__LOG_TRUE) {
					puts_(&l, "true");
				} else {
					puts_(&l, "\"");
					put_json(&l, f[i].val);
					puts_(&l, "\"");
				}
				if (l.cut) /* a field that does not fit is left out whole */
					l.n = mark;
			}
		}
		if (l.cut || msg_cut)
			put_close(&l, ",\"truncated\":true");
		put_close(&l, "}\n");
	} else {
		puts_(&l, when);
		puts_(&l, " stokerd ");
		puts_(&l, lv);
		puts_(&l, " ");
		put(&l, comp, clen);
		puts_(&l, ": ");
		if (msg) {
			put_text(&l, msg, false);
		} else {
			put_text(&l, event, false);
			for (int i = 0; i < n; i++) {
				puts_(&l, " ");
				put_text(&l, f[i].key, false);
				if (f[i].type == STK__LOG_TRUE)
					continue;
				puts_(&l, "=");
				if (needs_quotes(f[i].val)) {
					puts_(&l, "\"");
					put_text(&l, f[i].val, true);
					puts_(&l, "\"");
				} else {
					put_text(&l, f[i].val, false);
				}
			}
		}
		if (l.cut || msg_cut)
			put_close(&l, " (truncated)");
		put_close(&l, "\n");
	}
	/* One write per line, so that lines of concurrent threads do not interleave. */
	const char *p = l.b;
	size_t left = l.n;
	while (left) {
		ssize_t w = write(STDERR_FILENO, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
	errno = saved;
}

void stk__log(int level, const char *file, const char *fmt, ...)
{
	if (level > stk__log_level)
		return;
	char msg[MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r < 0)
		msg[0] = 0;
	stk__log_scrub(msg, sizeof(msg));
	emit(level, file, msg, NULL, NULL, 0, r >= (int)sizeof(msg));
}

void stk__event(int level, const char *file, const char *event, const char *fields_fmt, ...)
{
	if (level > stk__log_level)
		return;
	char buf[MSG_MAX] = "";
	int r = 0;
	if (fields_fmt) {
		va_list ap;
		va_start(ap, fields_fmt);
		r = vsnprintf(buf, sizeof(buf), fields_fmt, ap);
		va_end(ap);
		if (r < 0)
			buf[0] = 0;
	}
	/* Scrubbed before it is split, so that a secret's name in a key counts. */
	stk__log_scrub(buf, sizeof(buf));
	struct stk__log_field f[FIELDS];
	int n = stk__log_fields(buf, f, FIELDS);
	emit(level, file, NULL, event ? event : "", f, n, r >= (int)sizeof(buf));
}

int stk__log_parse(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}

int stk__parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int stk__parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 0:
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t stk__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
