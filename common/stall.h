/* SPDX-License-Identifier: MIT */
/*
 * Stall accounting (docs/stall.md): what clients waited for their bytes, and
 * what reading them synchronously from the backend would have cost instead.
 * Pure arithmetic on times the caller passes in, so the tests drive it with
 * a synthetic clock; the daemon feeds it from fetches and from the waits
 * clients report (prefetch/obs.c).
 */
#ifndef STOKER_STALL_H
#define STOKER_STALL_H

#include <stdbool.h>
#include <stdint.h>

/* Histogram buckets: upper bounds in seconds, then +Inf. */
#define STK_HIST_BOUNDS 14
extern const double stk_hist_bounds_s[STK_HIST_BOUNDS];

/* A histogram of durations; bucket[i] counts values <= bound i (not cumulative). */
struct stk_hist {
	uint64_t bucket[STK_HIST_BOUNDS + 1]; /* the last: above every bound */
	uint64_t count;
	uint64_t sum_ns;
};

void stk__hist_add(struct stk_hist *h, uint64_t ns);

/*
 * A backend endpoint's model of a synchronous read: latency plus size over
 * throughput (docs/stall.md).
 *
 * Latency is the lowest decile of the time to first byte of the last
 * STK_MODEL_LAT fetches: concurrent fetches queue for the backend and for
 * the daemon's own workers, which a lone synchronous reader does not, so
 * the decile sees past that queueing and errs low.
 *
 * Throughput is bytes over fair-share transfer time.  The fetches in flight
 * share the endpoint: a virtual clock advances at 1/n of real time while n
 * are in flight (processor sharing), and a fetch's share is how far it
 * advanced from its first byte to its end.  The shares of fetches that ran
 * one at a time are their transfer times; those of fetches that ran
 * together through one bottleneck add up to the time it was busy, so the
 * throughput is the bottleneck's, which one synchronous reader gets.  Where
 * each stream is limited on its own the model overstates the throughput and
 * so understates what a synchronous read costs: it errs low, never high.
 */
#define STK_MODEL_LAT 64
#define STK_MODEL_EV  256 /* virtual-clock changes kept, to place first bytes in the past */

struct stk_model {
	uint64_t fetches;
	uint64_t lat_ns;	     /* lowest decile of lat[] */
	uint64_t lat[STK_MODEL_LAT]; /* times to first byte, a ring */
	uint64_t bytes;		     /* transferred by the fetches over share_ns */
	double share_ns;	     /* their fair shares, summed */
	/* The virtual clock: v at t_last, advancing at 1/inflight. */
	uint32_t inflight;
	double v;
	uint64_t t_last;
	struct stk_model_ev {
		uint64_t t;
		double v;
		uint32_t n; /* in flight from t on */
	} ev[STK_MODEL_EV];
	uint32_t nev; /* events recorded; the ring holds the last STK_MODEL_EV */
};

/* A fetch starts at now: returns its virtual start, which stk__model_fetch takes. */
double stk__model_begin(struct stk_model *m, uint64_t now);
/*
 * A fetch of size bytes begun at start (virtual v0) ended well at end, its
 * first byte at first_byte (0 when the transport does not say: all of it was
 * transfer).
 */
void stk__model_fetch(struct stk_model *m, uint64_t size, uint64_t start, double v0,
		      uint64_t first_byte, uint64_t end);
/* A fetch begun on m failed at now: it leaves the clock, teaching nothing. */
void stk__model_abort(struct stk_model *m, uint64_t now);
/* What a synchronous read of size bytes would take, in ns; 0 when m has seen no fetch. */
uint64_t stk__model_predict(const struct stk_model *m, uint64_t size);

/* Totals for one client, one dataset, or all of them. */
struct stk_stall {
	uint64_t requests; /* waits reported: a get, or a batch get */
	uint64_t objects;
	uint64_t hits;		    /* objects resident when asked for */
	uint64_t bytes;		    /* of the objects got */
	uint64_t stall_ns;	    /* summed waits */
	uint64_t fetch_stall_ns;    /* waits for bytes not resident anywhere */
	uint64_t delivery_stall_ns; /* waits for bytes that were resident */
	uint64_t avoided_ns;	    /* estimate, see stk__req_end */
	uint64_t avoided_model_ns;  /* of which from the model: objects never fetched here */
	uint64_t unknown_objects;   /* got with no estimate at all (no fetch seen yet) */
};

/* One request being tallied: its wait, and a synchronous read's cost of its objects. */
struct stk_req {
	uint64_t wait_ns;
	uint64_t sync_ns;  /* what reading its objects synchronously would take */
	uint64_t model_ns; /* of which estimated by a model */
	uint64_t bytes;
	uint32_t objects, hits, unknown;
	bool fetch; /* some object was not resident when asked: a fetch stall */
};

/*
 * Adds an object to r: size bytes, fetch_ns its last fetch's duration here (0
 * if this daemon never fetched it), m its endpoint's model (or NULL),
 * resident whether it was resident when asked.  A synchronous read costs the
 * smaller of its own fetch time (inflated when fetches ran concurrently) and
 * the model's prediction; the model alone for an object never fetched here.
 */
void stk__req_object(struct stk_req *r, const struct stk_model *m, uint64_t size, uint64_t fetch_ns,
		     bool resident);
/*
 * Ends r into each of the n totals t: avoided = max(0, sync - wait), the part
 * from the model in proportion.  Returns the avoided ns.
 */
uint64_t stk__req_end(const struct stk_req *r, struct stk_stall *const *t, unsigned n);
/*
 * Adds wait_ns a client spent after a get moving an object onward (an H2D
 * copy) to each of the n totals: stall and delivery stall, no request, no
 * object, nothing avoided.
 */
void stk__stall_copy(uint64_t wait_ns, struct stk_stall *const *t, unsigned n);

#endif
