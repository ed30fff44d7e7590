/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench --gpu: runs stoker-h2d (h2d.c), which reports host-to-device
 * GB/s from stoker's pinned arena next to cudaMemcpy from pageable and from
 * cudaMallocHost memory, in one run.  stoker-h2d links the CUDA runtime and
 * stoker-bench does not, so a machine without CUDA can still run the rest of
 * the bench; --gpu execs the stoker-h2d installed or built next to
 * stoker-bench, else the one on PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stoker-bench.h"

#define EXIT_SKIP 77

int bench_gpu_exec(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int n = 0;
	ssize_t len;

	if (!args)
		return 1;
	args[n++] = "stoker-h2d";
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--gpu"))
			args[n++] = argv[i];
	args[n] = NULL;
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0) {
		self[len] = '\0';
		char *slash = strrchr(self, '/');

		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/stoker-h2d", self);
			execv(path, args);
		}
	}
	execvp("stoker-h2d", args);
	fprintf(stderr,
		"stoker-bench: --gpu runs stoker-h2d, which is built only with CUDA "
		"(STOKER_WITH_CUDA); none next to stoker-bench nor on PATH: %s\n",
		strerror(errno));
	free(args);
	return EXIT_SKIP;
}
