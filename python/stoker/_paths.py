# SPDX-License-Identifier: MIT
"""An epoch's sample order as file paths, and those paths as shared plans.

stoker._epoch calls plan_epoch(dataset, indices) in the process that draws a
DataLoader epoch's order, before the workers start.  This module turns the
indices into the paths the dataset will open (the protocol below), maps each
path through STOKER_SHIM_MAP exactly as libstoker_shim does (shim/config.c),
and submits, per mapped dataset, the objects in epoch order as the plan of
this process's plan group (Dataset.plan(shared=True)): the shim's connections
in the DataLoader workers then read ahead of the shuffled order instead of
guessing it.

Paths of a sample, first that applies (Subset and ConcatDataset are unwrapped
first, down to the dataset that owns each index):
  1. a function registered for the dataset's type (or a base class) with
     stoker.run.register(type, fn): fn(dataset, indices) -> paths;
  2. dataset.stoker_paths(indices) -> paths;
  3. dataset.samples, else dataset.imgs: a sequence of (path, target, ...)
     tuples (torchvision's ImageFolder/DatasetFolder) or of paths;
  4. dataset.files: a sequence of paths.
"paths" is one entry per index, in order: a str, bytes or os.PathLike path,
or None for a sample with no file to plan.  A sample may also give several
paths (a tuple or list of them), all planned in that order.  Relative paths
are taken against the current directory, as the shim takes them.

The paths of samples/imgs/files entries are read once and their objects
remembered while the sequence is the same object with the same length (an
epoch after the first costs one numpy gather); callback paths are remembered
per path.

Nothing here ever raises into a training loop: a failure is reported once per
kind with warnings.warn and the epoch proceeds unplanned.
"""
import array
import bisect
import os
import sys
import warnings

_np = None  # numpy, once _numpy() found it (with torch it is there); else plain loops
_np_tried = False


def _numpy():
    global _np, _np_tried
    if not _np_tried:
        _np_tried = True
        try:
            import numpy  # noqa: PLC0415
            _np = numpy
        except ImportError:  # pragma: no cover
            pass
    return _np

__all__ = ["plan_epoch", "paths_for", "map_path", "parse_map", "register"]

SHIM_PATH_MAX = 1024  # shim/shim_int.h
SHIM_MAX_MAPS = 16

_registry = {}  # type -> fn(dataset, indices) -> paths
_warned = set()


def _warn(kind, msg):
    if kind in _warned:
        return
    _warned.add(kind)
    warnings.warn("stoker: " + msg, RuntimeWarning, stacklevel=3)


def register(dataset_type, fn):
    """Registers fn(dataset, indices) -> paths for datasets of dataset_type
    (and its subclasses); fn=None removes the registration."""
    if fn is None:
        _registry.pop(dataset_type, None)
    else:
        _registry[dataset_type] = fn


# --- STOKER_SHIM_MAP, as shim/config.c parses it ---------------------------

def parse_map(env=None):
    """STOKER_SHIM_MAP as the shim reads it: a list of (prefix, uri), longest
    prefix first (stable for equal lengths, as the shim's insertion sort).
    Malformed entries are skipped (the shim logs them)."""
    if env is None:
        env = os.environ.get("STOKER_SHIM_MAP")
    if not env:
        return []
    maps = []
    for entry in env.split(";"):
        eq = entry.find("=")
        if eq <= 0 or len(maps) == SHIM_MAX_MAPS:
            continue
        pl = eq
        while pl > 1 and entry[pl - 1] == "/":
            pl -= 1
        ul = len(entry) - eq - 1
        # The shim compares bytes; lengths are bytes too.
        pfx, uri = entry[:pl], entry[eq + 1:]
        pb, ub = len(os.fsencode(pfx)), len(os.fsencode(uri))
        if entry[0] != "/" or pb < 2 or pb >= SHIM_PATH_MAX or ul == 0 or ub + 2 >= SHIM_PATH_MAX:
            continue
        maps.append((pfx, uri))
    # Stable, longest first (the shim's insertion sort moves only strictly longer ones up).
    maps.sort(key=lambda m: -len(os.fsencode(m[0])))
    return maps


def _normalize(rest):
    """The shim's normalize(): rest is "" or "/..."; None when '..' climbs out
    or the key would not fit in SHIM_PATH_MAX bytes (the shim's checks)."""
    out = []
    o = 0  # the key's length in bytes so far, as the shim counts it
    for c in rest.split("/"):
        if c == "" or c == ".":
            continue
        if c == "..":
            if not out:
                return None
            o -= len(os.fsencode(out.pop()))
            if out:
                o -= 1
        else:
            n = len(os.fsencode(c))
            if o + n + 2 > SHIM_PATH_MAX:
                return None
            o += n + (1 if out else 0)
            out.append(c)
    return "/".join(out)


def _match_abs(maps, path):
    for i, (pfx, _) in enumerate(maps):
        if path.startswith(pfx):
            n = len(pfx)
            if len(path) == n:
                return i, ""
            if path[n] != "/":
                continue
            rest = path[n:]
            # Already normal and short enough whatever its encoding: as is.
            if "/." not in rest and "//" not in rest and rest[-1] != "/" and \
                    4 * len(rest) + 2 < SHIM_PATH_MAX:
                return i, rest[1:]
            rel = _normalize(rest)
            return None if rel is None else (i, rel)
    return None


def _cwd_in_or_above(maps, cwd):
    if _match_abs(maps, cwd):
        return True
    for pfx, _ in maps:
        if cwd == "/" or (len(cwd) < len(pfx) and pfx.startswith(cwd) and pfx[len(cwd)] == "/"):
            return True
    return False


def map_path(path, maps=None, cwd=None):
    """(mapping number, uri, key) for a path the shim would map, else None."""
    if maps is None:
        maps = parse_map()
    if not maps or path is None:
        return None
    p = os.fsdecode(os.fspath(path))
    if not p:
        return None
    if p[0] != "/":
        if cwd is None:
            try:
                cwd = os.getcwd()
            except OSError:
                return None
        if not _cwd_in_or_above(maps, cwd):
            return None
        if len(os.fsencode(cwd)) + len(os.fsencode(p)) + 2 > 2 * SHIM_PATH_MAX:
            return None
        p = ("" if cwd == "/" else cwd) + "/" + p
    m = _match_abs(maps, p)
    if m is None or not m[1]:  # the mapping's root is a directory, not an object
        return None
    return m[0], maps[m[0]][1], m[1]


# --- dataset -> paths -------------------------------------------------------

def _torch_types():
    data = sys.modules.get("torch.utils.data")
    if data is None:
        return None, None
    return getattr(data, "Subset", None), getattr(data, "ConcatDataset", None)


def _registered(dataset):
    if not _registry:
        return None
    for t in type(dataset).__mro__:
        fn = _registry.get(t)
        if fn is not None:
            return fn
    return None


def _entry_path(e):
    if e is None or isinstance(e, (str, bytes, os.PathLike)):
        return e
    if isinstance(e, (tuple, list)) and e:
        return e[0]
    return None


def _leaf_paths(dataset, indices):
    """One entry per index (a path, None, or a list/tuple of paths); None when
    the dataset follows none of the protocol."""
    fn = _registered(dataset)
    if fn is not None:
        return list(fn(dataset, indices))
    fn = getattr(dataset, "stoker_paths", None)
    if callable(fn):
        return list(fn(indices))
    for name in ("samples", "imgs"):
        seq = getattr(dataset, name, None)
        if seq is not None and not callable(seq):
            return [_entry_path(seq[i]) for i in indices]
    seq = getattr(dataset, "files", None)
    if seq is not None and not callable(seq):
        return [_entry_path(seq[i]) for i in indices]
    return None


def _resolve(dataset, indices, leaf):
    """leaf(d, indices) over the datasets that own the indices (Subset and
    ConcatDataset unwrapped), reassembled in order; None when no leaf answers."""
    Subset, Concat = _torch_types()
    if Subset is not None and isinstance(dataset, Subset) and _registered(dataset) is None:
        inner = dataset.indices
        return _resolve(dataset.dataset, [inner[i] for i in indices], leaf)
    if Concat is not None and isinstance(dataset, Concat) and _registered(dataset) is None:
        cum = dataset.cumulative_sizes
        n = cum[-1] if cum else 0
        parts = {}  # sub-dataset number -> (positions, local indices)
        for pos, i in enumerate(indices):
            if i < 0:
                i += n
            d = bisect.bisect_right(cum, i)
            pp = parts.setdefault(d, ([], []))
            pp[0].append(pos)
            pp[1].append(i - (cum[d - 1] if d else 0))
        out = [None] * len(indices)
        any_ = False
        for d, (positions, local) in parts.items():
            sub = _resolve(dataset.datasets[d], local, leaf)
            if sub is None:
                continue
            any_ = True
            for pos, p in zip(positions, sub):
                out[pos] = p
        return out if any_ else None
    return leaf(dataset, indices)


def paths_for(dataset, indices):
    """The paths the samples `indices` of dataset will open, one entry per
    index (a path, None, or a tuple/list of paths); None when no part of the
    dataset follows the protocol."""
    return _resolve(dataset, [int(i) for i in indices], _leaf_paths)


# --- clients and datasets, per process --------------------------------------

class _State:
    def __init__(self):
        self.pid = os.getpid()
        self.group = os.environ.get("STOKER_PLAN_GROUP")
        self.client = None
        self.datasets = {}  # uri -> stoker.Dataset, or None when it cannot be opened


_state = None
# What stays valid across fork and plan groups (a dataset's listing is one
# snapshot while any client has it open; keys are found again otherwise):
_index_cache = {}  # uri -> {key: index, or -1 when no object has the key}
_uris = []  # slot -> uri; a sample's "code" is slot << 32 | index, -1 for nothing
_slots = {}  # uri -> slot
_MEMO_MAX = 1 << 23
_memo = [None, None, {}]  # STOKER_SHIM_MAP, cwd, {path: code}
_SEQ_CACHE_MAX = 8
_seq_cache = {}  # id(seq) -> [seq, (STOKER_SHIM_MAP, cwd), codes: a list (code or None), then a numpy array]


def _current_state():
    global _state
    st = _state
    if st is None or st.pid != os.getpid() or st.group != os.environ.get("STOKER_PLAN_GROUP"):
        # After fork the inherited client is the parent's: drop it unused
        # (closing it in the child sends nothing).
        _state = st = _State()
    return st


def _dataset(uri):
    st = _current_state()
    if uri in st.datasets:
        return st.datasets[uri]
    import stoker  # noqa: PLC0415 (loads libstoker only when something maps)
    if st.client is None:
        st.client = stoker.Client()  # $STOKER_SOCKET, $STOKER_PLAN_GROUP, as the shim connects
    try:
        ds = st.client.open(uri)
    except OSError as e:
        _warn("open " + uri, "cannot open %s for the epoch plan: %s" % (uri, e))
        ds = None
    st.datasets[uri] = ds
    return ds


class _Ctx:
    """Turns paths into codes for one plan_epoch call."""

    def __init__(self, maps):
        self.maps = maps
        self.env = os.environ.get("STOKER_SHIM_MAP")
        try:
            self.cwd = os.getcwd()
        except OSError:
            self.cwd = "/"
        if _memo[0] != self.env or _memo[1] != self.cwd:
            _memo[:] = [self.env, self.cwd, {}]
        self.memo = _memo[2]

    def key_code(self, uri, key, cache=True):
        """The code of key in uri's dataset; None when that cannot be known now."""
        keys = _index_cache.setdefault(uri, {}) if cache else {}
        i = keys.get(key)
        if i is None:
            ds = _dataset(uri)
            if ds is None:
                return None
            try:
                i = ds.find(key)
            except KeyError:
                i = -1
            if cache:
                keys[key] = i
        if i < 0:
            return -1
        slot = _slots.get(uri)
        if slot is None:
            slot = _slots[uri] = len(_uris)
            _uris.append(uri)
        return (slot << 32) | i

    def path_code(self, p, cache=True):
        """A path's code (-1: not planned; None: not known now).  cache=False:
        the caller keeps the code (seq_codes), so neither the path nor its key
        is remembered here."""
        if p is None:
            return -1
        if not cache:
            m = map_path(p, self.maps, self.cwd)
            return -1 if m is None else self.key_code(m[1], m[2], False)
        memo = self.memo
        try:
            return memo[p]
        except (KeyError, TypeError):
            pass
        m = map_path(p, self.maps, self.cwd)
        c = -1 if m is None else self.key_code(m[1], m[2])
        if c is not None and len(memo) < _MEMO_MAX:
            try:
                memo[p] = c
            except TypeError:  # an unhashable PathLike
                pass
        return c

    def entry_code(self, e):
        if isinstance(e, (tuple, list)):
            return tuple(self.path_code(p) for p in e)
        return self.path_code(e)

    def seq_codes(self, seq, indices):
        """Codes of seq[i] (samples, imgs, files), cached per list while it
        is the same object of the same length."""
        ent = _seq_cache.get(id(seq))
        where = (self.env, self.cwd)
        if ent is None or ent[0] is not seq or ent[1] != where or len(ent[2]) != len(seq):
            while len(_seq_cache) >= _SEQ_CACHE_MAX:
                del _seq_cache[next(iter(_seq_cache))]
            ent = _seq_cache[id(seq)] = [seq, where, [None] * len(seq)]
        codes = ent[2]
        if not isinstance(codes, list):  # every entry known: one numpy gather
            return codes[_np.asarray(indices, dtype=_np.intp)]
        out = []
        for i in indices:
            c = codes[i]
            if c is None:
                c = self.path_code(_entry_path(seq[i]), False)
                codes[i] = c
            out.append(c)
        if len(out) >= len(codes) and _numpy() is not None and None not in codes:
            ent[2] = _np.array(codes, dtype=_np.int64)  # 8 bytes a sample from now on
        return out

    def leaf(self, dataset, indices):
        fn = _registered(dataset)
        if fn is None:
            fn = getattr(dataset, "stoker_paths", None)
            fn = (lambda d, idx, f=fn: f(idx)) if callable(fn) else None
        if fn is not None:
            return [self.entry_code(e) for e in fn(dataset, indices)]
        for name in ("samples", "imgs", "files"):
            seq = getattr(dataset, name, None)
            if seq is not None and not callable(seq):
                return self.seq_codes(seq, indices)
        return None


def plan_epoch(dataset, indices):
    """Plans the epoch `indices` of dataset (see the module's docstring).
    Returns the number of objects planned (0 when nothing maps); never raises
    an Exception."""
    try:
        maps = parse_map()
        if not maps:
            return 0
        ctx = _Ctx(maps)
        codes = _resolve(dataset, [int(i) for i in indices], ctx.leaf)
        if codes is None:
            _warn("protocol " + type(dataset).__qualname__,
                  "%s gives no sample paths (samples, imgs, files, stoker_paths() or "
                  "stoker.run.register()): its epochs are not planned" % type(dataset).__qualname__)
            return 0
        if _np is not None and isinstance(codes, _np.ndarray):
            return _plan_array(codes)
        per = {}  # slot -> indices in epoch order
        last, order = -1, None
        for c in codes:
            for x in (c if type(c) is tuple else (c,)):
                if x is None or x < 0:
                    continue
                slot = x >> 32
                if slot != last:
                    last, order = slot, per.setdefault(slot, [])
                order.append(x & 0xFFFFFFFF)
        return _submit(per.items())
    except Exception as e:  # noqa: BLE001
        _warn("plan_epoch", "planning the epoch failed: %r" % (e,))
        return 0


def _plan_array(codes):
    """_submit() for a numpy array of codes (a plain samples/files list once known)."""
    c = codes[codes >= 0]
    slots = c >> 32
    parts = []
    for slot in _np.unique(slots).tolist():
        sel = c if len(parts) == 0 and (slots == slot).all() else c[slots == slot]
        a = array.array("I")
        a.frombytes((sel & 0xFFFFFFFF).astype(_np.uint32).tobytes())
        parts.append((slot, a))
    return _submit(parts)


def _submit(parts):
    """ds.plan(order, shared=True) for each (slot, order); the number planned."""
    n = 0
    for slot, order in parts:
        uri = _uris[slot]
        try:
            ds = _dataset(uri)
            if ds is not None and len(order):
                ds.plan(order, shared=True)
                n += len(order)
        except NotImplementedError as e:
            _warn("shared", "%s: epochs are not planned" % e)
            return n
        except Exception as e:  # noqa: BLE001
            _warn("plan " + uri, "planning %s failed: %r" % (uri, e))
    return n
