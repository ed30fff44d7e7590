/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine: libcurl multi on event loops of our own.
 *
 * The engine runs `threads` shards; each is a thread with its own loop and
 * its own curl multi (one core moves a few GB/s; a 100 Gb/s NIC wants more).
 * An object is handed to the shard with the fewest objects (stk_loop_post),
 * fetched there, and its completion is posted back to the daemon's
 * loop, where f->done runs.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION) and
 * when to wake it (CURLMOPT_TIMERFUNCTION); we arm one-shot polls and
 * timeouts on the shard's loop and hand readiness back with
 * curl_multi_socket_action.  A poll armed for events curl no longer wants is
 * cancelled and re-armed.
 *
 * Fetching an object on its shard (its ranged GETs, their bodies and
 * retries) is in http_fetch.c.
 *
 * The options, curl's settings, the host policy (--allow-host, no link-local
 * or metadata addresses), the retry policy, the endpoint counters and
 * blocking requests for worker threads are in http_common.c.
 */
#include "transports/http.h"
#include "transports/http_int.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"

struct sock {
	struct engine *e;
	struct sock *prev, *next;
	curl_socket_t fd;
	int want; /* CURL_POLL_* */
	short armed_ev;
	bool armed, dead, busy;
	struct stk_op op;
};

struct timer {
	struct engine *e;
	struct stk_op op;
	bool live;
};

/* The shards, and the daemon's loop. */
struct stk_http_shards stk__http_h;

static void sock_arm(struct sock *sk);

static void sock_free(struct sock *sk)
{
	struct engine *e = sk->e;
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		e->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	free(sk);
}

static void sock_cb(struct stk_op *op, int res)
{
	struct sock *sk = stk_container_of(op, struct sock, op);
	struct engine *e = sk->e;
	e->pending--;
	sk->armed = false;
	if (sk->dead) {
		sock_free(sk);
		return;
	}
	if (res == -ECANCELED || res == 0) {
		sock_arm(sk);
		return;
	}
	int ev = 0;
	if (res > 0) {
		if (res & POLLIN)
			ev |= CURL_CSELECT_IN;
		if (res & POLLOUT)
			ev |= CURL_CSELECT_OUT;
		if (res & (POLLERR | POLLHUP))
			ev |= CURL_CSELECT_ERR;
	} else {
		ev = CURL_CSELECT_ERR;
	}
	int running;
	sk->busy = true;
	curl_multi_socket_action(e->multi, sk->fd, ev, &running);
	sk->busy = false;
	if (sk->dead) {
		sock_free(sk);
	} else {
		sock_arm(sk);
	}
	stk__http_check_done(e);
}

/* Arms a poll for what curl wants; cancels one armed for something else. */
static void sock_arm(struct sock *sk)
{
	struct engine *e = sk->e;
	short ev = (short)(((sk->want & CURL_POLL_IN) ? POLLIN : 0) |
			   ((sk->want & CURL_POLL_OUT) ? POLLOUT : 0));
	if (sk->armed) {
		if (sk->armed_ev != ev)
			stk_loop_cancel(e->loop, &sk->op); /* sock_cb re-arms */
		return;
	}
	if (!ev || sk->busy)
		return;
	sk->op.cb = sock_cb;
	if (stk_loop_poll(e->loop, &sk->op, sk->fd, ev) == 0) {
		sk->armed = true;
		sk->armed_ev = ev;
		e->pending++;
	}
}

/* The sock is done with: freed now, or by its callback if a poll is armed. */
static void sock_drop(struct sock *sk)
{
	sk->dead = true;
	sk->want = 0;
	if (sk->armed)
		stk_loop_cancel(sk->e->loop, &sk->op); /* sock_cb frees it */
	else if (!sk->busy)
		sock_free(sk);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct engine *e = userp;
	struct sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (!sk)
			return 0;
		curl_multi_assign(e->multi, fd, NULL);
		sock_drop(sk);
		return 0;
	}
	if (!sk) {
		sk = calloc(1, sizeof(*sk));
		if (!sk)
			return -1;
		sk->e = e;
		sk->fd = fd;
		sk->next = e->socks;
		if (e->socks)
			e->socks->prev = sk;
		e->socks = sk;
		curl_multi_assign(e->multi, fd, sk);
	}
	sk->want = what;
	sock_arm(sk);
	return 0;
}

static void timer_cb(struct stk_op *op, int res)
{
	struct timer *t = stk_container_of(op, struct timer, op);
	struct engine *e = t->e;
	bool live = t->live && res != -ECANCELED;
	e->pending--;
	if (e->timer == t)
		e->timer = NULL;
	free(t);
	if (!live)
		return;
	int running;
	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	stk__http_check_done(e);
}

static void timer_stop(struct engine *e)
{
	if (e->timer) {
		e->timer->live = false;
		stk_loop_cancel(e->loop, &e->timer->op); /* timer_cb frees it */
		e->timer = NULL;
	}
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	struct engine *e = userp;
	timer_stop(e);
	if (ms < 0)
		return 0;
	struct timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->e = e;
	t->live = true;
	t->op.cb = timer_cb;
	if (stk_loop_timeout(e->loop, &t->op, (uint64_t)ms * 1000000u)) {
		free(t);
		return -1;
	}
	e->pending++;
	e->timer = t;
	return 0;
}

/* On the shard: curl lets go of every connection, then the thread ends. */
static void engine_quit(struct stk_work *w)
{
	struct engine *e = stk_container_of(w, struct engine, quit_work);
	curl_multi_cleanup(e->multi);
	e->multi = NULL;
	timer_stop(e);
	while (e->socks) {
		struct sock *sk = e->socks;
		while (sk && sk->dead) /* cancelled already; its callback frees it */
			sk = sk->next;
		if (!sk)
			break;
		sock_drop(sk);
	}
	e->quit = true;
}

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;

/* Made on the shard's own thread: an io_uring loop belongs to its creator. */
static int engine_setup(struct engine *e)
{
	/* One pool thread (the loop wants one); the shard never reads files. */
	int r = stk_loop_create(e->uring, 1, &e->loop);
	if (r)
		return r;
	e->multi = curl_multi_init();
	if (!e->multi) {
		stk_loop_destroy(e->loop);
		e->loop = NULL;
		return -ENOMEM;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->conns);
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->conns * 4);
	return 0;
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	int r = engine_setup(e);
	pthread_mutex_lock(&start_mu);
	e->start_err = r;
	pthread_cond_broadcast(&start_cv);
	pthread_mutex_unlock(&start_mu);
	if (r)
		return NULL;
	/* After quit, run until the cancelled polls and timers have come back. */
	while (!e->quit || e->pending) {
		r = stk_loop_run_once(e->loop);
		if (r < 0 && r != -EINTR) {
			stk_err("http: event loop: %s", strerror(-r));
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
		}
	}
	stk_loop_destroy(e->loop);
	return NULL;
}

static void engines_stop(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		stk__http_h.eng[i].quit_work.done = engine_quit;
		stk_loop_post(stk__http_h.eng[i].loop, &stk__http_h.eng[i].quit_work);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(stk__http_h.eng[i].thread, NULL);
	free(stk__http_h.eng);
	stk__http_h.eng = NULL;
	stk__http_h.neng = 0;
}

/* Starts the shard's thread and waits until it has its loop, or failed. */
static int engine_start(struct engine *e)
{
	e->start_err = 1;
	int r = -pthread_create(&e->thread, NULL, engine_main, e);
	if (r)
		return r;
	pthread_mutex_lock(&start_mu);
	while (e->start_err == 1)
		pthread_cond_wait(&start_cv, &start_mu);
	r = e->start_err;
	pthread_mutex_unlock(&start_mu);
	if (r)
		pthread_join(e->thread, NULL);
	return r;
}

int stk__http_init(const struct stk_tp_env *env)
{
	if (stk__http_h.init)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -EIO;
	int r = stk__http_policy_init(env->allow_hosts);
	if (r) {
		curl_global_cleanup();
		return r;
	}
	stk__http_h.loop = env->loop;
	stk__http_o = (struct stk_http_opts){
		.part_size = env->part_size,
		.max_host_conns = env->max_host_conns,
		.threads = env->http_threads,
		.retries = env->retries,
		.stall_s = env->stall_timeout_s,
		.insecure = env->insecure,
	};
	if (!stk__http_o.stall_s)
		stk__http_o.stall_s = 30;
	if (!stk__http_o.part_size)
		stk__http_o.part_size = 8u << 20;
	if (!stk__http_o.max_host_conns)
		stk__http_o.max_host_conns = 64;
	if (!stk__http_o.threads)
		stk__http_o.threads = 1;
	if (stk__http_o.threads > stk__http_o.max_host_conns)
		stk__http_o.threads = stk__http_o.max_host_conns;
	stk__http_h.eng = calloc(stk__http_o.threads, sizeof(*stk__http_h.eng));
	if (!stk__http_h.eng) {
		stk__http_policy_fini();
		curl_global_cleanup();
		return -ENOMEM;
	}
	bool uring = strcmp(stk_loop_backend(env->loop), "io_uring") == 0;
	for (unsigned i = 0; i < stk__http_o.threads; i++) {
		struct engine *e = &stk__http_h.eng[i];
		e->conns =
		    (stk__http_o.max_host_conns + stk__http_o.threads - 1) / stk__http_o.threads;
		e->uring = uring;
		r = engine_start(e);
		if (r) {
			engines_stop(i);
			stk__http_policy_fini();
			curl_global_cleanup();
			return r;
		}
		stk__http_h.neng++;
	}
	stk__http_h.init = true;
	return 0;
}

void stk__http_fini(void)
{
	if (!stk__http_h.init)
		return;
	engines_stop(stk__http_h.neng);
	stk__http_policy_fini();
	curl_global_cleanup();
	stk__http_h.init = false;
}
