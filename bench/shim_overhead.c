/* SPDX-License-Identifier: MIT */
/*
 * shim_overhead: what libstoker_shim costs a program's unmapped file calls.
 *
 * Times a tight open/read/close loop of a small local file (and a stat loop)
 * in this process, then, given --shim, runs itself again under LD_PRELOAD
 * of the shim with a STOKER_SHIM_MAP of several prefixes that the file is not
 * under, alternating plain and preloaded runs and keeping each side's best,
 * and prints both and their ratio.  Goal (issue 10): under 2%.
 *
 * Usage: shim_overhead [--shim PATH] [--iters N] [--rounds R]
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ns per open/read/close and per stat of path, over iters iterations. */
static int measure(const char *path, long iters, double *open_ns, double *stat_ns)
{
	char buf[256];
	uint64_t t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
			return -1;
		close(fd);
	}
	uint64_t t1 = now_ns();
	struct stat st;
	for (long i = 0; i < iters; i++) {
		if (stat(path, &st) < 0)
			return -1;
	}
	uint64_t t2 = now_ns();
	*open_ns = (double)(t1 - t0) / (double)iters;
	*stat_ns = (double)(t2 - t1) / (double)iters;
	return 0;
}

/* Runs this program as a child measuring once, with or without the shim. */
static int child(const char *self, const char *shim, const char *path, long iters, double *open_ns,
		 double *stat_ns)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		if (shim) {
			setenv("LD_PRELOAD", shim, 1);
			setenv("STOKER_SHIM_MAP",
			       "/data/imagenet=s3://bucket/imagenet/;/mnt/lustre/ds=file:///mnt/"
			       "lustre/ds/;/tmp/stoker-shim-bench-none=file:///nonexistent/",
			       1);
		} else {
			unsetenv("LD_PRELOAD");
		}
		char n[32];
		snprintf(n, sizeof(n), "%ld", iters);
		execl(self, self, "--child", path, n, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char out[128] = { 0 };
	ssize_t k = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	if (k <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    sscanf(out, "%lf %lf", open_ns, stat_ns) != 2)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child")) {
		double o, s;
		if (measure(argv[2], atol(argv[3]), &o, &s))
			return 1;
		printf("%.2f %.2f\n", o, s);
		return 0;
	}
	const char *shim = NULL;
	long iters = 100000, rounds = 12;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--shim"))
			shim = argv[i + 1];
		else if (!strcmp(argv[i], "--iters"))
			iters = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = strtol(argv[i + 1], NULL, 10);
	}
	char path[] = "/tmp/stoker-shim-bench-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, "a small local file\n", 19) != 19) {
		perror("shim_overhead: mkstemp");
		return 1;
	}
	close(fd);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		unlink(path);
		return 1;
	}
	self[n] = 0;
	double best[2][2] = { { 1e18, 1e18 }, { 1e18, 1e18 } };
	int rc = 0;
	for (long r = 0; r < rounds && !rc; r++) {
		for (int s = 0; s < (shim ? 2 : 1) && !rc; s++) {
			double o, st;
			if (child(self, s ? shim : NULL, path, iters, &o, &st)) {
				fprintf(stderr, "shim_overhead: a measuring child failed\n");
				rc = 1;
				break;
			}
			if (o < best[s][0])
				best[s][0] = o;
			if (st < best[s][1])
				best[s][1] = st;
		}
	}
	unlink(path);
	if (rc)
		return rc;
	printf("open/read/close: %.1f ns plain", best[0][0]);
	if (shim)
		printf(", %.1f ns with the shim: ratio %.4f", best[1][0], best[1][0] / best[0][0]);
	printf("\nstat:            %.1f ns plain", best[0][1]);
	if (shim)
		printf(", %.1f ns with the shim: ratio %.4f", best[1][1], best[1][1] / best[0][1]);
	printf("\n");
	return 0;
}
