/* SPDX-License-Identifier: MIT */
/*
 * Tier 0: each object is a memfd.  It is filled through a writable shared
 * mapping, then sealed (F_SEAL_WRITE fails while a writable mapping exists,
 * so the mapping goes first), and clients map the same pages read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache/tier.h"
#include "common/log.h"

/* Each locked object keeps a mapping; stay well below vm.max_map_count (65530). */
#define MAX_LOCKED 32768

static unsigned nlocked;

static size_t page_round(uint64_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return (size_t)((n + pg - 1) & ~(uint64_t)(pg - 1));
}

static int ram_alloc(struct stk_tier_obj *t, const char *name, uint64_t size, char *err,
		     size_t errlen)
{
	char mname[200];
	size_t nl = strlen(name);
	snprintf(mname, sizeof(mname), "stoker:%s", nl > 180 ? name + nl - 180 : name);
	t->map = NULL;
	t->maplen = 0;
	t->locked = false;
	t->fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->fd < 0)
		goto fail;
	if (ftruncate(t->fd, (off_t)size) < 0)
		goto fail;
	if (size) {
		t->maplen = page_round(size);
		t->map = mmap(NULL, t->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
		if (t->map == MAP_FAILED) {
			t->map = NULL;
			goto fail;
		}
	}
	return 0;
fail:;
	int r = -errno;
	snprintf(err, errlen, "cannot allocate %llu bytes of RAM for %s: %s",
		 (unsigned long long)size, name, strerror(-r));
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	return r;
}

static int ram_seal(struct stk_tier_obj *t, bool *try_lock, char *err, size_t errlen)
{
	if (t->map)
		munmap(t->map, t->maplen);
	t->map = NULL;
	if (fcntl(t->fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0) {
		int r = -errno;
		snprintf(err, errlen, "cannot seal memfd: %s", strerror(-r));
		return r;
	}
	if (!*try_lock || !t->maplen)
		return 0;
	if (nlocked >= MAX_LOCKED) {
		stk_warn("ram tier: %u objects locked; no more are mlock'd (map count limit)",
			 nlocked);
		*try_lock = false;
		return 0;
	}
	void *p = mmap(NULL, t->maplen, PROT_READ, MAP_SHARED, t->fd, 0);
	if (p == MAP_FAILED || mlock(p, t->maplen) < 0) {
		stk_warn("ram tier: cannot mlock the cache (%s); it stays unlocked. Raise "
			 "RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK to lock it",
			 strerror(errno));
		if (p != MAP_FAILED)
			munmap(p, t->maplen);
		*try_lock = false;
		return 0;
	}
	t->map = p;
	t->locked = true;
	nlocked++;
	return 0;
}

static void ram_drop(struct stk_tier_obj *t)
{
	if (t->map)
		munmap(t->map, t->maplen);
	if (t->locked)
		nlocked--;
	if (t->fd >= 0)
		close(t->fd);
	t->map = NULL;
	t->maplen = 0;
	t->locked = false;
	t->fd = -1;
}

const struct stk_tier_ops stk_tier_ram = {
	.name = "ram",
	.alloc = ram_alloc,
	.seal = ram_seal,
	.drop = ram_drop,
};
