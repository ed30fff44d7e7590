/* SPDX-License-Identifier: MIT */
/*
 * The smallest complete libstoker program: one epoch over a dataset in a
 * shuffled order, told to the daemon up front so it prefetches ahead.
 *
 *   stokerd --foreground --socket /tmp/s.sock --allow-root /data &
 *   STOKER_SOCKET=/tmp/s.sock ./stoker-example-epoch file:///data/train/
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "stoker.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DATASET_URI\n", argv[0]);
		return 2;
	}
	struct stk_client *c = NULL;
	struct stk_dataset *ds = NULL;
	uint32_t *order = NULL;
	int r = stk_connect(NULL, &c); /* $STOKER_SOCKET or the default socket */
	if (r)
		goto fail;
	r = stk_dataset_open(c, argv[1], 0, &ds);
	if (r)
		goto fail;
	size_t n = stk_dataset_count(ds);
	order = malloc((n ? n : 1) * sizeof(*order));
	if (!order) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	srand(1);
	for (size_t i = n; i > 1; i--) { /* the sampler's shuffle */
		size_t j = (size_t)rand() % i;
		uint32_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	r = stk_plan(ds, order, n);
	if (r)
		goto fail;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		struct stk_view v;
		r = stk_get(ds, order[i], &v); /* blocks until resident; zero-copy */
		if (r)
			goto fail;
		const unsigned char *p = v.data;
		for (uint64_t k = 0; k < v.size; k++) /* the "training step" */
			sum += p[k];
		stk_release(&v);
	}
	struct stk_stats st = { .size = sizeof(st) };
	if (stk_stats(c, &st) == 0)
		printf("%zu objects, byte sum %llu, %llu of %llu gets were hits, waited %.3f s\n",
		       n, (unsigned long long)sum, (unsigned long long)st.client_hits,
		       (unsigned long long)st.client_gets, (double)st.client_wait_ns / 1e9);
	free(order);
	stk_dataset_close(ds);
	stk_close(c);
	return 0;
fail:
	fprintf(stderr, "%s: %s: %s\n", argv[1], stk_strerror(r), stk_errmsg());
	free(order);
	stk_dataset_close(ds);
	stk_close(c);
	return 1;
}
