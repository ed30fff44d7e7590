/* SPDX-License-Identifier: MIT */
/*
 * Offline cache policies for tier_replay (tier_sim.h).  LRU lists are
 * arrays of links indexed by object id; Belady keeps a max-heap of next uses
 * per tier with lazy deletion: an entry is live while its object is still in
 * that tier with that next use, and an object's next use changes only when it
 * is got, which pushes a fresh entry.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tier_sim.h"

#define PAGE	4096u
#define NEVER	UINT64_MAX
#define IN_NONE 0
#define IN_RAM	1
#define IN_NVME 2

struct tier {
	uint64_t cap, used;
};

struct sim {
	const struct tsim_trace *t;
	uint8_t *loc;
	uint64_t *charge;
	/* LRU links: ids 0..nobj-1, then one head per tier (nobj + tier - 1). */
	uint32_t *prev, *next;
	struct tier tier[3];
	bool one_cache; /* Streaming: RAM's list is the whole cache, never demoted */
};

struct hent {
	uint64_t key;
	uint32_t obj;
};

struct heap {
	struct hent *e;
	size_t n, cap;
};

const char *tsim_name(enum tsim_policy p)
{
	static const char *const names[TSIM_NPOLICIES] = {
		[TSIM_LRU] = "lru",
		[TSIM_STREAMING] = "streaming",
		[TSIM_KEEP] = "keep",
		[TSIM_BELADY] = "belady",
	};

	return (unsigned)p < TSIM_NPOLICIES ? names[p] : "?";
}

static uint32_t head(const struct sim *s, int tier)
{
	return s->t->nobj + (uint32_t)tier - 1;
}

static void unlink_obj(struct sim *s, uint32_t o)
{
	s->next[s->prev[o]] = s->next[o];
	s->prev[s->next[o]] = s->prev[o];
}

/* Puts o at the most recently used end of tier's list and charges it there. */
static void push_front(struct sim *s, int tier, uint32_t o)
{
	uint32_t h = head(s, tier);

	s->next[o] = s->next[h];
	s->prev[o] = h;
	s->prev[s->next[h]] = o;
	s->next[h] = o;
	s->loc[o] = (uint8_t)tier;
	s->tier[tier].used += s->charge[o];
}

static void take_out(struct sim *s, uint32_t o)
{
	unlink_obj(s, o);
	s->tier[s->loc[o]].used -= s->charge[o];
	s->loc[o] = IN_NONE;
}

/* Moves the least recently used objects out of tier until it fits: to NVMe or away. */
static void lru_shrink(struct sim *s, int tier)
{
	while (s->tier[tier].used > s->tier[tier].cap) {
		uint32_t o = s->prev[head(s, tier)];

		take_out(s, o);
		if (tier == IN_RAM && !s->one_cache && s->tier[IN_NVME].cap >= s->charge[o]) {
			push_front(s, IN_NVME, o);
			lru_shrink(s, IN_NVME);
		}
	}
}

static int count(struct tsim_epoch *e, int loc, uint64_t size)
{
	if (loc == IN_RAM)
		e->hits_ram++;
	else if (loc == IN_NVME)
		e->hits_nvme++;
	else {
		e->misses++;
		e->miss_bytes += size;
	}
	return loc;
}

static void run_lru(struct sim *s, struct tsim_epoch *out)
{
	const struct tsim_trace *t = s->t;

	for (size_t i = 0; i < t->n; i++) {
		uint32_t o = t->obj[i];
		int was = s->loc[o];

		if (s->one_cache) {
			/* One list (kept as "RAM"); its hits are on disk if there is one. */
			int as = was && s->tier[IN_NVME].cap ? IN_NVME : was;

			count(&out[i / t->epoch_len], as, t->size[o]);
		} else {
			count(&out[i / t->epoch_len], was, t->size[o]);
		}
		if (was)
			take_out(s, o);
		if (s->charge[o] > s->tier[IN_RAM].cap)
			continue;
		push_front(s, IN_RAM, o);
		lru_shrink(s, IN_RAM);
	}
}

static void run_keep(struct sim *s, struct tsim_epoch *out)
{
	const struct tsim_trace *t = s->t;

	for (size_t i = 0; i < t->n; i++) {
		uint32_t o = t->obj[i];

		if (count(&out[i / t->epoch_len], s->loc[o], t->size[o]) != IN_NONE ||
		    s->charge[o] > s->tier[IN_RAM].cap)
			continue;
		for (int tier = IN_RAM; tier <= IN_NVME; tier++) {
			if (s->tier[tier].used + s->charge[o] <= s->tier[tier].cap) {
				push_front(s, tier, o);
				break;
			}
		}
	}
}

static int heap_push(struct heap *h, uint64_t key, uint32_t obj)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 1024;
		struct hent *e = realloc(h->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		h->e = e;
		h->cap = cap;
	}
	i = h->n++;
	while (i > 0 && h->e[(i - 1) / 2].key < key) {
		h->e[i] = h->e[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->e[i] = (struct hent){ key, obj };
	return 0;
}

static struct hent heap_pop(struct heap *h)
{
	struct hent top = h->e[0], last = h->e[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->e[c + 1].key > h->e[c].key)
			c++;
		if (h->e[c].key <= last.key)
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->n)
		h->e[i] = last;
	return top;
}

/* Pops the live object of tier whose next use is farthest. */
static uint32_t farthest(struct sim *s, struct heap *h, const uint64_t *nu, int tier)
{
	for (;;) {
		struct hent e = heap_pop(h);

		if (s->loc[e.obj] == tier && nu[e.obj] == e.key)
			return e.obj;
	}
}

static int run_belady(struct sim *s, struct tsim_epoch *out)
{
	const struct tsim_trace *t = s->t;
	uint64_t *later = malloc(t->n * sizeof(*later));
	uint64_t *nu = malloc(t->nobj * sizeof(*nu));
	struct heap h[3] = { { 0 } };
	int ret = -ENOMEM;

	if (!later || !nu)
		goto out;
	/* later[i]: the position of the next get of obj[i] after i. */
	for (uint32_t o = 0; o < t->nobj; o++)
		nu[o] = NEVER;
	for (size_t i = t->n; i-- > 0;) {
		later[i] = nu[t->obj[i]];
		nu[t->obj[i]] = i;
	}
	for (size_t i = 0; i < t->n; i++) {
		uint32_t o = t->obj[i];
		int was = count(&out[i / t->epoch_len], s->loc[o], t->size[o]);

		if (was)
			take_out(s, o);
		nu[o] = later[i];
		if (nu[o] == NEVER || s->charge[o] > s->tier[IN_RAM].cap)
			continue;
		push_front(s, IN_RAM, o);
		if (heap_push(&h[IN_RAM], nu[o], o))
			goto out;
		while (s->tier[IN_RAM].used > s->tier[IN_RAM].cap) {
			uint32_t v = farthest(s, &h[IN_RAM], nu, IN_RAM);

			take_out(s, v);
			if (s->charge[v] > s->tier[IN_NVME].cap)
				continue;
			push_front(s, IN_NVME, v);
			if (heap_push(&h[IN_NVME], nu[v], v))
				goto out;
			while (s->tier[IN_NVME].used > s->tier[IN_NVME].cap)
				take_out(s, farthest(s, &h[IN_NVME], nu, IN_NVME));
		}
	}
	ret = 0;
out:
	free(h[IN_RAM].e);
	free(h[IN_NVME].e);
	free(later);
	free(nu);
	return ret;
}

int tsim_run(enum tsim_policy p, const struct tsim_trace *t, uint64_t ram, uint64_t nvme,
	     struct tsim_epoch *out)
{
	struct sim s = { .t = t };
	size_t links = (size_t)t->nobj + 2;
	int ret = -ENOMEM;

	if (!t->epoch_len || (unsigned)p >= TSIM_NPOLICIES)
		return -EINVAL;
	for (size_t i = 0; i < t->n; i++)
		if (t->obj[i] >= t->nobj || i / t->epoch_len >= t->epochs)
			return -EINVAL;
	memset(out, 0, t->epochs * sizeof(*out));
	s.loc = calloc(t->nobj ? t->nobj : 1, 1);
	s.charge = malloc(links * sizeof(*s.charge));
	s.prev = malloc(links * sizeof(*s.prev));
	s.next = malloc(links * sizeof(*s.next));
	if (!s.loc || !s.charge || !s.prev || !s.next)
		goto out;
	for (uint32_t o = 0; o < t->nobj; o++)
		s.charge[o] = (t->size[o] + PAGE - 1) / PAGE * PAGE;
	for (int tier = IN_RAM; tier <= IN_NVME; tier++) {
		uint32_t hd = head(&s, tier);

		s.prev[hd] = s.next[hd] = hd;
	}
	s.tier[IN_RAM].cap = p == TSIM_STREAMING ? ram + nvme : ram;
	s.tier[IN_NVME].cap = nvme;
	switch (p) {
	case TSIM_LRU:
		run_lru(&s, out);
		ret = 0;
		break;
	case TSIM_STREAMING:
		s.one_cache = true;
		run_lru(&s, out);
		ret = 0;
		break;
	case TSIM_KEEP:
		run_keep(&s, out);
		ret = 0;
		break;
	default:
		ret = run_belady(&s, out);
		break;
	}
out:
	free(s.loc);
	free(s.charge);
	free(s.prev);
	free(s.next);
	return ret;
}
