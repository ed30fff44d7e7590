/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over dataset and object URIs, which come from clients and
 * manifests: the scheme lookup (transports/registry.c), s3:// splitting
 * (s3.c, stk__s3_split), the SigV4 encoders a key and a query go through
 * (sigv4.c) and the host policy's URL check (http_common.c, curl's URL
 * parser, no connection).  The input is one URI; a NUL ends it.  Besides the
 * sanitizers, it checks that a bucket is one S3 could name, that an
 * encoding fits and is a pure re-encoding of its input, and that a canonical
 * query is its own canonical form.
 */
#include <errno.h>
#include <stdbool.h>

#include "common/log.h"
#include "tests/fuzz/fuzz_util.h"
#include "transports/http.h"
#include "transports/s3_xml.h"
#include "transports/sigv4.h"
#include "transports/transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = STK_LOG_ERROR;
	return 0;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = fz_strndup(data, size);
	size_t len = strlen(uri);
	char err[512];
	int r;

	const struct stk_transport_ops *tp = stk__transport_find(uri, &r, err, sizeof(err));
	fz_check(tp || r == -EINVAL || r == -EPROTONOSUPPORT);

	char bucket[64];
	const char *key = NULL;
	r = stk__s3_split(uri, bucket, sizeof(bucket), &key, err, sizeof(err));
	fz_check(r == 0 || r == -EINVAL);
	if (r == 0) {
		size_t bl = strlen(bucket);
		fz_check(bl >= 3 && bl <= 63);
		for (size_t i = 0; i < bl; i++)
			fz_check(bucket[i] != '/' && bucket[i] != '?' && bucket[i] != '#' &&
				 bucket[i] != '@' && bucket[i] != ':');
		fz_check(!*key || (key > uri && key < uri + len));
	}

	/* A key is encoded keeping '/', a query name or value without. */
	for (int keep = 0; keep < 2; keep++) {
		size_t cap = 3 * len + 1;
		char *enc = malloc(cap);
		fz_check(enc != NULL);
		ssize_t n = stk__sigv4_uri_encode(uri, len, keep, enc, cap);
		fz_check(n >= 0 && (size_t)n < cap && enc[n] == 0);
		size_t j = 0;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)uri[i];
			if (unreserved(c) || (keep && c == '/')) {
				fz_check(enc[j] == (char)c);
				j++;
			} else {
				fz_check(enc[j] == '%');
				j += 3;
			}
		}
		fz_check(j == (size_t)n);
		/* Too small a buffer is refused, never overrun. */
		if (n > 0)
			fz_check(stk__sigv4_uri_encode(uri, len, keep, enc, (size_t)n) ==
				 -ENAMETOOLONG);
		free(enc);
	}
	char cq[4096];
	ssize_t qn = stk__sigv4_canonical_query(uri, cq, sizeof(cq));
	fz_check(qn == -ENAMETOOLONG || qn == -E2BIG ||
		 (qn >= 0 && (size_t)qn < sizeof(cq) && cq[qn] == 0));
	if (qn >= 0) {
		/* A canonical query is its own canonical form (sigv4.h). */
		char again[4096];
		fz_check(stk__sigv4_canonical_query(cq, again, sizeof(again)) == qn);
		fz_check(!strcmp(cq, again));
	}
	char small[16];
	qn = stk__sigv4_canonical_query(uri, small, sizeof(small));
	fz_check(qn < (ssize_t)sizeof(small));

	if (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) {
		r = stk__http_check_url(uri, uri, err, sizeof(err));
		fz_check(r == 0 || r == -EINVAL || r == -EACCES || r == -ENOMEM);
	}
	free(uri);
	return 0;
}
