/* SPDX-License-Identifier: MIT */
#ifndef STOKER_CLIENT_INTERNAL_H
#define STOKER_CLIENT_INTERNAL_H

#include "stoker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto/proto.h"

/* Sets this thread's stk_errmsg() text. */
void stk__set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* segments.c: the daemon's segments as this client maps them; callers hold the client's lock. */
struct stk_seg_map;
struct stk_segs {
	struct stk_seg_map **v; /* by segment index: newest generation first */
	uint32_t n;
	const uint32_t *gens; /* the daemon's word on which are open (STK_SEG_GENS), or NULL */
	struct stk_map_hooks hooks; /* stk_set_map_hooks(); hooks.mapped NULL: none */
	pid_t hooks_pid;	    /* the process that installed them: a forked child calls none */
};
/*
 * Counts a view into g's segment, mapping it from fd first if this client
 * has not (fd is consumed either way; -1 when the reply carried none).
 * Returns 0 with *base the mapping's start, -EPROTO when the segment was
 * never sent, or mmap's -errno.
 */
int stk__segs_take(struct stk_segs *s, const struct stk_get_where *g, int fd, const uint8_t **base);
/* Ends a view; unmaps a dedicated or replaced mapping no view uses any more. */
void stk__segs_put(struct stk_segs *s, uint32_t seg, uint32_t gen);
/* Unmaps every mapping no view uses of a segment the daemon has closed. */
void stk__segs_trim(struct stk_segs *s);
/* Unmaps everything (reported to the hooks, which are then released). */
void stk__segs_fini(struct stk_segs *s);

/*
 * libstoker's rooms: client.c (the connection: one socket many threads
 * share, request/reply matching, liveness), dataset.c (catalogs, plans),
 * get.c (gets, views, batches), segments.c (the daemon's segments as mapped
 * here).  What they share is declared here.
 */

#define GETB_CHUNK  1024 /* objects per GETB: well inside the daemon's waiting limit */
#define STK_REP_MAX 128	 /* WAITS entries a dataset keeps before sending them */
/* stk_view.flags, private: got through the resident table (fast.c); its release clears a pin. */
#define STK_VIEW_FAST_ 0x80000000u
#define REPLY_SMALL    1024 /* room for every reply but ENDPOINTS (and STATUS with a long message) */
#define REPLY_MAX      16384 /* the largest reply the daemon sends (ENDPOINTS) */

struct waiter {
	uint32_t seq;
	bool done;
	size_t len; /* 0 if the reply did not fit cap */
	int fd;	    /* received with the reply, or -1 */
	/* A GET's: the mapping of its segment (a view counted), or map_err. */
	const uint8_t *base;
	int map_err;
	struct batch *batch; /* a GETB's: replies go there, one per object */
	struct waiter *next;
	size_t cap;
	uint8_t buf[];
};

/* A waiter with room for a reply of cap bytes (zeroed, fd -1); the caller frees it. */
struct waiter *stk__waiter_new(size_t cap);

/*
 * Lifetimes: a client lives while it is open or any of its datasets lives; a
 * dataset lives while its handle is open or any view or fd hold taken through
 * it is unreleased.  So views outlive stk_dataset_close() and stk_close(), as
 * stoker.h promises, and their release after a close only unmaps.
 */
struct stk_client {
	unsigned refs; /* atomic */
	bool closed;
	int fd;
	pid_t pid;	     /* the process that connected; see forked() */
	uint32_t timeout_ms; /* 0: never */
	uint64_t group;	     /* plan group: the hash of its name (HELLO), or 0 for none */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t next_seq;
	bool reading;
	bool dead;
	int dead_err;		       /* -EPIPE or -ETIMEDOUT, once dead */
	char dead_msg[STK_ERRMSG_MAX]; /* stk_errmsg() for calls on a dead connection */
	uint64_t rx_ns;		       /* the liveness clock's start; see read_next() */
	uint64_t probe_ns;	       /* when the outstanding probe went out; 0: none */
	struct waiter *waiters;
	struct stk_segs segs; /* under mu */
	uint64_t *pins;	      /* the pin area (fast.c), or NULL */
	uint32_t pin_buckets;
	uint64_t pin_limit; /* bytes it may hold through pins: the daemon's client share */
	size_t pin_len;	    /* bytes mapped at pins: the pins, then segment generations */
	uint64_t pin_bytes; /* what it holds through pins now; atomic */
	struct stk_dataset *datasets; /* every live dataset, for stk__waits_flush_all; under mu */
	uint64_t gets, hits, misses, bytes, wait_ns; /* atomics */
};

struct stk_dataset {
	unsigned refs; /* atomic */
	bool closed;
	struct stk_client *c;
	uint32_t id;
	uint32_t count;
	uint64_t bytes;
	uint64_t *sizes;
	char **keys;
	char *keymem;
	uint32_t *hash; /* open addressing over key indices + 1; 0 = empty */
	uint32_t hash_mask;
	uint32_t daemon_id;	       /* the daemon's id of the dataset: pin keys use it */
	const struct stk_rt_entry *rt; /* the resident table, or NULL */
	size_t rt_len;
	/* Gets not told yet (WAITS), under c->mu; nrep is read atomically without it. */
	struct stk_wait_rec rep[STK_REP_MAX];
	uint32_t nrep, nrep_got;	 /* entries, and of them got through the table */
	uint64_t rep_t0;		 /* when rep[0] was added */
	bool planned;			 /* stk_plan() was called: GOTs go at once */
	struct stk_dataset *prev, *next; /* in c->datasets */
};

uint64_t stk__now_ns(void);
/* Whether the caller is a process other than the one that connected c. */
bool stk__forked(const struct stk_client *c);
/* Fails a request made in a forked child: -ECHILD, with the message. */
int stk__forked_err(const struct stk_client *c);
/*
 * Sends msg (its seq field is patched in) and waits for the reply into w
 * (every GETB reply, when w->batch is set).  Returns 0 with w filled, -EPIPE
 * when the daemon is gone, -ETIMEDOUT when it stopped answering, -ECHILD in
 * a forked child.
 */
int stk__call(struct stk_client *c, uint8_t *msg, size_t len, struct waiter *w);
/* Sends a request that has no reply (nothing in a forked child). */
void stk__post(struct stk_client *c, const uint8_t *msg, size_t len);
/* Decodes w's reply; on a daemon error returns its status with the message set. */
int stk__reply(struct waiter *w, uint16_t type, struct stk_reply *r);
void stk__client_unref(struct stk_client *c);
void stk__ds_unref(struct stk_dataset *ds);

/* fast.c: gets through the resident table. */
/* Maps the pin area a HELLO brought (fd consumed). 0 or -errno. */
int stk__fast_map_pins(struct stk_client *c, int fd, uint32_t buckets, uint64_t limit);
void stk__fast_unmap_pins(struct stk_client *c);
/* Maps the resident table after the catalog in an OPEN's memfd. 0 or -errno. */
int stk__fast_map_table(struct stk_dataset *ds, int fd, uint32_t cat_len);
void stk__fast_unmap_table(struct stk_dataset *ds);
/*
 * Gets index through the table: 0 with v filled, or -EAGAIN (do a GET).
 * A single get (t0: when the caller began waiting) is reported in a WAITS
 * entry with its wait, sent at once when ds has a plan (the daemon's
 * prefetching follows the plan's cursor), else with others; a batch's (t0
 * 0) is reported by its caller, stk__waits_batch().
 */
int stk__fast_get(struct stk_dataset *ds, uint32_t index, struct stk_view *v, uint64_t t0);
/* Ends a view stk__fast_get() gave (its pin; the caller puts its segment view). */
void stk__fast_release(struct stk_view *v);
/*
 * Reports a get, or a batch (n views; got: the views got through the table
 * are not reported yet), with its wait: queued, sent when the queue is full
 * or old.
 */
void stk__waits_add(struct stk_dataset *ds, const struct stk_view *v, size_t n, uint64_t wait_ns,
		    bool got);
/* Sends what is queued; with got_only, only when some entry is a get through the table. */
void stk__waits_flush(struct stk_dataset *ds, bool got_only);
/* Tells the daemon of the batch's views got through the table before a GETB for the rest. */
void stk__waits_got(struct stk_dataset *ds, const struct stk_view *v, size_t n);
/* stk__waits_flush for every dataset of c: its counters then count every get. */
void stk__waits_flush_all(struct stk_client *c);

/* get.c, called by the reading thread with c->mu held for a GET or GETB reply. */
void stk__map_reply(struct stk_client *c, struct waiter *x);
void stk__batch_reply(struct stk_client *c, struct waiter *x, const uint8_t *buf, size_t n, int fd);

#endif
