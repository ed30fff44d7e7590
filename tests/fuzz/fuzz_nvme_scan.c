/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the NVMe tier's index rebuild (cache/nvme_scan.c via
 * stk__nvme_open): the input becomes a file in an empty store directory,
 * which is then opened, inspected and closed.
 *
 * The input: one byte of mode, then the file's bytes.  Mode bit 0: a large
 * object's file (l1.obj) instead of a pack; bits 1-2: the pack's slot size
 * (4, 8, 64 or 128 KiB: above 64 KiB the scan reads a header at a time);
 * bit 3: STK_NVME_VERIFY; bit 4: make the records' checksums right first
 * (each slot's header, and its data when it lies in the slot; a large file
 * is also cut or padded to the length its header gives), so the fuzzer gets
 * past them; bits 5-6: the budget (1 GiB, 64, 16 or 8 KiB: fitting it drops
 * objects); bit 7: also write the pack's first slot as a large file,
 * l2.obj, so the two copies meet.
 *
 * Besides the sanitizers, it checks the index agrees with the stats, every
 * entry found can be looked up by its identity, and the store fits its
 * budget once it holds anything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/nvme.h"
#include "cache/nvme_internal.h"
#include "common/log.h"
#include "common/loop.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_FILE (1u << 20)

static struct stk_loop *loop;
static char dir[64];
static int dfd = -1;

static void empty_dir(void)
{
	DIR *d = opendir(dir);
	fz_check(d != NULL);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void cleanup(void)
{
	empty_dir();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = getenv("STOKER_FUZZ_LOG") ? STK_LOG_DEBUG : STK_LOG_ERROR;
	snprintf(dir, sizeof(dir), "/tmp/stk-fuzz-nvme.XXXXXX");
	fz_check(mkdtemp(dir) != NULL);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fz_check(dfd >= 0);
	fz_check(stk_loop_create(false, 1, &loop) == 0);
	atexit(cleanup);
	return 0;
}

/*
 * Makes the checksums of the record at b (room bytes) right where its
 * lengths fit; returns the length of the record (header, padding, data), or
 * 0 when it has no plausible header.
 */
static uint64_t fix_record(uint8_t *b, size_t room)
{
	struct nvme_hdr h;
	if (room < sizeof(h))
		return 0;
	memcpy(&h, b, sizeof(h));
	if (h.hdr_len < sizeof(h) || h.hdr_len > room || h.hdr_len > STK_NVME_BLOCK)
		return 0;
	uint64_t at = nvme_data_off(h.format, h.hdr_len);
	if (h.stored_len <= room && at <= room - h.stored_len)
		h.data_xxh = XXH3_64bits(b + at, h.stored_len);
	h.hdr_xxh = 0;
	memcpy(b, &h, sizeof(h));
	h.hdr_xxh = XXH3_64bits(b, h.hdr_len);
	memcpy(b, &h, sizeof(h));
	return h.stored_len < (1ull << 40) ? at + h.stored_len : 0;
}

static void put_file(const char *name, const uint8_t *p, size_t n, uint64_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fz_check(fd >= 0);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, p + off, n - off);
		fz_check(w > 0);
		off += (size_t)w;
	}
	if (len != n)
		fz_check(ftruncate(fd, (off_t)len) == 0);
	close(fd);
}

struct walk {
	struct stk_nvme *s;
	uint64_t objects, payload, plain;
};

static void visit(void *arg, struct stk_nvme_ent *e)
{
	struct walk *w = arg;
	w->objects++;
	w->payload += e->stored_len;
	w->plain += e->size;
	fz_check(e->uri && strlen(e->uri) > 0 && e->version);
	fz_check(e->charge >= STK_NVME_BLOCK);
	struct stk_nvme_id id = {
		.uri = e->uri, .size = e->size, .version = e->version, .domain = e->domain
	};
	fz_check(stk__nvme_lookup(w->s, &id) == e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t slots[] = { 4096, 8192, 65536, 131072 };
	static const uint64_t budgets[] = { 1ull << 30, 64 << 10, 16 << 10, 8 << 10 };
	if (size < 1 || size > MAX_FILE)
		return 0;
	unsigned mode = data[0];
	bool large = mode & 1, fix = mode & 16;
	uint64_t slot = slots[(mode >> 1) & 3];
	uint8_t *b = malloc(size);
	fz_check(b != NULL);
	size_t n = size - 1;
	memcpy(b, data + 1, n);

	if (large) {
		uint64_t len = n;
		if (fix) {
			uint64_t rec = fix_record(b, n < STK_NVME_BLOCK ? n : STK_NVME_BLOCK);
			/* The data checksum covers bytes past the block: redo it over the file. */
			if (rec && rec <= MAX_FILE) {
				len = nvme_round(rec, STK_NVME_BLOCK);
				if (rec <= n) {
					struct nvme_hdr h;
					memcpy(&h, b, sizeof(h));
					uint64_t at = nvme_data_off(h.format, h.hdr_len);
					h.data_xxh = XXH3_64bits(b + at, h.stored_len);
					h.hdr_xxh = 0;
					memcpy(b, &h, sizeof(h));
					h.hdr_xxh = XXH3_64bits(b, h.hdr_len);
					memcpy(b, &h, sizeof(h));
				}
			}
		}
		put_file("l1.obj", b, len < n ? (size_t)len : n, len);
	} else {
		if (fix)
			for (size_t off = 0; off < n; off += slot)
				fix_record(b + off, n - off < slot ? n - off : slot);
		char name[64];
		snprintf(name, sizeof(name), "s%llu-1.pack", (unsigned long long)slot);
		put_file(name, b, n, n);
		if (mode & 128)
			put_file("l2.obj", b, n < slot ? n : slot,
				 nvme_round(n < slot ? n : slot, STK_NVME_BLOCK));
	}

	struct stk_nvme_opts o = {
		.opts_size = sizeof(o),
		.dir = dir,
		.budget = budgets[(mode >> 5) & 3],
		.flags = STK_NVME_NO_DIRECT | ((mode & 8) ? STK_NVME_VERIFY : 0),
		.pack_size = 4 * slot,
	};
	struct stk_nvme *s = NULL;
	char err[512];
	int r = stk__nvme_open(loop, &o, &s, err, sizeof(err));
	fz_check(r == 0 || r == -ENOMEM);
	if (r == 0) {
		struct stk_nvme_stats st;
		stk__nvme_stats(s, &st);
		struct walk w = { .s = s };
		stk__nvme_foreach(s, visit, &w);
		fz_check(w.objects == st.objects);
		fz_check(w.payload == st.payload);
		fz_check(w.plain == st.plain);
		fz_check(st.used - st.freeing <= st.budget || st.objects == 0);
		stk__nvme_close(s);
	}
	empty_dir();
	free(b);
	return 0;
}
