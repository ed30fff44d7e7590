# SPDX-License-Identifier: MIT
"""Host-to-device copies out of stoker views: libstoker_gpu over ctypes.

Loaded on first use, so `import stoker` never needs CUDA.  The client's
shared arena is registered with the CUDA driver once per segment
(stk_gpu_pin_arena), so every resident object is DMA-able with no per-get
registration; copies are queued with cudaMemcpyAsync on the caller's stream
by one stager per (device, stream).  See include/stoker/gpu.h.
"""
import ctypes
import glob
import os
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint32, c_uint64, c_void_p

from . import _lib

_L = None


class _Batch(ctypes.Structure):
    _fields_ = [("data", c_void_p), ("n", c_size_t), ("offsets", POINTER(c_uint64)),
                ("sizes", POINTER(c_uint64)), ("index", POINTER(c_uint32)), ("bytes", c_uint64),
                ("wait_ns", c_uint64)]


def _candidates():
    env = os.environ.get("STOKER_GPU_LIB")
    if env:
        yield env
        return
    # Next to the libstoker in use (an install's libdir), or in a build tree's gpu/.
    d = os.path.dirname(os.path.abspath(_lib.lib._name)) if "/" in _lib.lib._name else ""
    if d:
        yield from sorted(glob.glob(os.path.join(d, "libstoker_gpu.so*")))
        yield from sorted(glob.glob(os.path.join(d, "..", "gpu", "libstoker_gpu.so*")))
    try:
        from ._install import LIBDIR
    except ImportError:
        pass
    else:
        yield os.path.join(LIBDIR, "libstoker_gpu.so.0")
    yield "libstoker_gpu.so.0"


def lib():
    """libstoker_gpu, loaded once; ImportError naming what was tried."""
    global _L
    if _L is not None:
        return _L
    tried = []
    for name in _candidates():
        try:
            L = ctypes.CDLL(name)
            break
        except OSError as e:
            tried.append("%s (%s)" % (name, e))
    else:
        raise ImportError("stoker: libstoker_gpu not found; tried " + "; ".join(tried)
                          + ". Set STOKER_GPU_LIB to the path of libstoker_gpu.so.")
    for name, res, args in [
        ("stk_gpu_available", c_int, [c_char_p, c_size_t]),
        ("stk_gpu_errmsg", c_char_p, []),
        ("stk_gpu_stager_create", c_int, [c_int, c_void_p, POINTER(c_void_p)]),
        ("stk_gpu_stager_destroy", None, [c_void_p]),
        ("stk_gpu_copy_view_async", c_int,
         [c_void_p, POINTER(_lib.View), c_uint64, c_size_t, c_void_p]),
        ("stk_gpu_sync", c_int, [c_void_p]),
        ("stk_gpu_pin_arena", c_int, [c_void_p, c_int]),
        ("stk_gpu_pipe_create", c_int, [c_void_p, c_int, c_void_p, c_size_t, POINTER(c_void_p)]),
        ("stk_gpu_pipe_submit", c_int, [c_void_p, POINTER(c_uint32), c_size_t]),
        ("stk_gpu_pipe_next", c_int, [c_void_p, c_void_p, POINTER(_Batch)]),
        ("stk_gpu_pipe_destroy", None, [c_void_p]),
    ]:
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    _L = L
    return L


def _check(rc):
    """Raises the OSError for a negative errno from libstoker_gpu (or libstoker under it)."""
    if rc >= 0:
        return rc
    m = _L.stk_gpu_errmsg()  # every failing stk_gpu_ call sets it, libstoker's cause included
    raise OSError(-rc, m.decode("utf-8", "replace") if m else os.strerror(-rc))


def available():
    """(True, "") when a CUDA device can be used, else (False, why)."""
    try:
        L = lib()
    except ImportError as e:
        return False, str(e)
    why = ctypes.create_string_buffer(256)
    ok = L.stk_gpu_available(why, len(why))
    return bool(ok), why.value.decode("utf-8", "replace")


def _stream(stream):
    """A cudaStream_t as an int: None (legacy default stream), an int, or a
    torch.cuda.Stream (anything with .cuda_stream)."""
    if stream is None:
        return 0
    if isinstance(stream, int):
        return stream
    s = getattr(stream, "cuda_stream", None)
    if isinstance(s, int):
        return s
    raise TypeError("stream must be None, an int cudaStream_t or a torch.cuda.Stream, not %r"
                    % type(stream).__name__)


def _dst(dst, device):
    """(pointer, device, capacity or None) of a destination: an int device
    pointer (device defaults to 0) or a contiguous CUDA tensor."""
    if isinstance(dst, int):
        return dst, 0 if device is None else int(device), None
    if hasattr(dst, "data_ptr") and hasattr(dst, "is_cuda"):
        if not dst.is_cuda:
            raise ValueError("get_to_device: the tensor is not on a CUDA device")
        if not dst.is_contiguous():
            raise ValueError("get_to_device: the tensor is not contiguous")
        return dst.data_ptr(), dst.device.index or 0, dst.numel() * dst.element_size()
    raise TypeError("dst must be an int device pointer or a CUDA tensor, not %r"
                    % type(dst).__name__)


class _ClientGPU:
    """A client's GPU state: devices whose arena registration is on, and one
    stager per (device, stream).  Freed by Client.close()."""

    def __init__(self):
        self.pinned = set()
        self.stagers = {}

    def pin(self, client, device):
        """Registers the client's arena segments with the driver (once)."""
        if device not in self.pinned:
            _check(lib().stk_gpu_pin_arena(client._h.ptr(), device))
            self.pinned.add(device)

    def stager(self, client, device, stream):
        L = lib()
        self.pin(client, device)
        s = self.stagers.get((device, stream))
        if s is None:
            out = c_void_p()
            _check(L.stk_gpu_stager_create(device, stream, ctypes.byref(out)))
            s = self.stagers[(device, stream)] = out.value
        return s

    def close(self):
        stagers, self.stagers = self.stagers, {}
        for s in stagers.values():
            _L.stk_gpu_stager_destroy(s)  # waits for its stream first


class DeviceCopy:
    """A queued host-to-device copy of one object.  Its view stays held until
    the copy is known to be done: ``wait()`` (stream synchronize, then
    release), the end of a ``with`` block, or garbage collection."""

    def __init__(self, view, stager):
        self.view = view
        self.size = view.size
        self.index = view.index
        self._stager = stager

    def wait(self):
        """Waits for the copy's stream, then releases the view.  Idempotent."""
        v, self.view = self.view, None
        if v is None:
            return
        try:
            _check(_L.stk_gpu_sync(self._stager))
        finally:
            v.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.wait()

    def __del__(self):
        try:
            self.wait()
        except Exception:
            pass


def get_to_device(ds, i, dst, stream, device):
    ptr, dev, cap = _dst(dst, device)
    st = _stream(stream)
    s = ds._client._gpu_state().stager(ds._client, dev, st)
    v = ds.get(i)
    try:
        if cap is not None and v.size > cap:
            raise ValueError("get_to_device: object %d is %d bytes; the tensor holds %d"
                             % (v.index, v.size, cap))
        _check(_L.stk_gpu_copy_view_async(s, ctypes.byref(v._cv), 0, v.size, ptr))
    except BaseException:
        v.release()
        raise
    return DeviceCopy(v, s)


class DeviceBatch:
    """One step's objects in device memory (valid until the next batch is taken)."""

    __slots__ = ("ptr", "offsets", "sizes", "indices", "nbytes", "wait_ns", "device")

    def tensors(self):
        """The objects as 1-D uint8 CUDA tensors sharing the batch's memory (torch)."""
        import torch

        out = []
        for off, size in zip(self.offsets, self.sizes):
            out.append(torch.as_tensor(_CudaArray(self.ptr + off, size), device="cuda:%d" % self.device))
        return out


class _CudaArray:
    """__cuda_array_interface__ (v2) of size bytes at a device pointer."""

    def __init__(self, ptr, size):
        self.__cuda_array_interface__ = {"shape": (size,), "typestr": "|u1", "data": (ptr, False),
                                         "version": 2}


def device_batches(ds, batches, max_batch_bytes, device, copy_stream, compute_stream):
    """Yields a DeviceBatch per batch of indices; batch i+1's copy overlaps batch i's compute."""
    from . import _u32_array

    L = lib()
    cs = _stream(copy_stream)
    ks = _stream(compute_stream)
    ds._client._gpu_state().pin(ds._client, device)
    p = c_void_p()
    _check(L.stk_gpu_pipe_create(ds._h.ptr(), device, cs, max_batch_bytes, ctypes.byref(p)))
    it = iter(batches)

    def submit():
        idx = next(it, None)
        if idx is None:
            return False
        a, ptr, n = _u32_array(idx)
        _check(L.stk_gpu_pipe_submit(p, ptr, n))
        return True

    try:
        more = submit()
        while more:
            b = _Batch()
            _check(L.stk_gpu_pipe_next(p, ks, ctypes.byref(b)))
            db = DeviceBatch()
            db.ptr, db.nbytes, db.wait_ns, db.device = b.data or 0, b.bytes, b.wait_ns, device
            db.offsets = [b.offsets[k] for k in range(b.n)]
            db.sizes = [b.sizes[k] for k in range(b.n)]
            db.indices = [b.index[k] for k in range(b.n)]
            more = submit()  # its copy runs while the caller computes on db
            yield db
    finally:
        L.stk_gpu_pipe_destroy(p)

