/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over S3's XML (transports/s3_xml.c): the input is a
 * ListObjectsV2 page, parsed as stk__s3_parse_list() parses one, and an error
 * body, parsed by stk__s3_parse_error().  Besides the sanitizers, it checks
 * what the parsers promise: every entry's key lies under the prefix's rest,
 * its URI is the base plus the key, strings are NUL-terminated in their
 * buffers, and a failed parse leaves nothing to free beyond the catalog.
 */
#include <errno.h>

#include "common/log.h"
#include "tests/fuzz/fuzz_util.h"
#include "transports/s3_xml.h"
#include "transports/transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = STK_LOG_ERROR;
	return 0;
}

static void list(const char *xml, size_t len, const char *prefix)
{
	static const char base[] = "s3://bucket/";
	struct stk_catalog cat = { 0 };
	bool truncated = false;
	char token[1024], err[256];
	memset(token, 'x', sizeof(token));
	int r = stk__s3_parse_list(xml, len, prefix, base, &cat, &truncated, token, sizeof(token),
				   err, sizeof(err));
	fz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == 0) {
		fz_check(memchr(token, 0, sizeof(token)) != NULL);
		for (uint32_t i = 0; i < cat.n; i++) {
			const struct stk_catalog_entry *e = &cat.e[i];
			size_t kl = strlen(e->key), ul = strlen(e->uri);
			fz_check(ul == sizeof(base) - 1 + strlen(prefix) + kl);
			fz_check(!strncmp(e->uri, base, sizeof(base) - 1));
			fz_check(!strcmp(e->uri + ul - kl, e->key));
			fz_check(kl == 0 || e->key[kl - 1] != '/');
		}
	} else {
		fz_check(memchr(err, 0, sizeof(err)) != NULL);
	}
	stk__catalog_free(&cat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	list(xml, size, "");
	list(xml, size, "data/");

	char code[64], msg[256];
	int r = stk__s3_parse_error(xml, size, code, sizeof(code), msg, sizeof(msg));
	fz_check(r == 0 || r == -EINVAL);
	if (r == 0)
		fz_check(memchr(code, 0, sizeof(code)) && memchr(msg, 0, sizeof(msg)));
	return 0;
}
