/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench --report FILE.html: the A/B runs as one self-contained page.
 * Inline SVG and one inline style sheet; no script, no font, nothing a
 * browser would fetch, so the page reads the same offline and attached to a
 * bug.  Every string that comes from outside (paths, sizes as given) is
 * escaped; the rest is numbers printed here.
 *
 * What it draws, for the run of each mode whose stall is the median of its
 * --repeat runs: (a) the per-step timeline, an occupancy strip on one time
 * axis for both modes and the per-step wait and compute as stacked bars,
 * (b) MB/s over elapsed time, (c) the stall split and the stall avoided as
 * measured and as stokerd reported it, (d) the run's parameters.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stoker-bench.h"

#define W	   960.0 /* every chart's width, px */
#define ML	   110.0 /* left margin: row labels and y ticks */
#define MR	   20.0
#define PLOT_W	   (W - ML - MR)
#define STRIP_COLS 850 /* time slices of the occupancy strip, about one per px */
#define MAX_BARS   425 /* per-step bars at most; more steps are binned */
#define TP_BINS	   60  /* time bins of the throughput chart */

/* Colours: waiting is warm, computing cool; each mode has its own line. */
#define C_WAIT	   "#e4572e"
#define C_COMPUTE  "#76b7e5"
#define C_FETCH	   "#e4572e"
#define C_DELIVERY "#f3a712"
#define C_OTHER	   "#a0a0a0"
#define C_DIRECT   "#c0392b"
#define C_STOKER   "#1b998b"
#define C_MEASURED "#4c6ef5"
#define C_REPORTED "#9b5de5"
#define C_GRID	   "#e3e3e3"
#define C_AXIS	   "#555555"

/* Writes s with &, <, >, " and ' escaped: safe in text and in attributes. */
static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static double div0(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* The run of runs[0..n) whose stall is the median (the lower one for even
 * n): the one the charts draw.  Its index into *idx. */
static const struct bench_result *shown_run(const struct bench_result *runs, size_t n, size_t *idx)
{
	size_t best = 0;

	for (size_t i = 0; i < n; i++) {
		size_t below = 0, equal_before = 0;

		for (size_t j = 0; j < n; j++) {
			if (runs[j].stall_s < runs[i].stall_s)
				below++;
			else if (runs[j].stall_s == runs[i].stall_s && j < i)
				equal_before++;
		}
		if (below + equal_before == (n - 1) / 2) {
			best = i;
			break;
		}
	}
	*idx = best;
	return &runs[best];
}

/* When the last step of r ended, seconds from its start. */
static double run_end(const struct bench_result *r)
{
	const struct bench_steps *s = &r->steps;
	double end = r->wall_s;

	if (s->n) {
		double e = s->start_s[s->n - 1] + s->wait_s[s->n - 1] + s->compute_s[s->n - 1];

		if (e > end)
			end = e;
	}
	return end;
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most n ticks to max. */
static double tick_step(double max, int n)
{
	double raw, p, m;

	if (!(max > 0))
		return 1;
	raw = max / n;
	p = pow(10, floor(log10(raw)));
	m = raw / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/*
 * A horizontal axis from 0 to max at y (the plot's bottom), with vertical
 * grid lines up to top and a caption under it.
 */
static void x_axis(FILE *f, double max, double top, double y, const char *caption)
{
	double step = tick_step(max, 10);

	for (double v = 0; v <= max * 1.0001; v += step) {
		double x = ML + PLOT_W * div0(v, max);

		fprintf(f,
			"<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='" C_GRID "'/>"
			"<text x='%.1f' y='%.1f' text-anchor='middle'>%g</text>\n",
			x, top, x, y, x, y + 14, v);
	}
	fprintf(f,
		"<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='" C_AXIS "'/>"
		"<text x='%.1f' y='%.1f' text-anchor='middle'>",
		ML, y, ML + PLOT_W, y, ML + PLOT_W / 2, y + 30);
	esc(f, caption);
	fputs("</text>\n", f);
}

/* A vertical axis from 0 (at bottom) to max (at top), grid lines across. */
static void y_axis(FILE *f, double max, double top, double bottom, const char *caption)
{
	double step = tick_step(max, 5);

	for (double v = 0; v <= max * 1.0001; v += step) {
		double y = bottom - (bottom - top) * div0(v, max);

		fprintf(f,
			"<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='" C_GRID "'/>"
			"<text x='%.1f' y='%.1f' text-anchor='end'>%g</text>\n",
			ML, y, ML + PLOT_W, y, ML - 6, y + 4, v);
	}
	fprintf(f,
		"<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='" C_AXIS "'/>"
		"<text x='%.1f' y='%.1f' text-anchor='middle' "
		"transform='rotate(-90 %.1f %.1f)'>",
		ML, top, ML, bottom, ML - 52, (top + bottom) / 2, ML - 52, (top + bottom) / 2);
	esc(f, caption);
	fputs("</text>\n", f);
}

/* A legend entry: a swatch and its name, at (x, y). */
static void legend(FILE *f, double x, double y, const char *colour, const char *name)
{
	fprintf(f, "<rect x='%.1f' y='%.1f' width='12' height='12' fill='", x, y - 10);
	esc(f, colour);
	fprintf(f, "'/><text x='%.1f' y='%.1f'>", x + 17, y);
	esc(f, name);
	fputs("</text>\n", f);
}

static void rect(FILE *f, double x, double y, double w, double h, const char *colour)
{
	if (w <= 0 || h <= 0)
		return;
	fprintf(f, "<rect x='%.2f' y='%.2f' width='%.2f' height='%.2f' fill='", x, y, w, h);
	esc(f, colour);
	fputs("'/>\n", f);
}

/* Adds the part of [a, b) that falls in each of cols slices of width dt to acc. */
static void spread(double *acc, int cols, double dt, double a, double b)
{
	int i, last;

	if (b <= a || dt <= 0)
		return;
	i = (int)(a / dt);
	last = (int)(b / dt);
	if (i < 0)
		i = 0;
	if (last >= cols)
		last = cols - 1;
	for (; i <= last; i++) {
		double lo = fmax(a, i * dt), hi = fmin(b, (i + 1) * dt);

		if (hi > lo)
			acc[i] += hi - lo;
	}
}

/* --- (a) timeline --- */

/*
 * One row of the occupancy strip: for each slice of the shared time axis
 * (t_max seconds), the share of it the trainer spent waiting (bottom) and
 * computing (above).  With few steps each slice is all one or the other and
 * the strip reads as a Gantt chart; with many it stays exact.  Runs of
 * equal slices are drawn as one rectangle.
 */
static int strip_row(FILE *f, const struct bench_result *r, double t_max, double y, double h)
{
	const struct bench_steps *s = &r->steps;
	double dt = t_max / STRIP_COLS;
	double *wait = calloc(2 * STRIP_COLS, sizeof(*wait)), *comp;
	int i = 0;

	if (!wait)
		return -ENOMEM;
	comp = wait + STRIP_COLS;
	for (size_t k = 0; k < s->n; k++) {
		double a = s->start_s[k], b = a + s->wait_s[k];

		spread(wait, STRIP_COLS, dt, a, b);
		spread(comp, STRIP_COLS, dt, b, b + s->compute_s[k]);
	}
	while (i < STRIP_COLS) {
		double fw = wait[i] / dt, fc = comp[i] / dt;
		int j = i + 1;

		/* Shares within half a percent draw alike. */
		while (j < STRIP_COLS && fabs(wait[j] / dt - fw) < 0.005 &&
		       fabs(comp[j] / dt - fc) < 0.005)
			j++;
		fw = fmin(fw, 1);
		fc = fmin(fc, 1 - fw);
		rect(f, ML + PLOT_W * i / STRIP_COLS, y + h * (1 - fw),
		     PLOT_W * (j - i) / STRIP_COLS, h * fw, C_WAIT);
		rect(f, ML + PLOT_W * i / STRIP_COLS, y + h * (1 - fw - fc),
		     PLOT_W * (j - i) / STRIP_COLS, h * fc, C_COMPUTE);
		i = j;
	}
	free(wait);
	return 0;
}

static int timeline_strip(FILE *f, const struct bench_result *d, const struct bench_result *s)
{
	const struct bench_result *rows[2] = { d, s };
	const char *names[2] = { "direct", "stoker" };
	double t_max = 0, top = 34, row_h = 34, gap = 14;
	double bottom = top + 2 * row_h + gap;
	int ret = 0;

	for (int m = 0; m < 2; m++)
		if (rows[m])
			t_max = fmax(t_max, run_end(rows[m]));
	if (!(t_max > 0))
		t_max = 1;
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' role='img'>\n",
		W, bottom + 44);
	legend(f, ML, 16, C_WAIT, "waiting for the batch (stall)");
	legend(f, ML + 260, 16, C_COMPUTE, "compute");
	for (int m = 0; m < 2; m++) {
		double y = top + m * (row_h + gap);

		fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end'>%s</text>\n", ML - 8,
			y + row_h / 2 + 4, names[m]);
		if (!rows[m]) {
			fprintf(f, "<text x='%.1f' y='%.1f'>not run</text>\n", ML + 8,
				y + row_h / 2 + 4);
			continue;
		}
		ret = strip_row(f, rows[m], t_max, y, row_h);
		if (ret)
			break;
	}
	x_axis(f, t_max, top, bottom, "elapsed seconds since the run's first load");
	fputs("</svg>\n", f);
	return ret;
}

/* Mean wait and compute per step, in ms, of the steps in bar b of bars. */
static void bar_of(const struct bench_steps *s, size_t bars, size_t b, double *wait_ms,
		   double *comp_ms)
{
	size_t lo = b * s->n / bars, hi = (b + 1) * s->n / bars;
	double w = 0, c = 0;

	for (size_t k = lo; k < hi; k++) {
		w += s->wait_s[k];
		c += s->compute_s[k];
	}
	*wait_ms = hi > lo ? 1e3 * w / (double)(hi - lo) : 0;
	*comp_ms = hi > lo ? 1e3 * c / (double)(hi - lo) : 0;
}

static size_t bars_for(const struct bench_result *r)
{
	return r->steps.n < MAX_BARS ? r->steps.n : MAX_BARS;
}

/* The tallest bar of r, ms. */
static double bars_max(const struct bench_result *r)
{
	size_t bars = bars_for(r);
	double max = 0;

	for (size_t b = 0; b < bars; b++) {
		double w, c;

		bar_of(&r->steps, bars, b, &w, &c);
		max = fmax(max, w + c);
	}
	return max;
}

/* Per-step stacked bars of one mode: wait at the bottom, compute above;
 * y_max (ms) is shared by both modes so their heights compare. */
static void step_bars(FILE *f, const char *name, const struct bench_result *r, double y_max)
{
	const struct bench_steps *s = &r->steps;
	size_t bars = bars_for(r);
	double top = 28, bottom = 228, slot = PLOT_W / (double)(bars ? bars : 1);
	char cap[96];

	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' role='img'>\n",
		W, bottom + 46);
	fprintf(f, "<text x='%.1f' y='16' font-weight='bold'>%s</text>\n", ML, name);
	legend(f, ML + 90, 16, C_WAIT, "wait (stall)");
	legend(f, ML + 220, 16, C_COMPUTE, "compute");
	y_axis(f, y_max, top, bottom, "ms per step");
	for (size_t b = 0; b < bars; b++) {
		double w, c, x = ML + slot * (double)b, bw = slot > 3 ? slot * 0.85 : slot;
		double hw, hc;

		bar_of(s, bars, b, &w, &c);
		hw = (bottom - top) * div0(w, y_max);
		hc = (bottom - top) * div0(c, y_max);
		rect(f, x, bottom - hw, bw, hw, C_WAIT);
		rect(f, x, bottom - hw - hc, bw, hc, C_COMPUTE);
	}
	if (bars < s->n)
		snprintf(cap, sizeof(cap), "step (each bar: the mean of %.1f steps)",
			 (double)s->n / (double)bars);
	else
		snprintf(cap, sizeof(cap), "step");
	x_axis(f, (double)s->n, top, bottom, cap);
	fputs("</svg>\n", f);
}

/* --- (b) throughput over time --- */

/*
 * MB/s of r in each of TP_BINS bins of t_max / TP_BINS seconds: each step's
 * bytes spread evenly over the step (its wait and its compute), so the mean
 * over the run is its bytes / wall time.  A bin the run ends in is divided
 * by the part of it the run covered; bins after its end are NAN.
 */
static void throughput(const struct bench_result *r, double t_max, double *mb_s)
{
	const struct bench_steps *s = &r->steps;
	double dt = t_max / TP_BINS, end = run_end(r);
	double bytes[TP_BINS] = { 0 };

	for (size_t k = 0; k < s->n; k++) {
		double a = s->start_s[k], len = s->wait_s[k] + s->compute_s[k];

		if (len <= 0)
			continue;
		for (int i = (int)(a / dt); i < TP_BINS && i * dt < a + len; i++) {
			double lo = fmax(a, i * dt), hi = fmin(a + len, (i + 1) * dt);

			if (hi > lo)
				bytes[i] += (double)s->bytes[k] * (hi - lo) / len;
		}
	}
	for (int i = 0; i < TP_BINS; i++) {
		double covered = fmin(dt, end - i * dt);

		mb_s[i] = covered > dt * 0.05 ? bytes[i] / BENCH_MB / covered : NAN;
	}
}

static void throughput_chart(FILE *f, const struct bench_result *d, const struct bench_result *s)
{
	const struct bench_result *rows[2] = { d, s };
	const char *names[2] = { "direct", "stoker" };
	const char *colours[2] = { C_DIRECT, C_STOKER };
	double mb_s[2][TP_BINS], t_max = 0, y_max = 0, top = 30, bottom = 290;

	for (int m = 0; m < 2; m++)
		if (rows[m])
			t_max = fmax(t_max, run_end(rows[m]));
	if (!(t_max > 0))
		t_max = 1;
	for (int m = 0; m < 2; m++) {
		if (!rows[m])
			continue;
		throughput(rows[m], t_max, mb_s[m]);
		for (int i = 0; i < TP_BINS; i++)
			if (isfinite(mb_s[m][i]))
				y_max = fmax(y_max, mb_s[m][i]);
	}
	y_max = y_max > 0 ? y_max * 1.1 : 1;
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' role='img'>\n",
		W, bottom + 46);
	y_axis(f, y_max, top, bottom, "MB/s");
	for (int m = 0; m < 2; m++) {
		const struct bench_result *r = rows[m];
		double mean, y;
		char name[64];

		if (!r)
			continue;
		mean = div0((double)r->bytes / BENCH_MB, r->wall_s);
		snprintf(name, sizeof(name), "%s (mean %.1f MB/s)", names[m], mean);
		legend(f, ML + 20 + 260 * m, 16, colours[m], name);
		fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2.5' points='",
			colours[m]);
		for (int i = 0; i < TP_BINS; i++) {
			if (!isfinite(mb_s[m][i]))
				break;
			fprintf(f, "%.1f,%.1f ", ML + PLOT_W * (i + 0.5) / TP_BINS,
				bottom - (bottom - top) * mb_s[m][i] / y_max);
		}
		fputs("'/>\n", f);
		y = bottom - (bottom - top) * mean / y_max;
		fprintf(f,
			"<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
			"stroke-dasharray='6 4'/>\n",
			ML, y, ML + PLOT_W * fmin(1, run_end(r) / t_max), y, colours[m]);
	}
	x_axis(f, t_max, top, bottom, "elapsed seconds since the run's first load");
	fputs("</svg>\n", f);
}

/* --- (c) stall split --- */

/* One labelled row of stacked segments (seconds), x scaled to max. */
static void split_row(FILE *f, double y, const char *label, const double *v, const char **colours,
		      int n, double max, const char *note)
{
	double x = ML + 110;
	double width = PLOT_W - 110 - 330;

	fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end'>", ML + 100, y + 15);
	esc(f, label);
	fputs("</text>\n", f);
	for (int i = 0; i < n; i++) {
		double w = width * div0(v[i], max);

		rect(f, x, y, w, 20, colours[i]);
		x += w;
	}
	fprintf(f, "<text x='%.1f' y='%.1f'>", x + 8, y + 15);
	esc(f, note);
	fputs("</text>\n", f);
}

static void stall_chart(FILE *f, const struct ctx *x, const struct stall_cmp *c)
{
	const struct bench_result *d = &x->direct;
	const char *fetch_c[1] = { C_FETCH };
	const char *stoker_c[3] = { C_FETCH, C_DELIVERY, C_OTHER };
	const char *meas_c[1] = { C_MEASURED }, *rep_c[1] = { C_REPORTED };
	double max = fmax(fmax(d->stall_s, c->bench_s), fmax(c->measured_s, c->reported_s));
	double sv[3], one;
	char note[200], r[32];

	if (isfinite(c->ratio))
		snprintf(r, sizeof(r), "%.3f", c->ratio);
	else
		snprintf(r, sizeof(r), "n/a");
	if (c->have_accounting) {
		sv[0] = c->fetch_s;
		sv[1] = c->delivery_s;
		sv[2] = c->bench_s > c->daemon_s ? c->bench_s - c->daemon_s : 0;
	} else {
		sv[0] = sv[1] = 0;
		sv[2] = c->bench_s;
	}
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='268' role='img'>\n",
		W);
	legend(f, ML, 16, C_FETCH, "fetch stall");
	legend(f, ML + 130, 16, C_DELIVERY, "delivery stall");
	legend(f, ML + 280, 16, C_OTHER, "outside stokerd's count (hash, release)");
	snprintf(note, sizeof(note), "%.2f s, all of it fetch", d->stall_s);
	one = d->stall_s;
	split_row(f, 34, "direct stall", &one, fetch_c, 1, max, note);
	if (c->have_accounting)
		snprintf(note, sizeof(note), "%.2f s measured; stokerd: %.2f s", c->bench_s,
			 c->daemon_s);
	else
		snprintf(note, sizeof(note), "%.2f s measured; stokerd: no accounting", c->bench_s);
	split_row(f, 64, "stoker stall", sv, stoker_c, 3, max, note);
	snprintf(note, sizeof(note), "%.2f s (direct - stoker)", c->measured_s);
	one = fmax(c->measured_s, 0);
	split_row(f, 104, "avoided, measured", &one, meas_c, 1, max, note);
	snprintf(note, sizeof(note), "%.2f s; reported / measured = %s", c->reported_s, r);
	one = c->reported_s;
	split_row(f, 134, "avoided, reported", &one, rep_c, 1, max, note);

	/* The stoker stall alone, as shares, since next to the direct stall it
	 * is often a sliver. */
	fprintf(f,
		"<text x='%.1f' y='%.1f' font-weight='bold'>the stoker run's stall, "
		"as shares of what the bench measured:</text>\n",
		ML, 190.0);
	{
		double total = sv[0] + sv[1] + sv[2];
		double xx = ML, width = PLOT_W;
		const char *names[3] = { "fetch", "delivery", "other" };

		for (int i = 0; i < 3; i++) {
			double w = width * div0(sv[i], total);

			rect(f, xx, 202, w, 24, stoker_c[i]);
			if (w > 90)
				fprintf(f, "<text x='%.1f' y='219'>%s %.3f s (%.0f%%)</text>\n",
					xx + 6, names[i], sv[i], 100 * div0(sv[i], total));
			xx += w;
		}
		fprintf(f,
			"<text x='%.1f' y='250'>fetch %.3f s, delivery %.3f s, other %.3f s "
			"(of %.3f s)</text>\n",
			ML, sv[0], sv[1], sv[2], total);
	}
	fputs("</svg>\n", f);
}

/* --- the page --- */

static void row_s(FILE *f, const char *name, const char *value)
{
	fputs("<tr><th>", f);
	esc(f, name);
	fputs("</th><td>", f);
	esc(f, value);
	fputs("</td></tr>\n", f);
}

static void summary_row(FILE *f, const char *name, const struct bench_result *r, bool hits)
{
	fprintf(f,
		"<tr><th>%s</th><td>%.2f</td><td>%.2f</td><td>%.1f%%</td><td>%.1f</td>"
		"<td>%.1f</td>",
		name, r->wall_s, r->stall_s, 100 * div0(r->stall_s, r->wall_s),
		(double)r->bytes / BENCH_MB, div0((double)r->bytes / BENCH_MB, r->wall_s));
	if (hits)
		fprintf(f, "<td>%.3f</td>", div0((double)r->hits, (double)r->objects));
	else
		fputs("<td>-</td>", f);
	fprintf(f, "<td>%.1f / %.1f</td></tr>\n", r->step_p50_ms, r->step_p99_ms);
}

static void parameters(FILE *f, const struct ctx *x, size_t shown_d, size_t shown_s)
{
	const struct options *o = &x->o;
	char v[4400]; /* the daemon row holds a path of up to 4095 bytes */
	time_t now = time(NULL);
	struct tm tm;

	fputs("<table class='params'>\n", f);
	row_s(f, "dataset", x->ds.dir ? x->ds.dir : "");
	snprintf(v, sizeof(v), "%zu objects, %.1f MB", x->ds.count, (double)x->ds.bytes / BENCH_MB);
	row_s(f, "dataset size", v);
	snprintf(v, sizeof(v), "%lu steps x %lu objects (%.2f epochs), compute %g ms per step",
		 o->steps, o->batch, div0((double)(o->steps * o->batch), (double)x->ds.count),
		 o->compute_ms);
	row_s(f, "trainer", v);
	snprintf(v, sizeof(v), "per-epoch seeded shuffle, seed %llu", (unsigned long long)o->seed);
	row_s(f, "order", v);
	if (emulating(o))
		snprintf(v, sizeof(v),
			 "EMULATED slow backend: +%g ms per request, %g MB/s cap (stokerd's file "
			 "transport and the direct reader pay the same)",
			 o->emul.latency_ms, o->emul.bandwidth_mb_s);
	else
		snprintf(v, sizeof(v), "none: the dataset's own disk");
	row_s(f, "backend", v);
	if (x->ran_stoker && x->spawn)
		snprintf(v, sizeof(v), "%s --ram %s, a fresh one per run (empty cache)", x->stokerd,
			 x->ram ? x->ram : "(default)");
	else if (x->ran_stoker)
		snprintf(v, sizeof(v), "the running one at %s (its cache may be warm)",
			 o->socket ? o->socket : "");
	else
		snprintf(v, sizeof(v), "not used");
	row_s(f, "daemon", v);
	row_s(f, "cold start",
	      x->cache_dropped
		  ? "dataset pages dropped from the page cache before each run (posix_fadvise)"
		  : "NOT guaranteed (the page cache drop failed)");
	if (x->ran_direct && x->ran_stoker)
		snprintf(v, sizeof(v),
			 "%lu of each mode, alternating; tables give medians, charts the run with "
			 "the median stall (direct run %zu, stoker run %zu)",
			 o->repeat, shown_d + 1, shown_s + 1);
	else
		snprintf(v, sizeof(v),
			 "%lu of %s alone; tables give medians, charts the run with the median "
			 "stall (run %zu)",
			 o->repeat, x->ran_direct ? "direct" : "stoker",
			 (x->ran_direct ? shown_d : shown_s) + 1);
	row_s(f, "runs", v);
	row_s(f, "checksums",
	      x->checksums_match ? "every run read identical bytes"
				 : "MISMATCH: the runs read "
				   "different bytes");
	if (x->daemon_unclean)
		row_s(f, "warning", "stokerd did not exit cleanly (see stderr)");
	if (gmtime_r(&now, &tm) && strftime(v, sizeof(v), "%Y-%m-%d %H:%M:%S UTC", &tm))
		row_s(f, "written", v);
	fputs("</table>\n", f);
}

static const char style[] =
    "body{font-family:sans-serif;font-size:14px;color:#222;max-width:980px;margin:16px auto;"
    "padding:0 10px}\n"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}\n"
    "table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #e3e3e3;"
    "text-align:right}\n"
    "table.params th,table.params td{text-align:left}th{font-weight:600;white-space:nowrap}\n"
    ".emul{color:#b00;font-weight:bold}.big{font-size:17px}p.note{color:#555}\n"
    "svg{display:block;margin:8px 0}svg text{font-family:sans-serif;font-size:12px;"
    "fill:#222}\n";

static int write_page(FILE *f, const struct ctx *x)
{
	const struct options *o = &x->o;
	const struct bench_result *d = NULL, *s = NULL;
	size_t shown_d = 0, shown_s = 0;
	struct stall_cmp c;
	double y_max = 0;
	int ret = 0;

	if (x->ran_direct)
		d = shown_run(x->runs_direct, o->repeat, &shown_d);
	if (x->ran_stoker)
		s = shown_run(x->runs_stoker, o->repeat, &shown_s);
	fprintf(f,
		"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
		"<title>stoker-bench: data stall, direct and through stoker</title>\n"
		"<style>\n%s</style>\n</head>\n<body>\n",
		style);
	fputs("<h1>stoker-bench: data stall, direct and through stoker</h1>\n", f);
	if (emulating(o))
		fprintf(f,
			"<p class='emul'>EMULATED slow backend: +%g ms per request, %g MB/s "
			"cap</p>\n",
			o->emul.latency_ms, o->emul.bandwidth_mb_s);

	fputs("<table>\n<tr><th>mode</th><th>wall s</th><th>stall s</th><th>stall</th>"
	      "<th>MB</th><th>MB/s</th><th>hit ratio</th><th>step load p50 / p99 ms</th></tr>\n",
	      f);
	if (d)
		summary_row(f, "direct", &x->direct, false);
	if (s)
		summary_row(f, "stoker", &x->stoker, true);
	fputs("</table>\n", f);
	if (o->repeat > 1)
		fprintf(f, "<p class='note'>medians of %lu runs of each mode</p>\n", o->repeat);

	if (d && s) {
		stall_compare(x, &c);
		fputs("<h2>Stall split and stall avoided</h2>\n", f);
		fprintf(f,
			"<p class='big'>stall avoided: <b>%.2f s</b> measured (direct stall - "
			"stoker stall), <b>%.2f s</b> reported by stokerd; reported / measured = "
			"<b>",
			c.measured_s, c.reported_s);
		if (isfinite(c.ratio))
			fprintf(f, "%.3f", c.ratio);
		else
			fputs("n/a", f);
		fputs("</b></p>\n", f);
		stall_chart(f, x, &c);
		fputs("<p class='note'>Fetch stall: waiting for bytes that were not resident "
		      "anywhere when asked for (the direct reader's every wait). Delivery stall: "
		      "the bytes were resident and the wait was handing them over. stokerd's "
		      "figures are its own count of the waits this connection reported; the "
		      "measured stall also holds the bench's hash of every byte and the release.",
		      f);
		if (!c.have_accounting)
			fputs(" This stokerd reported no stall accounting (a daemon before "
			      "protocol 5?), so the stoker stall is not split.",
			      f);
		if (c.model_s > 0)
			fprintf(f,
				" Of the reported avoided stall, %.2f s (daemon-wide) rests on "
				"stokerd's model alone.",
				c.model_s);
		fputs("</p>\n", f);
	}

	fputs("<h2>Per-step timeline</h2>\n", f);
	fputs("<p class='note'>What the trainer did over time, both modes on one axis: the "
	      "lower share of each slice is waiting for the batch, the upper share computing."
	      "</p>\n",
	      f);
	ret = timeline_strip(f, d, s);
	if (ret)
		return ret;
	if (d)
		y_max = fmax(y_max, bars_max(d));
	if (s)
		y_max = fmax(y_max, bars_max(s));
	y_max = y_max > 0 ? y_max * 1.05 : 1;
	if (d)
		step_bars(f, "direct", d, y_max);
	if (s)
		step_bars(f, "stoker", s, y_max);

	fputs("<h2>Throughput over time</h2>\n", f);
	fputs("<p class='note'>MB/s (10<sup>6</sup> B) the trainer consumed, each step's bytes "
	      "spread over the step (its wait and its compute); dashed: the mean over the run."
	      "</p>\n",
	      f);
	throughput_chart(f, d, s);

	fputs("<h2>Parameters</h2>\n", f);
	parameters(f, x, shown_d, shown_s);
	fputs("</body>\n</html>\n", f);
	return 0;
}

int report_html(const struct ctx *x, const char *path)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: --report %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = write_page(f, x);
	if (!ret && ferror(f))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		fprintf(stderr, "stoker-bench: --report %s: %s\n", path, strerror(-ret));
	return ret;
}
