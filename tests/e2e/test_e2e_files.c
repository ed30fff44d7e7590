/* SPDX-License-Identifier: MIT */
/*
 * What file:// may serve, against a hostile client (issue 7): nothing without
 * --allow-root, never stokerd's own credentials, never a FIFO, socket or
 * device (and none of them may stall a worker or the loop), never fewer or
 * more bytes than a manifest says, and no manifest that costs more than its
 * size to parse.
 *
 * Calls that would hang on a daemon with these holes run in forked children
 * (try_*), so that such a daemon fails the test within seconds instead of
 * hanging it until the timeout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef STOKERD_PATH
#error "build with -DSTOKERD_PATH=\"path/to/stokerd\""
#endif
#ifndef STOKER_CLI_PATH
#error "build with -DSTOKER_CLI_PATH=\"path/to/stoker\""
#endif

#define MSG_MAX	  600
#define TIMED_OUT 1000 /* an outcome's open_r when the child did not answer */
#define WAIT_S	  5    /* how long a child may take before it counts as hung */
#define QUICK_NS  1000000000ull

extern char **environ;

static void write_file(const char *path, uint64_t size, uint64_t seed)
{
	int r = e2x_write_file(path, size, seed);
	cr_assert_eq(r, 0, "write %s: %s", path, strerror(-r));
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* What a child saw. */
struct outcome {
	int open_r;	   /* stk_dataset_open's return, or TIMED_OUT */
	int get_r;	   /* stk_get's, when one was asked for and the open succeeded */
	uint64_t size;	   /* of the bytes a successful get gave */
	uint64_t hash;	   /* e2e_hash of them */
	uint64_t ns;	   /* how long the open and the get took */
	char msg[MSG_MAX]; /* stk_errmsg() of the call that failed */
};

struct op {
	pid_t pid;
	int fd; /* the read end of the child's pipe */
};

/*
 * Starts a child that connects to sock (as uid and gid, when uid is not 0),
 * opens uri with flags and, with index >= 0, gets that object, then writes
 * its outcome to a pipe.
 */
static struct op start_op(const char *sock, const char *uri, unsigned flags, long index, uid_t uid,
			  gid_t gid)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct outcome o;
		memset(&o, 0, sizeof(o));
		close(p[0]);
		if (uid &&
		    (setgroups(1, &gid) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))) {
			snprintf(o.msg, sizeof(o.msg), "cannot become %u:%u: %s", (unsigned)uid,
				 (unsigned)gid, strerror(errno));
			o.open_r = -errno;
			goto out;
		}
		struct stk_client *c;
		o.open_r = e2x_connect(sock, &c);
		if (o.open_r) {
			snprintf(o.msg, sizeof(o.msg), "connect: %s", stk_errmsg());
			goto out;
		}
		struct stk_dataset *sds;
		uint64_t t0 = e2x_now_ns();
		o.open_r = stk_dataset_open(c, uri, flags, &sds);
		if (o.open_r) {
			o.ns = e2x_now_ns() - t0;
			snprintf(o.msg, sizeof(o.msg), "%s", stk_errmsg());
			goto out;
		}
		if (index >= 0) {
			struct stk_view v;
			o.get_r = stk_get(sds, (size_t)index, &v);
			if (o.get_r) {
				snprintf(o.msg, sizeof(o.msg), "%s", stk_errmsg());
			} else {
				o.size = v.size;
				o.hash = e2e_hash(v.data, (size_t)v.size);
				stk_release(&v);
			}
		}
		o.ns = e2x_now_ns() - t0;
	out:
		if (write(p[1], &o, sizeof(o)) != (ssize_t)sizeof(o))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	return (struct op){ pid, p[0] };
}

/* Waits for a child started by start_op; a hung one is killed and reads as TIMED_OUT. */
static struct outcome finish_op(struct op op, uint64_t deadline_ns)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	uint64_t now = e2x_now_ns();
	int left = deadline_ns > now ? (int)((deadline_ns - now) / 1000000000ull) + 1 : 1;
	int st = e2x_wait_child(op.pid, left);
	if (st == -1) {
		o.open_r = TIMED_OUT;
		snprintf(o.msg, sizeof(o.msg), "no answer within %d s", WAIT_S);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		   read(op.fd, &o, sizeof(o)) != (ssize_t)sizeof(o)) {
		cr_assert_fail("a client child failed (status 0x%x)", st);
	}
	close(op.fd);
	return o;
}

static struct outcome try_op(const char *uri, unsigned flags, long index)
{
	struct op op = start_op(e2e_d.sock, uri, flags, index, 0, 0);
	return finish_op(op, e2x_now_ns() + WAIT_S * 1000000000ull);
}

/* Asserts that opening uri fails with err at once, with a message naming it and needle. */
static void open_refused(const char *uri, unsigned flags, int err, const char *needle)
{
	struct outcome o = try_op(uri, flags, -1);
	cr_assert_eq(o.open_r, err, "open %s: got %d (%s) '%s', want %d (%s)", uri, o.open_r,
		     o.open_r == TIMED_OUT ? "timed out" : stk_strerror(o.open_r), o.msg, err,
		     stk_strerror(err));
	cr_assert(strstr(o.msg, uri), "open %s: message '%s' does not name it", uri, o.msg);
	cr_assert(!needle || strstr(o.msg, needle), "open %s: message '%s' lacks '%s'", uri, o.msg,
		  needle);
	cr_assert_lt(o.ns, QUICK_NS, "open %s took %.3f s", uri, (double)o.ns / 1e9);
}

/* Asserts that getting object index of dataset uri fails with err at once, naming needles. */
static void get_refused(const char *uri, unsigned flags, long index, int err, const char *needle,
			const char *needle2)
{
	struct outcome o = try_op(uri, flags, index);
	cr_assert_eq(o.open_r, 0, "open %s: %d (%s) '%s'", uri, o.open_r,
		     o.open_r == TIMED_OUT ? "timed out" : stk_strerror(o.open_r), o.msg);
	cr_assert_eq(o.get_r, err, "get %s #%ld: got %d (%s) '%s', want %d (%s)", uri, index,
		     o.get_r, stk_strerror(o.get_r), o.msg, err, stk_strerror(err));
	cr_assert(!needle || strstr(o.msg, needle), "get %s #%ld: message '%s' lacks '%s'", uri,
		  index, o.msg, needle);
	cr_assert(!needle2 || strstr(o.msg, needle2), "get %s #%ld: message '%s' lacks '%s'", uri,
		  index, o.msg, needle2);
	cr_assert_lt(o.ns, QUICK_NS, "get %s #%ld took %.3f s", uri, index, (double)o.ns / 1e9);
}

/* Asserts that object index of dataset uri reads as the file at path, at once. */
static void get_ok(const char *uri, unsigned flags, long index, const char *path)
{
	uint64_t hash, size;
	cr_assert_eq(e2x_file_hash(path, &hash, &size), 0, "%s", path);
	struct outcome o = try_op(uri, flags, index);
	cr_assert_eq(o.open_r, 0, "open %s: %d '%s'", uri, o.open_r, o.msg);
	cr_assert_eq(o.get_r, 0, "get %s #%ld: %d (%s) '%s'", uri, index, o.get_r,
		     stk_strerror(o.get_r), o.msg);
	cr_assert(o.size == size && o.hash == hash, "get %s #%ld: %llu bytes, want %llu", uri,
		  index, (unsigned long long)o.size, (unsigned long long)size);
	cr_assert_lt(o.ns, QUICK_NS, "get %s #%ld took %.3f s", uri, index, (double)o.ns / 1e9);
}

/*
 * Starts stokerd like e2e_daemon_start but with exactly the arguments given
 * after the socket (no --allow-root), and as uid:gid when uid is not 0.
 */
static void daemon_start_raw(const char *const *extra, uid_t uid, gid_t gid)
{
	const char *argv[32];
	size_t n = 0;
	argv[n++] = STOKERD_PATH;
	argv[n++] = "--foreground";
	argv[n++] = "--socket";
	argv[n++] = e2e_d.sock;
	argv[n++] = "--log-level";
	argv[n++] = "warn";
	argv[n++] = "--ram";
	argv[n++] = "64M";
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	size_t ne = 0, k = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 1, sizeof(*envp));
	cr_assert_not_null(envp);
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "STOKER_", 7))
			envp[k++] = environ[i];

	int logfd = open(e2e_d.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(logfd, 0, "%s: %s", e2e_d.log, strerror(errno));
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (uid &&
		    (setgroups(1, &gid) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))) {
			dprintf(logfd, "test: cannot become %u:%u: %s\n", (unsigned)uid,
				(unsigned)gid, strerror(errno));
			_exit(127);
		}
		/* After the uid change, which clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		closefrom(3);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(STOKERD_PATH, (char *const *)argv, envp);
		dprintf(2, "test: exec %s: %s\n", STOKERD_PATH, strerror(errno));
		_exit(127);
	}
	close(logfd);
	free(envp);
	e2e_d.pid = pid;
	uint64_t deadline = e2x_now_ns() + 20 * 1000000000ull;
	for (;;) {
		struct stk_client *c;
		if (e2x_connect(e2e_d.sock, &c) == 0) {
			stk_close(c);
			return;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			e2e_d.pid = 0;
			e2e_dump_log(&e2e_d);
			cr_assert_fail("stokerd exited before it listened (status 0x%x)", st);
		}
		cr_assert_lt(e2x_now_ns(), deadline, "stokerd did not listen on %s", e2e_d.sock);
		e2x_sleep_ms(10);
	}
}

Test(e2e_files, no_allow_root_serves_nothing, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	char p[512], uri[600];
	snprintf(p, sizeof(p), "%s/a.bin", e2e_d.root);
	write_file(p, 1000, 1);
	daemon_start_raw(NULL, 0, 0);
	snprintf(uri, sizeof(uri), "file://%s", p);
	open_refused(uri, 0, -EACCES, "file:// is disabled (no --allow-root given)");
	open_refused("file:///etc/passwd", 0, -EACCES, "file:// is disabled");
	snprintf(uri, sizeof(uri), "file://%s", e2e_d.root);
	open_refused(uri, 0, -EACCES, "file:// is disabled");
	cr_assert(e2e_log_contains(&e2e_d, "file:// is disabled (no --allow-root given)"),
		  "stokerd did not say at start that file:// is off");
	e2e_daemon_stop(&e2e_d);
}

#define DAEMON_UID 65534 /* nobody */
#define GROUP_GID  4242	 /* a group the daemon and the other user share */
#define OTHER_UID  4243

/*
 * Issue 7's setting: stokerd runs as a plain user with no --allow-root, and
 * another user of its group, whom its socket lets in, asks for a file only
 * the daemon's user may read.  It must not be served.
 */
Test(e2e_files, non_root_daemon_has_no_default_root, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	char run[256], home[256], secret[300], uri[400];
	/* The daemon's user must reach its socket's directory and its log. */
	cr_assert_eq(chmod(e2e_d.dir, 0711), 0);
	snprintf(run, sizeof(run), "%s/run", e2e_d.dir);
	cr_assert_eq(mkdir(run, 0770), 0);
	cr_assert_eq(chown(run, DAEMON_UID, GROUP_GID), 0, "chown: %s", strerror(errno));
	cr_assert_lt(snprintf(e2e_d.sock, sizeof(e2e_d.sock), "%s/stokerd.sock", run),
		     (int)sizeof(e2e_d.sock));
	/* A file of the daemon's user that nobody else may read. */
	snprintf(home, sizeof(home), "%s/home", e2e_d.dir);
	cr_assert_eq(mkdir(home, 0700), 0);
	snprintf(secret, sizeof(secret), "%s/secret.txt", home);
	write_text(secret, "the daemon user's private key\n");
	cr_assert_eq(chmod(secret, 0600), 0);
	cr_assert_eq(chown(secret, DAEMON_UID, DAEMON_UID), 0);
	cr_assert_eq(chown(home, DAEMON_UID, DAEMON_UID), 0);

	/* Its own HOME, where it finds (no) AWS files it may read. */
	cr_assert_eq(setenv("HOME", home, 1), 0);
	daemon_start_raw(NULL, DAEMON_UID, GROUP_GID);
	char status[64];
	snprintf(status, sizeof(status), "/proc/%d/status", (int)e2e_d.pid);
	FILE *f = fopen(status, "r");
	cr_assert_not_null(f);
	char line[256];
	bool uid_ok = false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4))
			uid_ok = strtoul(line + 4, NULL, 10) == DAEMON_UID;
	fclose(f);
	cr_assert(uid_ok, "stokerd does not run as uid %d", DAEMON_UID);

	/* The other user can neither read the file nor ask stokerd for it. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		gid_t g = GROUP_GID;
		if (setgroups(1, &g) || setresgid(g, g, g) ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID))
			_exit(2);
		_exit(open(secret, O_RDONLY) < 0 && errno == EACCES ? 0 : 1);
	}
	cr_assert_eq(e2x_wait_child(pid, 10), 0, "uid %d can read %s itself", OTHER_UID, secret);
	snprintf(uri, sizeof(uri), "file://%s", secret);
	struct op op = start_op(e2e_d.sock, uri, 0, 0, OTHER_UID, GROUP_GID);
	struct outcome o = finish_op(op, e2x_now_ns() + WAIT_S * 1000000000ull);
	cr_assert_neq(o.open_r, 0, "uid %d read %s (%llu bytes) through stokerd", OTHER_UID, secret,
		      (unsigned long long)o.size);
	cr_assert_eq(o.open_r, -EACCES, "open %s: %d (%s) '%s'", uri, o.open_r,
		     stk_strerror(o.open_r), o.msg);
	cr_assert(strstr(o.msg, "file:// is disabled (no --allow-root given)"), "'%s'", o.msg);
	e2e_daemon_stop(&e2e_d);
}

Test(e2e_files, credentials_files_are_never_served, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	const char *R = e2e_d.root;
	char dir[256], creds[300], conf[300], p[512], uri[600], text[2048];
	snprintf(dir, sizeof(dir), "%s/d", R);
	cr_assert_eq(e2x_mkdirs(dir), 0);
	snprintf(creds, sizeof(creds), "%s/credentials", dir);
	write_text(creds, "[default]\naws_access_key_id = AKIDFAKEFORTEST\n"
			  "aws_secret_access_key = not-a-real-secret\n");
	snprintf(conf, sizeof(conf), "%s/aws-config", dir);
	write_text(conf, "[default]\nregion = eu-west-3\n");
	snprintf(p, sizeof(p), "%s/ok.bin", dir);
	write_file(p, 5000, 3);
	/* Other names for the same files: a hard link, and a symlink beneath the root. */
	snprintf(p, sizeof(p), "%s/hard", dir);
	cr_assert_eq(link(creds, p), 0);
	snprintf(p, sizeof(p), "%s/sym", R);
	cr_assert_eq(symlink("d/credentials", p), 0);
	cr_assert_eq(setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1), 0);
	cr_assert_eq(setenv("AWS_CONFIG_FILE", conf, 1), 0);
	e2e_daemon_start(&e2e_d, NULL);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");

	/* As a dataset, a manifest, a manifest's entry (sized or not): refused. */
	snprintf(uri, sizeof(uri), "file://%s", creds);
	open_refused(uri, 0, -EACCES, "is stokerd's credentials file");
	open_refused(uri, STK_DS_MANIFEST, -EACCES, "is stokerd's credentials file");
	snprintf(uri, sizeof(uri), "file://%s", conf);
	open_refused(uri, 0, -EACCES, "is stokerd's credentials file");
	snprintf(uri, sizeof(uri), "file://%s/hard", dir);
	open_refused(uri, 0, -EACCES, "is stokerd's credentials file");
	snprintf(uri, sizeof(uri), "file://%s/sym", R);
	open_refused(uri, 0, -EACCES, "is stokerd's credentials file");

	snprintf(p, sizeof(p), "%s/unsized.manifest", R);
	snprintf(text, sizeof(text), "file://%s/ok.bin\nfile://%s\n", dir, creds);
	write_text(p, text);
	snprintf(uri, sizeof(uri), "file://%s", p);
	struct outcome o = try_op(uri, STK_DS_MANIFEST, -1);
	cr_assert_eq(o.open_r, -EACCES, "open %s: %d '%s'", uri, o.open_r, o.msg);
	cr_assert(strstr(o.msg, creds) && strstr(o.msg, "credentials file"), "'%s'", o.msg);

	snprintf(p, sizeof(p), "%s/sized.manifest", R);
	snprintf(text, sizeof(text), "file://%s/ok.bin 5000\nfile://%s 100\nfile://%s/hard 100\n",
		 dir, creds, dir);
	write_text(p, text);
	snprintf(uri, sizeof(uri), "file://%s", p);
	snprintf(text, sizeof(text), "file://%s", creds);
	get_refused(uri, STK_DS_MANIFEST, 1, -EACCES, text, "is stokerd's credentials file");
	get_refused(uri, STK_DS_MANIFEST, 2, -EACCES, "hard", "is stokerd's credentials file");
	snprintf(p, sizeof(p), "%s/ok.bin", dir);
	get_ok(uri, STK_DS_MANIFEST, 0, p);

	/* A listing leaves them out without a word, and serves the rest. */
	struct stk_client *c = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/", dir);
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s", uri, stk_errmsg());
	cr_assert_eq(stk_dataset_count(sds), 1, "%s lists %zu objects, want only ok.bin", uri,
		     stk_dataset_count(sds));
	const char *key;
	cr_assert_eq(stk_dataset_object(sds, 0, &key, NULL), 0);
	cr_assert_str_eq(key, "ok.bin");
	stk_dataset_close(sds);
	stk_close(c);
	char *out, *err;
	int st =
	    e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "ls", uri, NULL },
		    &out, NULL, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stoker ls %s: %s", uri, err);
	cr_assert(strstr(out, "ok.bin"), "stoker ls %s: '%s'", uri, out);
	cr_assert(!strstr(out, "credentials") && !strstr(out, "hard") && !strstr(out, "aws-config"),
		  "stoker ls %s shows a credentials file: '%s'", uri, out);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
}

/* Makes a FIFO, a bound Unix socket, a character and a block device named in dir. */
static int make_specials(const char *dir)
{
	char p[512];
	cr_assert_eq(e2x_mkdirs(dir), 0);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	cr_assert_eq(mkfifo(p, 0644), 0, "mkfifo %s: %s", p, strerror(errno));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	cr_assert_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir),
		     (int)sizeof(sa.sun_path));
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", sa.sun_path,
		     strerror(errno));
	cr_assert_eq(listen(s, 1), 0);
	snprintf(p, sizeof(p), "%s/chr", dir);
	cr_assert_eq(mknod(p, S_IFCHR | 0644, makedev(1, 3)), 0, "mknod %s: %s", p,
		     strerror(errno));
	snprintf(p, sizeof(p), "%s/blk", dir);
	cr_assert_eq(mknod(p, S_IFBLK | 0644, makedev(7, 0)), 0, "mknod %s: %s", p,
		     strerror(errno));
	return s;
}

static const struct {
	const char *name, *what;
} specials[] = {
	{ "fifo", "is a FIFO, not a regular file" },
	{ "sock", "is a socket, not a regular file" },
	{ "chr", "is a character device, not a regular file" },
	{ "blk", "is a block device, not a regular file" },
};
#define NSPECIALS (sizeof(specials) / sizeof(specials[0]))

/* Each kind of special file, every way a client can name it; extra: the daemon's flags. */
static void specials_refused(const char *const *extra)
{
	const char *R = e2e_d.root;
	char dir[256], p[512], uri[600], text[1024], sized[4096];
	snprintf(dir, sizeof(dir), "%s/sp", R);
	int sock = make_specials(dir);
	snprintf(p, sizeof(p), "%s/ok.bin", dir);
	write_file(p, 70000, 5);
	e2e_daemon_start(&e2e_d, extra);

	size_t tl = 0;
	for (size_t i = 0; i < NSPECIALS; i++) {
		/* As a dataset, as a manifest, as a manifest's unsized entry (stat). */
		snprintf(uri, sizeof(uri), "file://%s/%s", dir, specials[i].name);
		open_refused(uri, 0, -EINVAL, specials[i].what);
		open_refused(uri, STK_DS_MANIFEST, -EINVAL, specials[i].what);
		snprintf(p, sizeof(p), "%s/unsized-%s.manifest", R, specials[i].name);
		snprintf(text, sizeof(text), "file://%s/ok.bin\nfile://%s/%s\n", dir, dir,
			 specials[i].name);
		write_text(p, text);
		snprintf(uri, sizeof(uri), "file://%s", p);
		struct outcome o = try_op(uri, STK_DS_MANIFEST, -1);
		cr_assert_eq(o.open_r, -EINVAL, "open %s: %d '%s'", uri, o.open_r, o.msg);
		cr_assert(strstr(o.msg, specials[i].what), "open %s: '%s'", uri, o.msg);
		cr_assert_lt(o.ns, QUICK_NS);
		tl += (size_t)snprintf(sized + tl, sizeof(sized) - tl, "file://%s/%s 4096\n", dir,
				       specials[i].name);
	}
	/* As a manifest's sized entries: the fetch refuses them. */
	snprintf(sized + tl, sizeof(sized) - tl, "file://%s/ok.bin 70000\n", dir);
	snprintf(p, sizeof(p), "%s/sized.manifest", R);
	write_text(p, sized);
	snprintf(uri, sizeof(uri), "file://%s", p);
	for (size_t i = 0; i < NSPECIALS; i++) {
		char name[300];
		snprintf(name, sizeof(name), "file://%s/%s", dir, specials[i].name);
		get_refused(uri, STK_DS_MANIFEST, (long)i, -EINVAL, name, specials[i].what);
	}
	snprintf(p, sizeof(p), "%s/ok.bin", dir);
	get_ok(uri, STK_DS_MANIFEST, NSPECIALS, p);

	/* A listing skips them. */
	snprintf(uri, sizeof(uri), "file://%s/", dir);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, uri, 0, &sds), 0, "%s", stk_errmsg());
	cr_assert_eq(stk_dataset_count(sds), 1);
	stk_dataset_close(sds);

	/*
	 * A listed file that becomes a FIFO before it was fetched (ok.bin above
	 * was: one object, cached once for both datasets) is refused by the
	 * fetch: this client holds the listing open, and another, sharing it,
	 * gets the object.
	 */
	snprintf(p, sizeof(p), "%s/late/ok.bin", R);
	cr_assert_eq(e2x_write_file(p, 100, 7), 0);
	snprintf(uri, sizeof(uri), "file://%s/late/", R);
	cr_assert_eq(stk_dataset_open(c, uri, 0, &sds), 0, "%s", stk_errmsg());
	cr_assert_eq(stk_dataset_count(sds), 1);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(mkfifo(p, 0644), 0);
	get_refused(uri, 0, 0, -EINVAL, "ok.bin", "is a FIFO, not a regular file");
	stk_dataset_close(sds);
	stk_close(c);
	close(sock);
	e2e_daemon_stop(&e2e_d);
}

Test(e2e_files, fifos_sockets_devices_are_refused_at_once, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	specials_refused(NULL);
}

/* The loop's thread pool opens in a blocking syscall where io_uring may not. */
Test(e2e_files, fifos_sockets_devices_are_refused_without_io_uring, .init = e2e_init,
     .fini = e2e_fini, .timeout = 60)
{
	specials_refused((const char *[]){ "--no-uring", NULL });
}

/*
 * Issue 7: four `stoker ls file://R/fifo` parked every worker in open() for
 * good, and SIGTERM never completed.  Eight at once, each spelled differently
 * so that none waits on another's listing, must all fail at once and leave
 * the daemon serving and able to stop.
 */
Test(e2e_files, fifo_storm_leaves_the_daemon_serving, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	const char *R = e2e_d.root;
	char p[512], uri[8][600];
	snprintf(p, sizeof(p), "%s/fifo", R);
	cr_assert_eq(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/ok.bin", R);
	write_file(p, 300000, 9);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--workers", "4", NULL });
	static const char *const spell[8] = { "/fifo",	  "/./fifo",  "//fifo",	 "/././fifo",
					      "/.//fifo", "//./fifo", "///fifo", "/./././fifo" };
	struct op ops[8];
	for (int i = 0; i < 8; i++) {
		snprintf(uri[i], sizeof(uri[i]), "file://%s%s", R, spell[i]);
		ops[i] = start_op(e2e_d.sock, uri[i], 0, -1, 0, 0);
	}
	uint64_t deadline = e2x_now_ns() + WAIT_S * 1000000000ull;
	struct outcome o[8];
	for (int i = 0; i < 8; i++)
		o[i] = finish_op(ops[i], deadline);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(o[i].open_r, -EINVAL, "open %s: %d '%s'", uri[i], o[i].open_r,
			     o[i].msg);
		cr_assert(strstr(o[i].msg, "is a FIFO"), "open %s: '%s'", uri[i], o[i].msg);
		cr_assert_lt(o[i].ns, QUICK_NS, "open %s took %.3f s", uri[i],
			     (double)o[i].ns / 1e9);
	}
	char okuri[600];
	snprintf(okuri, sizeof(okuri), "file://%s/ok.bin", R);
	get_ok(okuri, 0, 0, p);
	e2e_daemon_stop_timeout(&e2e_d, 10);
}

/* Issue 7: a manifest's size smaller than the file served its first bytes, silently. */
Test(e2e_files, a_size_that_differs_from_the_file_is_an_error, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	const char *R = e2e_d.root;
	char big[300], p[512], uri[600], text[1024], want[400];
	snprintf(big, sizeof(big), "%s/big.bin", R);
	write_file(big, 5000, 11);
	e2e_daemon_start(&e2e_d, NULL);
	static const unsigned listed[] = { 1000, 4999, 5001, 9000 };
	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
		snprintf(p, sizeof(p), "%s/m%zu.manifest", R, i);
		snprintf(text, sizeof(text), "# wrong size\nfile://%s %u\n", big, listed[i]);
		write_text(p, text);
		snprintf(uri, sizeof(uri), "file://%s", p);
		snprintf(want, sizeof(want), "is 5000 bytes, listed as %u", listed[i]);
		snprintf(text, sizeof(text), "file://%s", big);
		get_refused(uri, STK_DS_MANIFEST, 0, -EIO, text, want);
	}
	snprintf(p, sizeof(p), "%s/right.manifest", R);
	snprintf(text, sizeof(text), "file://%s 5000\n", big);
	write_text(p, text);
	snprintf(uri, sizeof(uri), "file://%s", p);
	get_ok(uri, STK_DS_MANIFEST, 0, big);
	e2e_daemon_stop(&e2e_d);
}

Test(e2e_files, manifests_are_bounded, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	const char *R = e2e_d.root;
	char p[512], uri[600], text[1024];
	snprintf(p, sizeof(p), "%s/fifo.manifest", R);
	cr_assert_eq(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/zero.manifest", R);
	cr_assert_eq(mknod(p, S_IFCHR | 0644, makedev(1, 5)), 0, "mknod: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/huge.manifest", R);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)(257 * E2E_MIB)), 0); /* sparse */
	close(fd);
	snprintf(p, sizeof(p), "%s/a.bin", R);
	write_file(p, 10, 1);
	snprintf(p, sizeof(p), "%s/dup.manifest", R);
	snprintf(text, sizeof(text), "file://%s/a.bin 10\n# again:\nfile://%s/a.bin\n", R, R);
	write_text(p, text);
	e2e_daemon_start(&e2e_d, NULL);

	snprintf(uri, sizeof(uri), "file://%s/fifo.manifest", R);
	open_refused(uri, STK_DS_MANIFEST, -EINVAL, "is a FIFO, not a regular file");
	snprintf(uri, sizeof(uri), "file://%s/zero.manifest", R);
	open_refused(uri, STK_DS_MANIFEST, -EINVAL, "is a character device, not a regular file");
	snprintf(uri, sizeof(uri), "file://%s/huge.manifest", R);
	open_refused(uri, STK_DS_MANIFEST, -EFBIG, "268435456 bytes (256 MiB)");
	snprintf(uri, sizeof(uri), "file://%s/dup.manifest", R);
	snprintf(text, sizeof(text), "line 3: file://%s/a.bin repeats line 1", R);
	open_refused(uri, STK_DS_MANIFEST, -EINVAL, text);
	e2e_daemon_stop(&e2e_d);
}

/*
 * Opens are O_NONBLOCK.  Kernels whose io_uring turns that into a no-wait
 * read on a regular file (the 5.x series) answer a buffered read of pages not
 * in memory -EAGAIN, for ever, so the fetch must clear it; a file just
 * dropped from the page cache shows it there.  Newer kernels punt such a read
 * to a worker whatever the flag, and there this only checks a cold read.
 */
Test(e2e_files, cold_files_read_after_a_nonblocking_open, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	char p[512], uri[600];
	snprintf(p, sizeof(p), "%s/cold.bin", e2e_d.root);
	write_file(p, 8 * E2E_MIB + 123, 13);
	uint64_t hash, size;
	cr_assert_eq(e2x_file_hash(p, &hash, &size), 0);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--no-direct", NULL });
	int fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fdatasync(fd), 0);
	cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	snprintf(uri, sizeof(uri), "file://%s", p);
	struct outcome o = try_op(uri, 0, 0);
	cr_assert_eq(o.open_r, 0, "open %s: %d '%s'", uri, o.open_r, o.msg);
	cr_assert_eq(o.get_r, 0, "get %s: %d (%s) '%s'", uri, o.get_r, stk_strerror(o.get_r),
		     o.msg);
	cr_assert(o.size == size && o.hash == hash, "get %s: %llu bytes, want %llu", uri,
		  (unsigned long long)o.size, (unsigned long long)size);
	e2e_daemon_stop(&e2e_d);
}
