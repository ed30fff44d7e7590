/* SPDX-License-Identifier: MIT */
/*
 * http:// and https://: objects served by any web server with Range support
 * (nginx, a CDN, a presigned URL).  HTTP has no listing, so a dataset is one
 * URL or a manifest of them; sizes come from the manifest or a HEAD.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transports/http.h"
#include "transports/transport.h"

#define READ_ALL_MAX (256u << 20)

static int web_prepare(const char *uri, const char *method, const char *range, char **url,
		       struct curl_slist **hdrs, char *err, size_t errlen)
{
	*hdrs = NULL;
	*url = strdup(uri);
	if (!*url) {
		snprintf(err, errlen, "%s: out of memory", uri);
		return -ENOMEM;
	}
	return 0;
}

static int web_error(const char *uri, long status, const char *body, size_t len, char *err,
		     size_t errlen)
{
	snprintf(err, errlen, "%s: HTTP %ld", uri, status);
	return stk__http_status_errno(status);
}

static int web_stat(const char *uri, uint64_t *size, char *err, size_t errlen)
{
	return stk__http_request(uri, "HEAD", web_prepare, web_error, 0, NULL, NULL, size, err,
				 errlen);
}

static int web_list(const char *uri, struct stk_catalog *cat, char *err, size_t errlen)
{
	size_t n = strlen(uri);
	if (uri[n - 1] == '/') {
		snprintf(err, errlen,
			 "%s: an HTTP prefix cannot be listed; open a manifest of URLs", uri);
		return -EINVAL;
	}
	uint64_t size;
	int r = web_stat(uri, &size, err, errlen);
	if (r)
		return r;
	const char *key = strrchr(uri, '/') + 1;
	return stk__catalog_add(cat, key, strlen(key), uri, size);
}

static int web_read_all(const char *uri, size_t max, char **buf, size_t *len, char *err,
			size_t errlen)
{
	return stk__http_request(uri, "GET", web_prepare, web_error, max ? max : READ_ALL_MAX, buf,
				 len, NULL, err, errlen);
}

static int web_submit(struct stk_fetch *f)
{
	return stk__http_fetch(f, web_prepare, web_error);
}

const struct stk_transport_ops stk_transport_http = {
	.name = "http",
	.init = stk__http_init,
	.fini = stk__http_fini,
	.list = web_list,
	.stat = web_stat,
	.read_all = web_read_all,
	.submit = web_submit,
};

const struct stk_transport_ops stk_transport_https = {
	.name = "https",
	.list = web_list,
	.stat = web_stat,
	.read_all = web_read_all,
	.submit = web_submit,
};
