/* SPDX-License-Identifier: MIT */
/*
 * The stokerd that stoker-bench starts when it is not given --socket, and
 * the temporary files the bench makes: the daemon's socket directory and the
 * demo dataset.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stoker.h>

#include "bench.h"

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int bench_find_stokerd(const char *explicit_path, char *buf, size_t len)
{
	static const char *const rel[] = { "stokerd", "../prefetch/stokerd" };
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (explicit_path) {
		if ((size_t)snprintf(buf, len, "%s", explicit_path) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				if ((size_t)snprintf(buf, len, "%s/%s", self, rel[i]) >= len)
					continue;
				if (executable(buf)) {
					char *real = realpath(buf, NULL);

					/* Shown in the report: say ../ free. */
					if (real && strlen(real) < len)
						memcpy(buf, real, strlen(real) + 1);
					free(real);
					return 0;
				}
			}
		}
	}
	/* No slash: execvp() looks it up in PATH. */
	if ((size_t)snprintf(buf, len, "stokerd") >= len)
		return -ENAMETOOLONG;
	return 0;
}

int bench_mkdtemp(const char *prefix, char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/var/tmp";
	if ((size_t)snprintf(buf, len, "%s/%s.XXXXXX", tmp, prefix) >= len)
		return -ENAMETOOLONG;
	if (!mkdtemp(buf)) {
		int ret = -errno;

		fprintf(stderr, "stoker-bench: mkdtemp %s: %s\n", buf, strerror(-ret));
		return ret;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

int bench_rmtree(const char *dir)
{
	if (!dir || !*dir)
		return 0;
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0) {
		int ret = -errno;

		fprintf(stderr, "stoker-bench: cannot remove %s: %s\n", dir, strerror(-ret));
		return ret;
	}
	return 0;
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "changed state 0x%x", status);
}

int bench_daemon_start(struct bench_daemon *d, const char *stokerd, const char *ram,
		       const char *allow_root, const struct bench_emul *em, bool quiet)
{
	char lat[32], bw[32];
	const char *argv[20];
	int argc = 0, pfd[2] = { -1, -1 };
	pid_t parent = getpid();
	int err = 0, ret, status;
	double deadline;
	ssize_t n;

	memset(d, 0, sizeof(*d));
	ret = bench_mkdtemp("stoker-bench", d->dir, sizeof(d->dir));
	if (ret)
		return ret;
	/* sun_path holds 108 bytes; a long $TMPDIR must not break the bench. */
	if ((size_t)snprintf(d->sock, sizeof(d->sock), "%s/stoker.sock", d->dir) >= 100) {
		rmdir(d->dir);
		if ((size_t)snprintf(d->dir, sizeof(d->dir), "/tmp/stoker-bench.XXXXXX") >=
			sizeof(d->dir) ||
		    !mkdtemp(d->dir)) {
			d->dir[0] = '\0';
			return -ENAMETOOLONG;
		}
		if ((size_t)snprintf(d->sock, sizeof(d->sock), "%s/stoker.sock", d->dir) >=
		    sizeof(d->sock)) {
			rmdir(d->dir);
			d->dir[0] = '\0';
			return -ENAMETOOLONG;
		}
	}

	argv[argc++] = stokerd;
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = d->sock;
	if (ram) {
		argv[argc++] = "--ram";
		argv[argc++] = ram;
	}
	argv[argc++] = "--allow-root";
	argv[argc++] = allow_root;
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	argv[argc++] = "--metrics"; /* a private daemon: no port of its own */
	argv[argc++] = "off";
	if (em->latency_ms > 0) {
		snprintf(lat, sizeof(lat), "%g", em->latency_ms);
		argv[argc++] = "--emulate-latency";
		argv[argc++] = lat;
	}
	if (em->bandwidth_mb_s > 0) {
		snprintf(bw, sizeof(bw), "%g", em->bandwidth_mb_s);
		argv[argc++] = "--emulate-bandwidth";
		argv[argc++] = bw;
	}
	argv[argc] = NULL;
	if (!quiet) {
		fprintf(stderr, "stoker-bench: starting");
		for (int i = 0; i < argc; i++)
			fprintf(stderr, " %s", argv[i]);
		fputc('\n', stderr);
	}

	/* The pipe is close-on-exec: EOF means the exec succeeded, an int
	 * means it failed with that errno. */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = -errno;
		goto err;
	}
	d->pid = fork();
	if (d->pid < 0) {
		ret = -errno;
		d->pid = 0;
		goto err;
	}
	if (d->pid == 0) {
		/* The daemon must not outlive a bench that crashed or was
		 * killed; its stdout goes to stderr so --json stays clean. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		signal(SIGINT, SIG_IGN); /* the bench stops it with SIGTERM */
		execvp(argv[0], (char *const *)argv);
		err = errno;
		if (write(pfd[1], &err, sizeof(err)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	do
		n = read(pfd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	pfd[0] = -1;
	if (n == (ssize_t)sizeof(err)) {
		fprintf(stderr, "stoker-bench: cannot run %s: %s%s\n", stokerd, strerror(err),
			err == ENOENT ? " (build it, or pass --stokerd PATH or --socket PATH)"
				      : "");
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
		ret = -err;
		goto err;
	}

	deadline = bench_now() + 10.0;
	for (;;) {
		struct stk_connect_opts opts = {
			.opts_size = sizeof(opts),
			.socket_path = d->sock,
		};
		struct stk_client *c;
		pid_t w;

		w = waitpid(d->pid, &status, WNOHANG);
		if (w == d->pid) {
			char why[128];

			describe_status(status, why, sizeof(why));
			fprintf(stderr,
				"stoker-bench: stokerd %s before it accepted connections "
				"(see its messages above)\n",
				why);
			d->pid = 0;
			ret = -ECHILD;
			goto err;
		}
		ret = stk_connect(&opts, &c);
		if (ret == 0) {
			stk_close(c);
			return 0;
		}
		if (bench_now() > deadline) {
			fprintf(stderr,
				"stoker-bench: stokerd did not accept connections on %s "
				"within 10 s (last error: %s %s)\n",
				d->sock, stk_strerror(ret), stk_errmsg());
			ret = -ETIMEDOUT;
			goto err;
		}
		if (bench_sleep(0.020)) {
			ret = -EINTR;
			goto err;
		}
	}
err:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	bench_daemon_stop(d);
	return ret;
}

int bench_daemon_stop(struct bench_daemon *d)
{
	int status = 0, ret = 0;
	double deadline;
	char why[128];

	if (d->pid > 0 && waitpid(d->pid, &status, WNOHANG) == d->pid) {
		/* It died during the run: that is the news, whatever the status. */
		describe_status(status, why, sizeof(why));
		fprintf(stderr, "stoker-bench: stokerd died during the run: it %s\n", why);
		d->pid = 0;
		ret = -ECHILD;
	}
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		deadline = bench_now() + 10.0;
		for (;;) {
			pid_t w = waitpid(d->pid, &status, WNOHANG);

			if (w == d->pid)
				break;
			if (w < 0 && errno != EINTR) {
				ret = -errno;
				break;
			}
			if (bench_now() > deadline) {
				fprintf(stderr,
					"stoker-bench: stokerd (pid %d) ignored "
					"SIGTERM for 10 s; sending SIGKILL\n",
					(int)d->pid);
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &status, 0);
				ret = -ETIMEDOUT;
				break;
			}
			/* Not bench_sleep(): a stop request must not cut this short. */
			usleep(10000);
		}
		if (!ret && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			describe_status(status, why, sizeof(why));
			fprintf(stderr, "stoker-bench: stokerd %s on SIGTERM (expected exit 0)\n",
				why);
			ret = -ECHILD;
		}
		d->pid = 0;
	}
	if (d->dir[0]) {
		bench_rmtree(d->dir);
		d->dir[0] = '\0';
	}
	return ret;
}

int bench_make_demo_dataset(const char *dir, unsigned count, uint64_t min, uint64_t max,
			    uint64_t seed)
{
	const size_t chunk = 1u << 20;
	unsigned char *buf;
	uint64_t s[4];
	int ret = 0;

	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	bench_seed(s, seed);
	for (unsigned i = 0; i < count; i++) {
		double u = (double)(bench_rand(s) >> 11) / 9007199254740992.0;
		uint64_t size = (uint64_t)((double)min * pow((double)max / (double)min, u));
		char path[4096];
		int fd;

		if (size < min)
			size = min;
		if (size > max)
			size = max;
		/* Four subdirectories: the daemon lists a dataset recursively. */
		if ((size_t)snprintf(path, sizeof(path), "%s/part-%u", dir, i % 4) >=
		    sizeof(path)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			ret = -errno;
			fprintf(stderr, "stoker-bench: mkdir %s: %s\n", path, strerror(-ret));
			goto out;
		}
		snprintf(path, sizeof(path), "%s/part-%u/sample-%05u.bin", dir, i % 4, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			ret = -errno;
			fprintf(stderr, "stoker-bench: create %s: %s\n", path, strerror(-ret));
			goto out;
		}
		ret = bench_write_random(fd, path, size, seed * 0x100000001b3ull + i, buf, chunk);
		if (ret) {
			close(fd);
			goto out;
		}
		/* Dirty pages cannot be dropped: write them out now so that
		 * POSIX_FADV_DONTNEED before each run really makes it cold. */
		if (fsync(fd) < 0) {
			ret = -errno;
			close(fd);
			goto out;
		}
		close(fd);
	}
out:
	free(buf);
	return ret;
}
