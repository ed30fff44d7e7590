/* SPDX-License-Identifier: MIT */
#include "s3_harness.h"
#include "spawn.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef STK_TEST_STOKERD
#error "STK_TEST_STOKERD (the stokerd binary) must be defined by the build"
#endif
#ifndef STK_TEST_TOOLS
#error "STK_TEST_TOOLS (tests/tools) must be defined by the build"
#endif
#ifndef STK_TEST_S3RVER_PREFIX
#error "STK_TEST_S3RVER_PREFIX (where npm installed s3rver) must be defined by the build"
#endif

extern char **environ;

char th_dir[256];

#define MAX_PROCS 8
static struct th_proc *procs[MAX_PROCS];
static struct th_daemon *daemons[MAX_PROCS];

uint64_t th_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
	nanosleep(&ts, NULL);
}

const char *th_fmt(const char *fmt, ...)
{
	static __thread char buf[32][1024];
	static __thread unsigned slot;
	char *b = buf[slot++ % 32];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(buf[0]), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf[0]))
		cr_assert_fail("th_fmt: '%s...' does not fit in %zu bytes", fmt, sizeof(buf[0]));
	return b;
}

/* Processes */

static bool in_path(const char *prog, char *out, size_t outlen)
{
	if (strchr(prog, '/')) {
		snprintf(out, outlen, "%s", prog);
		return access(prog, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, outlen, "%s/%s", d, prog);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static void track(struct th_proc *p)
{
	for (int i = 0; i < MAX_PROCS; i++) {
		if (!procs[i] || procs[i] == p) {
			procs[i] = p;
			return;
		}
	}
	cr_assert_fail("harness: more than %d processes", MAX_PROCS);
}

/* Starts argv[0] (searched in PATH) with env overrides, output to th_dir/<name>.log. */
static int spawn(struct th_proc *p, const char *name, const char *const *argv,
		 const char *const *env)
{
	char exe[PATH_MAX];
	if (!in_path(argv[0], exe, sizeof(exe))) {
		fprintf(stderr, "harness: %s: not found\n", argv[0]);
		return -ENOENT;
	}
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", th_dir, name);

	/* The child's environment: ours, with overrides replaced or removed. */
	size_t ne = 0, no = 0;
	while (environ[ne])
		ne++;
	while (env && env[no])
		no++;
	char **envp = calloc(ne + no + 1, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < ne; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool over = false;
		for (size_t j = 0; j < no; j++)
			if (!strncmp(env[j], environ[i], nl) && env[j][nl] == '=')
				over = true;
		if (!over)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < no; j++) {
		const char *eq = strchr(env[j], '=');
		if (eq && eq[1])
			envp[k++] = (char *)env[j];
	}
	envp[k] = NULL;

	pid_t pid = stk_test_spawn(exe, argv, envp, p->log);
	free(envp);
	if (pid < 0)
		return (int)pid;
	p->pid = pid;
	track(p);
	return 0;
}

static const char *status_str(int st);

static bool alive(struct th_proc *p, int *status)
{
	if (!p->pid)
		return false;
	int st;
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid) {
		p->pid = 0;
		if (status)
			*status = st;
		return false;
	}
	return true;
}

void th_proc_dump(const struct th_proc *p, size_t tail)
{
	size_t len;
	char *b = th_slurp(p->log, &len);
	if (!b)
		return;
	const char *s = len > tail ? b + len - tail : b;
	fprintf(stderr, "---- %s (%s), last %zu bytes ----\n%s\n---- end of %s ----\n", p->name,
		p->log, len > tail ? tail : len, s, p->name);
	free(b);
}

int th_proc_stop(struct th_proc *p, int timeout_ms)
{
	if (!p->pid)
		return -1;
	kill(p->pid, SIGTERM);
	uint64_t end = th_now_ms() + (uint64_t)timeout_ms;
	int st = -1;
	while (th_now_ms() < end) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->pid = 0;
			return st;
		}
		sleep_ms(10);
	}
	fprintf(stderr, "harness: %s (pid %d) did not stop within %d ms: SIGKILL\n", p->name,
		(int)p->pid, timeout_ms);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	return -1;
}

/* Waits for path to exist and reads an integer from it; fails if p exits first. */
static int wait_port_file(struct th_proc *p, const char *path, int timeout_ms, int *port)
{
	uint64_t end = th_now_ms() + (uint64_t)timeout_ms;
	while (th_now_ms() < end) {
		FILE *f = fopen(path, "re");
		if (f) {
			int ok = fscanf(f, "%d", port);
			fclose(f);
			if (ok == 1 && *port > 0)
				return 0;
		}
		int st = 0;
		if (!alive(p, &st)) {
			fprintf(stderr, "harness: %s exited (%s) before it was ready\n", p->name,
				status_str(st));
			th_proc_dump(p, 4000);
			return -ECHILD;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "harness: %s not ready within %d ms\n", p->name, timeout_ms);
	th_proc_dump(p, 4000);
	return -ETIMEDOUT;
}

/*
 * A port for a server that cannot pick its own (nginx): a random one below
 * the kernel's ephemeral range, which is where every bind to port 0 and
 * every outgoing connection of the other tests gets its port, and free now.
 * Another nginx may still take it first; the caller notices and tries again.
 */
static int pick_port(void)
{
	int lo = 32768, hi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	int base = lo - 12000 > 1024 ? lo - 12000 : 1024, span = lo - base;
	if (span <= 0)
		return -1;
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)th_now_ms();
	for (int tries = 0; tries < 100; tries++) {
		int port = base + (int)((unsigned)rand_r(&seed) % (unsigned)span);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
					 .sin_port = htons((uint16_t)port) };
		bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return port;
	}
	return -1;
}

struct probe {
	const char *want;
	bool found;
};

static size_t find_header(char *p, size_t sz, size_t n, void *arg)
{
	struct probe *pr = arg;
	size_t len = sz * n, wl = strlen(pr->want);
	if (len >= wl && !strncasecmp(p, pr->want, wl))
		pr->found = true;
	return len;
}

/* Returns true when the server on port answers "/" with the header line want. */
static bool answers_with(int port, const char *want)
{
	CURL *e = curl_easy_init();
	struct probe pr = { want, false };
	if (!e)
		return false;
	curl_easy_setopt(e, CURLOPT_URL, th_fmt("http://127.0.0.1:%d/", port));
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, find_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &pr);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_perform(e);
	curl_easy_cleanup(e);
	return pr.found;
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Setup and teardown */

int th_setup(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(th_dir, sizeof(th_dir), "%s/stk-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(th_dir))
		return -errno;
	memset(procs, 0, sizeof(procs));
	memset(daemons, 0, sizeof(daemons));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static const char *status_str(int st)
{
	if (st == -1)
		return "did not stop within 15 s: killed";
	if (WIFEXITED(st))
		return th_fmt("exit %d", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return th_fmt("signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	return th_fmt("wait status 0x%x", st);
}

/* Stops d; returns true when it exited 0, else dumps its log and returns false. */
static bool daemon_stop(struct th_daemon *d, int *st)
{
	stk_close(d->c);
	d->c = NULL;
	if (!d->proc.pid) {
		*st = 0;
		return true;
	}
	*st = th_proc_stop(&d->proc, 15000);
	if (*st != -1 && WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
		return true;
	th_proc_dump(&d->proc, 8000);
	return false;
}

void th_stokerd_finish(struct th_daemon *d)
{
	int st;
	bool ok = daemon_stop(d, &st);
	cr_assert(ok, "stokerd did not exit 0 on SIGTERM: %s (its log is above)", status_str(st));
}

void th_teardown(void)
{
	bool bad = false;
	int bad_status = 0;
	/* stokerd first: it still talks to the servers while it drains. */
	for (int i = 0; i < MAX_PROCS; i++) {
		int st;
		if (daemons[i] && !daemon_stop(daemons[i], &st) && !bad) {
			bad = true;
			bad_status = st;
		}
	}
	for (int i = MAX_PROCS - 1; i >= 0; i--)
		if (procs[i] && procs[i]->pid)
			th_proc_stop(procs[i], 5000);
	memset(procs, 0, sizeof(procs));
	memset(daemons, 0, sizeof(daemons));
	if (getenv("STK_TEST_KEEP") && *getenv("STK_TEST_KEEP")) {
		fprintf(stderr, "harness: kept %s\n", th_dir);
	} else if (th_dir[0]) {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("rm", "rm", "-rf", "--", th_dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	curl_global_cleanup();
	if (bad) {
		/* Criterion ignores assertions in .fini, but not a crash there. */
		fprintf(stderr,
			"harness: stokerd did not exit 0 on SIGTERM: %s (its log is above)\n",
			status_str(bad_status));
		abort();
	}
}

/* Peers */

static const char *s3rver_prefix(void)
{
	const char *e = getenv("S3RVER_PREFIX");
	return e && *e ? e : STK_TEST_S3RVER_PREFIX;
}

const char *th_s3rver_unavailable(void)
{
	char exe[PATH_MAX];
	if (!in_path("node", exe, sizeof(exe)))
		return "node is not installed (Debian: nodejs, npm; see scripts/deps.sh): "
		       "cannot run s3rver";
	return NULL;
}

const char *th_nginx_unavailable(void)
{
	char exe[PATH_MAX];
	if (!in_path("nginx", exe, sizeof(exe)))
		return "nginx is not installed (Debian: nginx; see scripts/deps.sh)";
	return NULL;
}

int th_s3rver_start(struct th_s3rver *s, const char *const *buckets)
{
	const char *cli = th_fmt("%s/node_modules/@20minutes/s3rver/lib/cli.js", s3rver_prefix());
	if (access(cli, R_OK)) {
		fprintf(stderr,
			"harness: %s is missing: the s3rver_install test (npm install --prefix %s "
			"@20minutes/s3rver@5.0.0) must run first\n",
			cli, s3rver_prefix());
		return -ENOENT;
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/s3rver-data", th_dir);
	const char *ready = th_fmt("%s/s3rver.port", th_dir);
	const char *argv[32] = { "node",
				 "--openssl-legacy-provider",
				 STK_TEST_TOOLS "/s3rver.js",
				 "--modules",
				 s3rver_prefix(),
				 "--ready-file",
				 ready,
				 "--",
				 "-d",
				 s->dir,
				 "-a",
				 "127.0.0.1",
				 "-p",
				 "0",
				 "--silent" };
	int n = 15;
	for (size_t i = 0; buckets && buckets[i] && n < 30; i++) {
		argv[n++] = "--configure-bucket";
		argv[n++] = buckets[i];
	}
	argv[n] = NULL;
	int r = spawn(&s->proc, "s3rver", argv, NULL);
	if (r)
		return r;
	r = wait_port_file(&s->proc, ready, 30000, &s->port);
	if (r)
		return r;
	snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%d", s->port);
	return 0;
}

int th_nginx_start(struct th_nginx *ng, const char *root)
{
	memset(ng, 0, sizeof(*ng));
	snprintf(ng->root, sizeof(ng->root), "%s", root);
	const char *prefix = th_fmt("%s/nginx", th_dir);
	const char *conf = th_fmt("%s/nginx/nginx.conf", th_dir);
	const char *mark = th_fmt("X-Stoker-Test: %s", th_dir);
	snprintf(ng->access_log, sizeof(ng->access_log), "%s/access.log", prefix);
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = pick_port();
		if (port < 0)
			return -EADDRINUSE;
		/* One process, no master and no workers: it runs as us and reads our
		 * 0700 temporary directory; temp paths are ours too. */
		char text[4096];
		snprintf(text, sizeof(text),
			 "daemon off;\nmaster_process off;\nworker_processes 1;\n"
			 "pid %s/nginx.pid;\nerror_log %s/error.log info;\n"
			 "events { worker_connections 1024; }\n"
			 "http {\n"
			 "  log_format stk '$remote_addr \"$request\" $status $body_bytes_sent '\n"
			 "    'range=\"$http_range\" auth=\"$http_authorization\"';\n"
			 "  access_log %s/access.log stk;\n"
			 "  client_body_temp_path %s/client_body;\n"
			 "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
			 "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
			 "  default_type application/octet-stream;\n"
			 "  sendfile on;\n  keepalive_requests 100000;\n"
			 "  server {\n    listen 127.0.0.1:%d;\n    root %s;\n"
			 "    add_header X-Stoker-Test \"%s\" always;\n  }\n"
			 "}\n",
			 prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix, port,
			 ng->root, th_dir);
		int r = th_write_text(conf, text);
		if (r)
			return r;
		const char *errlog = th_fmt("%s/error.log", prefix);
		const char *argv[] = { "nginx", "-p", prefix, "-e", errlog, "-c", conf, NULL };
		r = spawn(&ng->proc, "nginx", argv, NULL);
		if (r)
			return r;
		uint64_t end = th_now_ms() + 10000;
		while (th_now_ms() < end) {
			/* Ours, not a server another test started on that port meanwhile. */
			if (port_open(port) && answers_with(port, mark)) {
				ng->port = port;
				snprintf(ng->base, sizeof(ng->base), "http://127.0.0.1:%d", port);
				return 0;
			}
			if (!alive(&ng->proc, NULL))
				break;
			sleep_ms(20);
		}
		th_proc_dump(&ng->proc, 2000);
		th_proc_stop(&ng->proc, 2000); /* the port was taken, perhaps: try another */
	}
	return -EADDRINUSE;
}

int th_nginx_sync(struct th_nginx *ng)
{
	static unsigned seq;
	const char *path = th_fmt("/stoker-log-sync-%u", ++seq);
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	curl_easy_setopt(e, CURLOPT_URL, th_fmt("%s%s", ng->base, path));
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_perform(e);
	curl_easy_cleanup(e);
	const char *needle = th_fmt("\"HEAD %s HTTP/1.1\"", path);
	for (uint64_t end = th_now_ms() + 5000; th_now_ms() < end; sleep_ms(5))
		if (th_file_contains(ng->access_log, needle))
			return 0;
	fprintf(stderr, "harness: nginx did not log %s within 5 s\n", path);
	return -ETIMEDOUT;
}

int th_proxy_start(struct th_proxy *p, int upstream_port, const char *const *args)
{
	memset(p, 0, sizeof(*p));
	const char *ready = th_fmt("%s/proxy.port", th_dir);
	snprintf(p->stats, sizeof(p->stats), "%s/proxy.stats.json", th_dir);
	snprintf(p->reqlog, sizeof(p->reqlog), "%s/proxy.requests.log", th_dir);
	const char *argv[40] = { "python3",	 STK_TEST_TOOLS "/faultproxy.py",
				 "--upstream",	 th_fmt("127.0.0.1:%d", upstream_port),
				 "--port-file",	 ready,
				 "--stats-file", p->stats,
				 "--log",	 p->reqlog };
	int n = 10;
	for (size_t i = 0; args && args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int r = spawn(&p->proc, "faultproxy", argv, NULL);
	if (r)
		return r;
	r = wait_port_file(&p->proc, ready, 15000, &p->port);
	if (r)
		return r;
	snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
	return 0;
}

long th_proxy_stat(const struct th_proxy *p, const char *field)
{
	char *b = th_slurp(p->stats, NULL);
	if (!b)
		return -1;
	char key[64];
	snprintf(key, sizeof(key), "\"%s\":", field);
	const char *s = strstr(b, key);
	long v = s ? strtol(s + strlen(key), NULL, 10) : -1;
	free(b);
	return v;
}

/* Starts stokerd behind the NULL-terminated command prefix (NULL: none). */
static int stokerd_start(struct th_daemon *d, const char *const *prefix, const char *const *args,
			 const char *const *env)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->sock, sizeof(d->sock), "%s/stoker.sock", th_dir);
	/* $STK_TEST_STOKERD runs another binary or a wrapper (valgrind, strace). */
	const char *exe = getenv("STK_TEST_STOKERD");
	const char *argv[48];
	int n = 0;
	for (size_t i = 0; prefix && prefix[i] && n < 8; i++)
		argv[n++] = prefix[i];
	const char *own[] = {
		exe && *exe ? exe : STK_TEST_STOKERD, "-f", "-s", d->sock, "-r", th_dir
	};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		argv[n++] = own[i];
	for (size_t i = 0; args && args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int r = spawn(&d->proc, "stokerd", argv, env);
	if (r)
		return r;
	for (int i = 0; i < MAX_PROCS; i++) {
		if (!daemons[i]) {
			daemons[i] = d;
			break;
		}
	}
	struct stk_connect_opts o = { .opts_size = sizeof(o), .socket_path = d->sock };
	uint64_t end = th_now_ms() + 20000;
	while (th_now_ms() < end) {
		r = stk_connect(&o, &d->c);
		if (r == 0)
			return 0;
		int st = 0;
		if (!alive(&d->proc, &st)) {
			fprintf(stderr, "harness: stokerd exited (%s) before it listened\n",
				status_str(st));
			th_proc_dump(&d->proc, 4000);
			return -ECHILD;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "harness: stokerd did not answer on %s: %s\n", d->sock, stk_strerror(r));
	th_proc_dump(&d->proc, 4000);
	return -ETIMEDOUT;
}

int th_stokerd_start(struct th_daemon *d, const char *const *args, const char *const *env)
{
	return stokerd_start(d, NULL, args, env);
}

const char *th_netns_unavailable(void)
{
	static const char *why;
	static bool probed;
	if (probed)
		return why;
	probed = true;
	char exe[PATH_MAX];
	if (!in_path("unshare", exe, sizeof(exe)))
		return why = "unshare(1) is not installed (util-linux): cannot isolate stokerd";
	/* The same namespaces th_stokerd_start_isolated asks for, and the bind mount. */
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(exe, "unshare", "-m", "-n", "sh", "-c", "mount --bind /etc/hosts /etc/hosts",
		      (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		why = "cannot make network and mount namespaces here (unshare -m -n needs root or "
		      "CAP_SYS_ADMIN): cannot isolate stokerd";
	return why;
}

int th_stokerd_start_isolated(struct th_daemon *d, const char *hosts, const char *const *args,
			      const char *const *env)
{
	/* unshare and sh exec stokerd in place: d->proc.pid is stokerd's. */
	static const char script[] = "mount --bind \"$0\" /etc/hosts && exec \"$@\"";
	const char *bare[] = { "unshare", "-n", NULL };
	const char *with_hosts[] = { "unshare", "-m", "-n", "sh", "-c", script, hosts, NULL };
	return stokerd_start(d, hosts ? with_hosts : bare, args, env);
}
