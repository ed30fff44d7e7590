/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench: a simulated trainer that reads a dataset directly and through
 * stoker, and reports the data stall each way and the stall stoker avoided.
 * See bench/README.md.  The options are parsed in options.c.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <stoker.h>

#include "bench.h"
#include "stoker-bench.h"

static void on_signal(int sig)
{
	bench_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: sleeps must wake up */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* --- running --- */

static void drop_cache(struct ctx *x)
{
	int ret = bench_dataset_drop_cache(&x->ds);

	if (ret && x->cache_dropped) {
		fprintf(stderr,
			"stoker-bench: warning: could not drop the dataset's page cache "
			"(%s); runs may start warm\n",
			strerror(-ret));
		x->cache_dropped = false;
	}
}

/* Runs fn against a daemon: the one at --socket, or a fresh one started
 * for this call alone, so its cache starts empty. */
static int with_daemon(struct ctx *x, int (*fn)(struct ctx *x, const char *sock, void *arg),
		       void *arg)
{
	struct bench_daemon d;
	int ret;

	if (!x->spawn)
		return fn(x, x->o.socket, arg);
	ret = bench_daemon_start(&d, x->stokerd, x->ram, x->ds.dir, &x->o.emul, true);
	if (ret)
		return ret;
	x->daemon_pid = d.pid;
	ret = fn(x, d.sock, arg);
	x->daemon_pid = 0;
	if (bench_daemon_stop(&d))
		x->daemon_unclean = true;
	return ret;
}

struct stoker_arg {
	const struct bench_run_cfg *rc;
	struct bench_result *r;
};

static int do_stoker(struct ctx *x, const char *sock, void *arg)
{
	struct stoker_arg *a = arg;

	return bench_run_stoker(&x->ds, a->rc, sock, a->r);
}

/* User + system seconds process pid has used, or -1. */
static double cpu_seconds(pid_t pid)
{
	char p[64], b[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = pid > 0 ? fopen(p, "r") : NULL;
	size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
	if (f)
		fclose(f);
	b[n] = 0;
	char *s = strrchr(b, ')'); /* the name may hold spaces */
	unsigned long long ut, st;
	if (!s ||
	    sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int do_warm(struct ctx *x, const char *sock, void *arg)
{
	struct bench_warm *w = arg;
	double c0 = cpu_seconds(x->daemon_pid);
	int r = bench_run_warm(&x->ds, sock, w);
	double c1 = cpu_seconds(x->daemon_pid);
	w->daemon_cpu_s = c0 >= 0 && c1 >= 0 ? c1 - c0 : -1;
	return r;
}

static int run_ab(struct ctx *x)
{
	const unsigned long k_max = x->o.repeat;
	size_t n = x->o.steps * x->o.batch;
	struct bench_run_cfg rc = {
		.steps = x->o.steps,
		.batch = x->o.batch,
		.compute_ms = x->o.compute_ms,
		.emul = x->o.emul,
	};
	uint32_t *order;
	uint64_t want;
	int ret = 0;

	x->ran_direct = x->o.mode != MODE_STOKER;
	x->ran_stoker = x->o.mode != MODE_DIRECT;
	order = malloc(n * sizeof(*order));
	if (!order)
		return -ENOMEM;
	bench_make_order(order, n, x->ds.count, x->o.seed);
	rc.order = order;

	for (unsigned long k = 0; k < k_max; k++) {
		if (x->ran_direct) {
			struct bench_result *r = &x->runs_direct[k];

			drop_cache(x);
			fprintf(stderr, "stoker-bench: run %lu/%lu direct ...\n", k + 1, k_max);
			ret = bench_run_direct(&x->ds, &rc, r);
			if (ret)
				goto out;
			fprintf(stderr, "stoker-bench:   direct: wall %.2f s, stall %.2f s\n",
				r->wall_s, r->stall_s);
		}
		if (x->ran_stoker) {
			struct bench_result *r = &x->runs_stoker[k];
			struct stoker_arg a = { .rc = &rc, .r = r };

			drop_cache(x);
			fprintf(stderr, "stoker-bench: run %lu/%lu stoker ...\n", k + 1, k_max);
			ret = with_daemon(x, do_stoker, &a);
			if (ret)
				goto out;
			fprintf(stderr,
				"stoker-bench:   stoker: wall %.2f s, stall %.2f s, "
				"hits %llu/%llu\n",
				r->wall_s, r->stall_s, (unsigned long long)r->hits,
				(unsigned long long)r->objects);
			if (!x->spawn && r->resident_at_start)
				fprintf(stderr,
					"stoker-bench: warning: %u objects were already "
					"cached in the daemon when stoker run %lu began\n",
					r->resident_at_start, k + 1);
		}
	}
	if (x->ran_direct)
		median_result(x->runs_direct, k_max, &x->direct);
	if (x->ran_stoker)
		median_result(x->runs_stoker, k_max, &x->stoker);

	/* Every run read the same objects in the same order: every hash of
	 * every run of either mode must agree. */
	x->checksums_match = true;
	want = x->ran_direct ? x->runs_direct[0].checksum : x->runs_stoker[0].checksum;
	for (unsigned long k = 0; k < k_max; k++) {
		if ((x->ran_direct && x->runs_direct[k].checksum != want) ||
		    (x->ran_stoker && x->runs_stoker[k].checksum != want)) {
			fprintf(stderr,
				"stoker-bench: CHECKSUM MISMATCH in run %lu: the bytes "
				"read differ between runs or modes\n",
				k + 1);
			x->checksums_match = false;
			ret = -EBADMSG;
		}
	}
out:
	free(order);
	return ret;
}

unsigned hot_rounds(const struct options *o)
{
	return o->repeat_set ? (unsigned)o->repeat : HOT_ROUNDS;
}

/*
 * Loads the dataset of --hot size i into *ds: the one an earlier run left
 * under --dataset if it holds exactly the files this size wants, else a new
 * one.  A directory of that name holding anything else is an error: it is
 * not ours to replace.
 */
static int hot_dataset(struct ctx *x, unsigned i, struct bench_dataset *ds)
{
	const struct bench_hot_size *h = &x->hot[i];
	char *dir = x->hot_dir[i];
	struct stat st;
	int ret;

	if ((size_t)snprintf(dir, sizeof(x->hot_dir[i]), "%s/hot-%llux%u", x->hot_parent,
			     (unsigned long long)h->size, h->count) >= sizeof(x->hot_dir[i]))
		return -ENAMETOOLONG;
	if (stat(dir, &st) < 0) {
		char name[32];

		fprintf(stderr, "stoker-bench: hot: writing %u objects of %s to %s ...\n", h->count,
			size_name(h->size, name, sizeof(name)), dir);
		ret = bench_hot_make_dataset(dir, h->size, h->count, x->o.seed);
		if (ret)
			return ret;
	}
	ret = bench_dataset_load(dir, ds);
	if (ret)
		return ret;
	for (size_t j = 0; j < ds->count && ds->count == h->count; j++)
		if (ds->files[j].size != h->size)
			goto other;
	if (ds->count == h->count)
		return 0;
other:
	fprintf(stderr,
		"stoker-bench: hot: %s holds %zu files, %llu bytes in all, not %u files of "
		"%llu bytes each; remove it or give another --dataset\n",
		dir, ds->count, (unsigned long long)ds->bytes, h->count,
		(unsigned long long)h->size);
	bench_dataset_free(ds);
	return -EEXIST;
}

/* --hot: for each size, its dataset, a fresh daemon (or the --socket one),
 * warm, and the rounds.  A checksum mismatch is reported, then fails. */
static int run_hot(struct ctx *x)
{
	const struct bench_hot_cfg cfg = {
		.seconds = x->o.hot_s,
		.rounds = hot_rounds(&x->o),
		.batch = (unsigned)x->o.batch,
		.seed = x->o.seed,
	};
	int ret = 0, bad = 0;

	for (unsigned i = 0; i < x->o.hot_n && !bench_stop; i++) {
		struct bench_hot_size *h = &x->hot[i];
		const char *sock = x->o.socket;
		struct bench_dataset ds;
		struct bench_daemon d;
		char name[32];

		h->size = x->o.hot_size[i];
		h->count = x->o.hot_count[i];
		ret = hot_dataset(x, i, &ds);
		if (ret)
			return ret;
		if (x->spawn) {
			/* The whole dataset resident, with the headroom A/B runs get. */
			uint64_t b = ds.bytes + ds.bytes / 4 + (64ull << 20);

			if (x->o.ram)
				snprintf(x->hot_ram[i], sizeof(x->hot_ram[i]), "%s", x->o.ram);
			else
				snprintf(x->hot_ram[i], sizeof(x->hot_ram[i]), "%lluM",
					 (unsigned long long)((b + (1u << 20) - 1) >> 20));
			ret = bench_daemon_start(&d, x->stokerd, x->hot_ram[i], ds.dir, &x->o.emul,
						 true);
			if (ret) {
				bench_dataset_free(&ds);
				return ret;
			}
			sock = d.sock;
		}
		fprintf(stderr,
			"stoker-bench: hot: %u x %s: warming, then %u rounds of %g s "
			"measurements ...\n",
			h->count, size_name(h->size, name, sizeof(name)), cfg.rounds, cfg.seconds);
		ret = bench_run_hot_size(&ds, sock, &cfg, h);
		if (x->spawn && bench_daemon_stop(&d))
			x->daemon_unclean = true;
		bench_dataset_free(&ds);
		if (ret == -EBADMSG)
			bad = ret;
		else if (ret)
			return ret;
		x->hot_n = i + 1;
	}
	return bench_stop ? -EINTR : bad;
}

static bool ab_wanted(const struct options *o)
{
	if (o->warm_only)
		return o->mode_set;
	if (o->hot && !o->demo)
		return o->mode_set;
	return true;
}

int main(int argc, char **argv)
{
	struct ctx *x;
	int ret, status = 1;
	bool bad = false, need_ds;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--gpu"))
			return bench_gpu_exec(argc, argv);
	x = calloc(1, sizeof(*x));
	if (!x)
		return 1;
	ret = bench_parse_options(argc, argv, &x->o);
	if (ret) {
		free(x);
		return ret > 0 ? 0 : 2;
	}
	if (x->o.report && !ab_wanted(&x->o)) {
		fprintf(stderr, "stoker-bench: --report draws the trainer's runs; with --hot or "
				"--warm-only add --mode\n");
		free(x);
		return 2;
	}
	if (x->o.report) {
		/* Say so now, not after the runs, when the page cannot be written. */
		FILE *f = fopen(x->o.report, "a");

		if (!f) {
			fprintf(stderr, "stoker-bench: --report %s: %s\n", x->o.report,
				strerror(errno));
			free(x);
			return 2;
		}
		fclose(f);
	}
	install_signals();
	x->cache_dropped = true;
	x->spawn = !x->o.socket;

	/* --hot alone makes its own datasets; A/B and --warm-only read one. */
	need_ds = ab_wanted(&x->o) || x->o.warm_only;
	if (need_ds && (x->o.demo || !x->o.dataset)) {
		ret = bench_mkdtemp("stoker-demo", x->demo_dir, sizeof(x->demo_dir));
		if (ret)
			goto out;
		fprintf(stderr,
			"stoker-bench: writing the demo dataset (%u files, %u KiB..%u "
			"MiB) to %s ...\n",
			DEMO_FILES, DEMO_MIN_SIZE >> 10, DEMO_MAX_SIZE >> 20, x->demo_dir);
		ret = bench_make_demo_dataset(x->demo_dir, DEMO_FILES, DEMO_MIN_SIZE, DEMO_MAX_SIZE,
					      x->o.seed);
		if (ret)
			goto out;
		x->o.dataset = x->demo_dir;
	}
	if (need_ds) {
		ret = bench_dataset_load(x->o.dataset, &x->ds);
		if (ret)
			goto out;
	}

	if (x->spawn) {
		ret = bench_find_stokerd(x->o.stokerd, x->stokerd, sizeof(x->stokerd));
		if (ret)
			goto out;
		x->ram = x->o.ram;
		/* --warm-only needs the whole dataset resident; A/B runs
		 * default to the same so only prefetching differs.  --hot
		 * sizes a daemon per dataset (run_hot). */
		if (!x->ram && need_ds) {
			uint64_t b = x->ds.bytes + x->ds.bytes / 4 + (64ull << 20);

			snprintf(x->ram_default, sizeof(x->ram_default), "%lluM",
				 (unsigned long long)((b + (1u << 20) - 1) >> 20));
			x->ram = x->ram_default;
		}
	}

	if (x->o.hot) {
		if (x->o.dataset && !need_ds) {
			x->hot_parent = x->o.dataset;
			if (mkdir(x->hot_parent, 0755) < 0 && errno != EEXIST) {
				ret = -errno;
				fprintf(stderr, "stoker-bench: mkdir %s: %s\n", x->hot_parent,
					strerror(-ret));
				goto out;
			}
		} else {
			ret = bench_mkdtemp("stoker-hot", x->hot_tmp, sizeof(x->hot_tmp));
			if (ret)
				goto out;
			x->hot_parent = x->hot_tmp;
		}
	}

	if (ab_wanted(&x->o)) {
		ret = run_ab(x);
		if (ret == -EBADMSG)
			bad = true; /* report the figures, then fail */
		else if (ret)
			goto out;
	}
	if (x->o.warm_only && !bench_stop) {
		drop_cache(x);
		fprintf(stderr, "stoker-bench: cold warm of %s ...\n", x->ds.dir);
		ret = with_daemon(x, do_warm, &x->warm);
		if (ret)
			goto out;
		x->ran_warm = true;
	}
	if (x->o.hot && !bench_stop) {
		/* Other work on a small machine moves every figure: say how busy it was. */
		if (getloadavg(&x->hot_load[0], 1) != 1)
			x->hot_load[0] = NAN;
		ret = run_hot(x);
		if (getloadavg(&x->hot_load[1], 1) != 1)
			x->hot_load[1] = NAN;
		if (ret == -EBADMSG)
			bad = true;
		else if (ret)
			goto out;
		x->ran_hot = true;
	}

	if (x->o.report && (x->ran_direct || x->ran_stoker)) {
		if (report_html(x, x->o.report))
			bad = true;
		else
			fprintf(stderr, "stoker-bench: report written to %s\n", x->o.report);
	}
	if (x->o.json)
		ret = report_json(x) ? -EIO : ret;
	else
		report_text(x);
	status = ret || bad || x->daemon_unclean ? 1 : 0;
out:
	if (ret == -EINTR)
		fprintf(stderr, "stoker-bench: interrupted\n");
	for (unsigned i = 0; i < MAX_REPEAT; i++) {
		bench_steps_free(&x->runs_direct[i].steps);
		bench_steps_free(&x->runs_stoker[i].steps);
	}
	bench_dataset_free(&x->ds);
	if (x->demo_dir[0])
		bench_rmtree(x->demo_dir);
	if (x->hot_tmp[0])
		bench_rmtree(x->hot_tmp);
	free(x);
	return status;
}
