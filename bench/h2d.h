/* SPDX-License-Identifier: MIT */
/*
 * stoker-h2d internals (see h2d.c for what it measures): the command line and
 * main() in h2d.c, the dataset and the copies in h2d_measure.c, the table and
 * the JSON in h2d_report.c.
 */
#ifndef STOKER_BENCH_H2D_H
#define STOKER_BENCH_H2D_H

#include <cuda_runtime_api.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "stoker.h"
#include "stoker/gpu.h"

#define GB	  1e9
#define MAX_SIZES 16

enum way { W_STOKER, W_PAGEABLE, W_PINNED, W_FRESH, NWAYS };

extern const char *const h2d_way_name[NWAYS];

struct options {
	const char *socket; /* NULL: $STOKER_SOCKET, else the default */
	const char *dir;
	char sizes_arg[512];
	uint64_t batch_bytes;
	unsigned max_objects;
	unsigned reps, warmup;
	int device;
	bool json, keep_data, no_stoker, per_view_pin;
};

/* One object size: its objects, their host copies and one device buffer. */
struct size_case {
	char label[32];
	uint64_t size;
	unsigned n;
	size_t *index;	       /* dataset indices */
	char **path;	       /* data files, absolute */
	bool *created;	       /* written by this run (removed unless --keep-data) */
	struct stk_view *view; /* held during the cached measurements */
	void **pageable, **pinned;
	unsigned char *dev; /* n * size bytes */
	/* results */
	double *gbs[NWAYS], *ev_gbs[NWAYS]; /* per timed pass */
	unsigned nsamples[NWAYS];
	bool verified[NWAYS], ran[NWAYS];
	double *pin_ms; /* host time of the copy call that pinned a view */
	unsigned npin;
	unsigned hits;
};

struct ctx {
	struct options o;
	struct stk_client *client;
	struct stk_dataset *ds;
	struct stk_gpu_stager *stager;
	cudaStream_t stream;
	cudaEvent_t ev0, ev1;
	struct size_case sc[MAX_SIZES];
	unsigned nsc;
	char dir[PATH_MAX];
	unsigned char *check; /* a host buffer for reading device bytes back */
};

struct devinfo {
	char name[256], pci[32], cpus[256];
	int driver, runtime;
};

static inline int cuda_err(const char *what, cudaError_t e)
{
	fprintf(stderr, "stoker-h2d: %s: %s\n", what, cudaGetErrorString(e));
	return -EIO;
}

static inline int gpu_err(const char *what, int ret)
{
	fprintf(stderr, "stoker-h2d: %s: %s (%s)\n", what, stk_strerror(ret), stk_gpu_errmsg());
	return ret;
}

/* h2d_measure.c */
int h2d_make_data(struct ctx *x);
void h2d_remove_data(struct ctx *x);
int h2d_open_dataset(struct ctx *x);
int h2d_measure_size(struct ctx *x, struct size_case *sc);
void h2d_teardown_size(struct ctx *x, struct size_case *sc);

/* h2d_report.c */
void h2d_devinfo_fill(struct ctx *x, struct devinfo *di);
void h2d_report(struct ctx *x, const struct devinfo *di, bool ok, FILE *table);

#endif
