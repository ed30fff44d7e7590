/* SPDX-License-Identifier: MIT */
/*
 * libstoker: the client side of stoker.
 *
 * A process connects to the local stokerd over its Unix socket, opens a
 * dataset (a directory or prefix, a single object, or a manifest of URIs),
 * optionally tells the daemon in which order it will read the objects (a
 * plan), and gets objects.  A get returns a read-only, zero-copy view of the
 * object's bytes in one of the daemon's shared RAM segments, which the
 * library maps once per connection (the first get into a segment brings its
 * memfd; later ones cost no fd and no mmap).  A view holds its object: the
 * daemon never reuses its bytes while the view exists.
 *
 * Conventions, kept by every function below:
 *  - int functions return 0 or a negative errno; nothing sets errno for you.
 *  - After a failure, stk_errmsg() returns a sentence for people naming the
 *    dataset, object or field that was wrong (thread-local, valid until the
 *    calling thread's next call into the library).
 *  - Handles are opaque; every create has a destroy, and destroy accepts NULL.
 *  - A client and its datasets may be used from many threads at once.
 *  - Every call that waits for the daemon may also return -ETIMEDOUT when the
 *    daemon stops answering altogether (see stk_connect()).
 *  - Every call that talks to the daemon returns -ECHILD in a forked child of
 *    the process that connected (see Fork below).
 *
 * Fork: a client, its datasets and the views and descriptors got through
 * them belong to the process that called stk_connect().  A child made by
 * fork() inherits copies of all of them, the parent's socket included, and
 * must not use that socket: its requests would interleave with the parent's,
 * replies would go to whichever process read first, and its releases would
 * end the parent's holds.  So in any process other than the one that
 * connected, every call that would talk to the daemon (stk_dataset_open(),
 * stk_plan(), stk_plan_shared(), stk_get(), stk_get_fd(), stk_warm(),
 * stk_dataset_status(), stk_stats(), stk_endpoint_stats()) returns -ECHILD at
 * once without touching the socket, with stk_errmsg() "this stoker client
 * was connected by pid P; a forked child must call stk_connect() for its own
 * connection".  (-ECHILD because nothing else in this library or the
 * daemon returns it, so a binding can map it to an error of its own; read it
 * as "this is a child".)
 * What the child inherited stays usable locally: views stay mapped and
 * readable, descriptors from stk_get_fd() are the child's own copies, and
 * stk_dataset_count(), stk_dataset_bytes(), stk_dataset_object() and
 * stk_dataset_find() work.  In the child, stk_release(), stk_release_index(),
 * stk_dataset_close() and stk_close() only unmap and free the child's copies
 * and send nothing: the parent's holds stay the parent's until the parent
 * releases them.  Closing a descriptor from stk_get_fd() remains the child's
 * job.  The parent's stk_close() ends its connection even while children
 * still hold copies of the socket.  The socket is close-on-exec, so a program
 * the child executes inherits nothing.
 *
 * A child that wants objects calls stk_connect() for a connection of its
 * own, which it may use like any other.  PyTorch DataLoader workers should
 * connect in the worker (in worker_init_fn, or on a dataset's first
 * __getitem__ in that process) and never use a client made in the main
 * process: that works the same whether workers start by fork, spawn or
 * forkserver (the default from Python 3.14), while a client made before the
 * workers start fails with -ECHILD in forked workers and does not exist in
 * spawned ones.
 */
#ifndef STOKER_H
#define STOKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STOKER_BUILDING)
#define STK_EXTERN __attribute__((visibility("default")))
#else
#define STK_EXTERN
#endif

#define STK_VERSION_MAJOR 0
#define STK_VERSION_MINOR 1

/* Where clients and the daemon meet unless told otherwise (or $STOKER_SOCKET). */
#define STK_DEFAULT_SOCKET "/run/stoker/stoker.sock"

struct stk_client;
struct stk_dataset;

/* How long a call waits for a silent daemon unless told otherwise (or $STOKER_TIMEOUT). */
#define STK_DEFAULT_TIMEOUT_MS 30000u
/* stk_connect_opts.timeout_ms: never time out. */
#define STK_TIMEOUT_NEVER UINT32_MAX

/*
 * Options for stk_connect(). Zero-initialise, then set opts_size = sizeof(opts).
 * Fields are only ever appended; the library reads a field only when opts_size
 * covers it, so a caller built against an older header keeps the defaults.
 */
struct stk_connect_opts {
	size_t opts_size;
	const char *socket_path; /* NULL: $STOKER_SOCKET, else STK_DEFAULT_SOCKET */
	/*
	 * Milliseconds a call waits while the daemon sends nothing at all, then
	 * as long again after a probe, before the connection is declared dead
	 * (see stk_connect()).  0: $STOKER_TIMEOUT, else STK_DEFAULT_TIMEOUT_MS;
	 * STK_TIMEOUT_NEVER: wait forever.
	 */
	uint32_t timeout_ms;
	/*
	 * The connection's plan group (see stk_plan_shared()): NULL takes
	 * $STOKER_PLAN_GROUP; "" (or that variable unset or empty) is no
	 * group.  1 to STK_PLAN_GROUP_MAX bytes of printable ASCII without
	 * spaces.  Only its hash goes to the daemon, and groups are per trust
	 * domain: connections of another uid never share one with this one.
	 */
	const char *plan_group;
};

/* The longest plan group name (stk_connect_opts.plan_group, $STOKER_PLAN_GROUP). */
#define STK_PLAN_GROUP_MAX 128

/*
 * Connects to stokerd and performs the versioned handshake.
 * opts may be NULL (all defaults).
 *
 * Timeout: $STOKER_TIMEOUT is in seconds and may be fractional ("0.5"); 0
 * means never; unset, 30.  It bounds only a daemon that answers nothing: a
 * GET of a big object from slow storage may take minutes and still succeeds.
 * When a waiting call has received no datagram at all for the timeout, the
 * library sends the daemon a HELLO (answered at any time); when nothing
 * arrives for another timeout, the connection is dead: every call waiting on
 * it, and every later one, returns -ETIMEDOUT with stk_errmsg() "stokerd at
 * PATH has not answered for N s (stopped or overloaded?)", and the socket is
 * shut down so that the daemon, if it ever resumes, releases what this client
 * held.  A send (including the connect and this handshake) that cannot be
 * queued for the timeout ends the same way.  Any datagram received restarts
 * the clock; time with no call waiting does not count.
 *
 * Plan group: $STOKER_PLAN_GROUP (or opts->plan_group) names the group whose
 * plan-less gets this connection's are (stk_plan_shared()).  A DataLoader
 * worker that connects for itself, forked or spawned, inherits the variable
 * and so joins its main process's group; so do the shim's connections.
 *
 * Returns 0 with *out set on success; -ENOENT or -ECONNREFUSED when no daemon
 * listens there; -EACCES when the socket's mode shuts this user out (the
 * message says so) or when the daemon refuses this user (stk_errmsg() is the
 * daemon's "uid N is not allowed to use this stokerd"); -ETIMEDOUT as above;
 * -EPROTO when the daemon speaks another protocol version; -EINVAL when
 * $STOKER_TIMEOUT is not a number of seconds or the plan group (opts or
 * $STOKER_PLAN_GROUP) is too long or holds a space, a control character or
 * a byte past ASCII (stk_errmsg() names the variable or field);
 * -ENAMETOOLONG; -ENOMEM.
 * The caller frees *out with stk_close().
 *
 * The client belongs to the calling process.  A child forked after this call
 * gets -ECHILD from every call that would talk to the daemon, and its
 * releases and closes send nothing (see Fork at the top); a child that wants
 * objects calls stk_connect() itself.
 */
STK_EXTERN int stk_connect(const struct stk_connect_opts *opts, struct stk_client **out);

/*
 * Closes the connection.  The daemon releases every object this client still
 * held and forgets its plans, even while forked children hold copies of the
 * socket.  Views obtained through the client stay mapped and readable until
 * released; datasets must be closed before the client.  In a forked child it
 * only frees the child's copy and leaves the parent's connection alone.
 * Accepts NULL.
 */
STK_EXTERN void stk_close(struct stk_client *c);

/* Flags for stk_dataset_open(). */
#define STK_DS_MANIFEST 0x1u /* uri names a manifest: one URI per line, optional size */
#define STK_DS_ZSTD	0x2u /* objects named *.zst are served decompressed (below) */

/*
 * Opens a dataset.  uri is one of
 *   file:///dir/         every regular file below dir, sorted by path
 *   file:///dir/obj.bin  a one-object dataset
 * or, with STK_DS_MANIFEST, the URI of a manifest file whose lines are
 * "URI [SIZE]" ('#' starts a comment).  A plain absolute path is taken as a
 * file:// URI.
 *
 * With STK_DS_ZSTD, every object whose URI ends in ".zst" is taken to be
 * zstd data (one or more frames) and is served decompressed: the daemon
 * fetches the compressed bytes and decodes them on its worker pool, the
 * object's key drops the ".zst" (file:///d/x.npy.zst is key "x.npy"; in a
 * manifest, its URI without ".zst") and its size is the plain size.  Other
 * objects are served as they are.  Plain sizes are known at open: a
 * file:// listing reads each .zst file's frame header, which must declare
 * its content size (`zstd FILE` does; zstd writing from a pipe does not
 * unless given --stream-size); a manifest's SIZE column is the plain size,
 * and a .zst entry without one has its header read (file:// only).  An
 * s3:// or http(s):// prefix has no frame headers read: opening one with
 * STK_DS_ZSTD fails with -ENOTSUP; use a manifest that gives plain sizes.
 * Two objects whose keys would be the same (x and x.zst) fail the open
 * with -EINVAL naming both.  An object that does not decode to exactly its
 * plain size fails its gets with -EIO and a message naming its URI; the
 * others are served.  The same backend object opened with and without
 * STK_DS_ZSTD is two objects in the daemon's cache.
 *
 * Returns 0 with *out set; -EINVAL for a malformed URI or manifest line
 * (or, with STK_DS_ZSTD, a .zst file that is not zstd data or declares no
 * size, or two objects with one key), -ENOTSUP (STK_DS_ZSTD on a prefix
 * whose frame headers cannot be read),
 * -EPROTONOSUPPORT for a scheme the daemon has no transport for, -ENOENT,
 * -EACCES (outside the daemon's --allow-root directories, or unreadable),
 * -ENOMEM, -EPIPE if the daemon went away.  stk_errmsg() names the URI.
 * The caller frees *out with stk_dataset_close().
 */
STK_EXTERN int stk_dataset_open(struct stk_client *c, const char *uri, unsigned flags,
				struct stk_dataset **out);

/*
 * Releases the dataset handle and its plan in the daemon (in a forked child,
 * only the child's copy; the daemon is not told).  Accepts NULL.
 */
STK_EXTERN void stk_dataset_close(struct stk_dataset *ds);

/* Returns the number of objects in the dataset. */
STK_EXTERN size_t stk_dataset_count(const struct stk_dataset *ds);

/* Returns the sum of the objects' sizes in bytes. */
STK_EXTERN uint64_t stk_dataset_bytes(const struct stk_dataset *ds);

/*
 * Describes object index: *key (relative path or URI, NUL-terminated, owned by
 * the dataset and valid until it is closed) and *size.  Either pointer may be
 * NULL.  Returns 0, or -ERANGE when index >= stk_dataset_count().
 */
STK_EXTERN int stk_dataset_object(const struct stk_dataset *ds, size_t index, const char **key,
				  uint64_t *size);

/*
 * Looks up a key.  Returns 0 with *index set, or -ENOENT.  When several
 * objects share the key (a manifest may list a URI twice), *index is the
 * lowest of their indices.
 */
STK_EXTERN int stk_dataset_find(const struct stk_dataset *ds, const char *key, size_t *index);

/*
 * Tells the daemon the order in which this handle will get objects (indices
 * may repeat; an epoch is one plan).  The daemon prefetches ahead of this
 * order within its budget and evicts what is needed last.  A new plan replaces
 * the previous one of this handle.
 * Returns 0; -ERANGE naming the first index out of range; -ENOMEM; -EPIPE.
 */
STK_EXTERN int stk_plan(struct stk_dataset *ds, const uint32_t *order, size_t n);

/*
 * Tells the daemon the order in which the plan-less gets of this
 * connection's plan group will come on this dataset: the gets of every
 * connection of the group (stk_connect_opts.plan_group, $STOKER_PLAN_GROUP)
 * that did not call stk_plan() on its handle, this one's included.  Made for
 * a DataLoader whose main process draws each epoch's order and whose worker
 * processes read it, interleaved, each on a connection of its own: the main
 * process calls this once an epoch, before the workers read, and the
 * workers need do nothing but connect in the same group.  Without it the
 * daemon follows the group's gets and predicts each epoch from the last
 * one's order (docs/ARCHITECTURE.md, "Following plan-less gets"), which a
 * reshuffled epoch defeats.
 *
 * The order replaces the group's previous one on this dataset at once (its
 * cursor at the start); it moves as the group's gets keep to it, any
 * connection's get marking its position done, so readers that interleave
 * never pass an object another has still to read.  Once the gets have
 * passed its end, an object got again starts an epoch that is predicted from
 * the order the gets came in, until the next call.  Each group has its own
 * plan on each dataset (ranks of one node use one group each), and gets of
 * connections without a group are followed apart from all groups.  The plan
 * lives while a connection of the group has the dataset open.  Call it from
 * one connection per group: chunks of two callers would interleave.
 *
 * Returns 0; -EINVAL when this connection has no plan group (stk_errmsg()
 * says how to set one) or n is 0; -ERANGE naming the first index out of
 * range; -E2BIG past the daemon's --client-max-plan entries; -ENOTSUP when
 * the daemon runs with --no-follow; -ENOMEM; -EPIPE; -ECHILD in a forked
 * child.
 */
STK_EXTERN int stk_plan_shared(struct stk_dataset *ds, const uint32_t *order, size_t n);

/* A read-only view of one object, filled in by stk_get(). */
struct stk_view {
	const void *data; /* NULL when size == 0 */
	uint64_t size;
	uint32_t index;
	uint32_t flags;		/* STK_VIEW_*; bits 16-31 are libstoker's own */
	uint64_t wait_ns;	/* how long stk_get() blocked */
	struct stk_dataset *ds; /* private */
	uint32_t seg, gen;	/* private: where the client mapped it */
};

#define STK_VIEW_HIT 0x1u /* the object was resident when asked for */

/*
 * Gets object index, blocking until it is resident.  On success the view maps
 * the object read-only; the bytes never change and stay valid until
 * stk_release(view), even if the daemon evicts the object or exits.
 * Returns 0; -ERANGE; -ENOENT, -EACCES or -EIO when the backend could not
 * deliver it (stk_errmsg() names the object and the cause; the daemon goes on
 * serving, and a later get retries); -EFBIG when the object is larger than the
 * daemon's whole RAM budget; -EPIPE if the daemon went away.
 */
STK_EXTERN int stk_get(struct stk_dataset *ds, size_t index, struct stk_view *view);

/*
 * Returns a file descriptor of the object instead of a view: a private memfd
 * holding a copy of its bytes (one copy; the shared segments are not for
 * handing out whole), sealed against writes, which the caller owns and
 * closes.  The same errors as stk_get().  The object counts as held until
 * stk_release_index() is called for it.
 */
STK_EXTERN int stk_get_fd(struct stk_dataset *ds, size_t index, int *fd, uint64_t *size);

/*
 * Ends the view and tells the daemon the object is no longer held (in a
 * forked child, only forgets the child's copy).  Accepts NULL.
 */
STK_EXTERN void stk_release(struct stk_view *view);

/* Defined while stk_get_batch() and stk_release_batch() exist. */
#define STK_HAVE_GET_BATCH 1

/*
 * Gets n objects (idx[i] into views[i]) in as few round trips as the daemon
 * allows (one message per 1,024 objects), for a training step's batch;
 * blocks until every one is resident.  All or nothing: returns 0 with every
 * view filled (release each with stk_release() or all with
 * stk_release_batch()), or the error of the first object (by position) that
 * failed, with stk_errmsg() naming it, and no view held.  The errors of
 * stk_get(), plus -ENOMEM.
 */
STK_EXTERN int stk_get_batch(struct stk_dataset *ds, const uint32_t *idx, size_t n,
			     struct stk_view *views);

/* Releases n views (from stk_get_batch() or stk_get()) in as few messages as it can. */
STK_EXTERN void stk_release_batch(struct stk_view *views, size_t n);

/*
 * Tells the daemon that one stk_get_fd() hold on index is over (in a forked
 * child, only drops the child's reference to the dataset).  Does not close
 * the descriptor.
 */
STK_EXTERN void stk_release_index(struct stk_dataset *ds, size_t index);

/*
 * Reports wait_ns that the caller spent after a get moving object index
 * onward (an H2D copy that its compute waited for; gpu/'s pipe reports the
 * time it blocked on a copy).  The daemon counts it as delivery stall
 * (stall_ns and stall_delivery_ns of stk_stats() and of every total it
 * keeps), not as a get or a request of its own, and no stall avoided
 * (docs/stall.md).  Queued with the dataset's other wait reports and sent
 * with them: by the dataset's next get once the queue is 2 ms old, or by
 * stk_stats(), stk_dataset_close() and stk_close().
 * Returns 0; -EINVAL for a NULL ds or an index past the catalog; -ECHILD
 * in a forked child (nothing is sent).
 */
STK_EXTERN int stk_report_wait(struct stk_dataset *ds, uint32_t index, uint64_t wait_ns);

/*
 * Calls that see every segment mapping a client makes, for code that must
 * register memory with a device before it can use it: pinning for CUDA
 * (gpu/'s stk_gpu_pin_arena()), memory regions for RDMA.  Each mapping is a
 * whole, page-aligned, read-only range the library maps once and keeps
 * while it may hand out views into it (docs/ARCHITECTURE.md, "Delivery").
 */
struct stk_map_hooks {
	size_t size; /* set to sizeof(struct stk_map_hooks) */
	/* Required. The client mapped [base, base + len) and may hand out views into it. */
	void (*mapped)(void *arg, const void *base, size_t len);
	/* Required. The client is about to unmap [base, base + len); no view uses it. */
	void (*unmapping)(void *arg, const void *base, size_t len);
	/*
	 * Optional - may be NULL.  Called once, after the last unmapping call,
	 * when the hooks are removed or the client is freed: frees arg.
	 */
	void (*release)(void *arg);
	void *arg;
};

/*
 * Installs hooks on c (h is copied), or removes them (h NULL).  Installing
 * reports every mapping c already holds to mapped, then each new one as it
 * is made; before a mapping is unmapped (its last view released, the daemon
 * closed it, or the client is freed after stk_close() and its last view),
 * unmapping is called.  Removing reports every mapping held to unmapping,
 * then calls release.  The hooks run on whichever thread maps or unmaps
 * (any thread calling stk_get(), stk_release() and the like), with c's lock
 * held: they must be quick and must not call this library.  A mapping's
 * unmapping comes only once no view into it is held, so a registration
 * that lives from mapped to unmapping covers every view's bytes for the
 * view's whole life.  In a forked child no hook is called.
 * Returns 0; -EINVAL for a NULL c, a size too small, or a NULL mapped or
 * unmapping; -EBUSY when c has hooks already (remove them first); -ECHILD
 * in a forked child.
 */
STK_EXTERN int stk_set_map_hooks(struct stk_client *c, const struct stk_map_hooks *h);

/*
 * Warms a dataset: the daemon fetches its objects in index order without
 * evicting anything.  Returns immediately; follow with stk_dataset_status().
 * Returns 0, -EPIPE.
 */
STK_EXTERN int stk_warm(struct stk_dataset *ds);

/* A dataset's state in the daemon's cache, from stk_dataset_status(). */
struct stk_dataset_status {
	uint32_t objects;
	uint32_t resident; /* objects resident in the cache */
	uint32_t inflight; /* objects being fetched */
	uint32_t failed;   /* objects whose last fetch failed */
	uint64_t bytes;
	uint64_t resident_bytes;
	uint32_t warm; /* STK_WARM_* */
};

#define STK_WARM_NONE	 0 /* no warm requested */
#define STK_WARM_RUNNING 1
#define STK_WARM_DONE	 2 /* every object resident */
#define STK_WARM_FULL	 3 /* stopped: the budget is full */

/*
 * Fills *st.  Returns 0, -EPIPE, -ETIMEDOUT.  When st->failed > 0,
 * stk_errmsg() is also set, though the call succeeded, to the daemon's message
 * for the dataset's most recent failed fetch, naming the object and the cause
 * (for example "file:///r/big: 300000000 bytes is larger than the whole RAM
 * budget"), or to "" when the daemon is too old to send one.
 */
STK_EXTERN int stk_dataset_status(struct stk_dataset *ds, struct stk_dataset_status *st);

/*
 * Counters.  Fields prefixed client_ are this process's own view (kept by the
 * library); the rest are the daemon's, over all clients since it started.
 */
struct stk_stats {
	size_t size; /* set to sizeof(struct stk_stats) before the call */
	/* this client */
	uint64_t client_gets;
	uint64_t client_hits; /* resident in RAM when asked for */
	uint64_t client_misses;
	uint64_t client_bytes;
	uint64_t client_wait_ns; /* total time blocked in stk_get() */
	/* daemon */
	uint64_t gets;
	uint64_t hits_ram;
	uint64_t misses;
	uint64_t fetches; /* objects fetched from backends */
	uint64_t fetch_bytes;
	uint64_t fetch_ns; /* summed duration of those fetches */
	uint64_t fetch_errors;
	uint64_t evictions;
	uint64_t ram_budget;
	uint64_t ram_used; /* resident plus in-flight bytes, page-rounded */
	uint64_t resident_objects;
	uint64_t inflight_objects;
	uint64_t pinned_objects; /* held by some client, or being written to tier 1 */
	uint64_t clients;
	uint64_t datasets;
	uint64_t prefetches; /* fetches started by plans rather than gets */
	/*
	 * Stall accounting (docs/stall.md), from the waits clients report: over
	 * all clients, then this connection's own as the daemon counted them.
	 * Appended in protocol 5; 0 from an older daemon.
	 */
	uint64_t waits;		    /* requests (gets, batch gets) clients reported */
	uint64_t stall_ns;	    /* the sum of their waits */
	uint64_t stall_fetch_ns;    /* of which for bytes not resident anywhere when asked */
	uint64_t stall_delivery_ns; /* of which the rest: the bytes were resident */
	uint64_t stall_avoided_ns;  /* estimate: what reading synchronously would have cost more */
	uint64_t stall_avoided_model_ns; /* of which for objects this daemon never fetched */
	uint64_t delivered_bytes;	 /* bytes of the objects clients got */
	uint64_t self_stall_ns;		 /* this connection's stall_ns */
	uint64_t self_stall_fetch_ns;	 /* this connection's stall_fetch_ns */
	uint64_t self_stall_avoided_ns;	 /* this connection's stall_avoided_ns */
	/*
	 * Tier 1 (stokerd --nvme-dir; docs/nvme.md).  Appended after protocol 6's
	 * fields; 0 from an older daemon or without tier 1.
	 */
	uint64_t nvme_budget;	       /* bytes of disk tier 1 may take, metadata included */
	uint64_t nvme_used;	       /* bytes it charges now */
	uint64_t nvme_objects;	       /* objects it holds (writes in flight included) */
	uint64_t hits_nvme;	       /* gets served from a copy promoted from tier 1 */
	uint64_t nvme_reads;	       /* promotions: objects read from tier 1 into RAM */
	uint64_t nvme_read_bytes;      /* their bytes */
	uint64_t nvme_writes;	       /* demotions: objects written to tier 1 */
	uint64_t nvme_write_bytes;     /* their bytes */
	uint64_t nvme_dropped_corrupt; /* copies that failed their checksum, refetched */
	uint64_t nvme_degraded;	       /* 1 while tier 1 takes no writes (a disk error) */
	/* Tier 1's payload (stokerd --nvme-compress), appended after nvme_degraded. */
	uint64_t nvme_stored_bytes; /* bytes of the copies' contents on disk, compressed or not */
	uint64_t nvme_plain_bytes;  /* the same copies' plain sizes: ratio = plain / stored */
	uint64_t nvme_codec_ns;	    /* worker CPU time spent compressing and decompressing them */
};

/* Fills *st (st->size must be set). Returns 0, -EINVAL for a bad size, -EPIPE. */
STK_EXTERN int stk_stats(struct stk_client *c, struct stk_stats *st);

/* The daemon's counters for one object-store or HTTP endpoint. */
struct stk_endpoint_stats {
	char endpoint[128]; /* scheme://host[:port] */
	uint64_t requests;  /* requests sent, retries included */
	uint64_t retries;
	uint64_t errors;  /* requests that failed for good */
	uint64_t bytes;	  /* body bytes received */
	uint64_t busy_ns; /* summed request durations */
};

/*
 * Copies the counters of up to max endpoints into out and sets *n to how
 * many endpoints the daemon knows (which may be more than max).
 * Returns 0, -EPIPE.
 */
STK_EXTERN int stk_endpoint_stats(struct stk_client *c, struct stk_endpoint_stats *out, size_t max,
				  size_t *n);

/*
 * Per-connection and per-dataset totals (docs/stall.md): what `stoker top`
 * shows.  The structs are fixed; fields to come take the reserved room,
 * which reads 0 until then.
 */

/* One connection to the daemon (normally one process, or one DataLoader worker). */
struct stk_daemon_client {
	uint32_t pid; /* the process that connected, as the daemon sees it */
	uint32_t uid;
	uint64_t id;	       /* with pid, tells this connection from every other of the daemon */
	uint64_t connected_ns; /* how long it has been connected */
	uint64_t pinned_bytes; /* bytes held by its unreleased gets */
	uint32_t open_datasets;
	uint32_t reserved0;
	/* What it reported of its gets; the names and meanings of struct stk_stats. */
	uint64_t waits; /* requests: gets and batch gets */
	uint64_t gets;	/* objects got */
	uint64_t hits;	/* of which resident when asked for */
	uint64_t delivered_bytes;
	uint64_t stall_ns;
	uint64_t stall_fetch_ns;
	uint64_t stall_delivery_ns;
	uint64_t stall_avoided_ns; /* an estimate */
	uint64_t stall_avoided_model_ns;
	uint64_t stall_unknown_gets; /* gets with no estimate of a synchronous read at all */
	uint64_t reserved[8];
};

/* One dataset the daemon has listed, over every client that opened it. */
struct stk_daemon_dataset {
	uint32_t id;	   /* the daemon's number for it */
	uint32_t users;	   /* handles open on it, over all clients */
	uint32_t objects;  /* in its catalog */
	uint32_t resident; /* objects resident in the cache */
	uint32_t inflight; /* objects being fetched */
	uint32_t failed;   /* objects whose last fetch failed */
	uint64_t bytes;	   /* the objects' sizes summed */
	uint64_t resident_bytes;
	uint64_t waits; /* as in struct stk_daemon_client, over its clients */
	uint64_t gets;
	uint64_t hits;
	uint64_t delivered_bytes;
	uint64_t stall_ns;
	uint64_t stall_fetch_ns;
	uint64_t stall_delivery_ns;
	uint64_t stall_avoided_ns; /* an estimate */
	uint64_t stall_avoided_model_ns;
	uint64_t stall_unknown_gets;
	uint64_t reserved[8];
	char label[64]; /* its stokerd --metrics-dataset name, or "" */
	char uri[257];	/* its URI, cut to 256 bytes */
};

/*
 * Copies the totals of up to max of the daemon's connections into out (this
 * one included, with every get it made so far), newest first, and sets *n to
 * how many it filled and *total (may be NULL) to how many connections there
 * are.  One reply carries about 140 connections, so *n may be less than
 * both max and *total.  Returns 0, -EPIPE, -ETIMEDOUT, -ECHILD (a forked
 * child, see Fork above), -EPROTO (a malformed reply), -ENOMEM.
 */
STK_EXTERN int stk_daemon_clients(struct stk_client *c, struct stk_daemon_client *out, size_t max,
				  size_t *n, size_t *total);

/*
 * The same for the daemon's datasets (those listed, open or still cached),
 * newest first.  One reply carries at least 36 datasets (about 70 with URIs
 * of 100 bytes).  The same errors as stk_daemon_clients().
 */
STK_EXTERN int stk_daemon_datasets(struct stk_client *c, struct stk_daemon_dataset *out, size_t max,
				   size_t *n, size_t *total);

/* Returns a static description of a negative errno returned by this library. */
STK_EXTERN const char *stk_strerror(int err);

/* Returns this thread's detail message for its last failed call, or "". */
STK_EXTERN const char *stk_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif /* STOKER_H */
