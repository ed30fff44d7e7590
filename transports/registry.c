/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "transports/transport.h"

/* One line per backend. */
static const struct stk_transport_ops *const transports[] = {
	&stk_transport_file,
	&stk_transport_http,
	&stk_transport_https,
	&stk_transport_s3,
};

#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

const struct stk_transport_ops *stk__transport_find(const char *uri, int *errp, char *err,
						    size_t errlen)
{
	const char *sep = strstr(uri, "://");
	if (!sep || sep == uri) {
		snprintf(err, errlen, "'%s' is not a URI: expected scheme://...", uri);
		*errp = -EINVAL;
		return NULL;
	}
	size_t n = (size_t)(sep - uri);
	for (size_t i = 0; i < NTRANSPORTS; i++) {
		if (strlen(transports[i]->name) == n && !strncmp(uri, transports[i]->name, n))
			return transports[i];
	}
	snprintf(err, errlen, "no transport for scheme '%.*s' in URI %s", (int)(n < 32 ? n : 32),
		 uri, uri);
	*errp = -EPROTONOSUPPORT;
	return NULL;
}

int stk__transports_init(const struct stk_tp_env *env)
{
	for (size_t i = 0; i < NTRANSPORTS; i++) {
		if (transports[i]->init) {
			int r = transports[i]->init(env);
			if (r)
				return r;
		}
	}
	return 0;
}

void stk__transports_fini(void)
{
	for (size_t i = 0; i < NTRANSPORTS; i++)
		if (transports[i]->fini)
			transports[i]->fini();
}
