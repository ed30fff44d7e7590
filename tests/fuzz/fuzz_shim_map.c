/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the shim's STOKER_SHIM_MAP (shim/config.c, compiled
 * in here: its parser and matcher are static or shim-internal) and the
 * lines of a STOKER_SHIM_PLAN file, which the shim puts through the same
 * matcher (shim/catalog.c, plan_from_file; looking a line up in the
 * dataset needs a daemon, so that part is not here).
 *
 * The input: STOKER_SHIM_MAP's value up to the first '\n' (a NUL cuts it),
 * then paths, one a line, as a plan file holds them ("\r\n" ends a line
 * too).  The cwd is taken to be "/", so a relative path is taken below it.
 * Besides the sanitizers, it checks what shim_int.h promises: the maps are
 * absolute, without a trailing '/', longest first; a path that matches
 * passes the inline pre-test shim__maybe(); the relative path a match
 * gives has no leading or trailing '/' and no "", "." or ".." component,
 * and a buffer too small for it is refused, not overrun.
 */
#include <stdarg.h>
#include <stdbool.h>

#include "tests/fuzz/fuzz_util.h"

/* config.c warns on stderr about each entry it ignores: say it only when asked. */
static bool verbose;
static int quiet_fprintf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int quiet_fprintf(FILE *f, const char *fmt, ...)
{
	char buf[2 * 4096 + 128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (verbose)
		fputs(buf, f);
	return n;
}
#define fprintf quiet_fprintf
#include "shim/config.c"
#undef fprintf

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("STOKER_FUZZ_LOG") != NULL;
	return 0;
}

static void check_rel(const char *rel)
{
	size_t n = strlen(rel);
	if (!n)
		return;
	fz_check(rel[0] != '/' && rel[n - 1] != '/');
	for (const char *s = rel; *s;) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		fz_check(l > 0);
		fz_check(!(l == 1 && s[0] == '.') && !(l == 2 && s[0] == '.' && s[1] == '.'));
		s += l + (e ? 1 : 0);
	}
}

static void play_path(const char *path)
{
	char rel[SHIM_PATH_MAX];
	memset(rel, 'x', sizeof(rel));
	int m = shim__match(path, rel, sizeof(rel));
	fz_check(m >= -1 && m < shim_nmaps);
	if (m >= 0) {
		fz_check(shim__maybe(path));
		fz_check(memchr(rel, 0, sizeof(rel)) != NULL);
		check_rel(rel);
	}
	(void)shim__is_ancestor(path);
	/* A small buffer is refused, never overrun. */
	char tiny[4];
	m = shim__match(path, tiny, sizeof(tiny));
	if (m >= 0)
		fz_check(strlen(tiny) < sizeof(tiny));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fz_strndup(data, size);
	char *nl = memchr(in, '\n', size);
	if (nl)
		*nl = 0;

	memset(shim_maps, 0, sizeof(shim_maps));
	shim_nmaps = 0;
	setenv("STOKER_SHIM_MAP", in, 1);
	shim__config_init();
	/* As shim__cwd_changed() leaves things in "/" (not chdir: the replay's paths may be
	 * relative). */
	memcpy(cwd_buf, "/", 2);
	shim_cwd_map = shim_nmaps ? 0 : -1;
	fz_check(shim_nmaps >= 0 && shim_nmaps <= SHIM_MAX_MAPS);
	for (int i = 0; i < shim_nmaps; i++) {
		const struct shim_map *m = &shim_maps[i];
		fz_check(m->prefix[0] == '/' && m->plen >= 2 && m->plen == strlen(m->prefix));
		fz_check(m->prefix[m->plen - 1] != '/');
		fz_check(m->uri[0] != 0);
		fz_check(i == 0 || shim_maps[i - 1].plen >= m->plen);
	}

	/* The rest, line by line, as plan_from_file() reads a plan (NULs end a line early). */
	if (nl) {
		size_t off = (size_t)(nl - in) + 1;
		while (off < size) {
			char *line = in + off;
			char *end = memchr(line, '\n', size - off);
			size_t n = end ? (size_t)(end - line) : size - off;
			line[n] = 0;
			line[strcspn(line, "\r\n")] = 0;
			play_path(line);
			off += n + 1;
		}
	}
	free(in);
	return 0;
}
