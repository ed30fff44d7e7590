/* SPDX-License-Identifier: MIT */
/* S3's XML (ListObjectsV2 pages and error bodies, parsed with expat) and s3:// URIs. */
#ifndef STOKER_S3_XML_H
#define STOKER_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "transports/transport.h"

/*
 * Parses one ListObjectsV2 page.  Each object whose key starts with prefix
 * is added to cat with key = the rest of the key, uri = uri_base + key and
 * version = its <ETag> (malloc'd, quotes and all, as the ETag header gives
 * it; NULL when the page has none); "directory" placeholders (keys ending in
 * '/') are skipped.  *truncated and
 * token (the NextContinuationToken, "" if none) tell whether to ask again.
 * Returns 0, -EINVAL with err for malformed XML or a bad Size, -ENOMEM.
 */
int stk__s3_parse_list(const char *xml, size_t len, const char *prefix, const char *uri_base,
		       struct stk_catalog *cat, bool *truncated, char *token, size_t tokcap,
		       char *err, size_t errlen);

/* Extracts <Code> and <Message> from an S3 error body. Returns 0 or -EINVAL. */
int stk__s3_parse_error(const char *xml, size_t len, char *code, size_t codecap, char *msg,
			size_t msgcap);

/*
 * Splits s3://bucket/key (s3.c): bucket (bcap bytes) gets the 3-63 character
 * bucket, *key points into uri after its '/' ("" for the bucket itself).
 * Returns 0, or -EINVAL with err for another scheme, a bad bucket or a key
 * too long to sign.
 */
int stk__s3_split(const char *uri, char *bucket, size_t bcap, const char **key, char *err,
		  size_t errlen);

#endif
