/* SPDX-License-Identifier: MIT */
/* Stall accounting: see stall.h and docs/stall.md. */
#include "stall.h"

/* Prometheus-style buckets from 100 µs (a resident get) to a minute (a shard fetch). */
const double stk_hist_bounds_s[STK_HIST_BOUNDS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
						    0.005,  0.01,    0.025,  0.05,  0.1,
						    0.25,   1,	     5,	     60 };

void stk__hist_add(struct stk_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	unsigned i = 0;
	while (i < STK_HIST_BOUNDS && s > stk_hist_bounds_s[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_ns += ns;
}

#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}
#define SHARE_WINDOW 10e9 /* ns: throughput halves its history past this */

/* Moves the virtual clock to now. */
static void advance(struct stk_model *m, uint64_t now)
{
	if (now < m->t_last)
		now = m->t_last;
	if (m->inflight)
		m->v += (double)(now - m->t_last) / m->inflight;
	m->t_last = now;
}

static void record(struct stk_model *m)
{
	m->ev[m->nev++ % STK_MODEL_EV] = (struct stk_model_ev){ m->t_last, m->v, m->inflight };
}

/* The virtual time at t, between a fetch's start (v0) and now: from the events kept. */
static double v_at(const struct stk_model *m, uint64_t t, uint64_t start, double v0)
{
	uint32_t kept = m->nev < STK_MODEL_EV ? m->nev : STK_MODEL_EV;
	for (uint32_t k = 1; k <= kept; k++) {
		const struct stk_model_ev *e = &m->ev[(m->nev - k) % STK_MODEL_EV];
		if (e->t <= t)
			return e->t < start ? v0 : e->v + (e->n ? (double)(t - e->t) / e->n : 0);
	}
	/* Older than what is kept: interpolated over the fetch. */
	return m->t_last > start
		   ? v0 + (m->v - v0) * (double)(t - start) / (double)(m->t_last - start)
		   : v0;
}

double stk__model_begin(struct stk_model *m, uint64_t now)
{
	advance(m, now);
	m->inflight++;
	record(m);
	return m->v;
}

void stk__model_abort(struct stk_model *m, uint64_t now)
{
	advance(m, now);
	if (m->inflight)
		m->inflight--;
	record(m);
}

void stk__model_fetch(struct stk_model *m, uint64_t size, uint64_t start, double v0,
		      uint64_t first_byte, uint64_t end)
{
	advance(m, end);
	if (first_byte < start || first_byte > end)
		first_byte = start;
	double share = m->v - v_at(m, first_byte, start, v0);
	if (m->inflight)
		m->inflight--;
	record(m);
	m->lat[m->fetches % STK_MODEL_LAT] = first_byte - start;
	m->fetches++;
	/* The decile of the ring: 64 values sorted per fetch is little next to a fetch. */
	uint64_t v[STK_MODEL_LAT];
	size_t n = m->fetches < STK_MODEL_LAT ? (size_t)m->fetches : STK_MODEL_LAT;
	memcpy(v, m->lat, n * sizeof(v[0]));
	qsort(v, n, sizeof(v[0]), cmp_u64);
	m->lat_ns = v[(n - 1) / 10];
	m->bytes += size;
	m->share_ns += share > 0 ? share : 0;
	if (m->share_ns > SHARE_WINDOW) {
		m->share_ns /= 2;
		m->bytes /= 2;
	}
}

uint64_t stk__model_predict(const struct stk_model *m, uint64_t size)
{
	if (!m || !m->fetches)
		return 0;
	double t = (double)m->lat_ns;
	if (m->bytes && m->share_ns > 0)
		t += (double)size * m->share_ns / (double)m->bytes;
	return t < 1 ? 1 : (uint64_t)t;
}

void stk__req_object(struct stk_req *r, const struct stk_model *m, uint64_t size, uint64_t fetch_ns,
		     bool resident)
{
	uint64_t pred = stk__model_predict(m, size);
	r->objects++;
	r->bytes += size;
	if (resident)
		r->hits++;
	else
		r->fetch = true;
	if (fetch_ns) {
		r->sync_ns += pred && pred < fetch_ns ? pred : fetch_ns;
	} else if (pred) {
		r->sync_ns += pred;
		r->model_ns += pred;
	} else {
		r->unknown++;
	}
}

uint64_t stk__req_end(const struct stk_req *r, struct stk_stall *const *t, unsigned n)
{
	uint64_t avoided = r->sync_ns > r->wait_ns ? r->sync_ns - r->wait_ns : 0;
	uint64_t model =
	    r->sync_ns ? (uint64_t)((double)avoided * (double)r->model_ns / (double)r->sync_ns) : 0;
	for (unsigned i = 0; i < n; i++) {
		struct stk_stall *s = t[i];
		s->requests++;
		s->objects += r->objects;
		s->hits += r->hits;
		s->bytes += r->bytes;
		s->stall_ns += r->wait_ns;
		if (r->fetch)
			s->fetch_stall_ns += r->wait_ns;
		else
			s->delivery_stall_ns += r->wait_ns;
		s->avoided_ns += avoided;
		s->avoided_model_ns += model;
		s->unknown_objects += r->unknown;
	}
	return avoided;
}

void stk__stall_copy(uint64_t wait_ns, struct stk_stall *const *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		t[i]->stall_ns += wait_ns;
		t[i]->delivery_stall_ns += wait_ns;
	}
}
