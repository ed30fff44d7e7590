# SPDX-License-Identifier: MIT
"""Planning a DataLoader epoch before its workers read anything.

install() (idempotent; stoker.torch calls it on import unless
STOKER_NO_PATCH=1) patches torch.utils.data's DataLoader iterators so that,
for a map-style dataset, the epoch's whole index order is drawn from the
loader's index sampler (batch_sampler, else sampler) in the main process at
the moment the first index is asked for (before any worker gets an index),
and the iteration then hands out exactly the drawn indices.  The sampler is
iterated at the same point and the same number of times as without the
patch, so the RNG is consumed identically: a seeded run gives the same
batches patched or not.  (One difference: the whole epoch is drawn at once,
so a sampler whose generator is also drawn from by the training loop itself
between batches would see its draws reordered.  Samplers without a len(),
or with more than STOKER_PLAN_MAX entries (default 2**26), are left lazy
and unplanned.)

The flat index list goes to plan_epoch(dataset, indices):
  - a dataset (or, through torch Subset/ConcatDataset, the dataset that owns
    each index, with the indices mapped through) that defines
    __stoker_plan__(indices) gets that call (stoker.torch.StokerDataset);
  - otherwise stoker._paths.plan_epoch(dataset, indices) when that module
    imports (file paths through the shim, see python -m stoker.run);
  - otherwise nothing.

Before a loader's iterator starts its workers, $STOKER_PLAN_GROUP is set
(to "<host>-<pid>-<random>", once per process) unless the user set it or
this process did (see ensure_plan_group), so that forked, spawned and
forkserver workers all join the main process's plan group and follow the
plans it submits with Dataset.plan(shared=True), and ranks started by one
launcher never share a group.

Nothing here raises into a training loop: failures are reported once per
kind with warnings.warn and the epoch proceeds (unplanned).
"""
import bisect
import operator
import os
import socket
import threading
import uuid
import warnings

__all__ = ["install", "uninstall", "installed", "plan_epoch", "ensure_plan_group"]

_KEY = "_stoker_sampler_iter"
_lock = threading.Lock()
_installed = None  # the patched class while installed
_warned = set()


def _warn_once(kind, msg):
    if kind in _warned:
        return
    _warned.add(kind)
    warnings.warn("stoker: " + msg, RuntimeWarning, stacklevel=3)


def ensure_plan_group():
    """Gives the process iterating DataLoaders a plan group of its own and returns it.

    $STOKER_PLAN_GROUP is left alone when the user set it, or when this
    process made it.  One that another process made (recorded in
    $STOKER_PLAN_GROUP_PID) was inherited: from a launcher that starts
    several ranks, say, whose plans must not replace each other's; so this
    process makes its own (unique per process), and its workers inherit it.
    """
    g = os.environ.get("STOKER_PLAN_GROUP")
    owner = os.environ.get("STOKER_PLAN_GROUP_PID")
    if not g or (owner is not None and owner != str(os.getpid())):
        host = "".join(c for c in socket.gethostname() if c.isascii() and (c.isalnum() or c in "._-"))
        g = "%s-%d-%s" % (host[:64] or "host", os.getpid(), uuid.uuid4().hex[:12])
        os.environ["STOKER_PLAN_GROUP"] = g
        os.environ["STOKER_PLAN_GROUP_PID"] = str(os.getpid())
    return g


def _max_entries():
    try:
        return int(os.environ.get("STOKER_PLAN_MAX", "") or (1 << 26))
    except ValueError:
        return 1 << 26


def _flatten(drawn):
    if set(map(type, drawn)) == {int}:  # a sampler of plain ints: as it is
        return drawn
    flat = []
    for b in drawn:
        if type(b) is list:  # BatchSampler's batches
            flat.extend(b)
            continue
        try:
            flat.append(operator.index(b))
        except TypeError:
            try:
                flat.extend(b)  # a batch (list, tuple, tensor, array)
            except TypeError:
                flat.append(b)
    return flat


class _EpochIter:
    """Wraps an index-sampler iterator: on the first next(), draws the
    whole epoch, plans it, then yields the drawn items one by one.  An
    exception the sampler raised while being drawn is raised where the
    unpatched iteration would have raised it (after the items before it)."""

    __slots__ = ("_src", "_dataset", "_items", "_pos", "_exc")

    def __init__(self, src, dataset):
        self._src = src
        self._dataset = dataset
        self._items = None
        self._pos = 0
        self._exc = None

    def __iter__(self):
        return self

    def _draw(self):
        src, self._src = self._src, None
        items = []
        try:
            for x in src:
                items.append(x)
        except Exception as e:  # noqa: BLE001 - re-raised in order below
            self._exc = e
        self._items = items
        ds, self._dataset = self._dataset, None
        if items:
            plan_epoch(ds, _flatten(list(items)))

    def __next__(self):
        if self._items is None:
            self._draw()
        items = self._items
        if self._pos < len(items):
            x = items[self._pos]
            items[self._pos] = None  # do not keep the epoch alive twice
            self._pos += 1
            return x
        if self._exc is not None:
            e, self._exc = self._exc, None
            raise e
        raise StopIteration


def _get_iter(self):
    try:
        return self.__dict__[_KEY]
    except KeyError:
        raise AttributeError("_sampler_iter") from None


def _set_iter(self, it):
    try:
        ensure_plan_group()  # before the workers start: they inherit it
        if it is not None and _wants_plan(self):
            it = _EpochIter(it, self._dataset)
    except Exception as e:  # noqa: BLE001 - never break the loop
        _warn_once("wrap", "cannot plan this DataLoader's epochs: %r" % (e,))
    self.__dict__[_KEY] = it


def _wants_plan(it_self):
    from torch.utils.data.dataloader import _DatasetKind
    if getattr(it_self, "_dataset_kind", None) != _DatasetKind.Map:
        return False
    if os.environ.get("STOKER_NO_PATCH"):
        return False
    sampler = getattr(it_self, "_index_sampler", None)
    try:
        n = len(sampler)
    except Exception:  # noqa: BLE001 - no len(): maybe infinite, leave it lazy
        return False
    if n > _max_entries():
        _warn_once("big", "epoch of %d batches/indices is past STOKER_PLAN_MAX; not planned" % n)
        return False
    return True


def install():
    """Patches DataLoader iteration (idempotent).  Returns True when the
    patch is in place, False when torch is missing or STOKER_NO_PATCH is set."""
    global _installed
    if os.environ.get("STOKER_NO_PATCH"):
        return False
    with _lock:
        if _installed is not None:
            return True
        try:
            from torch.utils.data import dataloader as dl
        except ImportError:
            return False
        cls = dl._BaseDataLoaderIter
        if isinstance(cls.__dict__.get("_sampler_iter"), property):
            _installed = cls  # someone (another copy of this module) did it
            return True
        cls._sampler_iter = property(_get_iter, _set_iter)
        _installed = cls
        return True


def uninstall():
    """Undoes install() for iterators made from now on."""
    global _installed
    with _lock:
        cls = _installed
        if cls is None:
            return
        prop = cls.__dict__.get("_sampler_iter")
        if isinstance(prop, property) and prop.fget is _get_iter:
            del cls._sampler_iter
        _installed = None


def installed():
    return _installed is not None


# ---------------------------------------------------------------- planning

def _leaves(dataset, indices, out, depth=0):
    """Appends (leaf_dataset, indices) pairs, unwrapping Subset/ConcatDataset."""
    try:
        from torch.utils.data import ConcatDataset, Subset
    except ImportError:  # pragma: no cover
        Subset = ConcatDataset = ()
    if depth < 32 and hasattr(dataset, "__stoker_plan__"):
        out.append((dataset, indices))
    elif depth < 32 and Subset and isinstance(dataset, Subset):
        sub = dataset.indices
        _leaves(dataset.dataset, [sub[i] for i in indices], out, depth + 1)
    elif depth < 32 and ConcatDataset and isinstance(dataset, ConcatDataset):
        cum = dataset.cumulative_sizes
        total = cum[-1] if cum else 0
        parts = {}
        for i in indices:
            i = operator.index(i)
            if i < 0:
                i += total
            d = bisect.bisect_right(cum, i)
            parts.setdefault(d, []).append(i - (cum[d - 1] if d else 0))
        for d, idx in parts.items():
            _leaves(dataset.datasets[d], idx, out, depth + 1)
    else:
        out.append((dataset, indices))


def plan_epoch(dataset, indices):
    """Plans one epoch's flat index order for dataset (see the module's doc).
    Never raises."""
    try:
        leaves = []
        _leaves(dataset, indices, leaves)
        own = [(d, i) for d, i in leaves if hasattr(d, "__stoker_plan__")]
        rest = [(d, i) for d, i in leaves if not hasattr(d, "__stoker_plan__")]
        for d, idx in own:
            try:
                d.__stoker_plan__(idx)
            except Exception as e:  # noqa: BLE001
                _warn_once("own:" + type(e).__name__,
                           "planning the epoch of %r failed (%s); reading unplanned" % (d, e))
        if not rest:
            return
        try:
            from . import _paths
        except ImportError:
            return
        if not own:
            _paths.plan_epoch(dataset, indices)  # unwraps Subset/ConcatDataset itself
        else:
            for d, idx in rest:
                _paths.plan_epoch(d, idx)
    except Exception as e:  # noqa: BLE001
        _warn_once("plan:" + type(e).__name__, "planning the epoch failed (%s); reading unplanned" % (e,))
