/* SPDX-License-Identifier: MIT */
/*
 * stoker: the command line client of stokerd, for people and for scripts.
 *
 *   stoker [--socket PATH] ls [--manifest] [--zstd] DATASET_URI
 *   stoker [--socket PATH] cat [--zstd] URI...
 *   stoker [--socket PATH] warm [--manifest] [--zstd] DATASET_URI
 *   stoker [--socket PATH] stats [--json]
 *   stoker [--socket PATH] top [--interval S] [--once]
 *
 * Exit status: 0 success; 1 a runtime failure (the daemon could not be
 * reached, an open, get or warm failed, stdout could not be written); 2 a
 * usage error; 3 "warm" stopped because the daemon's RAM budget is full.
 *
 * Output meant for scripts (ls, cat, stats --json) goes to stdout and nothing
 * else is ever mixed into it; diagnostics and the warm progress line go to
 * stderr.  SIGPIPE is ignored so that a reader closing the pipe early (stoker
 * ls | head) ends the command quietly with status 1 instead of a signal, and
 * so that a daemon going away shows up as -EPIPE from the library.
 *
 * The printing of stats' counters (for people, or --json) and top's frames
 * are in cli_stats.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stoker.h"
#include "cli_int.h"

#define EXIT_USAGE     2
#define EXIT_WARM_FULL 3

/* "COMMAND URI" for messages: room for the longest URI the protocol carries. */
#define WHAT_MAX 4200

/*
 * A status poll is one round trip (~60 us), so polling often costs nothing
 * and the end of a warm is seen within 10 ms: a script timing `stoker warm`
 * measures the daemon, not our sleep.  The progress line is redrawn at most
 * every WARM_DRAW_S.
 */
#define WARM_POLL_NS (10 * 1000 * 1000L)
#define WARM_DRAW_S  0.1
/*
 * Polls in a row that may report STK_WARM_NONE after stk_warm() succeeded
 * before we conclude the daemon is not warming at all (the status request
 * can overtake the start of the warm; an endless wait helps no script).
 */
#define WARM_NONE_POLLS 500

/* What a usage error prints; --help prints help_text after it. */
static const char usage_text[] =
    "usage: stoker [--socket PATH] COMMAND [ARGS]\n"
    "       stoker --help | --version\n"
    "\n"
    "commands:\n"
    "  ls [--manifest] [--zstd] DATASET_URI\n"
    "                                print KEY<TAB>SIZE (bytes) for every object\n"
    "  cat [--zstd] URI...           write the objects' bytes to stdout\n"
    "  warm [--manifest] [--zstd] DATASET_URI\n"
    "                                fetch every object into the daemon's RAM cache\n"
    "  stats [--json]                print the daemon's and this client's counters\n"
    "  top [--interval S] [--once]   show the daemon, its clients and datasets live\n";

static const char help_text[] =
    "\n"
    "DATASET_URI is file:///dir/ (every regular file below dir), file:///dir/obj,\n"
    "or a plain absolute path; with --manifest it names a manifest file whose\n"
    "lines are \"URI [SIZE]\".\n"
    "\n"
    "--zstd serves objects named *.zst decompressed (STK_DS_ZSTD): keys drop the\n"
    "\".zst\" and sizes are the plain sizes (in a manifest, SIZE is the plain size).\n"
    "\n"
    "ls prints one line per object.  In keys, backslash, tab, newline, carriage\n"
    "return and every other control byte are escaped as \\\\, \\t, \\n, \\r and\n"
    "\\xNN, so a key can never break a line or a column; other bytes are printed\n"
    "as they are.\n"
    "\n"
    "warm shows its progress on stderr when stderr is a terminal, and prints one\n"
    "line on stdout when it ends.\n"
    "\n"
    "stats prints every counter of struct stk_stats (stoker.h) with its meaning,\n"
    "then each endpoint, client connection and dataset.  Stall times are the\n"
    "waits clients reported for their bytes (docs/stall.md); stall avoided is an\n"
    "estimate.  stats --json prints one object: every counter of struct\n"
    "stk_stats under its name (\"gets\", \"stall_ns\", \"stall_avoided_ns\", ...;\n"
    "times in ns, sizes in bytes; \"clients\" and \"datasets\" are counts), and\n"
    "  \"endpoints\":   [{endpoint, requests, retries, errors, bytes, busy_ns}]\n"
    "  \"per_client\":  one object per connection (this command's too), the\n"
    "                 fields of struct stk_daemon_client: pid, uid, id,\n"
    "                 connected_ns, open_datasets, pinned_bytes, waits, gets,\n"
    "                 hits, delivered_bytes, stall_ns, stall_fetch_ns,\n"
    "                 stall_delivery_ns, stall_avoided_ns, stall_avoided_model_ns,\n"
    "                 stall_unknown_gets\n"
    "  \"per_dataset\": one object per dataset, the fields of struct\n"
    "                 stk_daemon_dataset: id, users, objects, resident, inflight,\n"
    "                 failed, bytes, resident_bytes, the stall fields above,\n"
    "                 label (its --metrics-dataset name, or \"\") and uri (cut\n"
    "                 to 256 bytes)\n"
    "per_client's stall_ns add up to stall_ns until a client that waited\n"
    "disconnects, and per_dataset's until a dataset is forgotten (unused, with\n"
    "nothing cached).  The lists hold at most about 140 connections and 36 to\n"
    "130 datasets (newest first); compare their lengths with the counts.\n"
    "\n"
    "top clears the terminal and redraws every --interval seconds (default 1):\n"
    "the daemon's RAM, gets/s, MB/s delivered, hit ratio and stall over the\n"
    "interval, then one line per client (without top's own connection) and\n"
    "per dataset (its --metrics-dataset name, else the end of its URI).  Ctrl-C\n"
    "ends it.  When stdout is not a terminal, or with --once, it prints one\n"
    "frame, an interval after it starts, without escape codes, and exits.  It\n"
    "exits 1 when stokerd goes away.\n"
    "\n"
    "options:\n"
    "  --socket PATH  the daemon's socket (default: $STOKER_SOCKET, else\n"
    "                 " STK_DEFAULT_SOCKET "); may come before or after COMMAND\n"
    "  --help         print this help and exit\n"
    "  --version      print the version and exit\n"
    "\n"
    "environment:\n"
    "  STOKER_SOCKET   the daemon's socket when --socket is not given\n"
    "  STOKER_TIMEOUT  seconds (fractions allowed; 0 = never; default 30) to wait\n"
    "                  for a daemon that answers nothing at all before giving up\n"
    "\n"
    "exit status:\n"
    "  0  success (warm: every object is resident)\n"
    "  1  failure: daemon unreachable, an object or dataset could not be read,\n"
    "     warm: objects failed to fetch, or stdout could not be written\n"
    "  2  usage error\n"
    "  3  warm: stopped because the daemon's RAM budget is full (not every\n"
    "     object is resident)\n";

enum cmd_id {
	CMD_LS,
	CMD_CAT,
	CMD_WARM,
	CMD_STATS,
	CMD_TOP,
};

/* Sub-command options; each one is valid only for the commands in cmds. */
#define OPT_MANIFEST 0x1u
#define OPT_JSON     0x2u
#define OPT_INTERVAL 0x4u
#define OPT_ONCE     0x8u
#define OPT_ZSTD     0x10u

#define TOP_INTERVAL_MIN 0.05
#define TOP_INTERVAL_MAX 86400.0

struct cmd {
	const char *name;
	enum cmd_id id;
	unsigned opts; /* OPT_* this command accepts */
	size_t min_args;
	size_t max_args; /* SIZE_MAX: any number */
};

static const struct cmd cmds[] = {
	{ .name = "ls",
	  .id = CMD_LS,
	  .opts = OPT_MANIFEST | OPT_ZSTD,
	  .min_args = 1,
	  .max_args = 1 },
	{ .name = "cat", .id = CMD_CAT, .opts = OPT_ZSTD, .min_args = 1, .max_args = SIZE_MAX },
	{ .name = "warm",
	  .id = CMD_WARM,
	  .opts = OPT_MANIFEST | OPT_ZSTD,
	  .min_args = 1,
	  .max_args = 1 },
	{ .name = "stats", .id = CMD_STATS, .opts = OPT_JSON, .min_args = 0, .max_args = 0 },
	{ .name = "top",
	  .id = CMD_TOP,
	  .opts = OPT_INTERVAL | OPT_ONCE,
	  .min_args = 0,
	  .max_args = 0 },
};

struct cli {
	const char *socket; /* --socket, or NULL */
	const struct cmd *cmd;
	unsigned opts;	 /* OPT_* given */
	double interval; /* top --interval, seconds */
	char **args;	 /* positional arguments after the command */
	size_t nargs;
};

static void __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("stoker: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	fputs(usage_text, stderr);
	fputs("Try 'stoker --help' for more.\n", stderr);
	exit(EXIT_USAGE);
}

/*
 * Prints "stoker: WHAT: <stk_strerror>: <stk_errmsg>" for a failed library
 * call.  The detail is copied before anything else is asked of the library,
 * since it is only valid until this thread's next call into it.
 */
void cli_report(const char *what, int err)
{
	char detail[1024];

	snprintf(detail, sizeof(detail), "%s", stk_errmsg());
	if (detail[0])
		fprintf(stderr, "stoker: %s: %s: %s\n", what, stk_strerror(err), detail);
	else
		fprintf(stderr, "stoker: %s: %s\n", what, stk_strerror(err));
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* Parses top's --interval value: seconds, fractions allowed. Exits on a bad one. */
static double parse_interval(const char *v)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(v, &end);
	if (errno || end == v || *end || !(s >= TOP_INTERVAL_MIN && s <= TOP_INTERVAL_MAX))
		usage_error("--interval '%s' is not a number of seconds from %g to %g", v,
			    TOP_INTERVAL_MIN, TOP_INTERVAL_MAX);
	return s;
}

/*
 * Parses argv.  Global options may appear anywhere; sub-command options
 * anywhere after the command; "--" ends options.  Exits for --help,
 * --version and usage errors.  Positional arguments are collected in place
 * at the front of argv, which is ours to reorder.
 */
static void parse_args(int argc, char **argv, struct cli *cli)
{
	bool opts_done = false;
	size_t npos = 0;
	char **pos = argv + 1;

	memset(cli, 0, sizeof(*cli));
	cli->interval = 1.0;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		unsigned opt = 0;

		if (opts_done || a[0] != '-' || !a[1]) {
			if (!cli->cmd) {
				cli->cmd = find_cmd(a);
				if (!cli->cmd)
					usage_error("unknown command '%s'", a);
			} else {
				pos[npos++] = a;
			}
			continue;
		}
		if (!strcmp(a, "--")) {
			opts_done = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(ferror(stdout) || fflush(stdout) ? EXIT_FAILURE : EXIT_SUCCESS);
		} else if (!strcmp(a, "--version")) {
			printf("stoker %s\n", STOKER_VERSION);
			exit(ferror(stdout) || fflush(stdout) ? EXIT_FAILURE : EXIT_SUCCESS);
		} else if (!strcmp(a, "--socket")) {
			if (i + 1 >= argc)
				usage_error("--socket needs a PATH");
			cli->socket = argv[++i];
		} else if (!strncmp(a, "--socket=", 9)) {
			cli->socket = a + 9;
		} else if (!strcmp(a, "--manifest")) {
			opt = OPT_MANIFEST;
		} else if (!strcmp(a, "--zstd")) {
			opt = OPT_ZSTD;
		} else if (!strcmp(a, "--json")) {
			opt = OPT_JSON;
		} else if (!strcmp(a, "--once")) {
			opt = OPT_ONCE;
		} else if (!strcmp(a, "--interval")) {
			if (i + 1 >= argc)
				usage_error("--interval needs a number of seconds");
			opt = OPT_INTERVAL;
			cli->interval = parse_interval(argv[++i]);
		} else if (!strncmp(a, "--interval=", 11)) {
			opt = OPT_INTERVAL;
			cli->interval = parse_interval(a + 11);
		} else {
			usage_error("unknown option '%s'", a);
		}
		if (opt) {
			if (!cli->cmd)
				usage_error("%s must follow a command", a);
			if (!(cli->cmd->opts & opt))
				usage_error("%s does not take %s", cli->cmd->name, a);
			cli->opts |= opt;
		}
	}
	if (!cli->cmd)
		usage_error("no command given");
	if (cli->socket && !cli->socket[0])
		usage_error("--socket needs a non-empty PATH");
	if (npos < cli->cmd->min_args)
		usage_error("%s: missing %s", cli->cmd->name,
			    cli->cmd->id == CMD_CAT ? "URI" : "DATASET_URI");
	if (npos > cli->cmd->max_args)
		usage_error("%s: unexpected argument '%s'", cli->cmd->name,
			    pos[cli->cmd->max_args]);
	cli->args = pos;
	cli->nargs = npos;
}

/* The daemon's socket, as the library finds it, for messages. */
static const char *socket_path(const struct cli *cli)
{
	const char *path = cli->socket;

	if (!path) {
		path = getenv("STOKER_SOCKET");
		if (!path || !path[0])
			path = STK_DEFAULT_SOCKET;
	}
	return path;
}

static int connect_daemon(const struct cli *cli, struct stk_client **out)
{
	struct stk_connect_opts opts = { .opts_size = sizeof(opts), .socket_path = cli->socket };
	const char *path;
	char detail[1024];
	int err;

	err = stk_connect(&opts, out);
	if (!err)
		return 0;
	snprintf(detail, sizeof(detail), "%s", stk_errmsg());
	path = socket_path(cli);
	/*
	 * For no daemon there, the library's detail only repeats strerror.  A
	 * detail that names the socket (a timeout, EACCES from the socket's mode,
	 * another protocol version) is a whole sentence; any other (the daemon
	 * refusing this uid) is the daemon's reason.
	 */
	if (!detail[0] || err == -ENOENT || err == -ECONNREFUSED)
		fprintf(stderr, "stoker: cannot reach stokerd at %s: %s\n", path, strerror(-err));
	else if (strstr(detail, path))
		fprintf(stderr, "stoker: %s\n", detail);
	else
		fprintf(stderr, "stoker: cannot reach stokerd at %s: %s (%s)\n", path,
			strerror(-err), detail);
	return err;
}

/* Writes all of buf to fd. Returns 0 or -errno (-EPIPE when the reader left). */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Flushes stdout. Returns 0, or 1 after saying why (nothing when the reader left). */
int cli_finish_stdout(const char *what)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	if (errno != EPIPE)
		fprintf(stderr, "stoker: %s: stdout: %s\n", what, strerror(errno));
	return 1;
}

/*
 * Prints key with backslash and control bytes escaped (see help_text), so
 * that every object is one line of "KEY<TAB>SIZE".  Returns EOF on a write
 * error, else 0.
 */
static int put_key(const char *key)
{
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		int r;

		switch (*p) {
		case '\\':
			r = fputs("\\\\", stdout);
			break;
		case '\t':
			r = fputs("\\t", stdout);
			break;
		case '\n':
			r = fputs("\\n", stdout);
			break;
		case '\r':
			r = fputs("\\r", stdout);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				r = printf("\\x%02x", *p);
			else
				r = putchar(*p);
			break;
		}
		if (r < 0)
			return EOF;
	}
	return 0;
}

static unsigned ds_flags(const struct cli *cli)
{
	return ((cli->opts & OPT_MANIFEST) ? STK_DS_MANIFEST : 0) |
	       ((cli->opts & OPT_ZSTD) ? STK_DS_ZSTD : 0);
}

static int cmd_ls(struct stk_client *c, const struct cli *cli)
{
	const char *uri = cli->args[0];
	unsigned flags = ds_flags(cli);
	struct stk_dataset *ds;
	char what[WHAT_MAX];
	size_t n;
	int err;

	snprintf(what, sizeof(what), "ls %s", uri);
	err = stk_dataset_open(c, uri, flags, &ds);
	if (err) {
		cli_report(what, err);
		return EXIT_FAILURE;
	}
	n = stk_dataset_count(ds);
	for (size_t i = 0; i < n; i++) {
		const char *key;
		uint64_t size;

		err = stk_dataset_object(ds, i, &key, &size);
		if (err) {
			cli_report(what, err);
			stk_dataset_close(ds);
			return EXIT_FAILURE;
		}
		if (put_key(key) < 0 || printf("\t%" PRIu64 "\n", size) < 0)
			break;
	}
	stk_dataset_close(ds);
	return cli_finish_stdout("ls");
}

/*
 * Writes one object to stdout.  Returns 0; 1 after reporting an error; -EPIPE
 * when stdout's reader has gone (nothing more can be written, so the caller
 * stops).
 */
static int cat_one(struct stk_client *c, const char *uri, unsigned flags)
{
	struct stk_dataset *ds = NULL;
	struct stk_view view;
	char what[WHAT_MAX];
	size_t n;
	int err, ret = 1;

	snprintf(what, sizeof(what), "cat %s", uri);
	err = stk_dataset_open(c, uri, flags, &ds);
	if (err) {
		cli_report(what, err);
		return 1;
	}
	/*
	 * The library does not say whether the URI named a file or a directory,
	 * so a directory holding exactly one file is caught only when its URI
	 * ends in '/'.
	 */
	n = stk_dataset_count(ds);
	if (n != 1 || (uri[0] && uri[strlen(uri) - 1] == '/')) {
		fprintf(stderr, "stoker: cat: %s is a directory of %zu object%s; use stoker ls\n",
			uri, n, n == 1 ? "" : "s");
		goto out;
	}
	err = stk_get(ds, 0, &view);
	if (err) {
		cli_report(what, err);
		goto out;
	}
	err = view.size ? write_all(STDOUT_FILENO, view.data, view.size) : 0;
	stk_release(&view);
	if (err == -EPIPE) {
		ret = -EPIPE;
	} else if (err) {
		fprintf(stderr, "stoker: %s: stdout: %s\n", what, strerror(-err));
		ret = -EPIPE; /* stdout is unusable: stop as if the reader left */
	} else {
		ret = 0;
	}
out:
	stk_dataset_close(ds);
	return ret;
}

static int cmd_cat(struct stk_client *c, const struct cli *cli)
{
	int status = EXIT_SUCCESS;

	for (size_t i = 0; i < cli->nargs; i++) {
		int ret = cat_one(c, cli->args[i], ds_flags(cli));

		if (ret == -EPIPE)
			return EXIT_FAILURE;
		if (ret)
			status = EXIT_FAILURE;
	}
	return status;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ns };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Rewrites the progress line on stderr; *width is the length of the previous one. */
static void show_progress(const struct stk_dataset_status *st, double rate, int *width)
{
	char line[256];
	double pct;
	int len;

	if (st->bytes)
		pct = 100.0 * (double)st->resident_bytes / (double)st->bytes;
	else
		pct = st->objects ? 100.0 * st->resident / st->objects : 100.0;
	len = snprintf(line, sizeof(line),
		       "warm: %" PRIu32 "/%" PRIu32 " objects, %.1f/%.1f MiB, %.1f%%, %.1f MB/s",
		       st->resident, st->objects, (double)st->resident_bytes / MIB,
		       (double)st->bytes / MIB, pct, rate / 1e6);
	if (st->failed)
		len += snprintf(line + len, sizeof(line) - (size_t)len, ", %" PRIu32 " failed",
				st->failed);
	fprintf(stderr, "\r%s%*s", line, *width > len ? *width - len : 0, "");
	fflush(stderr);
	*width = len;
}

static void clear_progress(int width)
{
	if (width)
		fprintf(stderr, "\r%*s\r", width, "");
}

static int cmd_warm(struct stk_client *c, const struct cli *cli)
{
	const char *uri = cli->args[0];
	unsigned flags = ds_flags(cli);
	bool tty = isatty(STDERR_FILENO);
	struct stk_dataset_status st;
	struct stk_dataset *ds;
	uint64_t start_bytes = 0;
	int none_polls = 0, width = 0, status = EXIT_FAILURE;
	char what[WHAT_MAX], last_error[1024] = "";
	double t0, dt = 0, drawn = -1.0, rate;
	int err;

	snprintf(what, sizeof(what), "warm %s", uri);
	err = stk_dataset_open(c, uri, flags, &ds);
	if (err) {
		cli_report(what, err);
		return EXIT_FAILURE;
	}
	t0 = now_s();
	err = stk_dataset_status(ds, &st);
	if (err)
		goto fail;
	/* The rate counts only what this warm brought in. */
	start_bytes = st.resident_bytes;
	err = stk_warm(ds);
	if (err)
		goto fail;

	for (;;) {
		err = stk_dataset_status(ds, &st);
		if (err)
			goto fail;
		/* With failures, stk_errmsg() is the daemon's last one; it lasts until our next
		 * call. */
		if (st.failed)
			snprintf(last_error, sizeof(last_error), "%s", stk_errmsg());
		dt = now_s() - t0;
		/*
		 * The daemon may declare the budget full while the fetches it
		 * already started are still in flight; they will land, so wait
		 * for them and report what is really resident.
		 */
		if ((st.warm == STK_WARM_DONE || st.warm == STK_WARM_FULL) && !st.inflight)
			break;
		if (st.failed && !st.inflight)
			break;
		if (st.warm == STK_WARM_NONE && ++none_polls >= WARM_NONE_POLLS) {
			clear_progress(width);
			fprintf(
			    stderr,
			    "stoker: %s: stokerd reports no warm in progress for this dataset\n",
			    what);
			goto out;
		}
		if (tty && dt - drawn >= WARM_DRAW_S) {
			uint64_t got =
			    st.resident_bytes > start_bytes ? st.resident_bytes - start_bytes : 0;

			show_progress(&st, dt > 0 ? (double)got / dt : 0.0, &width);
			drawn = dt;
		}
		sleep_ns(WARM_POLL_NS);
	}
	clear_progress(width);

	rate = 0.0;
	if (dt > 0 && st.resident_bytes > start_bytes)
		rate = (double)(st.resident_bytes - start_bytes) / dt;

	/*
	 * Failures come first: the daemon may end a warm as DONE once every
	 * object is either resident or failed.
	 */
	if (st.failed) {
		fprintf(stderr,
			"stoker: %s: %" PRIu32 " of %" PRIu32 " objects failed to fetch (%" PRIu32
			" resident, %.1f of %.1f MiB%s); %s%s\n",
			what, st.failed, st.objects, st.resident, (double)st.resident_bytes / MIB,
			(double)st.bytes / MIB, st.warm == STK_WARM_FULL ? ", RAM budget full" : "",
			last_error[0] ? "last error: " : "stokerd's log says why", last_error);
		status = EXIT_FAILURE;
	} else if (st.warm == STK_WARM_DONE && st.resident >= st.objects) {
		if (st.resident_bytes > start_bytes)
			printf("warm: all %" PRIu32
			       " objects resident (%.1f MiB) in %.2f s, %.1f MB/s\n",
			       st.objects, (double)st.resident_bytes / MIB, dt, rate / 1e6);
		else
			printf("warm: all %" PRIu32 " objects resident (%.1f MiB) already\n",
			       st.objects, (double)st.resident_bytes / MIB);
		status = EXIT_SUCCESS;
	} else if (st.warm == STK_WARM_FULL) {
		printf("warm: RAM budget full: %" PRIu32 " of %" PRIu32
		       " objects resident (%.1f of %.1f MiB)\n",
		       st.resident, st.objects, (double)st.resident_bytes / MIB,
		       (double)st.bytes / MIB);
		status = EXIT_WARM_FULL;
	} else {
		/* DONE, and since then other clients' plans evicted some of it. */
		printf("warm: done in %.2f s, but only %" PRIu32 " of %" PRIu32
		       " objects are still resident (%.1f of %.1f MiB)\n",
		       dt, st.resident, st.objects, (double)st.resident_bytes / MIB,
		       (double)st.bytes / MIB);
		status = EXIT_SUCCESS;
	}
	if (cli_finish_stdout("warm"))
		status = EXIT_FAILURE;
	goto out;
fail:
	clear_progress(width);
	cli_report(what, err);
	status = EXIT_FAILURE;
out:
	stk_dataset_close(ds);
	return status;
}

/* As many connections and datasets as one reply can carry. */
#define STATS_LIST_MAX 512

static int cmd_stats(struct stk_client *c, const struct cli *cli)
{
	static struct stk_endpoint_stats ep[64];
	static struct stk_daemon_client cl[STATS_LIST_MAX];
	static struct stk_daemon_dataset ds[STATS_LIST_MAX];
	struct stk_stats st = { .size = sizeof(st) };
	struct cli_lists l = { .ep = ep, .cl = cl, .ds = ds };
	int err;

	err = stk_stats(c, &st);
	if (!err)
		err = stk_endpoint_stats(c, ep, 64, &l.nep);
	if (!err)
		err = stk_daemon_clients(c, cl, STATS_LIST_MAX, &l.ncl, &l.ncl_total);
	if (!err)
		err = stk_daemon_datasets(c, ds, STATS_LIST_MAX, &l.nds, &l.nds_total);
	if (err) {
		cli_report("stats", err);
		return EXIT_FAILURE;
	}
	l.nep = l.nep < 64 ? l.nep : 64;
	return (cli->opts & OPT_JSON) ? cli_stats_json(&st, &l) : cli_stats_human(&st, &l);
}

int main(int argc, char **argv)
{
	struct stk_client *c;
	struct cli cli;
	int status;

	parse_args(argc, argv, &cli);
	signal(SIGPIPE, SIG_IGN);
	if (connect_daemon(&cli, &c))
		return EXIT_FAILURE;

	switch (cli.cmd->id) {
	case CMD_LS:
		status = cmd_ls(c, &cli);
		break;
	case CMD_CAT:
		status = cmd_cat(c, &cli);
		break;
	case CMD_WARM:
		status = cmd_warm(c, &cli);
		break;
	case CMD_STATS:
		status = cmd_stats(c, &cli);
		break;
	case CMD_TOP:
		status = cli_top(c, socket_path(&cli), cli.interval, cli.opts & OPT_ONCE);
		break;
	default:
		status = EXIT_FAILURE;
		break;
	}
	stk_close(c);
	return status;
}
