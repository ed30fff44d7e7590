/* SPDX-License-Identifier: MIT */
/*
 * stk_set_map_hooks() (client/segments.c): every segment mapping a client
 * holds is reported at install, each new one as it is made, each one before
 * it is unmapped (a dedicated segment with its last view, everything when
 * the client is freed), and release comes once, last.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_S 60

struct seen {
	int mapped, unmapping, released;
	int live; /* mapped minus unmapping */
	struct {
		const void *base;
		size_t len;
	} r[16];
	int nr;
	int order_bad; /* a call after release */
};

static void on_mapped(void *arg, const void *base, size_t len)
{
	struct seen *s = arg;

	s->order_bad |= s->released;
	s->mapped++;
	s->live++;
	if (s->nr < 16) {
		s->r[s->nr].base = base;
		s->r[s->nr++].len = len;
	}
}

static void on_unmapping(void *arg, const void *base, size_t len)
{
	struct seen *s = arg;

	s->order_bad |= s->released;
	s->unmapping++;
	s->live--;
	for (int i = 0; i < s->nr; i++)
		if (s->r[i].base == base && s->r[i].len == len) {
			s->r[i] = s->r[--s->nr];
			return;
		}
	s->order_bad = 1; /* never reported as mapped */
}

static void on_release(void *arg)
{
	struct seen *s = arg;

	s->released++;
}

/* Whether v's bytes lie in a range reported mapped and not yet unmapped. */
static bool covered(const struct seen *s, const struct stk_view *v)
{
	for (int i = 0; i < s->nr; i++)
		if ((const char *)s->r[i].base <= (const char *)v->data &&
		    (const char *)v->data + v->size <= (const char *)s->r[i].base + s->r[i].len)
			return true;
	return false;
}

Test(e2e_hooks, mappings_are_reported_from_install_to_free, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	/* With --ram 64M segments are 8 MiB: object 2 comes in a segment of its own. */
	const uint64_t sizes[] = { 100 * E2E_KIB, 200 * E2E_KIB, 12 * E2E_MIB };
	struct seen s = { 0 }, other = { 0 };
	struct stk_map_hooks h = { .size = sizeof(h),
				   .mapped = on_mapped,
				   .unmapping = on_unmapping,
				   .release = on_release,
				   .arg = &s };
	struct stk_map_hooks h2 = h;
	struct stk_dataset *sds = NULL;
	struct e2e_dataset ds;
	struct stk_view a, b, big;
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/hooks", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 3, 0, 0x400c);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	cr_assert_eq(e2x_get_check(sds, 0, &ds.o[0], NULL, &a), 0);

	cr_assert_eq(stk_set_map_hooks(NULL, &h), -EINVAL);
	h2.size = sizeof(h2) - 1;
	cr_assert_eq(stk_set_map_hooks(c, &h2), -EINVAL);
	h2 = h;
	h2.unmapping = NULL;
	cr_assert_eq(stk_set_map_hooks(c, &h2), -EINVAL);

	cr_assert_eq(stk_set_map_hooks(c, &h), 0, "%s", stk_errmsg());
	cr_assert_eq(s.mapped, 1, "the mapping held at install is reported");
	cr_assert(covered(&s, &a));
	h2 = h;
	h2.arg = &other;
	cr_assert_eq(stk_set_map_hooks(c, &h2), -EBUSY);
	cr_assert_eq(other.mapped, 0);

	/* The same segment again: no new mapping.  A huge object: one of its own. */
	cr_assert_eq(e2x_get_check(sds, 1, &ds.o[1], NULL, &b), 0);
	cr_assert_eq(s.mapped, 1);
	cr_assert(covered(&s, &b));
	cr_assert_eq(e2x_get_check(sds, 2, &ds.o[2], NULL, &big), 0);
	cr_assert_eq(s.mapped, 2);
	cr_assert(covered(&s, &big));
	stk_release(&big);
	cr_assert_eq(s.unmapping, 1, "a dedicated segment goes with its last view");
	stk_release(&a);
	stk_release(&b);
	cr_assert_eq(s.unmapping, 1, "a shared segment stays mapped");

	/* Removed: every mapping held is reported going, then release. */
	cr_assert_eq(stk_set_map_hooks(c, NULL), 0, "%s", stk_errmsg());
	cr_assert_eq(s.live, 0);
	cr_assert_eq(s.released, 1);
	cr_assert_eq(stk_set_map_hooks(c, NULL), 0, "removing none");
	cr_assert_eq(s.released, 1);

	/* Installed again, then the client freed: unmapping for each, release last. */
	h2 = h;
	h2.arg = &other;
	cr_assert_eq(stk_set_map_hooks(c, &h2), 0, "%s", stk_errmsg());
	cr_assert_eq(other.mapped, 1);
	cr_assert_eq(e2x_get_check(sds, 0, &ds.o[0], NULL, &a), 0);
	stk_dataset_close(sds);
	stk_close(c);
	cr_assert_eq(other.released, 0, "a view still holds the client");
	stk_release(&a);
	cr_assert_eq(other.live, 0);
	cr_assert_eq(other.released, 1);
	cr_assert_not(s.order_bad || other.order_bad,
		      "a call after release, or of an unknown range");
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}
