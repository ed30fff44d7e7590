# SPDX-License-Identifier: MIT
"""PyTorch datasets over stokerd.

    from stoker.torch import StokerDataset
    ds = StokerDataset("file:///data/train/", transform=decode)
    dl = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=4)

Importing this module calls stoker._epoch.install(), which patches
DataLoader iteration so that each epoch's shuffled order is drawn in the main
process before the workers read and submitted to stokerd as the plan of the
workers' plan group: the daemon reads ahead of exactly that order.  Set
STOKER_NO_PATCH=1 (before the import) to leave DataLoader alone; undo it with
stoker._epoch.uninstall().

What a transform receives: ``transform(buf)`` is called with a read-only
memoryview (format 'B', zero copy) of the object's bytes in stokerd's shared
memory.  Whatever the transform returns may keep referring to those bytes
(``numpy.frombuffer(buf, numpy.uint8)``, a slice of buf, ``torch.frombuffer``):
the object stays held until that result, and everything made from it, is
garbage, so memory is never released under a result.  When the result keeps
no reference (it decoded or copied), the object is released as soon as the
transform returns.  Never write through the buffer (it is mapped read-only).
Without a transform a sample is ``bytes`` (a copy; safe anywhere).  Results
kept alive hold their objects pinned: keep them short-lived (DataLoader's
collate copies), or the connection reaches stokerd's --client-max-pinned.
"""
from __future__ import annotations

import array
import errno
import multiprocessing.util as _mp_util
import os
import threading
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.utils.data as _tud

import stoker

from . import _epoch

__all__ = ["StokerDataset", "StokerIterableDataset", "install_patch"]

install_patch = _epoch.install
_epoch.install()


def _rank_world():
    """(rank, world size): torch.distributed when initialized, else $RANK/$WORLD_SIZE."""
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:  # noqa: BLE001
        pass
    try:
        return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 0, 1


def _close_conn(pid, ds, client):
    if os.getpid() == pid:
        ds.close()
        client.close()


class _Conn:
    """One process's connection and dataset handle.  Closed when dropped, and
    at the exit of a multiprocessing child (DataLoader workers leave by
    os._exit, which runs no __del__): closing sends the gets' last reports."""

    __slots__ = ("pid", "group", "client", "ds", "__weakref__")

    def __init__(self, uri, manifest, socket, group):
        self.pid = os.getpid()
        self.group = group
        self.client = stoker.Client(socket=socket, plan_group=group)
        try:
            self.ds = self.client.open(uri, manifest=manifest)
        except BaseException:
            self.client.close()
            raise
        _mp_util.Finalize(self, _close_conn, args=(self.pid, self.ds, self.client), exitpriority=10)


def _run(transform, view):
    """Applies transform to view's buffer; drops our references so the hold
    ends when nothing made from the buffer is left."""
    buf = view.buffer
    try:
        if transform is None:
            return buf.tobytes()
        return transform(buf)
    finally:
        del buf


class _Base:
    """Connection handling shared by both datasets: a client per process,
    opened lazily, never a parent's after fork; pickles as its options only."""

    def __init__(self, uri, transform, manifest, socket):
        self.uri = os.fspath(uri) if not isinstance(uri, str) else uri
        self.transform = transform
        self.manifest = bool(manifest)
        self.socket = socket
        self._conn = None
        self._lock = threading.Lock()
        self._len = None

    def __getstate__(self):
        return {"uri": self.uri, "transform": self.transform, "manifest": self.manifest,
                "socket": self.socket, "_len": self._len, **self._extra_state()}

    def _extra_state(self):
        return {}

    def __setstate__(self, st):
        self.__dict__.update(st)
        self._conn = None
        self._lock = threading.Lock()

    def _dataset(self):
        """This process's stoker.Dataset (connecting on first use and again
        after fork, in the plan group $STOKER_PLAN_GROUP names then)."""
        c = self._conn
        if c is not None and c.pid == os.getpid():
            return c.ds
        with self._lock:
            c = self._conn
            if c is None or c.pid != os.getpid():
                # A parent's connection is dropped unused: closing it in a
                # forked child sends nothing (libstoker's fork rule).
                group = os.environ.get("STOKER_PLAN_GROUP") or None
                self._conn = c = _Conn(self.uri, self.manifest, self.socket, group)
            return c.ds

    def _regroup(self, group):
        """Reconnects on next use when this process's connection is not in group."""
        c = self._conn
        if c is not None and c.pid == os.getpid() and c.group != group:
            self.close()

    def _missing(self, e, i):
        """A clearer FileNotFoundError: names the URI and the key."""
        if e.errno != errno.ENOENT:
            return e
        try:
            key = self._dataset().key(i)
        except Exception:  # noqa: BLE001
            key = "#%d" % i
        msg = e.strerror or "no such object"
        if self.uri not in msg:
            msg = "%s (%s, key %s)" % (msg, self.uri, key)
        return FileNotFoundError(errno.ENOENT, msg)

    def close(self):
        """Closes this process's connection (reopened on next use)."""
        c, self._conn = self._conn, None
        if c is not None and c.pid == os.getpid():
            c.ds.close()
            c.client.close()

    def keys(self) -> List[str]:
        """Every object's key, in index order."""
        ds = self._dataset()
        return [ds.key(i) for i in range(len(ds))]

    def key(self, i: int) -> str:
        return self._dataset().key(i)

    def size(self, i: int) -> int:
        return self._dataset().size(i)

    def find(self, key: str) -> int:
        """The index of key (KeyError when absent)."""
        return self._dataset().find(key)

    def __contains__(self, key):
        return key in self._dataset()

    def stats(self) -> Dict[str, int]:
        """This process's client's stoker stats (client.stats())."""
        self._dataset()
        return self._conn.client.stats()


class StokerDataset(_Base, _tud.Dataset):
    """A map-style dataset: sample i is object i of ``uri`` (a directory,
    one file, or with manifest=True a manifest), in stoker's index order
    (keys sorted), passed through ``transform`` (see the module doc for what
    it receives; without one a sample is ``bytes``).

    Each process (the main one, every DataLoader worker, whatever the start
    method) opens its own connection on first use; pickling carries only
    uri, transform, manifest and socket.  With stoker.torch's DataLoader
    patch, each epoch's order is submitted as the shared plan of the
    workers' plan group (__stoker_plan__), so the daemon prefetches exactly
    the shuffled order the workers will read.
    """

    def __init__(self, uri: str, transform: Optional[Callable[[memoryview], Any]] = None,
                 manifest: bool = False, socket: Optional[str] = None) -> None:
        _Base.__init__(self, uri, transform, manifest, socket)
        self._planner = None

    def __setstate__(self, st):
        _Base.__setstate__(self, st)
        self._planner = None

    def __len__(self):
        if self._len is None:
            self._len = len(self._dataset())
        return self._len

    def _index(self, i):
        i = int(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("stoker: index %d out of range (%d objects)" % (i, n))
        return i

    def __getitem__(self, i: int) -> Any:
        i = self._index(i)
        ds = self._dataset()
        try:
            v = ds.get(i)
        except OSError as e:
            raise self._missing(e, i) from None
        return _run(self.transform, v)

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """A whole batch in few round trips (stk_get_batch); DataLoader of
        torch >= 2.0 calls it for each batch.  Returns a list of samples."""
        idx = [self._index(i) for i in indices]
        ds = self._dataset()
        try:
            views = ds.get_batch(idx)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            for i in idx:  # find the missing one, for the message
                self[i]
            raise
        t = self.transform
        out = []
        for k in range(len(views)):
            v, views[k] = views[k], None
            out.append(_run(t, v))
            del v
        return out

    def view(self, i: int) -> stoker.View:
        """Object i as a stoker.View (zero copy; release() it or use ``with``)."""
        i = self._index(i)
        try:
            return self._dataset().get(i)
        except OSError as e:
            raise self._missing(e, i) from None

    def __stoker_plan__(self, indices):
        """Submits indices (one epoch's order) as the shared plan of this
        process's plan group, from a connection of its own (kept open: a
        plan ends with its handle).  Without stk_plan_shared in libstoker it
        plans this process's own reading handle instead (num_workers=0) and
        warns once."""
        try:
            order = array.array("I", indices)  # the common case, fast: non-negative ints
        except (OverflowError, TypeError):
            n = len(self)
            order = array.array("I", [int(i) + n if int(i) < 0 else int(i) for i in indices])
        group = _epoch.ensure_plan_group()
        self._regroup(group)  # num_workers=0: this process's own gets follow the plan too
        p = self._planner
        if p is None or p.pid != os.getpid() or p.group != group:
            self._planner = p = _Conn(self.uri, self.manifest, self.socket, group)
        try:
            p.ds.plan(order, shared=True)
        except (NotImplementedError, OSError) as e:
            if isinstance(e, OSError) and e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # No stk_plan_shared in this libstoker, or a daemon run with
            # --no-follow: plan this process's own handle (num_workers=0).
            _epoch._warn_once("shared", "%s: only the main process's own reads follow the "
                              "epoch's plan" % (e,))
            self._dataset().plan(order)

    def __repr__(self):
        return "StokerDataset(%r)" % (self.uri,)


class StokerIterableDataset(_Base, _tud.IterableDataset):
    """An iterable dataset over ``uri``: each epoch a permutation of every
    object (seeded by seed + epoch, the same on every rank; in index order
    when shuffle=False), padded to a multiple of the world size like
    DistributedSampler, split by rank (torch.distributed when initialized,
    else $RANK/$WORLD_SIZE) and then by DataLoader worker.  Each worker plans
    its own slice (Dataset.plan on its own handle) and reads it with batch
    gets of ``fetch`` objects.  Call set_epoch(e) before each epoch (with
    persistent_workers the workers keep the epoch they started with).
    Samples are transform(buffer) as for StokerDataset (bytes without one).
    """

    def __init__(self, uri: str, shuffle: bool = True, seed: int = 0,
                 transform: Optional[Callable[[memoryview], Any]] = None, manifest: bool = False,
                 socket: Optional[str] = None, fetch: int = 16) -> None:
        _Base.__init__(self, uri, transform, manifest, socket)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        self.fetch = max(1, int(fetch))
        self.rank, self.world = _rank_world()

    def _extra_state(self):
        return {"shuffle": self.shuffle, "seed": self.seed, "epoch": self.epoch,
                "fetch": self.fetch, "rank": self.rank, "world": self.world}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.rank, self.world = _rank_world()

    def epoch_order(self, n=None):
        """The whole epoch's order, before the split by rank (padded)."""
        if n is None:
            n = len(self._dataset())
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        world = max(1, self.world)
        total = -(-n // world) * world if n else 0
        k = 0
        while len(order) < total:  # pad, as DistributedSampler does
            order.append(order[k % n])
            k += 1
        return order

    def shard(self):
        """This rank's and this worker's indices for the current epoch."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self.rank, self.world = _rank_world()
        order = self.epoch_order()
        mine = order[self.rank::max(1, self.world)]
        info = _tud.get_worker_info()
        if info is not None:
            mine = mine[info.id::info.num_workers]
        return mine

    def __len__(self):
        n = len(self._dataset())
        world = max(1, self.world)
        return -(-n // world) if n else 0

    def __iter__(self) -> Iterator[Any]:
        mine = self.shard()
        ds = self._dataset()
        if mine:
            ds.plan(mine)
        t = self.transform
        for s in range(0, len(mine), self.fetch):
            chunk = mine[s:s + self.fetch]
            try:
                views = ds.get_batch(chunk)
            except OSError as e:
                raise self._missing(e, chunk[0]) from None
            for k in range(len(views)):
                v, views[k] = views[k], None
                sample = _run(t, v)
                del v
                yield sample

    def __repr__(self):
        return "StokerIterableDataset(%r, epoch=%d)" % (self.uri, self.epoch)


def _warn(msg):
    warnings.warn("stoker: " + msg, RuntimeWarning, stacklevel=3)
