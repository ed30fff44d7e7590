/* SPDX-License-Identifier: MIT */
/*
 * Rebuilding the index at open from the records' own headers.  Nothing else
 * is trusted: there is no separate index file to get out of step with the
 * data.  A slot or file counts only if its header passes its checksum and
 * names lengths that fit; with STK_NVME_VERIFY its stored bytes must pass
 * theirs too.  What fails is discarded (punched, or deleted), so neither the
 * disk nor the budget keeps it.  Reads here are plain buffered preads: the
 * store serves nothing until open returns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/nvme_internal.h"
#include "common/log.h"

/* Packs with slots up to this size are read whole, in SCAN_CHUNK reads, not a header at a time. */
#define SCAN_WHOLE_MAX (64u * 1024)
#define SCAN_CHUNK     (4u << 20)

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Parses "<prefix><digits><suffix>" (and "s<slot>-<id>.pack"): strtoull, never atoi. */
static bool parse_u64(const char *p, const char *end_expected, uint64_t *v, const char **rest)
{
	if (*p < '0' || *p > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(p, &end, 10);
	if (errno)
		return false;
	*v = x;
	*rest = end;
	return !end_expected || !strcmp(end, end_expected);
}

/*
 * Adds the record with header h (the URI and version at b + 64) found in a
 * pack slot or a large file.  Of two records of one identity the newer
 * stays.  Returns 0, 1 when h lost to a newer duplicate (the caller frees
 * its room), or -ENOMEM.
 */
static int add_record(struct stk_nvme *s, const struct nvme_hdr *h, const char *b, uint32_t pack,
		      uint32_t slot, uint64_t file_id, uint64_t charge)
{
	const char *uri = b + sizeof(*h);
	struct nvme_ent *old = stk__nvme_find(s, h->domain, h->size, uri, h->uri_len);
	if (old && old->seq > h->seq)
		return 1;
	struct nvme_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->pub.uri = strndup(uri, h->uri_len);
	e->pub.version = strndup(uri + h->uri_len, h->ver_len);
	if (!e->pub.uri || !e->pub.version || strlen(e->pub.uri) != h->uri_len ||
	    strlen(e->pub.version) != h->ver_len) {
		free(e->pub.uri);
		free(e->pub.version);
		free(e);
		return -ENOMEM; /* a NUL inside the URI cannot pass the checksum */
	}
	e->pub.size = h->size;
	e->pub.stored_len = h->stored_len;
	e->pub.charge = charge;
	e->pub.domain = h->domain;
	e->pub.flags = h->flags;
	e->seq = h->seq;
	e->data_xxh = h->data_xxh;
	e->format = (uint8_t)h->format;
	e->pack = pack;
	e->slot = slot;
	e->file_id = file_id;
	e->state = ENT_READY;
	if (stk__nvme_insert(s, e)) {
		free(e->pub.uri);
		free(e->pub.version);
		free(e);
		return -ENOMEM;
	}
	s->used += charge;
	s->payload += h->stored_len;
	s->plain += e->pub.size;
	s->objects++;
	if (pack == NVME_NOPACK)
		s->nlarge++;
	if (h->seq >= s->seq)
		s->seq = h->seq + 1;
	if (old)
		stk__nvme_drop(s, &old->pub);
	return 0;
}

/*
 * Checks the record at b (avail bytes of it read, infile bytes in the file
 * from its start).  0, or -EBADMSG.
 */
static int check_record(const struct stk_nvme *s, const char *b, size_t avail, uint64_t room,
			uint64_t infile, struct nvme_hdr *h)
{
	if (stk__nvme_hdr_parse(b, avail, h))
		return -EBADMSG;
	uint64_t at = nvme_data_off(h->format, h->hdr_len), rec = at + h->stored_len;
	if (rec > room || nvme_round(rec, STK_NVME_BLOCK) > infile) /* cut short */
		return -EBADMSG;
	if ((s->flags & STK_NVME_VERIFY) && avail >= rec &&
	    XXH3_64bits(b + at, h->stored_len) != h->data_xxh)
		return -EBADMSG;
	return 0;
}

static bool all_zero(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static int scan_pack(struct stk_nvme *s, const char *name, uint64_t slot, uint64_t id)
{
	int fd = openat(s->dfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	uint64_t size = (uint64_t)st.st_size;
	uint64_t nfile = (size + slot - 1) / slot;
	uint64_t ncap = s->pack_size / slot ? s->pack_size / slot : 1;
	uint32_t nslots = (uint32_t)(nfile > ncap ? nfile : ncap);
	int idx = stk__nvme_pack_add(s, slot, id, nslots);
	if (idx < 0) {
		close(fd);
		return idx;
	}
	struct nvme_pack *p = s->packs[idx];
	bool whole = slot <= SCAN_WHOLE_MAX || (s->flags & STK_NVME_VERIFY);
	uint64_t per = whole ? (SCAN_CHUNK / slot ? SCAN_CHUNK / slot : 1) : 1;
	size_t blen = whole ? per * slot : STK_NVME_BLOCK;
	char *buf = malloc(blen);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	int r = 0;
	for (uint64_t k0 = 0; k0 < nfile && !r; k0 += per) {
		ssize_t got = pread_full(fd, buf, blen, (off_t)(k0 * slot));
		if (got < 0) {
			r = (int)got;
			break;
		}
		for (uint64_t k = k0; k < k0 + per && k < nfile; k++) {
			uint64_t in = whole ? (k - k0) * slot : 0;
			size_t avail = (uint64_t)got > in ? (size_t)((uint64_t)got - in) : 0;
			if (whole && avail > slot)
				avail = slot;
			const char *b = buf + in;
			struct nvme_hdr h;
			int ok = check_record(s, b, avail, slot, size - k * slot, &h);
			if (ok == 0) {
				/*
				 * Taken before the record is added: an older copy
				 * it replaces may sit in this pack, whose drop
				 * must not find the pack empty.
				 */
				stk__nvme_setbit(p->used, (uint32_t)k, true);
				p->nlive++;
				ok = add_record(s, &h, b, (uint32_t)idx, (uint32_t)k, 0, slot);
				if (ok == 0)
					continue;
				stk__nvme_setbit(p->used, (uint32_t)k, false);
				p->nlive--;
			}
			if (ok < 0 && ok != -EBADMSG) {
				r = ok;
				break;
			}
			if (ok == -EBADMSG && !all_zero(b, avail < 64 ? avail : 64)) {
				s->discarded++;
				stk_warn("nvme %s: %s slot %" PRIu64
					 " holds no valid record (torn or corrupt): discarded",
					 s->dir, name, k);
			}
			/*
			 * Whatever lies in a slot without a record goes, so that
			 * the blocks the budget does not count are not kept.
			 */
			if (!s->punch_ok ||
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)(k * slot), (off_t)slot) < 0) {
				stk__nvme_setbit(p->dead, (uint32_t)k, true);
				p->ndead++;
				s->dead += slot;
				s->used += slot;
			}
		}
	}
	free(buf);
	close(fd);
	if (id >= s->next_id)
		s->next_id = id + 1;
	if (!r && p->nlive == 0)
		stk__nvme_pack_remove(s, (uint32_t)idx);
	return r;
}

/* Returns 0 (kept or discarded), or -ENOMEM. */
static int scan_large(struct stk_nvme *s, const char *name, uint64_t id)
{
	if (id >= s->next_id)
		s->next_id = id + 1;
	int fd = openat(s->dfd, name, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	int r = -EBADMSG;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	char hb[STK_NVME_BLOCK];
	ssize_t got = pread_full(fd, hb, sizeof(hb), 0);
	struct nvme_hdr h;
	if (got < (ssize_t)sizeof(h) || stk__nvme_hdr_parse(hb, (size_t)got, &h))
		goto out;
	uint64_t rec = nvme_data_off(h.format, h.hdr_len) + h.stored_len;
	if ((uint64_t)st.st_size != nvme_round(rec, STK_NVME_BLOCK))
		goto out; /* cut short, or something appended */
	if (s->flags & STK_NVME_VERIFY) {
		buf = malloc(NVME_CHUNK);
		XXH3_state_t *x = XXH3_createState();
		if (!buf || !x || XXH3_64bits_reset(x) != XXH_OK) {
			XXH3_freeState(x);
			r = -ENOMEM;
			goto out;
		}
		uint64_t at = nvme_data_off(h.format, h.hdr_len);
		while (at < rec) {
			uint64_t n = rec - at < NVME_CHUNK ? rec - at : NVME_CHUNK;
			got = pread_full(fd, buf, n, (off_t)at);
			if (got != (ssize_t)n)
				break;
			XXH3_64bits_update(x, buf, n);
			at += n;
		}
		bool ok = at == rec && XXH3_64bits_digest(x) == h.data_xxh;
		XXH3_freeState(x);
		if (!ok)
			goto out;
	}
	r = add_record(s, &h, hb, NVME_NOPACK, 0, id,
		       nvme_round(rec, STK_NVME_BLOCK) + STK_NVME_BLOCK);
	if (r == 1) { /* a newer copy is stored */
		unlinkat(s->dfd, name, 0);
		r = 0;
	}
out:
	if (r == -EBADMSG) {
		s->discarded++;
		stk_warn("nvme %s: %s is no valid record (torn or corrupt): deleted", s->dir, name);
		unlinkat(s->dfd, name, 0);
		r = 0;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Drops objects until the charges fit the budget (it shrank since they were stored). */
static void fit_budget(struct stk_nvme *s)
{
	/* Dropped room comes back later, from the pool: count it as back already. */
	for (uint64_t i = 0; i <= s->tmask && s->used - s->freeing > s->budget; i++) {
		while (s->tab[i] && s->used - s->freeing > s->budget)
			stk__nvme_drop(s, &s->tab[i]->pub);
	}
}

int stk__nvme_scan(struct stk_nvme *s, char *err, size_t errlen)
{
	int dfd = dup(s->dfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int r = -errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(err, errlen, "nvme: %s: %s", s->dir, strerror(-r));
		return r;
	}
	int r = 0;
	unsigned others = 0;
	struct dirent *de;
	while (!r && (de = readdir(d))) {
		const char *n = de->d_name, *rest;
		uint64_t a, b;
		size_t len = strlen(n);
		if (n[0] == '.')
			continue;
		if (len > 4 && !strcmp(n + len - 4, ".tmp")) {
			/* A large object whose write never finished. */
			unlinkat(s->dfd, n, 0);
			s->discarded++;
		} else if (n[0] == 'l' && parse_u64(n + 1, ".obj", &a, &rest)) {
			r = scan_large(s, n, a);
		} else if (n[0] == 's' && parse_u64(n + 1, NULL, &a, &rest) && *rest == '-' &&
			   parse_u64(rest + 1, ".pack", &b, &rest) && a &&
			   a % STK_NVME_BLOCK == 0 && a <= (1ull << 32)) {
			r = scan_pack(s, n, a, b);
			if (r == -EBADMSG)
				r = 0;
		} else {
			others++;
		}
	}
	closedir(d);
	if (r) {
		snprintf(err, errlen, "nvme: %s: rebuilding the index: %s", s->dir, strerror(-r));
		return r;
	}
	if (others)
		stk_warn(
		    "nvme %s: %u files not of the store left alone (not counted in the budget)",
		    s->dir, others);
	fit_budget(s);
	return 0;
}
