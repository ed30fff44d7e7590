/* SPDX-License-Identifier: MIT */
/*
 * The daemon's RAM segments as this client maps them.  A GET answers where
 * its object is: (segment, generation, offset).  The first time a connection
 * is told of a segment's generation the reply carries the segment's fd, and
 * the client maps the whole segment once, read-only, and keeps it: later
 * gets into it cost no mmap, no fd and no page faults on pages seen before.
 * A dedicated segment (one huge object) comes with its fd every time and is
 * unmapped when its last view goes, so memory the daemon freed is not kept
 * alive here.  A segment index the daemon reuses gets a new generation; the
 * old mapping stays while views into it do.  A segment the daemon closed
 * (its pin area's generations say so) is unmapped once no view uses it,
 * looked at with every GET reply, so a closed segment's pages do not
 * outlive the daemon's budget here for longer than the client is idle.
 *
 * Every mapping made and every one about to go is told to the map hooks
 * (stk_set_map_hooks()), which is how device registrations (gpu/'s pinned
 * arena) follow the mappings.
 *
 * Called with the client's lock held (stk__segs_fini: as the client is freed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_internal.h"

struct stk_seg_map {
	uint32_t gen;
	bool dedicated;
	uint32_t views;
	const uint8_t *base;
	size_t len;
	struct stk_seg_map *next; /* older generations of the same index */
};

/* Whether s has hooks this process may call (a forked child calls none). */
static bool hooked(const struct stk_segs *s)
{
	return s->hooks.mapped && s->hooks_pid == getpid();
}

/* Unmaps m, telling the hooks first. */
static void unmap(struct stk_segs *s, struct stk_seg_map *m)
{
	if (hooked(s))
		s->hooks.unmapping(s->hooks.arg, m->base, m->len);
	munmap((void *)m->base, m->len);
	free(m);
}

static struct stk_seg_map *find(struct stk_segs *s, uint32_t seg, uint32_t gen)
{
	if (seg >= s->n)
		return NULL;
	for (struct stk_seg_map *m = s->v[seg]; m; m = m->next)
		if (m->gen == gen)
			return m;
	return NULL;
}

/* Whether the daemon says it closed the segment m maps (index seg). */
static bool closed(const struct stk_segs *s, uint32_t seg, const struct stk_seg_map *m)
{
	return s->gens && seg < STK_SEG_GENS &&
	       __atomic_load_n(&s->gens[seg], __ATOMIC_ACQUIRE) != m->gen + 1;
}

/* Unmaps the mappings of index seg that no view uses and that are not current. */
static void sweep(struct stk_segs *s, uint32_t seg)
{
	for (struct stk_seg_map **pp = &s->v[seg]; *pp;) {
		struct stk_seg_map *m = *pp;
		bool current = pp == &s->v[seg] && !m->dedicated && !closed(s, seg, m);
		if (m->views || current) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		unmap(s, m);
	}
}

int stk__segs_take(struct stk_segs *s, const struct stk_get_where *g, int fd, const uint8_t **base)
{
	struct stk_seg_map *m = find(s, g->seg, g->gen);
	if (m) {
		if (fd >= 0)
			close(fd);
		m->views++;
		*base = m->base;
		return 0;
	}
	if (fd < 0)
		return -EPROTO; /* told of a segment it never sent */
	if (g->seg >= s->n) {
		uint32_t n = g->seg + 16;
		struct stk_seg_map **v = realloc(s->v, n * sizeof(*v));
		if (!v) {
			close(fd);
			return -ENOMEM;
		}
		for (uint32_t i = s->n; i < n; i++)
			v[i] = NULL;
		s->v = v;
		s->n = n;
	}
	m = calloc(1, sizeof(*m));
	void *p = m ? mmap(NULL, g->seg_size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	int r = m ? -errno : -ENOMEM;
	close(fd);
	if (p == MAP_FAILED) {
		free(m);
		return r;
	}
	m->gen = g->gen;
	m->dedicated = g->flags & STK_GET_DEDICATED;
	m->views = 1;
	m->base = p;
	m->len = g->seg_size;
	m->next = s->v[g->seg];
	s->v[g->seg] = m;
	if (hooked(s))
		s->hooks.mapped(s->hooks.arg, m->base, m->len);
	sweep(s, g->seg);
	*base = m->base;
	return 0;
}

void stk__segs_put(struct stk_segs *s, uint32_t seg, uint32_t gen)
{
	struct stk_seg_map *m = find(s, seg, gen);
	if (!m || !m->views)
		return;
	if (--m->views == 0)
		sweep(s, seg);
}

void stk__segs_trim(struct stk_segs *s)
{
	for (uint32_t i = 0; s->gens && i < s->n; i++)
		if (s->v[i])
			sweep(s, i);
}

void stk__segs_fini(struct stk_segs *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		while (s->v[i]) {
			struct stk_seg_map *m = s->v[i];
			s->v[i] = m->next;
			unmap(s, m);
		}
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
	if (hooked(s) && s->hooks.release)
		s->hooks.release(s->hooks.arg);
	memset(&s->hooks, 0, sizeof(s->hooks));
}

int stk_set_map_hooks(struct stk_client *c, const struct stk_map_hooks *h)
{
	if (!c || (h && (h->size < sizeof(*h) || !h->mapped || !h->unmapping))) {
		stk__set_err("stk_set_map_hooks: a NULL client, or hooks without size, mapped "
			     "or unmapping");
		return -EINVAL;
	}
	if (stk__forked(c))
		return stk__forked_err(c);
	struct stk_segs *s = &c->segs;
	struct stk_map_hooks old;
	int r = 0;
	pthread_mutex_lock(&c->mu);
	old = s->hooks;
	if (h && s->hooks.mapped) {
		stk__set_err("stk_set_map_hooks: this client has map hooks already");
		r = -EBUSY;
		goto out;
	}
	if (h) {
		s->hooks = *h;
		s->hooks.size = sizeof(*h);
		s->hooks_pid = getpid();
	}
	for (uint32_t i = 0; i < s->n; i++)
		for (struct stk_seg_map *m = s->v[i]; m; m = m->next)
			if (h)
				h->mapped(h->arg, m->base, m->len);
			else if (old.mapped)
				old.unmapping(old.arg, m->base, m->len);
	if (!h) {
		if (old.mapped && old.release)
			old.release(old.arg);
		memset(&s->hooks, 0, sizeof(s->hooks));
	}
out:
	pthread_mutex_unlock(&c->mu);
	return r;
}
