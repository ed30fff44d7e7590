/* SPDX-License-Identifier: MIT */
/*
 * stokerd's configuration: --help, and every setting from its environment
 * variable, then from its flag (which wins).  One apply() serves both, so a
 * flag and its twin cannot mean different things; scripts/flags-table.py
 * checks --help against this file (deploy_flags_table).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "stoker.h"
#include "transports/transport.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: stokerd [options]\n"
	    "Streams dataset objects into a RAM cache ahead of need and hands them to\n"
	    "training processes over a Unix socket.\n\n"
	    "  -s, --socket PATH         control socket (STOKER_SOCKET; default %s)\n"
	    "  -m, --ram SIZE            RAM budget, e.g. 4G (STOKER_RAM; default 25%% of memory)\n"
	    "  -r, --allow-root DIR      serve file:// only below DIR; repeatable\n"
	    "                            (STOKER_ALLOW_ROOT, colon-separated). With none, no\n"
	    "                            file:// is served. stokerd's own credentials files are\n"
	    "                            never served, even below a root\n"
	    "  -l, --log-level LEVEL     error, warn, info or debug (STOKER_LOG_LEVEL; info)\n"
	    "      --log-format FORMAT   text or json: one event per line on stderr, secrets\n"
	    "                            redacted (STOKER_LOG_FORMAT; text; docs/logging.md)\n"
	    "  -f, --foreground          stay in the foreground (STOKER_FOREGROUND=1)\n"
	    "      --hugetlb             RAM segments on hugetlb pages, which the operator must\n"
	    "                            have reserved (vm.nr_hugepages; STOKER_HUGETLB=1)\n"
	    "      --prefault            commit the RAM budget at start: populate every page\n"
	    "                            before serving, so ingest never pays for first touch\n"
	    "                            (STOKER_PREFAULT=1)\n"
	    "      --nvme-dir DIR        tier 1: keep on this local disk what does not fit in\n"
	    "                            RAM, placed by next use; kept across restarts\n"
	    "                            (STOKER_NVME_DIR; the directory must be stokerd's alone)\n"
	    "      --nvme SIZE           tier 1's disk budget, metadata included, e.g. 200G\n"
	    "                            (STOKER_NVME; required with --nvme-dir)\n"
	    "      --nvme-compress LEVEL  zstd level of tier-1 copies (STOKER_NVME_COMPRESS; 0)\n"
	    "      --max-inflight N      objects prefetched at once (STOKER_MAX_INFLIGHT; 64)\n"
	    "      --workers N           worker threads (STOKER_WORKERS; 4)\n"
	    "      --no-uring            use poll(2) and threads instead of io_uring\n"
	    "                            (STOKER_NO_URING=1)\n"
	    "      --no-direct           never read files with O_DIRECT (STOKER_NO_DIRECT=1)\n"
	    "      --no-follow           no prefetch for clients without a plan beyond what\n"
	    "                            they warm: their gets' stream is not followed\n"
	    "                            (STOKER_NO_FOLLOW=1)\n"
	    "      --no-fast-gets        no resident tables: every get of a resident object\n"
	    "                            is a round trip to the daemon (STOKER_NO_FAST_GETS=1)\n"
	    "      --emulate-latency MS  EMULATION for demos: add MS before each file:// object\n"
	    "                            (STOKER_EMULATE_LATENCY_MS)\n"
	    "      --emulate-bandwidth MBPS  EMULATION: cap file:// reads at MBPS MB/s in all\n"
	    "                            (STOKER_EMULATE_BANDWIDTH)\n"
	    "      --part-size SIZE      http/s3: smallest ranged GET; an object is split only\n"
	    "                            while connections are idle (STOKER_PART_SIZE; 8M)\n"
	    "      --http-max-conns N    http/s3: requests in flight per endpoint\n"
	    "                            (STOKER_HTTP_MAX_CONNS; 64)\n"
	    "      --http-threads N      http/s3: transfer threads, each with its own loop\n"
	    "                            (STOKER_HTTP_THREADS; CPUs, at most 4)\n"
	    "      --retries N           http/s3: retries of a failed request, with backoff\n"
	    "                            (STOKER_RETRIES; 5)\n"
	    "      --http-stall-timeout SECONDS  http/s3: a request that moves under 1 KiB/s\n"
	    "                            this long, or does not connect within it and 10 s,\n"
	    "                            fails and is retried (STOKER_HTTP_STALL_TIMEOUT; 30)\n"
	    "      --insecure            http/s3: do not verify TLS certificates\n"
	    "                            (STOKER_INSECURE=1)\n"
	    "      --s3-endpoint URL     s3: endpoint, e.g. http://127.0.0.1:9000\n"
	    "                            (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; default AWS)\n"
	    "      --s3-region REGION    s3: region (AWS_REGION, AWS_DEFAULT_REGION, "
	    "~/.aws/config)\n"
	    "      --s3-addressing MODE  s3: path, virtual or auto (STOKER_S3_ADDRESSING; auto:\n"
	    "                            virtual-hosted on AWS, path-style on a custom endpoint)\n"
	    "      --allow-host HOST[:PORT]  http/s3: reach only these hosts; repeatable\n"
	    "                            (STOKER_ALLOW_HOST, comma-separated). Without it any\n"
	    "                            host but link-local and cloud metadata addresses, which\n"
	    "                            are reached only when listed here\n"
	    "  Limits per client connection (past them that client gets an error):\n"
	    "      --client-max-pinned SIZE  bytes held by unreleased gets\n"
	    "                            (STOKER_CLIENT_MAX_PINNED; default half the RAM budget)\n"
	    "      --client-max-plan N   plan entries over all its datasets\n"
	    "                            (STOKER_CLIENT_MAX_PLAN; 16777216)\n"
	    "      --client-max-datasets N  open datasets (STOKER_CLIENT_MAX_DATASETS; 256)\n"
	    "      --client-max-requests N  requests waiting at once (STOKER_CLIENT_MAX_REQUESTS;\n"
	    "                            4096)\n"
	    "      --pin-wait SECONDS    a get fails when clients' pins leave no room for it\n"
	    "                            this long (STOKER_PIN_WAIT; 10)\n"
	    "      --dataset-grace SECONDS  a dataset no client has open and with nothing\n"
	    "                            cached is forgotten after this long\n"
	    "                            (STOKER_DATASET_GRACE; 60)\n"
	    "      --isolate uid|gid|none  trust domains: clients of different uids (gids)\n"
	    "                            never share a RAM segment, so can never read each\n"
	    "                            other's cached bytes; none shares everything\n"
	    "                            (STOKER_ISOLATE; uid)\n"
	    "      --allow-uid UID[,UID...]  who may connect: root, stokerd's uid, these uids\n"
	    "                            (names or numbers) and --allow-gid's; repeatable\n"
	    "                            (STOKER_ALLOW_UID, comma-separated; default root,\n"
	    "                            stokerd's uid and stokerd's gid)\n"
	    "      --allow-gid GID[,GID...]  who may connect: also peers with one of these\n"
	    "                            gids, primary or supplementary. With either flag,\n"
	    "                            stokerd's gid admits no one unless listed; repeatable\n"
	    "                            (STOKER_ALLOW_GID, comma-separated; default none)\n"
	    "      --seccomp             allow only the system calls stokerd needs; any other\n"
	    "                            kills it with SIGSYS, see docs/security.md\n"
	    "                            (STOKER_SECCOMP=1)\n"
	    "  Observability:\n"
	    "      --metrics HOST:PORT|off  serve /metrics (Prometheus), /healthz and /readyz\n"
	    "                            (STOKER_METRICS; 127.0.0.1:9464; port 0: any free one)\n"
	    "      --metrics-dataset NAME=PREFIX  count datasets whose URI starts with PREFIX\n"
	    "                            under dataset=\"NAME\" in metrics; repeatable\n"
	    "                            (STOKER_METRICS_DATASET, comma-separated)\n"
	    "  Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, or the\n"
	    "  shared credentials file with AWS_PROFILE. They never leave the daemon.\n"
	    "  -h, --help                this text\n"
	    "      --version             print the version and exit\n"
	    "SIGTERM or SIGINT: stop accepting, finish in-flight fetches, exit 0.\n",
	    STK_DEFAULT_SOCKET);
}

enum {
	OPT_INFLIGHT = 256,
	OPT_WORKERS,
	OPT_NO_URING,
	OPT_NO_DIRECT,
	OPT_LAT,
	OPT_BW,
	OPT_PART,
	OPT_CONNS,
	OPT_HTTP_THREADS,
	OPT_RETRIES,
	OPT_HTTP_STALL,
	OPT_INSECURE,
	OPT_S3_EP,
	OPT_S3_REGION,
	OPT_S3_ADDR,
	OPT_ALLOW_HOST,
	OPT_MAX_PINNED,
	OPT_MAX_PLAN,
	OPT_MAX_DATASETS,
	OPT_MAX_REQUESTS,
	OPT_PIN_WAIT,
	OPT_DS_GRACE,
	OPT_ISOLATE,
	OPT_METRICS,
	OPT_METRICS_DS,
	OPT_LOG_FORMAT,
	OPT_NO_FAST,
	OPT_NO_FOLLOW,
	OPT_PREFAULT,
	OPT_HUGETLB,
	OPT_NVME_DIR,
	OPT_NVME,
	OPT_NVME_COMPRESS,
	OPT_ALLOW_UID,
	OPT_ALLOW_GID,
	OPT_SECCOMP,
	OPT_VERSION,
};

static bool env_true(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

/* Appends s to the NULL-terminated list *v of *n strings. 0 or -ENOMEM. */
static int list_add(char ***v, unsigned *n, const char *s)
{
	char **r = realloc(*v, (*n + 2) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	*v = r;
	r[*n] = strdup(s);
	if (!r[*n])
		return -ENOMEM;
	r[++*n] = NULL;
	return 0;
}

/* Appends each sep-separated item of v to the list. 0 or -errno. */
static int list_split(char ***list, unsigned *n, const char *v, const char *sep)
{
	char *copy = strdup(v), *save = NULL;
	int r = copy ? 0 : -ENOMEM;
	for (char *t = copy ? strtok_r(copy, sep, &save) : NULL; t && !r;
	     t = strtok_r(NULL, sep, &save))
		r = list_add(list, n, t);
	free(copy);
	return r;
}

static void list_free(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Appends each comma-separated uid (gid when group) of v, a number or a name,
 * to *ids.  0, -EINVAL for an unknown name or -ENOMEM.
 */
static int ids_add(uint32_t **ids, unsigned *n, const char *v, bool group)
{
	char *copy = strdup(v), *save = NULL;
	int r = copy ? 0 : -ENOMEM;
	for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && !r;
	     t = strtok_r(NULL, ", ", &save)) {
		uint64_t id;
		if (stk__parse_u64(t, UINT32_MAX - 1, &id)) {
			struct passwd *pw = group ? NULL : getpwnam(t);
			struct group *gr = group ? getgrnam(t) : NULL;
			if (!pw && !gr) {
				fprintf(stderr, "stokerd: no %s named '%s'\n",
					group ? "group" : "user", t);
				r = -EINVAL;
				break;
			}
			id = pw ? pw->pw_uid : gr->gr_gid;
		}
		uint32_t *x = realloc(*ids, (*n + 1) * sizeof(*x));
		if (!x) {
			r = -ENOMEM;
			break;
		}
		*ids = x;
		x[(*n)++] = (uint32_t)id;
	}
	free(copy);
	return r;
}

/* Applies one setting; the same code serves flags and environment variables. */
static int apply(struct stk_config *c, int opt, const char *v, const char *from)
{
	uint64_t n;
	int r = 0;
	switch (opt) {
	case 's':
		c->socket_path = v;
		break;
	case 'm':
		r = stk__parse_size(v, &n);
		if (!r && n < 4096)
			r = -EINVAL;
		c->ram = n;
		break;
	case 'r':
		r = list_split(&c->roots, &c->nroots, v, ":");
		break;
	case OPT_ALLOW_HOST:
		r = list_split(&c->allow_hosts, &c->nallow_hosts, v, ", ");
		break;
	case OPT_MAX_PINNED:
		r = stk__parse_size(v, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->client_max_pinned = n;
		break;
	case OPT_MAX_PLAN:
		r = stk__parse_u64(v, STK_NONE - 1, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->client_max_plan = n;
		break;
	case OPT_MAX_DATASETS:
		r = stk__parse_u64(v, 1u << 20, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->client_max_datasets = (unsigned)n;
		break;
	case OPT_MAX_REQUESTS:
		r = stk__parse_u64(v, 1u << 24, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->client_max_requests = (unsigned)n;
		break;
	case OPT_PIN_WAIT:
		r = stk__parse_u64(v, 86400, &n);
		c->pin_wait_ns = n * 1000000000ull;
		break;
	case OPT_NVME_DIR:
		c->nvme_dir = v;
		break;
	case OPT_NVME:
		r = stk__parse_size(v, &n);
		if (!r && n < (1u << 20))
			r = -EINVAL;
		c->nvme = n;
		break;
	case OPT_NVME_COMPRESS:
		return stk__tier1_level(v, from, &c->nvme_compress);
	case OPT_DS_GRACE:
		r = stk__parse_u64(v, 86400 * 365, &n);
		c->dataset_grace_ns = n * 1000000000ull;
		break;
	case OPT_ISOLATE:
		if (!strcmp(v, "uid"))
			c->isolate = STK_ISOLATE_UID;
		else if (!strcmp(v, "gid"))
			c->isolate = STK_ISOLATE_GID;
		else if (!strcmp(v, "none"))
			c->isolate = STK_ISOLATE_NONE;
		else
			r = -EINVAL;
		break;
	case OPT_ALLOW_UID:
		r = ids_add(&c->allow_uids, &c->nallow_uids, v, false);
		break;
	case OPT_ALLOW_GID:
		r = ids_add(&c->allow_gids, &c->nallow_gids, v, true);
		break;
	case OPT_LOG_FORMAT:
		r = stk__log_set_format(v);
		break;
	case OPT_METRICS:
		c->metrics_addr = strcmp(v, "off") ? v : NULL;
		c->metrics_explicit = true;
		break;
	case OPT_METRICS_DS:
		r = stk__metrics_add_labels(c, v);
		break;
	case 'l':
		r = stk__log_parse(v);
		if (r >= 0)
			stk__log_level = r;
		r = r < 0 ? r : 0;
		break;
	case OPT_INFLIGHT:
		r = stk__parse_u64(v, 4096, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->max_inflight = (unsigned)n;
		break;
	case OPT_WORKERS:
		r = stk__parse_u64(v, 256, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->workers = (unsigned)n;
		break;
	case OPT_LAT:
		r = stk__parse_u64(v, 600000, &n);
		c->emulate_latency_ms = (uint32_t)n;
		break;
	case OPT_BW:
		r = stk__parse_u64(v, 1000000, &n);
		c->emulate_bandwidth = n * 1000000u;
		break;
	case OPT_PART:
		r = stk__parse_size(v, &n);
		if (!r && (n < 65536 || n > (1ull << 32)))
			r = -EINVAL;
		c->part_size = n;
		break;
	case OPT_CONNS:
		r = stk__parse_u64(v, 4096, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->max_host_conns = (unsigned)n;
		break;
	case OPT_HTTP_THREADS:
		r = stk__parse_u64(v, 64, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->http_threads = (unsigned)n;
		break;
	case OPT_RETRIES:
		r = stk__parse_u64(v, 100, &n);
		c->retries = (unsigned)n;
		break;
	case OPT_HTTP_STALL:
		r = stk__parse_u64(v, 86400, &n);
		if (!r && n == 0)
			r = -EINVAL;
		c->http_stall_s = (unsigned)n;
		break;
	case OPT_S3_EP:
		if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
			r = -EINVAL;
		c->s3_endpoint = v;
		break;
	case OPT_S3_REGION:
		c->s3_region = v;
		break;
	case OPT_S3_ADDR:
		if (!strcmp(v, "auto"))
			c->s3_addressing = STK_S3_AUTO;
		else if (!strcmp(v, "path"))
			c->s3_addressing = STK_S3_PATH;
		else if (!strcmp(v, "virtual"))
			c->s3_addressing = STK_S3_VIRTUAL;
		else
			r = -EINVAL;
		break;
	}
	if (r)
		fprintf(stderr, "stokerd: %s: invalid value '%s'\n", from, v);
	return r;
}

int stk__config_parse(struct stk_config *c, bool *foreground, int argc, char **argv)
{
	c->socket_path = STK_DEFAULT_SOCKET;
	c->max_inflight = 64;
	c->workers = 4;
	c->retries = 5;
	c->http_stall_s = 30;
	c->client_max_plan = 16u << 20;
	c->client_max_datasets = 256;
	c->client_max_requests = 4096;
	c->pin_wait_ns = 10 * 1000000000ull;
	c->dataset_grace_ns = 60 * 1000000000ull;
	c->metrics_addr = "127.0.0.1:9464";
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->http_threads = ncpu > 4 ? 4 : ncpu > 1 ? (unsigned)ncpu : 1;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	c->ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 4 : 1ull << 30;

	static const struct {
		const char *env;
		int opt;
	} envs[] = {
		{ "STOKER_SOCKET", 's' },
		{ "STOKER_RAM", 'm' },
		{ "STOKER_ALLOW_ROOT", 'r' },
		{ "STOKER_LOG_LEVEL", 'l' },
		{ "STOKER_LOG_FORMAT", OPT_LOG_FORMAT },
		{ "STOKER_MAX_INFLIGHT", OPT_INFLIGHT },
		{ "STOKER_WORKERS", OPT_WORKERS },
		{ "STOKER_EMULATE_LATENCY_MS", OPT_LAT },
		{ "STOKER_EMULATE_BANDWIDTH", OPT_BW },
		{ "STOKER_PART_SIZE", OPT_PART },
		{ "STOKER_HTTP_MAX_CONNS", OPT_CONNS },
		{ "STOKER_HTTP_THREADS", OPT_HTTP_THREADS },
		{ "STOKER_RETRIES", OPT_RETRIES },
		{ "STOKER_HTTP_STALL_TIMEOUT", OPT_HTTP_STALL },
		{ "AWS_ENDPOINT_URL", OPT_S3_EP },
		{ "AWS_ENDPOINT_URL_S3", OPT_S3_EP },
		{ "STOKER_S3_ADDRESSING", OPT_S3_ADDR },
		{ "STOKER_ALLOW_HOST", OPT_ALLOW_HOST },
		{ "STOKER_CLIENT_MAX_PINNED", OPT_MAX_PINNED },
		{ "STOKER_CLIENT_MAX_PLAN", OPT_MAX_PLAN },
		{ "STOKER_CLIENT_MAX_DATASETS", OPT_MAX_DATASETS },
		{ "STOKER_CLIENT_MAX_REQUESTS", OPT_MAX_REQUESTS },
		{ "STOKER_PIN_WAIT", OPT_PIN_WAIT },
		{ "STOKER_DATASET_GRACE", OPT_DS_GRACE },
		{ "STOKER_ISOLATE", OPT_ISOLATE },
		{ "STOKER_ALLOW_UID", OPT_ALLOW_UID },
		{ "STOKER_ALLOW_GID", OPT_ALLOW_GID },
		{ "STOKER_METRICS", OPT_METRICS },
		{ "STOKER_METRICS_DATASET", OPT_METRICS_DS },
		{ "STOKER_NVME_DIR", OPT_NVME_DIR },
		{ "STOKER_NVME", OPT_NVME },
		{ "STOKER_NVME_COMPRESS", OPT_NVME_COMPRESS },
	};
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = getenv(envs[i].env);
		if (v && *v && apply(c, envs[i].opt, v, envs[i].env))
			return 2;
	}
	*foreground = env_true("STOKER_FOREGROUND");
	c->no_uring = env_true("STOKER_NO_URING");
	c->no_direct = env_true("STOKER_NO_DIRECT");
	c->hugetlb = env_true("STOKER_HUGETLB");
	c->no_fast_gets = env_true("STOKER_NO_FAST_GETS");
	c->no_follow = env_true("STOKER_NO_FOLLOW");
	c->prefault = env_true("STOKER_PREFAULT");
	c->insecure = env_true("STOKER_INSECURE");
	c->seccomp = env_true("STOKER_SECCOMP");

	static const struct option opts[] = {
		{ "socket", required_argument, 0, 's' },
		{ "ram", required_argument, 0, 'm' },
		{ "allow-root", required_argument, 0, 'r' },
		{ "log-level", required_argument, 0, 'l' },
		{ "log-format", required_argument, 0, OPT_LOG_FORMAT },
		{ "foreground", no_argument, 0, 'f' },
		{ "max-inflight", required_argument, 0, OPT_INFLIGHT },
		{ "workers", required_argument, 0, OPT_WORKERS },
		{ "no-uring", no_argument, 0, OPT_NO_URING },
		{ "no-direct", no_argument, 0, OPT_NO_DIRECT },
		{ "emulate-latency", required_argument, 0, OPT_LAT },
		{ "emulate-bandwidth", required_argument, 0, OPT_BW },
		{ "part-size", required_argument, 0, OPT_PART },
		{ "http-max-conns", required_argument, 0, OPT_CONNS },
		{ "http-threads", required_argument, 0, OPT_HTTP_THREADS },
		{ "retries", required_argument, 0, OPT_RETRIES },
		{ "http-stall-timeout", required_argument, 0, OPT_HTTP_STALL },
		{ "insecure", no_argument, 0, OPT_INSECURE },
		{ "s3-endpoint", required_argument, 0, OPT_S3_EP },
		{ "s3-region", required_argument, 0, OPT_S3_REGION },
		{ "s3-addressing", required_argument, 0, OPT_S3_ADDR },
		{ "allow-host", required_argument, 0, OPT_ALLOW_HOST },
		{ "client-max-pinned", required_argument, 0, OPT_MAX_PINNED },
		{ "client-max-plan", required_argument, 0, OPT_MAX_PLAN },
		{ "client-max-datasets", required_argument, 0, OPT_MAX_DATASETS },
		{ "metrics", required_argument, 0, OPT_METRICS },
		{ "metrics-dataset", required_argument, 0, OPT_METRICS_DS },
		{ "client-max-requests", required_argument, 0, OPT_MAX_REQUESTS },
		{ "pin-wait", required_argument, 0, OPT_PIN_WAIT },
		{ "dataset-grace", required_argument, 0, OPT_DS_GRACE },
		{ "isolate", required_argument, 0, OPT_ISOLATE },
		{ "allow-uid", required_argument, 0, OPT_ALLOW_UID },
		{ "allow-gid", required_argument, 0, OPT_ALLOW_GID },
		{ "seccomp", no_argument, 0, OPT_SECCOMP },
		{ "hugetlb", no_argument, 0, OPT_HUGETLB },
		{ "no-fast-gets", no_argument, 0, OPT_NO_FAST },
		{ "no-follow", no_argument, 0, OPT_NO_FOLLOW },
		{ "prefault", no_argument, 0, OPT_PREFAULT },
		{ "nvme-dir", required_argument, 0, OPT_NVME_DIR },
		{ "nvme", required_argument, 0, OPT_NVME },
		{ "nvme-compress", required_argument, 0, OPT_NVME_COMPRESS },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, OPT_VERSION },
		{ 0, 0, 0, 0 },
	};
	bool roots_from_env = c->nroots > 0, hosts_from_env = c->nallow_hosts > 0;
	bool uids_from_env = c->nallow_uids > 0, gids_from_env = c->nallow_gids > 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "s:m:r:l:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			*foreground = true;
			break;
		case OPT_NO_URING:
			c->no_uring = true;
			break;
		case OPT_NO_DIRECT:
			c->no_direct = true;
			break;
		case OPT_INSECURE:
			c->insecure = true;
			break;
		case OPT_HUGETLB:
			c->hugetlb = true;
			break;
		case OPT_NO_FAST:
			c->no_fast_gets = true;
			break;
		case OPT_NO_FOLLOW:
			c->no_follow = true;
			break;
		case OPT_PREFAULT:
			c->prefault = true;
			break;
		case OPT_SECCOMP:
			c->seccomp = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("stokerd %s\n", STOKER_VERSION);
			return 0;
		case '?':
			usage(stderr);
			return 2;
		case 'r':
			if (roots_from_env) { /* flags replace the environment's list */
				for (unsigned i = 0; i < c->nroots; i++)
					free(c->roots[i]);
				c->nroots = 0;
				roots_from_env = false;
			}
			goto apply;
		case OPT_ALLOW_UID:
			if (uids_from_env) /* flags replace the environment's list */
				c->nallow_uids = 0;
			uids_from_env = false;
			goto apply;
		case OPT_ALLOW_GID:
			if (gids_from_env)
				c->nallow_gids = 0;
			gids_from_env = false;
			goto apply;
		case OPT_ALLOW_HOST:
			if (hosts_from_env) {
				list_free(c->allow_hosts, c->nallow_hosts);
				c->allow_hosts = NULL;
				c->nallow_hosts = 0;
				hosts_from_env = false;
			}
			/* fall through */
		apply:
		default:
			if (apply(c, opt, optarg, argv[optind - 1]))
				return 2;
		}
	}
	if (!c->client_max_pinned)
		c->client_max_pinned = c->ram / 2 > 4096 ? c->ram / 2 : 4096;
	if (optind < argc) {
		fprintf(stderr, "stokerd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

void stk__config_free(struct stk_config *c)
{
	list_free(c->roots, c->nroots);
	list_free(c->allow_hosts, c->nallow_hosts);
	free(c->allow_uids);
	free(c->allow_gids);
	for (unsigned i = 0; i < c->nlabels; i++) {
		free(c->labels[i].name);
		free(c->labels[i].prefix);
	}
	free(c->labels);
}
