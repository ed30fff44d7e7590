/* SPDX-License-Identifier: MIT */
/* stokerd: start, signals, the loop (options.c: its configuration). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "stoker.h"
#include "transports/transport.h"

#define DRAIN_NS (30ull * 1000000000ull) /* how long SIGTERM waits for in-flight fetches */

static void sig_cb(struct stk_op *op, int res);

static bool tick_armed;

static void stop_tick(struct stk_op *op, int res)
{
	tick_armed = false;
}

static bool drain_pending(const struct stk_daemon *d)
{
	return d->inflight > 0 || stk__tier1_busy(d) > 0;
}

static bool sessions_pending(const struct stk_daemon *d)
{
	return d->live_sessions > 0;
}

/* Runs the loop while pending(d), for at most ns, waking at least every 50 ms. */
static void run_while(struct stk_daemon *d, bool (*pending)(const struct stk_daemon *d),
		      uint64_t ns)
{
	uint64_t deadline = stk__now_ns() + ns;
	while (pending(d) && stk__now_ns() < deadline) {
		if (!tick_armed) {
			d->stop_op.cb = stop_tick;
			if (stk_loop_timeout(d->loop, &d->stop_op, 50000000u))
				return;
			tick_armed = true;
		}
		if (stk_loop_run_once(d->loop))
			return;
	}
}

#define TICK_NS (250ull * 1000000ull)

static void tick_start(struct stk_daemon *d);

/* Housekeeping: accept retries, gets that pins block too long, idle datasets. */
static void tick_cb(struct stk_op *op, int res)
{
	struct stk_daemon *d = stk_container_of(op, struct stk_daemon, tick_op);
	uint64_t now = stk__now_ns();
	d->tick_armed = false;
	__atomic_store_n(&d->heartbeat_ns, now, __ATOMIC_RELEASE); /* /healthz reads it */
	stk__accept_resume(d);
	if (d->nheld && stk__rt_recheck(d))
		stk__sched_run(d);
	stk__sched_expire(d, now);
	stk__ds_sweep(d, now);
	if (!d->stopping)
		tick_start(d);
}

static void tick_start(struct stk_daemon *d)
{
	if (d->tick_armed)
		return;
	d->tick_op.cb = tick_cb;
	if (stk_loop_timeout(d->loop, &d->tick_op, TICK_NS) == 0)
		d->tick_armed = true;
}

static void sig_cb(struct stk_op *op, int res)
{
	struct stk_daemon *d = stk_container_of(op, struct stk_daemon, sig_op);
	struct signalfd_siginfo si;
	if (read(d->sig_fd, &si, sizeof(si)) == sizeof(si))
		stk_info("%s: stop accepting, finishing %u in-flight fetches",
			 strsignal((int)si.ssi_signo), d->inflight);
	d->stopping = true;
	stk__server_stop_accepting(d);
}

/* Whether the machine has swap, so that cached pages could be paged out. */
static bool swap_present(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 1; /* unknown: assume swap, and lock */

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SwapTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb > 0;
}

int main(int argc, char **argv)
{
	static struct stk_daemon daemon_state;
	struct stk_daemon *d = &daemon_state;
	d->t1.dir_fd = -1;
	struct stk_config *c = &d->cfg;
	bool foreground = false;
	int rc0 = stk__config_parse(c, &foreground, argc, argv);
	if (rc0 >= 0)
		return rc0;

	/* One fd per resident object and client: take all the descriptors allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	/* stokerd never executes a program: nothing it could start may gain privileges. */
	if (stk__sandbox_no_new_privs())
		return 1;

	int ready_pipe[2] = { -1, -1 };
	if (!foreground) {
		if (pipe(ready_pipe) < 0) {
			perror("stokerd: pipe");
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("stokerd: fork");
			return 1;
		}
		if (pid > 0) { /* the parent exits once the daemon listens, with its verdict */
			close(ready_pipe[1]);
			char ok = 0;
			ssize_t n = read(ready_pipe[0], &ok, 1);
			return n == 1 && ok == 1 ? 0 : 1;
		}
		close(ready_pipe[0]);
		setsid();
		if (chdir("/") < 0)
			stk_warn("chdir /: %s", strerror(errno));
	}

	/* Block the stop signals before any thread exists, so that all inherit the
	 * mask and the signals reach only the signalfd the loop watches. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int rc = 1;
	int r = stk_loop_create(!c->no_uring, c->workers, &d->loop);
	if (r) {
		stk_err("cannot create the event loop: %s", strerror(-r));
		goto out;
	}
	struct stk_tp_env env = {
		.loop = d->loop,
		.roots = c->roots,
		.emulate_latency_ms = c->emulate_latency_ms,
		.emulate_bandwidth = c->emulate_bandwidth,
		.no_direct = c->no_direct,
		.part_size = c->part_size,
		.max_host_conns = c->max_host_conns,
		.http_threads = c->http_threads,
		.retries = c->retries,
		.stall_timeout_s = c->http_stall_s,
		.insecure = c->insecure,
		.s3_endpoint = c->s3_endpoint,
		.s3_region = c->s3_region,
		.s3_addressing = c->s3_addressing,
		.allow_hosts = c->allow_hosts,
	};
	r = stk__transports_init(&env);
	if (r)
		goto out;
	char e[300];
	uint64_t t0 = stk__now_ns();
	r = stk__cache_init(&d->cache, &stk_tier_ram, c->ram,
			    (c->hugetlb ? STK_ARENA_HUGETLB : 0) |
				(c->prefault ? STK_ARENA_PREFAULT : 0),
			    e, sizeof(e));
	if (r) {
		stk_err("RAM tier: %s", e);
		goto out;
	}
	if (!r && c->prefault)
		stk_info("RAM tier: %llu MiB committed and populated in %.2f s (--prefault)",
			 (unsigned long long)(c->ram >> 20), (double)(stk__now_ns() - t0) / 1e9);
	if (swap_present())
		stk_warn("this machine has swap: cached bytes may be paged out (the RAM tier does "
			 "not mlock); --hugetlb segments never are");
	d->listen_fd = -1;
	d->lock_fd = -1;

	d->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->sig_op.cb = sig_cb;
	if (d->sig_fd < 0 || stk_loop_poll(d->loop, &d->sig_op, d->sig_fd, POLLIN)) {
		stk_err("cannot watch signals: %s", strerror(errno));
		goto out;
	}
	r = stk__obs_init(d);
	if (r)
		goto out;
	stk__server_init(d);
	r = stk__server_start(d);
	if (r)
		goto out;
	/* After the socket's lock: a second daemon fails there, not on the store. */
	r = stk__tier1_open(d);
	if (r)
		goto out;
	__atomic_store_n(&d->heartbeat_ns, stk__now_ns(), __ATOMIC_RELEASE);
	tick_start(d);
	r = stk__metrics_start(d);
	if (r)
		goto out;
	/* Everything that could need a privilege is done: sockets bound, tiers made. */
	r = stk__sandbox_drop_caps();
	if (!r && c->seccomp)
		r = stk__sandbox_seccomp();
	if (r)
		goto out;
	stk_info("RAM budget %llu MiB, %u prefetches in flight, descriptor limit %llu",
		 (unsigned long long)(c->ram >> 20), c->max_inflight,
		 (unsigned long long)rl.rlim_cur);
	if (ready_pipe[1] >= 0) {
		char ok = 1;
		if (write(ready_pipe[1], &ok, 1) < 0)
			stk_warn("cannot tell the parent we are ready: %s", strerror(errno));
		close(ready_pipe[1]);
		ready_pipe[1] = -1;
	}

	while (!d->stopping) {
		r = stk_loop_run_once(d->loop);
		if (r) {
			stk_err("event loop: %s", strerror(-r));
			goto out;
		}
	}
	/* Finish in-flight fetches, so clients waiting on them get their objects. */
	run_while(d, drain_pending, DRAIN_NS);
	if (d->inflight)
		stk_warn("exiting with %u fetches unfinished", d->inflight);
	stk__server_close_all(d);
	run_while(d, sessions_pending, 1000000000u);
	stk__obs_shutdown(d);
	rc = 0;
	stk_info("stopped");
out:
	stk__metrics_stop(d);
	if (ready_pipe[1] >= 0)
		close(ready_pipe[1]);
	stk__server_stop_accepting(d);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	stk__ds_free_all(d);
	stk__tier1_close(d);
	stk__fast_fini(d);
	stk__sched_fini(d);
	stk__cache_fini(&d->cache);
	stk__transports_fini();
	stk_loop_destroy(d->loop);
	if (d->sig_fd > 0)
		close(d->sig_fd);
	stk__config_free(c);
	stk__obs_fini(d);
	return rc;
}
