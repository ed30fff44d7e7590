/* SPDX-License-Identifier: MIT */
/*
 * stoker-h2d's report: medians of the passes, the device and the CPUs it ran
 * on, as a table and as JSON (see h2d.c).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2d.h"

const char *const h2d_way_name[NWAYS] = { "stoker", "pageable", "pinned", "stoker_fresh" };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct summary {
	double med, min, max;
};

static struct summary summarize(double *v, unsigned n)
{
	struct summary s = { 0, 0, 0 };

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

static void cpu_list(char *buf, size_t len)
{
	cpu_set_t set;
	size_t used = 0;
	int i, start = -1, n = 0;

	buf[0] = 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i <= CPU_SETSIZE; i++) {
		bool in = i < CPU_SETSIZE && CPU_ISSET(i, &set);

		if (in && start < 0)
			start = i;
		if (!in && start >= 0) {
			int w = i - 1 == start
				    ? snprintf(buf + used, len - used, "%s%d", n ? "," : "", start)
				    : snprintf(buf + used, len - used, "%s%d-%d", n ? "," : "",
					       start, i - 1);
			if (w < 0 || (size_t)w >= len - used)
				return;
			used += (size_t)w;
			n++;
			start = -1;
		}
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void h2d_report(struct ctx *x, const struct devinfo *di, bool ok, FILE *table)
{
	struct summary s[MAX_SIZES][NWAYS], ev[MAX_SIZES][NWAYS], pin[MAX_SIZES];
	unsigned i;
	int w;

	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];

		for (w = 0; w < NWAYS; w++) {
			s[i][w] = summarize(sc->gbs[w], sc->nsamples[w]);
			ev[i][w] = summarize(sc->ev_gbs[w], sc->nsamples[w]);
		}
		pin[i] = summarize(sc->pin_ms, sc->npin);
	}
	fprintf(table,
		"stoker-h2d: host-to-device copies to %s (device %d, PCI %s), driver %d.%d, "
		"runtime %d.%d; this process on CPUs %s\n"
		"GB/s = 10^9 B/s, host time from first enqueue to stream sync; median of %u "
		"passes after %u warm-up (min-max)\n\n",
		di->name, x->o.device, di->pci, di->driver / 1000, di->driver % 1000 / 10,
		di->runtime / 1000, di->runtime % 1000 / 10, di->cpus, x->o.reps, x->o.warmup);
	fprintf(table, "%-8s %4s | %-21s | %-21s | %-21s | %7s | %-21s | %s\n", "size", "objs",
		"stoker view, pinned", "pageable malloc", "cudaMallocHost", "stk/pin",
		"stoker fresh view", "pin a new view: ms (GB/s)");
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];
		char cell[NWAYS][40], pc[64] = "-";

		for (w = 0; w < NWAYS; w++) {
			if (sc->nsamples[w])
				snprintf(cell[w], sizeof(cell[w]), "%6.2f (%.2f-%.2f)", s[i][w].med,
					 s[i][w].min, s[i][w].max);
			else
				snprintf(cell[w], sizeof(cell[w]), "-");
		}
		if (sc->npin)
			snprintf(pc, sizeof(pc), "%.3f (%.1f), max %.3f", pin[i].med,
				 (double)sc->size / (pin[i].med / 1e3) / GB, pin[i].max);
		fprintf(table, "%-8s %4u | %-21s | %-21s | %-21s | ", sc->label, sc->n,
			cell[W_STOKER], cell[W_PAGEABLE], cell[W_PINNED]);
		if (sc->nsamples[W_STOKER] && s[i][W_PINNED].med > 0)
			fprintf(table, "%7.2f | ", s[i][W_STOKER].med / s[i][W_PINNED].med);
		else
			fprintf(table, "%7s | ", "-");
		fprintf(table, "%-21s | %s\n", cell[W_FRESH], pc);
	}
	fprintf(table,
		"\nstoker view, pinned: stk_gpu_copy_async() from views held across passes, %s;\n"
		"stoker fresh view: per object stk_get, copy, stk_gpu_unregister (waits for the\n"
		"copy), stk_release; pin a new view: host time of the stk_gpu_copy_async() call\n"
		"on a view not seen before (with per-view pinning: fault-in + cudaHostRegister).\n"
		"Bytes checked on the device for every way: %s.\n",
		x->o.per_view_pin
		    ? "each registered once by the stager, in warm-up (--per-view-pin)"
		    : "from the pinned arena (stk_gpu_pin_arena: each segment "
		      "registered once, when mapped)",
		ok ? "all equal" : "FAILED (see above)");

	if (!x->o.json)
		return;
	printf("{\"tool\":\"stoker-h2d\",\"ok\":%s,\"device\":{\"index\":%d,\"name\":",
	       ok ? "true" : "false", x->o.device);
	json_str(stdout, di->name);
	printf(",\"pci\":");
	json_str(stdout, di->pci);
	printf(",\"driver\":%d,\"runtime\":%d},\"cpus\":", di->driver, di->runtime);
	json_str(stdout, di->cpus);
	printf(",\"pinning\":\"%s\"", x->o.per_view_pin ? "per_view" : "arena");
	printf(",\"reps\":%u,\"warmup\":%u,\"gb\":1e9,\"timing\":\"host clock, first enqueue "
	       "to cudaStreamSynchronize return; event_gb_s from CUDA events\",\"results\":[",
	       x->o.reps, x->o.warmup);
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];
		bool first = true;

		printf("%s{\"label\":", i ? "," : "");
		json_str(stdout, sc->label);
		printf(",\"size\":%llu,\"objects\":%u,\"bytes_per_pass\":%llu",
		       (unsigned long long)sc->size, sc->n, (unsigned long long)sc->size * sc->n);
		if (!x->o.no_stoker)
			printf(",\"view_hits\":%u", sc->hits);
		printf(",\"ways\":{");
		for (w = 0; w < NWAYS; w++) {
			if (!sc->ran[w])
				continue;
			printf("%s\"%s\":{\"gb_s\":%.4f,\"gb_s_min\":%.4f,\"gb_s_max\":%.4f,"
			       "\"event_gb_s\":%.4f,\"passes\":%u,\"verified\":%s}",
			       first ? "" : ",", h2d_way_name[w], s[i][w].med, s[i][w].min,
			       s[i][w].max, ev[i][w].med, sc->nsamples[w],
			       sc->verified[w] ? "true" : "false");
			first = false;
		}
		printf("}");
		if (sc->nsamples[W_STOKER] && s[i][W_PINNED].med > 0)
			printf(",\"stoker_over_pinned\":%.4f,\"stoker_over_pageable\":%.4f",
			       s[i][W_STOKER].med / s[i][W_PINNED].med,
			       s[i][W_PAGEABLE].med > 0 ? s[i][W_STOKER].med / s[i][W_PAGEABLE].med
							: 0);
		if (sc->npin)
			printf(",\"pin\":{\"ms_median\":%.4f,\"ms_min\":%.4f,\"ms_max\":%.4f,"
			       "\"gb_s\":%.4f,\"samples\":%u}",
			       pin[i].med, pin[i].min, pin[i].max,
			       (double)sc->size / (pin[i].med / 1e3) / GB, sc->npin);
		printf("}");
	}
	printf("]}\n");
}

void h2d_devinfo_fill(struct ctx *x, struct devinfo *di)
{
	struct cudaDeviceProp p;

	memset(di, 0, sizeof(*di));
	snprintf(di->name, sizeof(di->name), "?");
	snprintf(di->pci, sizeof(di->pci), "?");
	if (cudaGetDeviceProperties(&p, x->o.device) == cudaSuccess)
		snprintf(di->name, sizeof(di->name), "%s", p.name);
	if (cudaDeviceGetPCIBusId(di->pci, sizeof(di->pci), x->o.device) != cudaSuccess)
		snprintf(di->pci, sizeof(di->pci), "?");
	if (cudaDriverGetVersion(&di->driver) != cudaSuccess)
		di->driver = 0;
	if (cudaRuntimeGetVersion(&di->runtime) != cudaSuccess)
		di->runtime = 0;
	(void)cudaGetLastError();
	cpu_list(di->cpus, sizeof(di->cpus));
}
