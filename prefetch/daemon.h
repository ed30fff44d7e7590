/* SPDX-License-Identifier: MIT */
/*
 * stokerd's state: configuration, datasets, plans, client sessions.
 * Everything here is touched only on the loop thread.
 */
#ifndef STOKER_DAEMON_H
#define STOKER_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/cache.h"
#include "common/loop.h"
#include "common/stall.h"
#include "proto/proto.h"

#define STK_NONE UINT32_MAX

struct stk_config {
	const char *socket_path;
	uint64_t ram;
	char **roots; /* NULL-terminated */
	unsigned nroots;
	unsigned max_inflight; /* objects prefetched at once */
	unsigned workers;
	bool no_uring;
	bool no_direct;
	bool hugetlb; /* RAM segments on reserved hugetlb pages */
	/*
	 * Trust domains (--isolate): clients of different domains never share
	 * a segment, so never map each other's bytes.
	 */
	enum { STK_ISOLATE_UID, STK_ISOLATE_GID, STK_ISOLATE_NONE } isolate;
	/*
	 * Who may connect (--allow-uid, --allow-gid).  With neither: root,
	 * stokerd's uid, and peers with stokerd's gid (primary or
	 * supplementary).  With either: root, stokerd's uid, the listed uids,
	 * and peers with a listed gid (primary or supplementary); nobody else.
	 */
	uint32_t *allow_uids, *allow_gids;
	unsigned nallow_uids, nallow_gids;
	bool seccomp; /* --seccomp: the system call allow-list (sandbox.c) */
	uint32_t emulate_latency_ms;
	uint64_t emulate_bandwidth; /* bytes/s */
	uint64_t part_size;
	unsigned max_host_conns, http_threads, retries, http_stall_s;
	bool insecure;
	const char *s3_endpoint, *s3_region;
	int s3_addressing;
	char **allow_hosts; /* NULL-terminated */
	unsigned nallow_hosts;
	/* What one client (connection) may hold; past it, that client gets an error. */
	uint64_t client_max_pinned;   /* bytes of objects held by unreleased gets */
	uint64_t client_max_plan;     /* plan entries over all its handles */
	unsigned client_max_datasets; /* open dataset handles */
	unsigned client_max_requests; /* requests waiting for an object or a dataset */
	uint64_t pin_wait_ns;	      /* a get that no unpinned byte can make room for fails
				       * after this long */
	uint64_t dataset_grace_ns;    /* an unused dataset with nothing cached is freed after */
	bool no_fast_gets;	      /* no resident tables: every get is a round trip */
	bool no_follow;		      /* plan-less gets' stream not followed (follow.c) */
	bool prefault;		      /* RAM segments populated at start (STK_ARENA_PREFAULT) */
	const char *metrics_addr;     /* --metrics HOST:PORT, or NULL for off */
	bool metrics_explicit;	      /* given, not the default: failing to bind it is fatal */
	/* --metrics-dataset NAME=PREFIX: datasets under PREFIX are labelled NAME in metrics */
	struct stk_metrics_label {
		char *name, *prefix;
	} * labels;
	unsigned nlabels;
	const char *nvme_dir; /* --nvme-dir: tier 1's directory, or NULL for none */
	uint64_t nvme;	      /* --nvme: its byte budget */
	int nvme_compress;    /* --nvme-compress: zstd level of demoted copies, 0 for plain */
};

struct stk_nvme;
struct stk_t1obj;

/*
 * Tier 1 (prefetch/tier1.c): the NVMe store and the copies it holds of
 * listed objects, in a heap with the farthest next use on top (the same
 * lazy upper-bound keys as cache/victim.h).
 */
struct stk_tier1 {
	struct stk_nvme *s; /* NULL: no tier 1 */
	struct stk_t1obj **h;
	uint32_t n, cap;
	uint64_t stamp;
	unsigned ops;		 /* puts and gets in flight */
	uint64_t evict_bytes;	 /* of objects written on their way out of RAM (room() waits) */
	struct stk_t1obj *retry; /* demotions waiting for dropped copies' room */
	bool degraded_logged;
	int dir_fd; /* holds the directory's flock */
};

#define STK_OBS_EP_MAX 32  /* endpoints modelled; the last one takes every endpoint past it */
#define STK_OBS_TP_MAX 8   /* transports (URI schemes) counted */
#define STK_OBS_ERRNO  134 /* errno values counted per transport; larger ones count as EIO */

/* A backend endpoint (scheme://host[:port], or file): its model and whether it answers. */
struct stk_obs_ep {
	char name[96];
	unsigned tp; /* index into stk_obs.tp */
	struct stk_model model;
	uint64_t attempts; /* fetches and listings started */
	uint64_t reached;  /* fetches and listings that got an answer */
};

/* What stall accounting and the metrics keep (prefetch/obs.c); loop thread only. */
struct stk_obs {
	struct stk_stall all;
	struct stk_stall *labels; /* per --metrics-dataset name */
	struct stk_hist wait;	  /* per request */
	struct stk_obs_ep ep[STK_OBS_EP_MAX];
	unsigned nep;
	const char *tp[STK_OBS_TP_MAX]; /* transport names */
	struct stk_hist fetch[STK_OBS_TP_MAX];
	uint64_t errors[STK_OBS_TP_MAX][STK_OBS_ERRNO];
	unsigned ntp;
	uint64_t sessions_ended;
};

/* An object in the demand queue: gets wait for it, since queued_at. */
struct stk_demand {
	struct stk_object *o;
	uint64_t queued_at;
};

/* A request waiting for an object (GET) or a dataset (OPEN). */
struct stk_waiter {
	struct stk_session *s;
	uint32_t seq;
	uint32_t handle;
	uint32_t index; /* GET: the object's index in the handle's dataset */
	int32_t pos;	/* GETB: the object's position in its request; -1 for a GET */
	struct stk_waiter *next;
};

/*
 * An order of gets.  head[obj] is obj's first position at or after cursor
 * (STK_NONE if none), next[pos] the next position of order[pos]'s object, so
 * an object's next use is head[obj] - cursor, and advancing costs O(1) per
 * position passed.  scan is where the search for the next object to prefetch
 * resumes; it only moves back when an object before it is evicted.
 */
struct stk_plan {
	struct stk_ds *ds;
	struct stk_session *owner; /* NULL for a warm */
	bool warm;
	bool stalled; /* a warm that hit the budget: it starts nothing more */
	uint32_t *order, *next;
	uint32_t n, cap;
	uint32_t *head, *last; /* per object of ds */
	uint32_t cursor, scan;
	struct stk_plan *ds_next;
	struct stk_plan *all_next;
};

struct stk_handle {
	struct stk_ds *ds; /* NULL: slot free */
	struct stk_plan *plan;
};

struct stk_out; /* a queued datagram, see session.c */

/* A hold on an object, taken through one dataset handle of a session. */
struct stk_pin {
	struct stk_object *o;
	uint32_t handle;
	uint32_t index; /* in the handle's dataset */
};

/* An object kept because session s reads it through a resident table. */
struct stk_held {
	struct stk_object *o;
	struct stk_session *s;
};

struct stk_session {
	struct stk_daemon *d;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint32_t domain; /* its trust domain: uid, gid or 0, as --isolate says */
	uint64_t group;	 /* its plan group (HELLO; 0: none): the stream of its plan-less gets */
	bool authorized;
	bool hello; /* HELLO came first, as the protocol requires */
	bool dead;
	unsigned refs; /* pending polls and waiters; freed at 0 once dead */
	struct stk_op in_op, out_op;
	bool in_armed, out_armed;
	struct stk_out *outq, **outq_tail;
	uint32_t noutq; /* replies queued because the client is not reading */
	struct stk_handle *handles;
	uint32_t nhandles;
	uint32_t *segs_sent; /* per RAM segment: the generation + 1 whose fd it was sent */
	uint32_t nsegs_sent;
	struct stk_pin *pins;	  /* one per GET not yet released */
	const uint64_t *pin_area; /* the client's pins on resident-table reads (fast.c) */
	uint32_t pin_buckets;
	uint32_t *seg_gens;  /* in the pin area, after the pins: see STK_SEG_GENS */
	uint64_t held_bytes; /* objects kept for its pins, against --client-max-pinned */
	uint32_t npins, cappins;
	/* What it holds, against the --client-max-* limits. */
	uint64_t pinned_bytes;
	uint64_t plan_entries;
	unsigned open_handles, opening, waiting; /* waiting: GETs and OPENs */
	struct stk_stall stall;			 /* what it reported (prefetch/obs.c) */
	uint64_t connected_ns;			 /* when it connected */
	struct stk_session *prev, *next;
};

struct stk_daemon {
	struct stk_config cfg;
	struct stk_loop *loop;
	struct stk_cache cache;
	struct stk_objtab objects; /* every object some dataset lists */
	struct stk_ds *datasets;
	uint32_t next_ds_id;
	struct stk_plan *plans;
	struct stk_session *sessions;
	struct stk_demand *demand; /* objects gets wait for, in arrival order (sched.c) */
	uint32_t ndemand, capdemand;
	bool demand_blocked;	    /* a queued get found no unpinned room */
	bool in_sched, sched_again; /* stk__sched_run() is running; it must run again */
	unsigned inflight, prefetch_inflight, pinned;
	struct stk_held *held; /* kept for clients' resident-table reads (fast.c) */
	uint32_t nheld, capheld;
	unsigned live_sessions; /* allocated, dead or alive */
	int listen_fd, sig_fd, lock_fd;
	struct stk_op listen_op, sig_op, stop_op, tick_op, accept_op;
	bool stopping, tick_armed;
	/* accept() failed for want of descriptors: paused until one frees or a retry. */
	bool accept_paused, accept_retry_armed;
	uint64_t accept_paused_at, accept_refused;
	uint64_t st[STK_STATS_COUNT];
	struct stk_obs obs;
	struct stk_tier1 t1;
	struct stk_metrics *metrics; /* the metrics endpoint (metrics.c), or NULL */
	uint64_t heartbeat_ns;	     /* the loop's last tick; atomic (read by metrics.c) */
	/* Delivers a fetched object (err 0) or a failure to a waiting GET. Set by the server. */
	void (*on_ready)(struct stk_daemon *d, struct stk_waiter *w, struct stk_object *o, bool hit,
			 int err, const char *msg);
};

/* sched.c: plans, prefetching, gets. */
struct stk_plan *stk__plan_new(struct stk_daemon *d, struct stk_ds *ds, struct stk_session *owner,
			       bool warm);
int stk__plan_append(struct stk_plan *p, const uint8_t *le_idx, const uint32_t *idx, uint32_t n);
void stk__plan_advance(struct stk_daemon *d, struct stk_plan *p, uint32_t obj);
void stk__plan_free(struct stk_daemon *d, struct stk_plan *p);
uint64_t stk__next_use(void *d, const struct stk_object *o);
void stk__sched_run(struct stk_daemon *d);
/* A get of ds's object index: delivers now through on_ready or queues w. Takes ownership of w. */
void stk__get(struct stk_daemon *d, struct stk_plan *plan, struct stk_ds *ds, uint32_t index,
	      struct stk_waiter *w);
/* Drops resident o from the cache, keeping every dataset's counters and plans right. */
/* o's next use rose (a plan passed it, or went): both tiers' victim keys follow. */
void stk__rekey(struct stk_daemon *d, struct stk_object *o);
void stk__evict(struct stk_daemon *d, struct stk_object *o);
/*
 * o's resident bytes are of an older version than its listing's: dropped now,
 * or, while clients hold them, hidden from the resident tables and dropped
 * when the last hold goes (o->stale); gets wait for the new version.
 */
void stk__stale(struct stk_daemon *d, struct stk_object *o);
void stk__pin(struct stk_daemon *d, struct stk_object *o);
void stk__unpin(struct stk_daemon *d, struct stk_object *o);
/* Starts a warm of ds (no-op if one runs). 0 or -ENOMEM. */
int stk__warm(struct stk_daemon *d, struct stk_ds *ds);
/* Fails gets that pins have kept from starting for longer than --pin-wait. */
void stk__sched_expire(struct stk_daemon *d, uint64_t now);
/* Frees the scheduler's queue, once nothing is waiting. */
void stk__sched_fini(struct stk_daemon *d);

/* dataset.c: the dataset registry. */
/*
 * Finds or creates domain's dataset for uri+flags and queues w until it is listed;
 * ready(d, w, ds, err, msg) is then called once (maybe before this returns).
 */
void stk__ds_open(struct stk_daemon *d, uint32_t domain, const char *uri, uint32_t uri_len,
		  unsigned flags, struct stk_waiter *w,
		  void (*ready)(struct stk_daemon *d, struct stk_waiter *w, struct stk_ds *ds,
				int err, const char *msg));
/* A handle on ds was closed (by CLOSE or a client's exit). */
void stk__ds_unuse(struct stk_daemon *d, struct stk_ds *ds);
/* Forgets datasets unused and with nothing cached for longer than the grace period. */
void stk__ds_sweep(struct stk_daemon *d, uint64_t now);
void stk__ds_free_all(struct stk_daemon *d);

/* fast.c: gets without a round trip (resident tables, pin areas). */
/* Largest object published in resident tables; 0 when they are off. */
uint64_t stk__fast_max(const struct stk_daemon *d);
/*
 * A memfd holding the catalog (cat_len bytes) and a resident table of count
 * entries, all unpublished; replaces ds's table.  Returns the fd or -errno.
 */
int stk__rt_memfd(struct stk_ds *ds, const void *cat, size_t cat_len, uint32_t count);
void stk__rt_free(struct stk_ds *ds);
/* o became resident: publishes it in every table that lists it. */
void stk__rt_publish(struct stk_daemon *d, struct stk_object *o);
/* Publishes every resident object of ds (a new table). */
void stk__rt_publish_ds(struct stk_daemon *d, struct stk_ds *ds);
/*
 * o is about to be evicted: unpublishes it and returns true, or, when a
 * client is reading it through a table, keeps it (held) and returns false.
 */
bool stk__rt_retract(struct stk_daemon *d, struct stk_object *o);
/* Marks o's resident table entries not resident, whoever pins it (after stk__rt_retract). */
void stk__rt_hide(struct stk_daemon *d, struct stk_object *o);
/* Lets go of held objects no client reads any more. Returns true if any. */
bool stk__rt_recheck(struct stk_daemon *d);
/* o is being freed: no longer held. */
void stk__rt_forget(struct stk_daemon *d, struct stk_object *o);
/* Tells s's client, through its pin area, that segment seg generation gen is current. */
void stk__seg_sent(struct stk_session *s, uint32_t seg, uint32_t gen);
/* The bytes of the objects s pins through its pin area now (what its client says). */
uint64_t stk__pins_bytes(const struct stk_session *s);
/* Gives s a pin area: returns the fd to send it (the caller closes it), or -errno. */
int stk__pins_create(struct stk_daemon *d, struct stk_session *s);
void stk__pins_free(struct stk_daemon *d, struct stk_session *s);
/* Hooks fast.c to d's cache (segments closing), after stk__cache_init(). */
void stk__fast_init(struct stk_daemon *d);
/* Frees what fast.c keeps in d, after every dataset is gone. */
void stk__fast_fini(struct stk_daemon *d);

/* server.c: client sessions. */
void stk__server_init(struct stk_daemon *d);
/* Serves an accepted connection. 0, or -errno (the caller closes fd). */
int stk__session_add(struct stk_daemon *d, int fd);
void stk__server_close_all(struct stk_daemon *d);
/* Ends session s (its holds and pins go), logging why. */
void stk__session_drop(struct stk_daemon *d, struct stk_session *s, const char *why);
unsigned stk__server_sessions(const struct stk_daemon *d);

/* follow.c: prefetch for plan-less gets, following their stream per plan group. */
/*
 * A plan-less get of ds's object index (a GET, or one through the resident
 * table) by a connection of plan group group (0: none).
 */
void stk__follow(struct stk_daemon *d, struct stk_ds *ds, uint64_t group, uint32_t index);
/*
 * A chunk of a shared PLAN (n LE u32 indices at le_idx) for group's stream
 * on ds; reset: its first chunk, which replaces the stream's plan.  0, or
 * -errno with err filled in (-ENOTSUP under --no-follow, -EINVAL for a
 * chunk continuing nothing, -ERANGE, -E2BIG past --client-max-plan,
 * -ENOMEM); on error the group's stream is forgotten.
 */
int stk__follow_plan(struct stk_daemon *d, struct stk_ds *ds, uint64_t group, bool reset,
		     const uint8_t *le_idx, uint32_t n, char *err, size_t errlen);
/* A handle on ds of a client of group closed: frees the group's stream if no live one has ds. */
void stk__follow_unuse(struct stk_daemon *d, struct stk_ds *ds, uint64_t group);
/* The plan following group's stream on ds, or NULL; *shared (may be NULL): a shared one. */
const struct stk_plan *stk__follow_plan_of(const struct stk_ds *ds, uint64_t group, bool *shared);
/* Frees what follows ds's streams (their implicit plans too). */
void stk__follow_free(struct stk_daemon *d, struct stk_ds *ds);

/* obs.c: stall accounting and what metrics count. */
int stk__obs_init(struct stk_daemon *d);
void stk__obs_fini(struct stk_daemon *d);
/* The endpoint of uri (fetched by tp): its index in d->obs.ep. */
unsigned stk__obs_ep(struct stk_daemon *d, const struct stk_transport_ops *tp, const char *uri);
/* Labels a new dataset (--metrics-dataset) and finds its endpoint. */
void stk__obs_ds(struct stk_daemon *d, struct stk_ds *ds);
/* A fetch of o starts now: returns its virtual start for stk__obs_fetch. */
double stk__obs_fetch_begin(struct stk_daemon *d, struct stk_object *o, uint64_t now);
/*
 * A fetch of o begun at start (virtual v0) ended (err 0 or -errno; not
 * submitted at all: -EAGAIN from the caller): feeds its endpoint's model and
 * the histograms.
 */
void stk__obs_fetch(struct stk_daemon *d, struct stk_object *o, uint64_t start, double v0,
		    uint64_t first_byte, uint64_t end, int err);
/* A listing of uri ended: the endpoint was reached (err 0) or not. */
void stk__obs_listed(struct stk_daemon *d, const char *uri, int err);
/*
 * The waits a client reported (WAITS: n entries at e, each STK_WAITS_ENTRY
 * bytes) for handle hd's dataset: tallied per request, into the session,
 * the dataset, its label and the totals.
 */
void stk__obs_waits(struct stk_daemon *d, struct stk_session *s, struct stk_handle *hd,
		    const uint8_t *e, uint32_t n);
/* Fills the STATS counters of stall accounting (self: the asking session). */
void stk__obs_stats(const struct stk_daemon *d, const struct stk_session *self, uint64_t *st);
/* One summary line for a session that ended, and for the daemon at shutdown. */
void stk__obs_session_end(struct stk_daemon *d, struct stk_session *s);
void stk__obs_shutdown(struct stk_daemon *d);

/* metrics.c: the Prometheus endpoint, /healthz and /readyz on a thread of their own. */
/*
 * Adds "NAME=PREFIX[,NAME=PREFIX...]" (--metrics-dataset) to c->labels.
 * 0, -EINVAL (a bad item) or -ENOMEM.
 */
int stk__metrics_add_labels(struct stk_config *c, const char *v);
/* Starts serving cfg.metrics_addr (no-op when NULL). 0 or -errno, logged. */
int stk__metrics_start(struct stk_daemon *d);
void stk__metrics_stop(struct stk_daemon *d);

/* tier1.c: the NVMe tier under the RAM cache (docs/nvme.md, "Integration"). */
/* Opens cfg.nvme_dir (no-op without it), logging the rebuilt index. 0 or -errno, logged. */
int stk__tier1_open(struct stk_daemon *d);
/* Closes the store once nothing is in flight; after every dataset is freed. */
void stk__tier1_close(struct stk_daemon *d);
/*
 * o (FETCHING, counted in flight) has a tier-1 copy of its current version:
 * starts reading it into o's room and returns true (stk__promoted() or
 * stk__fetch_backend() follows); false: fetch it from the backend.
 */
bool stk__tier1_promote(struct stk_daemon *d, struct stk_object *o);
/* o became resident from its backend: writes it to tier 1 if there is free room. */
void stk__tier1_demote(struct stk_daemon *d, struct stk_object *o);
/*
 * room() chose o (resident, unpinned, next use nu) as its victim.  When o
 * has no copy and tier 1 has room for one, or holds a copy worth less (a
 * redundant one, or one needed after nu), starts writing o and returns true:
 * o stays pinned until written, then room() runs again (and evicts o, which
 * has its copy now; on a failed write o is evicted at once).  False: evict o.
 */
bool stk__tier1_evict(struct stk_daemon *d, struct stk_object *o, uint64_t nu);
/* o is new, or its version changed: finds its copy of that version (dropping older ones). */
void stk__tier1_link(struct stk_daemon *d, struct stk_object *o);
/* o's next use may have grown (as stk__cache_rekey). */
void stk__tier1_rekey(struct stk_daemon *d, struct stk_object *o);
/*
 * o is about to be freed: forgets its copy (which stays on disk).  Returns
 * true when a write of o is in flight: tier1.c then drops o's room and
 * frees o (stk__obj_free) when the write ends.
 */
bool stk__tier1_forget(struct stk_daemon *d, struct stk_object *o);
/* 1 when o's RAM copy was promoted from tier 1 (a get of it is a tier-1 hit), else 0. */
unsigned stk__tier1_promoted(const struct stk_object *o);
/*
 * --nvme-compress: parses v, a zstd level (0: no compression), into *level.
 * 0, or -EINVAL after saying on stderr what is wrong (from: the variable's
 * name, or a flag's argv slot).
 */
int stk__tier1_level(const char *v, const char *from, int *level);
/* Puts and gets in flight, with the zstd jobs of --nvme-compress. */
unsigned stk__tier1_busy(const struct stk_daemon *d);

/*
 * tier1_zst.c: one zstd job of tier 1 on the worker pool (--nvme-compress).
 * The caller owns the job and the buffers until done() runs on the loop.
 */
struct stk_t1zst {
	struct stk_work w;
	void *plain;   /* the object's bytes: compress reads them, decompress writes them */
	uint64_t size; /* the object's size */
	void *z;       /* the frame: compress mallocs it (NULL: store plain), the caller frees */
	uint64_t zlen; /* its length */
	int level;     /* compress: the zstd level */
	int err;       /* 0, or -EBADMSG (decompress: not a frame of exactly size bytes), -ENOMEM */
	uint64_t ns;   /* CPU time the worker spent on it */
	const char *name; /* decompress: for why */
	char why[256];	  /* decompress: what failed */
};
/* Compresses j->plain (size bytes) at j->level into j->z, a frame smaller than size, or NULL. */
void stk__t1zst_compress(struct stk_loop *l, struct stk_t1zst *j, void (*done)(struct stk_work *w));
/* Decodes j->z (zlen bytes) into j->plain, which must come to exactly j->size bytes. */
void stk__t1zst_decompress(struct stk_loop *l, struct stk_t1zst *j,
			   void (*done)(struct stk_work *w));
/* Fills the tier-1 gauges of st (STK_ST_NVME_*). */
void stk__tier1_stats(const struct stk_daemon *d, uint64_t *st);
/* sched.c, for tier1.c: evicts o unless a client holds it or it left RAM already. */
void stk__evict_unheld(struct stk_daemon *d, struct stk_object *o);
/* sched.c, for tier1.c: o's promotion filled it (it becomes resident, waiters get it). */
void stk__promoted(struct stk_daemon *d, struct stk_object *o);
/* sched.c, for tier1.c: o's promotion failed: o (still FETCHING) is fetched from its backend. */
void stk__fetch_backend(struct stk_daemon *d, struct stk_object *o);
/* dataset.c: frees an object no dataset lists (its room already dropped). */
void stk__obj_free(struct stk_object *o);

/* listen.c: the listening socket. */
int stk__server_start(struct stk_daemon *d);

/*
 * options.c: fills c from stokerd's environment, then its flags (which
 * win), after the defaults.  Returns -1 to go on, else the exit status: 0
 * after --help or --version, 2 for a bad setting (said on stderr).
 */
int stk__config_parse(struct stk_config *c, bool *foreground, int argc, char **argv);
/* Frees what stk__config_parse() allocated. */
void stk__config_free(struct stk_config *c);

/*
 * sandbox.c: what stokerd gives up once started.  stk__sandbox_no_new_privs()
 * sets PR_SET_NO_NEW_PRIVS; stk__sandbox_drop_caps() empties the bounding,
 * ambient, inheritable, permitted and effective sets but for
 * CAP_DAC_READ_SEARCH when running as root (to read datasets as before).
 * Each returns 0 or -errno, logged.
 */
int stk__sandbox_no_new_privs(void);
int stk__sandbox_drop_caps(void);
/* --seccomp: installs the allow-list filter in every thread.  0 or -errno, logged. */
int stk__sandbox_seccomp(void);
void stk__server_stop_accepting(struct stk_daemon *d);
/* Accepts again after a pause at the descriptor limit (a descriptor freed, or a tick). */
void stk__accept_resume(struct stk_daemon *d);

#endif
