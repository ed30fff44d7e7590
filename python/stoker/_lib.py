# SPDX-License-Identifier: MIT
"""ctypes declarations for libstoker (include/stoker.h).  Internal."""
import ctypes
import ctypes.util
import glob
import os

c_int, c_uint, c_size_t = ctypes.c_int, ctypes.c_uint, ctypes.c_size_t
c_u32, c_u64, c_char_p, c_void_p = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_void_p
POINTER, byref = ctypes.POINTER, ctypes.byref

STK_DS_MANIFEST = 0x1
STK_DS_ZSTD = 0x2
STK_VIEW_HIT = 0x1
STK_TIMEOUT_NEVER = 0xFFFFFFFF
WARM_NAMES = {0: "none", 1: "running", 2: "done", 3: "full"}


class ConnectOpts(ctypes.Structure):
    _fields_ = [("opts_size", c_size_t), ("socket_path", c_char_p), ("timeout_ms", c_u32),
                ("plan_group", c_char_p)]


class View(ctypes.Structure):
    _fields_ = [("data", c_void_p), ("size", c_u64), ("index", c_u32), ("flags", c_u32),
                ("wait_ns", c_u64), ("ds", c_void_p), ("seg", c_u32), ("gen", c_u32)]


class DatasetStatus(ctypes.Structure):
    _fields_ = [("objects", c_u32), ("resident", c_u32), ("inflight", c_u32), ("failed", c_u32),
                ("bytes", c_u64), ("resident_bytes", c_u64), ("warm", c_u32)]


STATS_FIELDS = [
    "client_gets", "client_hits", "client_misses", "client_bytes", "client_wait_ns",
    "gets", "hits_ram", "misses", "fetches", "fetch_bytes", "fetch_ns", "fetch_errors",
    "evictions", "ram_budget", "ram_used", "resident_objects", "inflight_objects",
    "pinned_objects", "clients", "datasets", "prefetches",
    "waits", "stall_ns", "stall_fetch_ns", "stall_delivery_ns", "stall_avoided_ns",
    "stall_avoided_model_ns", "delivered_bytes", "self_stall_ns", "self_stall_fetch_ns",
    "self_stall_avoided_ns",
    "nvme_budget", "nvme_used", "nvme_objects", "hits_nvme", "nvme_reads", "nvme_read_bytes",
    "nvme_writes", "nvme_write_bytes", "nvme_dropped_corrupt", "nvme_degraded",
    "nvme_stored_bytes", "nvme_plain_bytes", "nvme_codec_ns",
]


class Stats(ctypes.Structure):
    _fields_ = [("size", c_size_t)] + [(n, c_u64) for n in STATS_FIELDS]


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    for p in sorted(glob.glob(os.path.join(here, "libstoker.so*"))):
        yield p
    try:  # written by `cmake --install` next to the installed package
        from ._install import LIBDIR
    except ImportError:
        pass
    else:
        yield os.path.join(LIBDIR, "libstoker.so.0")
    found = ctypes.util.find_library("stoker")
    if found:
        yield found
    yield "libstoker.so.0"
    yield "libstoker.so"


def _load():
    env = os.environ.get("STOKER_LIB")
    if env:
        try:
            return ctypes.CDLL(env)
        except OSError as e:
            raise ImportError("stoker: cannot load STOKER_LIB=%s: %s" % (env, e)) from None
    tried = []
    for name in _candidates():
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s (%s)" % (name, e))
    raise ImportError("stoker: libstoker not found; tried $STOKER_LIB (unset), "
                      + "; ".join(tried)
                      + ". Set STOKER_LIB to the path of libstoker.so.")


lib = _load()


def _decl(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_client_p, _ds_p = c_void_p, c_void_p
_decl("stk_connect", c_int, POINTER(ConnectOpts), POINTER(c_void_p))
_decl("stk_close", None, _client_p)
_decl("stk_dataset_open", c_int, _client_p, c_char_p, c_uint, POINTER(c_void_p))
_decl("stk_dataset_close", None, _ds_p)
_decl("stk_dataset_count", c_size_t, _ds_p)
_decl("stk_dataset_bytes", c_u64, _ds_p)
_decl("stk_dataset_object", c_int, _ds_p, c_size_t, POINTER(c_char_p), POINTER(c_u64))
_decl("stk_dataset_find", c_int, _ds_p, c_char_p, POINTER(c_size_t))
_decl("stk_plan", c_int, _ds_p, POINTER(c_u32), c_size_t)
if hasattr(lib, "stk_plan_shared"):  # libstoker >= 0.6; Dataset.plan(shared=True) says so otherwise
    _decl("stk_plan_shared", c_int, _ds_p, POINTER(c_u32), c_size_t)
_decl("stk_get", c_int, _ds_p, c_size_t, POINTER(View))
_decl("stk_release", None, POINTER(View))
_decl("stk_get_batch", c_int, _ds_p, POINTER(c_u32), c_size_t, POINTER(View))
_decl("stk_release_batch", None, POINTER(View), c_size_t)
_decl("stk_warm", c_int, _ds_p)
_decl("stk_dataset_status", c_int, _ds_p, POINTER(DatasetStatus))
_decl("stk_stats", c_int, _client_p, POINTER(Stats))
_decl("stk_strerror", c_char_p, c_int)
_decl("stk_errmsg", c_char_p)


def errmsg():
    m = lib.stk_errmsg()
    return m.decode("utf-8", "replace") if m else ""


def error(rc):
    """The exception for a negative errno rc; call right after the failing call (same thread)."""
    msg = errmsg()
    if not msg:
        s = lib.stk_strerror(rc)
        msg = s.decode("utf-8", "replace") if s else os.strerror(-rc)
    # OSError(errno, msg) picks the subclass: FileNotFoundError, PermissionError, ...
    return OSError(-rc, msg)
