/* SPDX-License-Identifier: MIT */
#include "harness.h"
#include "spawn.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef STOKERD_PATH
#error "build with -DSTOKERD_PATH=\"path/to/stokerd\""
#endif

#define START_TIMEOUT_S 20 /* ASan builds start slowly on a busy 2-core box */

struct e2e_daemon e2e_d;

extern char **environ;

void e2x_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t e2x_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void e2e_init(void)
{
	memset(&e2e_d, 0, sizeof(e2e_d));
	snprintf(e2e_d.dir, sizeof(e2e_d.dir), "/tmp/stoker-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(e2e_d.dir), "mkdtemp: %s", strerror(errno));
	snprintf(e2e_d.root, sizeof(e2e_d.root), "%s/root", e2e_d.dir);
	snprintf(e2e_d.sock, sizeof(e2e_d.sock), "%s/stokerd.sock", e2e_d.dir);
	snprintf(e2e_d.log, sizeof(e2e_d.log), "%s/stokerd.log", e2e_d.dir);
	cr_assert_eq(mkdir(e2e_d.root, 0755), 0, "mkdir %s: %s", e2e_d.root, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void e2e_fini(void)
{
	if (e2e_d.pid > 0) {
		fprintf(stderr, "e2e: the test left stokerd %d running; killing it\n",
			(int)e2e_d.pid);
		e2e_dump_log(&e2e_d);
		kill(e2e_d.pid, SIGKILL);
		waitpid(e2e_d.pid, NULL, 0);
		e2e_d.pid = 0;
	} else if (e2e_d.log[0] && (e2e_log_contains(&e2e_d, "Sanitizer") ||
				    e2e_log_contains(&e2e_d, "runtime error"))) {
		e2e_dump_log(&e2e_d);
	}
	if (e2e_d.dir[0] && !getenv("STOKER_E2E_KEEP"))
		nftw(e2e_d.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void e2e_dump_log(const struct e2e_daemon *d)
{
	FILE *f = fopen(d->log, "r");
	if (!f)
		return;
	char line[1024];
	fprintf(stderr, "---- stokerd log %s ----\n", d->log);
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "| %s", line);
	fprintf(stderr, "---- end of stokerd log ----\n");
	fclose(f);
}

bool e2e_log_contains(const struct e2e_daemon *d, const char *needle)
{
	FILE *f = fopen(d->log, "r");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

int e2x_connect(const char *sock, struct stk_client **out)
{
	struct stk_connect_opts o = { .opts_size = sizeof(o), .socket_path = sock };
	return stk_connect(&o, out);
}

struct stk_client *e2e_connect(const struct e2e_daemon *d)
{
	struct stk_client *c = NULL;
	int r = e2x_connect(d->sock, &c);
	cr_assert_eq(r, 0, "stk_connect %s: %s (%s)", d->sock, stk_strerror(r), stk_errmsg());
	return c;
}

struct stk_stats e2e_stats(struct stk_client *c)
{
	struct stk_stats st = { .size = sizeof(st) };
	int r = stk_stats(c, &st);
	cr_assert_eq(r, 0, "stk_stats: %s (%s)", stk_strerror(r), stk_errmsg());
	return st;
}

void e2e_daemon_start(struct e2e_daemon *d, const char *const *extra)
{
	const char *argv[64];
	size_t n = 0;
	/* A bundle run elsewhere (scripts/device-check.sh) names its own stokerd. */
	const char *stokerd =
	    getenv("STOKER_E2E_STOKERD") ? getenv("STOKER_E2E_STOKERD") : STOKERD_PATH;
	argv[n++] = stokerd;
	argv[n++] = "--foreground";
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "--allow-root";
	argv[n++] = d->root;
	argv[n++] = "--log-level";
	argv[n++] = "warn";
	argv[n++] = "--ram";
	argv[n++] = "256M";
	for (size_t i = 0; extra && extra[i]; i++) {
		cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1, "too many daemon arguments");
		argv[n++] = extra[i];
	}
	argv[n] = NULL;

	/* The environment minus STOKER_*, so the caller's settings cannot leak in. */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 1, sizeof(*envp));
	cr_assert_not_null(envp);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "STOKER_", 7) ||
		    !strncmp(environ[i], "STOKER_TEST_HOOKS=", 18)) /* a test asks for them */
			envp[k++] = environ[i];

	pid_t pid = stk_test_spawn(stokerd, argv, envp, d->log);
	cr_assert_gt(pid, 0, "start %s: %s", stokerd, strerror(-pid));
	free(envp);
	d->pid = pid;

	uint64_t deadline = e2x_now_ns() + START_TIMEOUT_S * 1000000000ull;
	for (;;) {
		struct stk_client *c;
		if (e2x_connect(d->sock, &c) == 0) {
			stk_close(c);
			return;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = 0;
			e2e_dump_log(d);
			cr_assert_fail("stokerd exited before it listened (status 0x%x)", st);
		}
		if (e2x_now_ns() > deadline) {
			e2e_dump_log(d);
			cr_assert_fail("stokerd did not listen on %s within %d s", d->sock,
				       START_TIMEOUT_S);
		}
		e2x_sleep_ms(10);
	}
}

int e2x_wait_child(pid_t pid, int timeout_s)
{
	uint64_t deadline = e2x_now_ns() + (uint64_t)timeout_s * 1000000000ull;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (e2x_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
		e2x_sleep_ms(5);
	}
}

int e2x_daemon_wait(struct e2e_daemon *d, int timeout_s)
{
	int st = e2x_wait_child(d->pid, timeout_s);
	d->pid = 0;
	return st;
}

void e2e_daemon_stop_timeout(struct e2e_daemon *d, int timeout_s)
{
	cr_assert_gt(d->pid, 0, "no daemon to stop");
	cr_assert_eq(kill(d->pid, SIGTERM), 0, "kill: %s", strerror(errno));
	int st = e2x_daemon_wait(d, timeout_s);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		e2e_dump_log(d);
	cr_assert_neq(st, -1, "stokerd did not exit within %d s of SIGTERM", timeout_s);
	cr_assert(WIFEXITED(st), "stokerd died of signal %d after SIGTERM",
		  WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	cr_assert_eq(WEXITSTATUS(st), 0, "stokerd exited with status %d after SIGTERM",
		     WEXITSTATUS(st));
}

void e2e_daemon_stop(struct e2e_daemon *d)
{
	e2e_daemon_stop_timeout(d, 30);
}

uint64_t e2e_rand(struct e2e_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t e2e_rand_below(struct e2e_rng *r, uint64_t n)
{
	return n ? e2e_rand(r) % n : 0;
}

void e2e_shuffle(uint32_t *a, size_t n, struct e2e_rng *r)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)e2e_rand_below(r, i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v * 0x9e3779b97f4a7c15ull;
	h = (h << 31) | (h >> 33);
	return h * 0xc2b2ae3d27d4eb4full;
}

uint64_t e2e_hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, b + i, 8);
		h = mix(h, v);
	}
	uint64_t tail = 0;
	for (size_t k = 0; i < n; i++, k++)
		tail |= (uint64_t)b[i] << (8 * k);
	h = mix(h, tail ^ 0xff51afd7ed558ccdull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

int e2x_mkdirs(const char *path)
{
	char p[512];
	size_t l = strlen(path);
	if (l >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, l + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int e2x_write_file(const char *path, uint64_t size, uint64_t seed)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		int r = e2x_mkdirs(dir);
		if (r)
			return r;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct e2e_rng rng = { seed };
	static __thread uint64_t buf[8192];
	uint64_t left = size;
	int r = 0;
	while (left && !r) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		for (size_t i = 0; i < (n + 7) / 8; i++)
			buf[i] = e2e_rand(&rng);
		size_t off = 0;
		while (off < n) {
			ssize_t k = write(fd, (char *)buf + off, n - off);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				r = -errno;
				break;
			}
			off += (size_t)k;
		}
		left -= n;
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int e2x_file_hash(const char *path, uint64_t *hash, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	size_t len = (size_t)st.st_size;
	char *b = malloc(len ? len : 1);
	int r = b ? 0 : -ENOMEM;
	size_t off = 0;
	while (!r && off < len) {
		ssize_t k = read(fd, b + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			r = k < 0 ? -errno : -EIO;
		else
			off += (size_t)k;
	}
	close(fd);
	if (!r) {
		*hash = e2e_hash(b, len);
		*size = len;
	}
	free(b);
	return r;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct e2e_obj *)a)->key, ((const struct e2e_obj *)b)->key);
}

void e2e_dataset_make(struct e2e_dataset *ds, const char *dir, const uint64_t *sizes, size_t n,
		      int nest, uint64_t seed)
{
	memset(ds, 0, sizeof(*ds));
	snprintf(ds->dir, sizeof(ds->dir), "%s", dir);
	snprintf(ds->uri, sizeof(ds->uri), "file://%s/", dir);
	cr_assert_eq(e2x_mkdirs(dir), 0, "mkdir %s", dir);
	ds->o = calloc(n ? n : 1, sizeof(*ds->o));
	cr_assert_not_null(ds->o);
	ds->n = n;
	struct e2e_rng rng = { seed };
	for (size_t i = 0; i < n; i++) {
		struct e2e_obj *o = &ds->o[i];
		int depth = nest > 0 ? (int)e2e_rand_below(&rng, (uint64_t)nest + 1) : 0;
		size_t l = 0;
		for (int k = 0; k < depth; k++)
			l += (size_t)snprintf(o->key + l, sizeof(o->key) - l, "d%u_%d/",
					      (unsigned)e2e_rand_below(&rng, 4), k);
		snprintf(o->key + l, sizeof(o->key) - l, "obj%05zu.bin", i);
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, o->key);
		int r = e2x_write_file(path, sizes[i], seed * 1000003u + i);
		cr_assert_eq(r, 0, "write %s: %s", path, strerror(-r));
		r = e2x_file_hash(path, &o->hash, &o->size);
		cr_assert_eq(r, 0, "read back %s: %s", path, strerror(-r));
		cr_assert_eq(o->size, sizes[i], "%s: %llu bytes on disk, wrote %llu", path,
			     (unsigned long long)o->size, (unsigned long long)sizes[i]);
		ds->bytes += o->size;
	}
	qsort(ds->o, n, sizeof(*ds->o), by_key);
}

void e2e_dataset_free(struct e2e_dataset *ds)
{
	free(ds->o);
	ds->o = NULL;
	ds->n = 0;
}

int e2x_check_catalog(struct stk_dataset *sds, const struct e2e_dataset *ds)
{
	if (stk_dataset_count(sds) != ds->n) {
		fprintf(stderr, "e2e: %s lists %zu objects, want %zu\n", ds->uri,
			stk_dataset_count(sds), ds->n);
		return -1;
	}
	if (stk_dataset_bytes(sds) != ds->bytes) {
		fprintf(stderr, "e2e: %s holds %llu bytes, want %llu\n", ds->uri,
			(unsigned long long)stk_dataset_bytes(sds), (unsigned long long)ds->bytes);
		return -1;
	}
	for (size_t i = 0; i < ds->n; i++) {
		const char *key;
		uint64_t size;
		int r = stk_dataset_object(sds, i, &key, &size);
		if (r || strcmp(key, ds->o[i].key) || size != ds->o[i].size) {
			fprintf(stderr, "e2e: %s object %zu is %s (%llu bytes), want %s (%llu)\n",
				ds->uri, i, r ? "?" : key, (unsigned long long)(r ? 0 : size),
				ds->o[i].key, (unsigned long long)ds->o[i].size);
			return -1;
		}
	}
	return 0;
}

int e2x_get_check(struct stk_dataset *sds, size_t i, const struct e2e_obj *want, uint32_t *flags,
		  struct stk_view *keep)
{
	struct stk_view v;
	int r = stk_get(sds, i, &v);
	if (r) {
		fprintf(stderr, "e2e: stk_get %s (index %zu): %s: %s\n", want->key, i,
			stk_strerror(r), stk_errmsg());
		return r;
	}
	if (flags)
		*flags = v.flags;
	if (v.index != i || v.size != want->size || (v.size && !v.data) ||
	    e2e_hash(v.data, (size_t)v.size) != want->hash) {
		fprintf(
		    stderr,
		    "e2e: %s (index %zu): got index %u, %llu bytes, hash %016llx; "
		    "want %llu bytes, hash %016llx\n",
		    want->key, i, v.index, (unsigned long long)v.size,
		    (unsigned long long)(v.data || !v.size ? e2e_hash(v.data, (size_t)v.size) : 0),
		    (unsigned long long)want->size, (unsigned long long)want->hash);
		stk_release(&v);
		return -EBADMSG;
	}
	if (keep)
		*keep = v;
	else
		stk_release(&v);
	return 0;
}

int e2x_get_fd_check(struct stk_dataset *sds, size_t i, const struct e2e_obj *want)
{
	int fd;
	uint64_t size;
	int r = stk_get_fd(sds, i, &fd, &size);
	if (r) {
		fprintf(stderr, "e2e: stk_get_fd %s (index %zu): %s: %s\n", want->key, i,
			stk_strerror(r), stk_errmsg());
		return r;
	}
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	char *b = malloc(size ? size : 1);
	size_t off = 0;
	while (b && off < size) {
		ssize_t k = pread(fd, b + off, size - off, (off_t)off);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != want->size || size != want->size ||
	    seals < 0 || !(seals & F_SEAL_WRITE) || !b || off != size ||
	    e2e_hash(b, size) != want->hash) {
		fprintf(stderr,
			"e2e: fd of %s (index %zu): size %llu (file %lld), seals 0x%x, "
			"read %zu, hash %s; want %llu bytes\n",
			want->key, i, (unsigned long long)size, (long long)st.st_size, seals, off,
			b && off == size && e2e_hash(b, size) == want->hash ? "ok" : "WRONG",
			(unsigned long long)want->size);
		r = -EBADMSG;
	}
	free(b);
	close(fd);
	stk_release_index(sds, i);
	return r;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	cr_assert_not_null(b);
	size_t k;
	while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n - 1 == 0) {
			b = realloc(b, cap *= 2);
			cr_assert_not_null(b);
		}
	}
	fclose(f);
	b[n] = 0;
	if (len)
		*len = n;
	return b;
}

int e2e_run(const char *const *argv, char **out, size_t *outlen, char **err)
{
	char op[200], ep[200];
	snprintf(op, sizeof(op), "%s/run.stdout", e2e_d.dir);
	snprintf(ep, sizeof(ep), "%s/run.stderr", e2e_d.dir);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);
		if (o < 0 || e < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = e2x_wait_child(pid, 60);
	cr_assert_neq(st, -1, "%s did not finish within 60 s", argv[0]);
	cr_assert(!WIFEXITED(st) || WEXITSTATUS(st) != 127, "cannot run %s", argv[0]);
	*out = slurp(op, outlen);
	*err = slurp(ep, NULL);
	return st;
}

int e2x_fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return -1;
	int n = 0;
	while (readdir(dir))
		n++;
	closedir(dir);
	return n - 2;
}

/* How many listening TCP sockets process pid holds (from /proc). */
int e2x_tcp_listeners(pid_t pid)
{
	unsigned long inodes[256];
	size_t ni = 0;
	static const char *const tabs[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	for (size_t t = 0; t < 2; t++) {
		FILE *f = fopen(tabs[t], "r");
		char line[512];
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned st;
			unsigned long ino;
			if (sscanf(line, " %*u: %*s %*s %x %*s %*s %*s %*s %*s %lu", &st, &ino) ==
				2 &&
			    st == 0x0A && ni < 256)
				inodes[ni++] = ino;
		}
		fclose(f);
	}
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *dp = opendir(dir);
	cr_assert_not_null(dp, "%s: %s", dir, strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dp))) {
		char p[384], link[64];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		ssize_t l = readlink(p, link, sizeof(link) - 1);
		unsigned long ino;
		if (l <= 0)
			continue;
		link[l] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		for (size_t i = 0; i < ni; i++)
			if (inodes[i] == ino)
				n++;
	}
	closedir(dp);
	return n;
}
