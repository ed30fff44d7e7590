/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the NVMe tier's record header (cache/nvme.c,
 * stk__nvme_hdr_parse), which a get and the index rebuild read back from
 * disk.  The input is the start of a record.  It is parsed as read, and
 * again with its header checksum made right (so the checks behind the
 * checksum are reached); a header that passes is rebuilt with
 * stk__nvme_hdr_build and must come out the same, but for padding (which parse leaves
 * to the checksum).
 */
#include <stddef.h>
#include <xxhash.h>

#include "cache/nvme_internal.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Sets the header checksum at b (n bytes) when its hdr_len fits in them. */
static void fix_sum(uint8_t *b, size_t n)
{
	struct nvme_hdr h;
	if (n < sizeof(h))
		return;
	memcpy(&h, b, sizeof(h));
	if (h.hdr_len < sizeof(h) || h.hdr_len > n || h.hdr_len > STK_NVME_BLOCK)
		return;
	memset(b + offsetof(struct nvme_hdr, hdr_xxh), 0, sizeof(uint64_t));
	h.hdr_xxh = XXH3_64bits(b, h.hdr_len);
	memcpy(b + offsetof(struct nvme_hdr, hdr_xxh), &h.hdr_xxh, sizeof(uint64_t));
}

static void check(const uint8_t *b, size_t n)
{
	struct nvme_hdr h;
	if (stk__nvme_hdr_parse(b, n, &h))
		return;
	fz_check(h.hdr_len <= n && h.hdr_len <= STK_NVME_BLOCK);
	fz_check(h.uri_len > 0 && h.uri_len <= STK_NVME_URI_MAX);
	fz_check(h.ver_len <= STK_NVME_VERSION_MAX);
	fz_check(sizeof(h) + h.uri_len + h.ver_len <= h.hdr_len);
	/* A header whose URI and version are strings is the one hdr_build writes. */
	const char *uri = (const char *)b + sizeof(h);
	if (memchr(uri, 0, h.uri_len + h.ver_len))
		return;
	char *u = fz_strndup((const uint8_t *)uri, h.uri_len);
	char *v = fz_strndup((const uint8_t *)uri + h.uri_len, h.ver_len);
	struct stk_nvme_id id = { .uri = u, .size = h.size, .version = v, .domain = h.domain };
	static uint8_t out[STK_NVME_BLOCK];
	stk__nvme_hdr_build(out, h.format, &id, h.stored_len, h.flags, h.seq, h.data_xxh);
	struct nvme_hdr h2;
	fz_check(stk__nvme_hdr_parse(out, sizeof(out), &h2) == 0);
	/* All but the checksum, which also covers the padding: parse does not ask it be zeros. */
	h.hdr_xxh = h2.hdr_xxh;
	fz_check(!memcmp(&h, &h2, sizeof(h)));
	/* The padding after the version is not checked beyond the checksum. */
	fz_check(!memcmp(out, b, offsetof(struct nvme_hdr, hdr_xxh)));
	fz_check(!memcmp(out + sizeof(h), b + sizeof(h), h.uri_len + h.ver_len));
	free(u);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	uint8_t *b = malloc(size ? size : 1);
	fz_check(b != NULL);
	memcpy(b, data, size);
	fix_sum(b, size);
	check(b, size);
	free(b);
	return 0;
}
