/* SPDX-License-Identifier: MIT */
/*
 * load_soak: many client processes reading a resident dataset over and over
 * through one stokerd on loopback, every byte checked, and the daemon's
 * memory and descriptors measured before and after (issue 14, "Hardening").
 *
 *   load_soak --stokerd PATH [--clients 64] [--dataset-mib 512] [--gb 10]
 *             [--ram-mib 768] [--overhead-mib 96]
 *
 * Makes a dataset of mixed sizes (4 KiB to 8 MiB; each object's bytes derived
 * from its index, their hash kept), starts stokerd with --ram, warms the
 * dataset, then runs two rounds of --clients forked processes, each with its
 * own connection, reading objects in its own random order and comparing each
 * one's hash with the listed one (every FD_EVERY-th get through
 * stk_get_fd(), the rest through stk_get()):
 *
 *   warm-up: every process reads 32 MiB (sessions, segment maps and
 *            allocator arenas reach their steady size);
 *   soak:    the processes together read --gb GB.
 *
 * It fails (exit 1) when any byte is wrong or any get fails, when the daemon's
 * VmRSS ever exceeds the RAM budget plus --overhead-mib (RssShmem, the RAM
 * tier's memfd pages it has mapped, counts in VmRSS), when its RssAnon goes
 * past --overhead-mib, or when after the soak its descriptors or RssAnon
 * differ from after the warm-up by more than 2 fds or 8 MiB (a leak per
 * request or per connection would be far larger over the soak's gets and
 * connections).  Prints GB delivered, GB/s, the daemon's CPU and RSS figures.
 * Exit 77 (skip) when the dataset cannot be made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stoker.h"

#define MIB (1024ull * 1024ull)
/*
 * Every FD_EVERY-th get is a stk_get_fd(): a round trip in which the daemon
 * copies the object into a memfd and passes it, so the daemon's request path
 * and descriptor passing carry load too (a resident stk_get() needs no round
 * trip at all: docs/ARCHITECTURE.md, "Gets without a round trip").
 */
#define FD_EVERY 8

static struct {
	const char *stokerd;
	unsigned clients;
	uint64_t dataset_bytes;
	uint64_t total_bytes;
	uint64_t ram;
	uint64_t overhead;
} O = { NULL, 64, 512 * MIB, 10000000000ull, 768 * MIB, 96 * MIB };

/* Each process's share of the warm-up round. */
#define WARMUP_BYTES (32 * MIB)

static char dir[256], root[300], sock[300], logp[300], uri[320];
static pid_t daemon_pid;

struct obj {
	uint64_t size, hash;
};
static struct obj *objs;
static size_t nobj;

/* What each child reports, in memory shared with the parent. */
struct result {
	uint64_t bytes, gets, fd_gets, bad, errors;
	int first_err;
	uint32_t first_bad;
};
static struct result *res;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * A cheap content check: four independent multiply-xor lanes over 8-byte
 * words, the tail and the length folded in.  Not cryptographic; it catches
 * any wrong, shifted or foreign object, which is all a delivery test needs.
 */
static uint64_t fhash(const uint8_t *p, size_t n)
{
	const uint64_t m = 0x9fb21c651e98df25ull;
	uint64_t a = n, b = 0x243f6a8885a308d3ull, c = 0x13198a2e03707344ull,
		 d = 0xa4093822299f31d0ull;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, 32);
		a = (a ^ w[0]) * m;
		b = (b ^ w[1]) * m;
		c = (c ^ w[2]) * m;
		d = (d ^ w[3]) * m;
	}
	for (; i < n; i++)
		a = (a ^ p[i]) * m;
	uint64_t h = a ^ (b >> 1) ^ (c << 1) ^ (d >> 3);
	h = (h ^ (h >> 29)) * m;
	return h ^ (h >> 32);
}

static void die(const char *why)
{
	fprintf(stderr, "load_soak: %s\n", why);
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	exit(1);
}

/* Writes the dataset: sizes log-uniform in [4 KiB, 8 MiB], bytes from the index. */
static int make_dataset(void)
{
	uint64_t s = 42, total = 0;
	size_t cap = 1024;
	objs = calloc(cap, sizeof(*objs));
	uint8_t *buf = malloc(8 * MIB + 64);
	if (!objs || !buf)
		return -ENOMEM;
	while (total < O.dataset_bytes) {
		if (nobj == cap) {
			cap *= 2;
			struct obj *o = realloc(objs, cap * sizeof(*objs));
			if (!o)
				return -ENOMEM;
			objs = o;
		}
		unsigned shift = 12 + (unsigned)(splitmix(&s) % 12); /* 4 KiB .. 8 MiB */
		uint64_t size = (1ull << shift) + splitmix(&s) % (1ull << shift);
		if (size > 8 * MIB)
			size = 8 * MIB - 7 * nobj % 4096;
		if (total + size > O.dataset_bytes)
			size = O.dataset_bytes - total;
		uint64_t seed = 0x5eed0000ull + nobj;
		for (uint64_t i = 0; i < size; i += 8) {
			uint64_t w = splitmix(&seed);
			memcpy(buf + i, &w, 8);
		}
		objs[nobj].size = size;
		objs[nobj].hash = fhash(buf, size);
		char p[400];
		snprintf(p, sizeof(p), "%s/%06zu.bin", root, nobj);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		if (write(fd, buf, size) != (ssize_t)size) {
			close(fd);
			return -EIO;
		}
		close(fd);
		total += size;
		nobj++;
	}
	free(buf);
	return 0;
}

static void start_daemon(void)
{
	char ram[32];
	snprintf(ram, sizeof(ram), "%lluM", (unsigned long long)(O.ram / MIB));
	daemon_pid = fork();
	if (daemon_pid < 0)
		die("fork");
	if (daemon_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(O.stokerd, O.stokerd, "--foreground", "--socket", sock, "--allow-root", root,
		      "--ram", ram, "--log-level", "warn", "--metrics", "off", (char *)NULL);
		_exit(127);
	}
}

static struct stk_client *connect_retry(unsigned ms)
{
	struct stk_client *c = NULL;
	uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
	struct stk_connect_opts o = { .opts_size = sizeof(o), .socket_path = sock };
	while (stk_connect(&o, &c) != 0) {
		if (now_ns() > end)
			return NULL;
		usleep(20000);
	}
	return c;
}

/* One line of /proc/PID/status, in kB; -1 if absent. */
static long status_kb(pid_t pid, const char *field)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	long v = -1;
	size_t l = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, l) && line[l] == ':') {
			v = strtol(line + l + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int fd_count(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static double cpu_s(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *q = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!q ||
	    sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A child: reads objects in its own random order until it delivered quota bytes. */
static int child(unsigned id, uint64_t quota)
{
	struct result *r = &res[id];
	struct stk_client *c = connect_retry(5000);
	if (!c)
		return 2;
	struct stk_dataset *ds;
	int e = stk_dataset_open(c, uri, 0, &ds);
	if (e) {
		r->first_err = e;
		return 3;
	}
	if (stk_dataset_count(ds) != nobj)
		return 4;
	uint64_t s = 1000 + id;
	uint32_t *order = malloc(nobj * sizeof(*order));
	if (!order)
		return 5;
	for (size_t i = 0; i < nobj; i++)
		order[i] = (uint32_t)i;
	while (r->bytes < quota) {
		for (size_t i = nobj - 1; i > 0; i--) {
			size_t j = splitmix(&s) % (i + 1);
			uint32_t t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (size_t k = 0; k < nobj && r->bytes < quota; k++) {
			uint32_t i = order[k];
			struct stk_view v;
			const uint8_t *p = NULL;
			size_t size = 0;
			int fd = -1;
			r->gets++;
			if (r->gets % FD_EVERY == 0) {
				uint64_t sz = 0;
				e = stk_get_fd(ds, i, &fd, &sz);
				if (!e) {
					size = (size_t)sz;
					p = mmap(NULL, size ? size : 1, PROT_READ, MAP_SHARED, fd,
						 0);
					if (p == MAP_FAILED) {
						e = -errno;
						close(fd);
						stk_release_index(ds, i);
					}
				}
				r->fd_gets++;
			} else {
				e = stk_get(ds, i, &v);
				p = v.data;
				size = v.size;
			}
			if (e) {
				if (!r->errors++)
					r->first_err = e;
				continue;
			}
			if (size != objs[i].size || fhash(p, size) != objs[i].hash) {
				if (!r->bad++)
					r->first_bad = i;
			}
			r->bytes += size;
			if (fd >= 0) {
				munmap((void *)p, size ? size : 1);
				close(fd);
				stk_release_index(ds, i);
			} else {
				stk_release(&v);
			}
		}
	}
	free(order);
	stk_dataset_close(ds);
	stk_close(c);
	return 0;
}

struct sample {
	long rss, anon, shmem, peak_rss, peak_anon, peak_shmem;
};

static void sample(struct sample *s)
{
	s->rss = status_kb(daemon_pid, "VmRSS");
	s->anon = status_kb(daemon_pid, "RssAnon");
	s->shmem = status_kb(daemon_pid, "RssShmem");
	if (s->rss > s->peak_rss)
		s->peak_rss = s->rss;
	if (s->anon > s->peak_anon)
		s->peak_anon = s->anon;
	if (s->shmem > s->peak_shmem)
		s->peak_shmem = s->shmem;
}

/* Runs one round of O.clients children, each delivering quota bytes; samples the daemon. */
static double round_run(uint64_t quota, struct sample *smp, uint64_t *bytes, uint64_t *gets,
			uint64_t *fd_gets)
{
	memset(res, 0, O.clients * sizeof(*res));
	pid_t *kids = calloc(O.clients, sizeof(*kids));
	if (!kids)
		die("out of memory");
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < O.clients; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(child(i, quota));
		}
	}
	unsigned left = O.clients;
	int failed = 0;
	while (left) {
		int ws;
		pid_t p = waitpid(-1, &ws, WNOHANG);
		if (p == 0) {
			sample(smp);
			if (smp->rss > 0 && (uint64_t)smp->rss * 1024 > O.ram + O.overhead) {
				fprintf(stderr,
					"load_soak: stokerd VmRSS %ld kB > budget + overhead\n",
					smp->rss);
				failed = 1;
			}
			if ((now_ns() - t0) > 600ull * 1000000000ull)
				die("a round ran past 600 s");
			usleep(50000);
			continue;
		}
		if (p < 0)
			die("waitpid");
		if (p == daemon_pid)
			die("stokerd exited during the round");
		left--;
		if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
			fprintf(stderr, "load_soak: a client exited with status %#x\n", ws);
			failed = 1;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	*bytes = *gets = *fd_gets = 0;
	for (unsigned i = 0; i < O.clients; i++) {
		*bytes += res[i].bytes;
		*gets += res[i].gets;
		*fd_gets += res[i].fd_gets;
		if (res[i].errors) {
			fprintf(stderr, "load_soak: client %u: %llu failed gets, the first %s\n", i,
				(unsigned long long)res[i].errors, stk_strerror(res[i].first_err));
			failed = 1;
		}
		if (res[i].bad) {
			fprintf(stderr,
				"load_soak: client %u: %llu objects with wrong bytes, object %u "
				"first\n",
				i, (unsigned long long)res[i].bad, res[i].first_bad);
			failed = 1;
		}
	}
	free(kids);
	if (failed)
		die("a round failed");
	return secs;
}

/* Waits until the daemon counts only the parent's connection. */
static void settle(struct stk_client *c)
{
	struct stk_stats st = { .size = sizeof(st) };
	uint64_t end = now_ns() + 10ull * 1000000000ull;
	do {
		usleep(50000);
		if (stk_stats(c, &st))
			die("stats");
	} while ((st.clients > 1 || st.pinned_objects) && now_ns() < end);
	if (st.clients > 1 || st.pinned_objects)
		die("clients or pins left after the round");
	usleep(200000);
}

static void rm_rf(void)
{
	for (size_t i = 0; i < nobj; i++) {
		char p[400];
		snprintf(p, sizeof(p), "%s/%06zu.bin", root, i);
		unlink(p);
	}
	rmdir(root);
	unlink(logp);
	unlink(sock);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "stokerd", required_argument, 0, 's' },
					    { "clients", required_argument, 0, 'c' },
					    { "dataset-mib", required_argument, 0, 'd' },
					    { "gb", required_argument, 0, 'g' },
					    { "ram-mib", required_argument, 0, 'r' },
					    { "overhead-mib", required_argument, 0, 'o' },
					    { 0, 0, 0, 0 } };
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;
		double v = ch == 's' ? 0 : strtod(optarg, &end);
		if (ch != 's' && (!end || *end || v <= 0)) {
			fprintf(stderr, "load_soak: bad value %s\n", optarg);
			return 2;
		}
		switch (ch) {
		case 's':
			O.stokerd = optarg;
			break;
		case 'c':
			O.clients = (unsigned)v;
			break;
		case 'd':
			O.dataset_bytes = (uint64_t)(v * MIB);
			break;
		case 'g':
			O.total_bytes = (uint64_t)(v * 1e9);
			break;
		case 'r':
			O.ram = (uint64_t)(v * MIB);
			break;
		case 'o':
			O.overhead = (uint64_t)(v * MIB);
			break;
		default:
			return 2;
		}
	}
	if (!O.stokerd || O.ram < O.dataset_bytes + O.dataset_bytes / 8) {
		fprintf(stderr, "usage: load_soak --stokerd PATH [--clients N] [--dataset-mib M] "
				"[--gb G] [--ram-mib R (> dataset + 1/8)] [--overhead-mib O]\n");
		return 2;
	}
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof(dir), "%s/stoker-load-XXXXXX", tmp);
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(logp, sizeof(logp), "%s/stokerd.log", dir);
	snprintf(uri, sizeof(uri), "file://%s/", root);
	if (mkdir(root, 0755))
		die("mkdir");
	res = mmap(NULL, O.clients * sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		die("mmap");
	uint64_t t = now_ns();
	int r = make_dataset();
	if (r) {
		fprintf(stderr, "load_soak: cannot make the dataset: %s\n", strerror(-r));
		rm_rf();
		return 77;
	}
	printf("load_soak: dataset %zu objects, %.0f MiB, made in %.1f s\n", nobj,
	       (double)O.dataset_bytes / MIB, (double)(now_ns() - t) / 1e9);

	start_daemon();
	struct stk_client *c = connect_retry(10000);
	if (!c)
		die("cannot connect to stokerd");
	struct stk_dataset *ds;
	if (stk_dataset_open(c, uri, 0, &ds))
		die(stk_errmsg());
	t = now_ns();
	if (stk_warm(ds))
		die("warm");
	struct stk_dataset_status dst;
	do {
		usleep(20000);
		if (stk_dataset_status(ds, &dst))
			die("status");
	} while (dst.warm == STK_WARM_RUNNING && now_ns() - t < 120ull * 1000000000ull);
	if (dst.resident != nobj)
		die("the dataset did not become resident");
	printf("load_soak: warmed into stokerd's RAM in %.1f s\n", (double)(now_ns() - t) / 1e9);

	struct sample smp = { 0 };
	uint64_t bytes, gets, fd_gets;
	double secs = round_run(WARMUP_BYTES, &smp, &bytes, &gets, &fd_gets);
	printf("load_soak: warm-up round: %u clients, %.2f GB in %.1f s\n", O.clients,
	       (double)bytes / 1e9, secs);
	settle(c);
	int fd0 = fd_count(daemon_pid);
	long anon0 = status_kb(daemon_pid, "RssAnon");
	double cpu0 = cpu_s(daemon_pid);

	secs = round_run(O.total_bytes / O.clients, &smp, &bytes, &gets, &fd_gets);
	double cpu = cpu_s(daemon_pid) - cpu0;
	settle(c);
	int fd1 = fd_count(daemon_pid);
	long anon1 = status_kb(daemon_pid, "RssAnon");
	struct stk_stats st = { .size = sizeof(st) };
	if (stk_stats(c, &st))
		die("stats");
	printf(
	    "load_soak: soak: %u client processes, %.2f GB delivered (%llu gets) in %.1f s: "
	    "%.2f GB/s; %llu of the gets through stk_get_fd(); stokerd CPU %.1f s (%.0f%% of one "
	    "core)\n",
	    O.clients, (double)bytes / 1e9, (unsigned long long)gets, secs,
	    (double)bytes / 1e9 / secs, (unsigned long long)fd_gets, cpu, 100.0 * cpu / secs);
	printf("load_soak: stokerd peak VmRSS %.0f MiB = RssShmem %.0f MiB (RAM tier mapped) + "
	       "RssAnon %.0f MiB + file; RAM budget %.0f MiB, ram_used %.0f MiB, allowed "
	       "overhead %.0f MiB\n",
	       smp.peak_rss / 1024.0, smp.peak_shmem / 1024.0, smp.peak_anon / 1024.0,
	       (double)O.ram / MIB, (double)st.ram_used / MIB, (double)O.overhead / MIB);
	printf("load_soak: after warm-up / after soak: fds %d / %d, RssAnon %ld / %ld kB\n", fd0,
	       fd1, anon0, anon1);

	int fail = 0;
	if (bytes < O.total_bytes - O.total_bytes / 100) {
		fprintf(stderr, "load_soak: only %llu bytes delivered\n",
			(unsigned long long)bytes);
		fail = 1;
	}
	if ((uint64_t)smp.peak_rss * 1024 > O.ram + O.overhead) {
		fprintf(stderr, "load_soak: VmRSS past the budget plus overhead\n");
		fail = 1;
	}
	if ((uint64_t)smp.peak_anon * 1024 > O.overhead) {
		fprintf(stderr, "load_soak: RssAnon past the overhead\n");
		fail = 1;
	}
	if (st.ram_used > st.ram_budget) {
		fprintf(stderr, "load_soak: ram_used past ram_budget\n");
		fail = 1;
	}
	if (fd1 < 0 || fd0 < 0 || abs(fd1 - fd0) > 2) {
		fprintf(stderr, "load_soak: descriptors %d -> %d: a leak\n", fd0, fd1);
		fail = 1;
	}
	if (anon1 < 0 || anon0 < 0 || labs(anon1 - anon0) > 8 * 1024) {
		fprintf(stderr, "load_soak: RssAnon %ld -> %ld kB: a leak\n", anon0, anon1);
		fail = 1;
	}
	stk_dataset_close(ds);
	stk_close(c);
	kill(daemon_pid, SIGTERM);
	int ws = 0;
	if (waitpid(daemon_pid, &ws, 0) != daemon_pid || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
		fprintf(stderr, "load_soak: stokerd did not exit 0 on SIGTERM (%#x)\n", ws);
		fail = 1;
	}
	daemon_pid = 0;
	if (fail) {
		fprintf(stderr, "load_soak: FAILED; stokerd's log is %s\n", logp);
		return 1;
	}
	rm_rf();
	printf("load_soak: PASS\n");
	return 0;
}
