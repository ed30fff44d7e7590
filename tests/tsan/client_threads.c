/* SPDX-License-Identifier: MIT */
/*
 * ThreadSanitizer harness for libstoker's threads: many threads of one
 * client share one connection and one dataset, getting objects singly and
 * in batches while the daemon evicts and refills them (a RAM budget under
 * the dataset's size), so the resident-table path (pins, GOT batching,
 * segment mappings), the GET path and their fallbacks all race.  Every view
 * is checked byte for byte.  Meanwhile a thread scrapes the daemon's
 * /metrics, /healthz and /readyz (its libmicrohttpd thread against the
 * loop's snapshots) and once wedges the loop for a second (STOKER_TEST_HOOKS).
 * With --http the objects come from a local nginx through a manifest, so the
 * daemon's HTTP engine threads (libcurl multi on loops of their own, two of
 * them) race with the loop as every eviction is fetched again.
 * A plain main(): Criterion aborts under TSan.
 *
 *   tsan_client_threads [SECONDS] [--http]   (STOKERD_PATH is compiled in)
 *
 * Exits 0 when every get returned the right bytes; TSan's own exit code (66)
 * when it saw a race.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "stoker.h"

#define NOBJ	 400
#define NTHREADS 8
#define BATCH	 8

static char dir[64];
static uint64_t hashes[NOBJ], sizes[NOBJ];
static struct stk_dataset *ds;
static atomic_ulong gets, hits, bad;
static atomic_bool stop;
static atomic_ulong scrapes, scrape_bad;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t hash(const uint8_t *p, uint64_t n)
{
	uint64_t h = n;
	for (uint64_t i = 0; i < n; i++)
		h = h * 1099511628211ull ^ p[i];
	return h;
}

static void make_dataset(void)
{
	char p[128];
	snprintf(dir, sizeof(dir), "/tmp/stoker-tsan-XXXXXX");
	if (!mkdtemp(dir) || snprintf(p, sizeof(p), "%s/ds", dir) < 0 || mkdir(p, 0755)) {
		perror("mkdtemp");
		exit(2);
	}
	uint8_t *b = malloc(64 << 10);
	for (unsigned i = 0; i < NOBJ; i++) {
		sizes[i] = 1 + mix(i + 1) % (64 << 10);
		for (uint64_t k = 0; k < sizes[i]; k++)
			b[k] = (uint8_t)mix(i * 65536 + k);
		hashes[i] = hash(b, sizes[i]);
		snprintf(p, sizeof(p), "%s/ds/o%04u", dir, i);
		FILE *f = fopen(p, "wb");
		if (!f || fwrite(b, 1, sizes[i], f) != sizes[i] || fclose(f)) {
			perror(p);
			exit(2);
		}
	}
	free(b);
}

static void check(const struct stk_view *v)
{
	if (v->size != sizes[v->index] || hash(v->data, v->size) != hashes[v->index]) {
		fprintf(stderr, "tsan_client_threads: object %u: wrong bytes\n", v->index);
		atomic_fetch_add(&bad, 1);
	}
	atomic_fetch_add(&gets, 1);
	atomic_fetch_add(&hits, (v->flags & STK_VIEW_HIT) != 0);
}

static void *reader(void *arg)
{
	uint64_t r = (uintptr_t)arg;
	struct stk_view v[BATCH];
	while (!atomic_load(&stop)) {
		r = mix(r);
		if (r % 3) {
			int e = stk_get(ds, r % NOBJ, &v[0]);
			if (e) {
				fprintf(stderr, "get: %s (%s)\n", stk_strerror(e), stk_errmsg());
				atomic_fetch_add(&bad, 1);
				continue;
			}
			check(&v[0]);
			stk_release(&v[0]);
		} else {
			uint32_t idx[BATCH];
			for (unsigned i = 0; i < BATCH; i++)
				idx[i] = (uint32_t)(mix(r + i) % NOBJ);
			int e = stk_get_batch(ds, idx, BATCH, v);
			if (e) {
				fprintf(stderr, "batch: %s (%s)\n", stk_strerror(e), stk_errmsg());
				atomic_fetch_add(&bad, 1);
				continue;
			}
			for (unsigned i = 0; i < BATCH; i++)
				check(&v[i]);
			stk_release_batch(v, BATCH);
		}
	}
	return NULL;
}

/* One HTTP/1.0 request to the metrics port: the status code, or -1. */
static int http(int port, const char *method, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char buf[4096];
	int n =
	    snprintf(buf, sizeof(buf), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	int status = -1;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    write(fd, buf, (size_t)n) == n) {
		ssize_t k = read(fd, buf, sizeof(buf) - 1);
		if (k > 12) {
			buf[k] = 0;
			sscanf(buf, "HTTP/%*s %d", &status);
		}
		while (read(fd, buf, sizeof(buf)) > 0) /* the whole body */
			;
	}
	if (fd >= 0)
		close(fd);
	return status;
}

static int metrics_port;

static void *scraper(void *arg)
{
	bool wedged = false;
	while (!atomic_load(&stop)) {
		static const char *const paths[] = { "/metrics", "/healthz", "/readyz" };
		for (unsigned i = 0; i < 3; i++) {
			int st = http(metrics_port, "GET", paths[i]);
			atomic_fetch_add(&scrapes, 1);
			/* /healthz may say 503 while the loop is wedged; nothing else may fail. */
			if (st != 200 && !(st == 503 && i == 1 && wedged)) {
				fprintf(stderr, "GET %s: %d\n", paths[i], st);
				atomic_fetch_add(&scrape_bad, 1);
			}
		}
		if (!wedged && atomic_load(&gets) > 1000) {
			int st = http(metrics_port, "POST", "/test/wedge?seconds=1");
			wedged = st == 202 || st == 200; /* accepted: it runs on the loop */
			if (!wedged) {
				fprintf(stderr, "POST /test/wedge: %d\n", st);
				atomic_fetch_add(&scrape_bad, 1);
			}
		}
	}
	return arg;
}

/* A TCP port on loopback that was free a moment ago, or 0. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	int port = 0;
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/*
 * --http: serves dir/ds with nginx (one process, as us) and writes
 * dir/manifest naming every object by its http:// URL.  Returns nginx's pid,
 * or -1 after saying why.
 */
static pid_t serve_http(char *uri, size_t urilen)
{
	char conf[128], log[128], p[128];
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(log, sizeof(log), "%s/nginx.log", dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = free_port();
		FILE *f = fopen(conf, "we");
		if (!port || !f)
			return perror(conf), -1;
		fprintf(f,
			"daemon off;\nmaster_process off;\nworker_processes 1;\n"
			"pid %s/nginx.pid;\nerror_log %s info;\n"
			"events { worker_connections 1024; }\n"
			"http {\n  access_log off;\n  client_body_temp_path %s/cb;\n"
			"  proxy_temp_path %s/px;\n  fastcgi_temp_path %s/fc;\n"
			"  uwsgi_temp_path %s/uw;\n  scgi_temp_path %s/sc;\n"
			"  sendfile on;\n  keepalive_requests 100000;\n"
			"  server { listen 127.0.0.1:%d; root %s; }\n}\n",
			dir, log, dir, dir, dir, dir, dir, port, dir);
		fclose(f);
		const char *argv[] = { "nginx", "-p", dir, "-e", log, "-c", conf, NULL };
		/* stk_test_spawn() execs a path: Debian puts nginx in /usr/sbin. */
		const char *exe =
		    access("/usr/sbin/nginx", X_OK) ? "/usr/bin/nginx" : "/usr/sbin/nginx";
		pid_t ng = stk_test_spawn(exe, argv, NULL, log);
		if (ng < 0) {
			fprintf(stderr, "cannot start nginx: %s (scripts/deps.sh installs it)\n",
				strerror((int)-ng));
			return -1;
		}
		for (int i = 0; i < 250; i++) {
			if (http(port, "GET", "/ds/o0000") == 200) {
				snprintf(p, sizeof(p), "%s/manifest", dir);
				f = fopen(p, "we");
				for (unsigned k = 0; f && k < NOBJ; k++)
					fprintf(f, "http://127.0.0.1:%d/ds/o%04u %llu\n", port, k,
						(unsigned long long)sizes[k]);
				if (!f || fclose(f))
					return perror(p), kill(ng, SIGKILL), -1;
				snprintf(uri, urilen, "file://%s", p);
				return ng;
			}
			usleep(20000);
		}
		kill(ng, SIGKILL); /* the port was taken meanwhile, perhaps: another */
		waitpid(ng, NULL, 0);
	}
	fprintf(stderr, "nginx did not serve %s (see %s)\n", dir, log);
	return -1;
}

/* The port stokerd's log says it serves metrics on, or 0 after 10 s. */
static int find_port(const char *log)
{
	for (int i = 0; i < 500; i++) {
		char line[1024];
		FILE *f = fopen(log, "re");
		while (f && fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, "serving http://127.0.0.1:");
			int port;
			if (p && sscanf(p, "serving http://127.0.0.1:%d/", &port) == 1)
				return fclose(f), port;
		}
		if (f)
			fclose(f);
		usleep(20000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	bool over_http = argc > 2 && !strcmp(argv[2], "--http");
	make_dataset();
	char sock[128], log[128], root[128], uri[160];
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(log, sizeof(log), "%s/stokerd.log", dir);
	snprintf(root, sizeof(root), "%s", dir);
	snprintf(uri, sizeof(uri), "file://%s/ds/", dir);
	pid_t ng = over_http ? serve_http(uri, sizeof(uri)) : 0;
	if (ng < 0)
		return 2;
	/*
	 * 8 MiB for ~13 MB of objects: the daemon evicts all the time; the
	 * client may hold it all (8 threads, batches of 8 objects of up to 64 KiB).
	 */
	const char *args[] = { STOKERD_PATH,
			       "--foreground",
			       "--socket",
			       sock,
			       "--allow-root",
			       root,
			       "--ram",
			       "8M",
			       "--client-max-pinned",
			       "8M",
			       "--log-level",
			       "info",
			       "--metrics",
			       "127.0.0.1:0",
			       "--http-threads",
			       "2",
			       NULL };
	setenv("STOKER_TEST_HOOKS", "1", 1);
	pid_t d = stk_test_spawn(STOKERD_PATH, args, NULL, log);
	if (d < 0) {
		fprintf(stderr, "cannot start %s: %s\n", STOKERD_PATH, strerror((int)-d));
		return 2;
	}
	struct stk_client *c = NULL;
	int r = -1;
	for (int i = 0; i < 200 && r; i++) {
		struct stk_connect_opts o = { .opts_size = sizeof(o), .socket_path = sock };
		if ((r = stk_connect(&o, &c)))
			usleep(20000);
	}
	if (r || (r = stk_dataset_open(c, uri, over_http ? STK_DS_MANIFEST : 0, &ds))) {
		fprintf(stderr, "connect/open: %s (%s)\n", stk_strerror(r), stk_errmsg());
		kill(d, SIGKILL);
		return 2;
	}
	metrics_port = find_port(log);
	if (!metrics_port) {
		fprintf(stderr, "stokerd never said where it serves metrics (see %s)\n", log);
		kill(d, SIGKILL);
		return 2;
	}
	pthread_t t[NTHREADS], sc;
	for (uintptr_t i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, reader, (void *)(i + 1));
	pthread_create(&sc, NULL, scraper, NULL);
	struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_join(sc, NULL);
	struct stk_stats st = { .size = sizeof(st) };
	r = stk_stats(c, &st);
	stk_dataset_close(ds);
	stk_close(c);
	kill(d, SIGTERM);
	int ws = 0;
	waitpid(d, &ws, 0);
	if (ng > 0) {
		kill(ng, SIGTERM);
		waitpid(ng, NULL, 0);
	}
	printf("tsan_client_threads%s: %lu gets by %d threads (%lu hits), %lu failed; %lu metrics "
	       "requests, %lu failed; daemon: %llu gets, %llu fetches, %llu evictions, exit %d\n",
	       over_http ? " --http" : "", atomic_load(&gets), NTHREADS, atomic_load(&hits),
	       atomic_load(&bad), atomic_load(&scrapes), atomic_load(&scrape_bad),
	       (unsigned long long)st.gets, (unsigned long long)st.fetches,
	       (unsigned long long)st.evictions, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
	bool ok = !r && !atomic_load(&bad) && atomic_load(&gets) > 1000 && st.evictions > 0 &&
		  atomic_load(&scrapes) > 30 && !atomic_load(&scrape_bad) && WIFEXITED(ws) &&
		  WEXITSTATUS(ws) == 0;
	return ok ? 0 : 1;
}
