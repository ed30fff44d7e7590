# SPDX-License-Identifier: MIT
"""stoker: Python client for the stokerd caching daemon, over libstoker (ctypes).

    import stoker, numpy
    client = stoker.Client()                 # $STOKER_SOCKET or /run/stoker/stoker.sock
    ds = client.open("file:///data/train/")  # or open(manifest_uri, manifest=True)
    ds.plan(order)                           # optional: the order you will read in
    with ds.get(ds.find("a/b.jpg")) as v:    # a zero-copy, read-only view
        arr = numpy.frombuffer(v.buffer, numpy.uint8)

Errors are OSError subclasses chosen by the errno (FileNotFoundError,
PermissionError, ConnectionRefusedError, ChildProcessError, ...), with
stoker's message as strerror and the errno as .errno.
"""
from __future__ import annotations

import array
import ctypes
import sys
import threading
import weakref
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from . import _lib
from ._lib import lib

__all__ = ["Client", "Dataset", "View", "STK_VIEW_HIT"]
__version__ = "0.1.0"
STK_VIEW_HIT = _lib.STK_VIEW_HIT


def _check(rc):
    if rc < 0:
        raise _lib.error(rc)
    return rc


class _Handle:
    """A C handle closed once it is both closed and no longer used (by views or datasets)."""

    def __init__(self, ptr, closer, parent=None):
        self._ptr = ptr
        self._closer = closer
        self._parent = parent  # keeps the client alive while a dataset exists
        self._users = 0
        self._closing = False
        self._lock = threading.Lock()

    def ptr(self):
        if self._closing or not self._ptr:
            raise ValueError("operation on a closed stoker handle")
        return self._ptr

    def ref(self):
        with self._lock:
            self._users += 1

    def unref(self):
        with self._lock:
            self._users -= 1
            done = self._closing and self._users == 0
        if done:
            self._destroy()

    def close(self):
        with self._lock:
            if self._closing:
                return
            self._closing = True
            done = self._users == 0
        if done:
            self._destroy()

    def _destroy(self):
        ptr, self._ptr = self._ptr, None
        if ptr:
            self._closer(ptr)
            if self._parent is not None:
                self._parent.unref()


def _release_one(cview, handle):
    lib.stk_release(ctypes.byref(cview))
    handle.unref()


class View:
    """A read-only, zero-copy view of one object.

    ``view.buffer`` is a read-only memoryview of the object's bytes (format
    'B'); ``numpy.frombuffer(view.buffer, dtype)`` and
    ``torch.frombuffer(view.buffer, dtype=...)`` share its memory.  On Python
    3.12+ the view itself has the buffer protocol, so ``memoryview(view)``,
    ``numpy.frombuffer(view)`` and ``torch.frombuffer(view)`` work directly;
    ``numpy.asarray(view)`` works (read-only, zero copy) on every version.

    The object stays held until ``release()``, the end of a ``with`` block,
    or until the view and every memoryview/array made from it are garbage;
    whichever comes first, once.  After ``release()`` arrays made from the
    view must not be used (their memory may be reused).  ``release()``
    raises BufferError while a buffer of ``view.buffer`` is still exported
    (arrays made from it); slices and memoryview() copies of ``view.buffer``
    are not exports and must not be used after ``release()`` either.
    """

    __slots__ = ("_buf", "_fin", "_cv", "index", "size", "flags", "wait_ns", "data_ptr",
                 "__weakref__")

    def __init__(self, cview, handle):
        self.index = cview.index
        self.size = cview.size
        self.flags = cview.flags
        self.wait_ns = cview.wait_ns
        self.data_ptr = cview.data or 0
        self._cv = cview  # the C view, for libstoker_gpu's copies
        handle.ref()
        size = self.size
        if size and self.data_ptr:
            # A power-of-two array type (ctypes caches one type per length, so
            # bound their number), sliced to the object's size.  Every
            # memoryview made from buf keeps arr, which carries the finalizer.
            arr = (ctypes.c_ubyte * (1 << (size - 1).bit_length())).from_address(self.data_ptr)
        else:
            arr = (ctypes.c_ubyte * 0)()
        self._fin = weakref.finalize(arr, _release_one, cview, handle)
        self._buf = memoryview(arr).cast("B")[:size].toreadonly()

    @property
    def buffer(self) -> memoryview:
        if self._buf is None:
            raise ValueError("stoker view already released")
        return self._buf

    @property
    def hit(self) -> bool:
        """True when the object was resident when asked for."""
        return bool(self.flags & STK_VIEW_HIT)

    @property
    def released(self) -> bool:
        return self._buf is None

    def release(self) -> None:
        """Ends the view and lets the daemon reuse the bytes (idempotent)."""
        buf = self._buf
        if buf is None:
            return
        buf.release()  # BufferError while exported: nothing is released then
        self._buf = None
        self._fin()

    def _detach(self):
        """For release_batch: returns the C view and its handle, forgetting them here."""
        buf = self._buf
        if buf is None:
            return None
        buf.release()
        self._buf = None
        info = self._fin.detach()
        return info[2] if info else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __len__(self):
        return self.size

    def __bytes__(self):
        return self.buffer.tobytes()  # a copy

    def tobytes(self) -> bytes:
        return self.buffer.tobytes()

    @property
    def __array_interface__(self):
        if self._buf is None:
            raise ValueError("stoker view already released")
        return {"shape": (self.size,), "typestr": "|u1", "version": 3,
                "data": (self.data_ptr if self.size else 0, True)}

    if sys.version_info >= (3, 12):
        def __buffer__(self, flags):
            return memoryview(self.buffer)

        def __release_buffer__(self, view):
            view.release()

    def __repr__(self):
        state = "released" if self._buf is None else "hit" if self.hit else "miss"
        return "<stoker.View index=%d size=%d %s>" % (self.index, self.size, state)


def _u32_array(indices):
    a = indices if isinstance(indices, array.array) and indices.itemsize == 4 \
        and indices.typecode in "IL" else array.array("I", indices)
    if a.itemsize != 4:
        raise TypeError("stoker: no 32-bit array typecode")
    n = len(a)
    ptr = (ctypes.c_uint32 * n).from_buffer(a) if n else None
    return a, ptr, n


class _Closable:
    """What Dataset and Client share: closing through their handle (each has
    its close()) by with and del, and the closed property."""

    @property
    def closed(self):
        return self._h._closing

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()


class Dataset(_Closable):
    """An open dataset: a sequence of objects, each with a key and a size."""

    def __init__(self, client, handle, uri):
        self._client = client  # keeps the client alive
        self._h = handle
        self.uri = uri

    def __len__(self):
        return lib.stk_dataset_count(self._h.ptr())

    @property
    def nbytes(self) -> int:
        """The sum of the objects' sizes."""
        return lib.stk_dataset_bytes(self._h.ptr())

    def _index(self, i):
        i = int(i)
        if i < 0:
            i += len(self)
        if i < 0:
            raise IndexError("stoker: index out of range")
        return i

    def _object(self, i):
        key, size = ctypes.c_char_p(), ctypes.c_uint64()
        rc = lib.stk_dataset_object(self._h.ptr(), self._index(i), ctypes.byref(key), ctypes.byref(size))
        if rc < 0:
            raise IndexError("stoker: index %d out of range (%d objects)" % (i, len(self)))
        return key.value.decode("utf-8", "surrogateescape"), size.value

    def key(self, i: int) -> str:
        """The key (relative path or URI) of object i."""
        return self._object(i)[0]

    def size(self, i: int) -> int:
        """The size in bytes of object i."""
        return self._object(i)[1]

    def find(self, key: Union[str, bytes]) -> int:
        """The (lowest) index of key; raises KeyError when no object has it."""
        idx = ctypes.c_size_t()
        k = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        if lib.stk_dataset_find(self._h.ptr(), k, ctypes.byref(idx)) < 0:
            raise KeyError(key)
        return idx.value

    def __contains__(self, key):
        try:
            self.find(key)
            return True
        except KeyError:
            return False

    def get(self, i: int) -> View:
        """Gets object i (blocking until resident) as a zero-copy View."""
        i = self._index(i)
        cv = _lib.View()
        _check(lib.stk_get(self._h.ptr(), i, ctypes.byref(cv)))
        return View(cv, self._h)

    def get_batch(self, indices: Sequence[int]) -> List[View]:
        """Gets several objects in few round trips; all or nothing.  Returns a list of Views."""
        a, ptr, n = _u32_array(indices)
        if n == 0:
            return []
        cvs = (_lib.View * n)()
        _check(lib.stk_get_batch(self._h.ptr(), ptr, n, cvs))
        out = []
        try:
            for k in range(n):
                cv = _lib.View.from_buffer_copy(cvs[k])
                out.append(View(cv, self._h))
        except BaseException:
            for v in out:
                v.release()
            for k in range(len(out), n):
                lib.stk_release(ctypes.byref(cvs[k]))
            raise
        return out

    def release_batch(self, views: Sequence[View]) -> None:
        """Releases several views in as few messages as possible."""
        cvs = []
        for v in views:
            info = v._detach()
            if info is not None:
                cvs.append(info)
        if not cvs:
            return
        arr = (_lib.View * len(cvs))(*[cv for cv, _ in cvs])
        lib.stk_release_batch(arr, len(cvs))
        for _, h in cvs:
            h.unref()

    def plan(self, indices: Sequence[int], shared: bool = False) -> None:
        """Tells the daemon the order in which objects will be read (replaces the last plan).

        shared=False: this dataset handle's own gets will follow the order.
        shared=True: the plan-less gets of every connection in this client's
        plan group (Client(plan_group=...) or $STOKER_PLAN_GROUP; e.g. the
        DataLoader workers of one rank, each with its own connection) will
        follow it, interleaved; this handle need not get anything.
        """
        if shared and not hasattr(lib, "stk_plan_shared"):
            raise NotImplementedError("plan(shared=True): this libstoker has no stk_plan_shared")
        a, ptr, n = _u32_array(indices)
        _check((lib.stk_plan_shared if shared else lib.stk_plan)(self._h.ptr(), ptr, n))

    def get_to_device(self, i: int, dst: Any, stream: Any = None,
                      device: Optional[int] = None) -> Any:
        """Gets object i and queues its copy into device memory (CUDA).

        dst: a contiguous CUDA tensor at least as large as the object, or an
        int device pointer (then device is its CUDA ordinal, default 0).
        stream: a torch.cuda.Stream, an int cudaStream_t, or None (the legacy
        default stream).  The copy is queued with cudaMemcpyAsync from the
        pinned arena (each shared segment is registered with the driver once)
        and this returns at once with a DeviceCopy, which holds the object
        until ``wait()``, the end of its ``with`` block, or garbage
        collection; order work on the same stream after it, or wait().
        OSError (from the errno) when CUDA or a device is missing.
        """
        from . import _gpu

        return _gpu.get_to_device(self, self._index(i), dst, stream, device)

    def device_batches(self, batches: Iterable[Sequence[int]], max_batch_bytes: int,
                       device: int = 0, copy_stream: Any = None,
                       compute_stream: Any = None) -> Iterator[Any]:
        """Yields each batch of indices as a DeviceBatch in device memory,
        copying batch i+1 on copy_stream while the caller computes on batch i
        on compute_stream (the double-buffered pipe of stoker/gpu.h).  Each
        batch is valid until the next one is taken; queue all work that reads
        it on compute_stream before then.  ``batch.tensors()`` gives its
        objects as uint8 CUDA tensors; ``batch.wait_ns`` is how long the host
        waited for its copy (reported to stokerd as delivery stall)."""
        from . import _gpu

        return _gpu.device_batches(self, batches, max_batch_bytes, device, copy_stream,
                                   compute_stream)

    def warm(self) -> None:
        """Asks the daemon to fetch every object (in index order, evicting nothing); returns at once."""
        _check(lib.stk_warm(self._h.ptr()))

    def status(self) -> Dict[str, Any]:
        """The dataset's state in the cache, as a dict.  'warm' is one of
        'none', 'running', 'done', 'full'; 'error' is the daemon's message for
        the most recent failed fetch when 'failed' > 0, else None."""
        st = _lib.DatasetStatus()
        _check(lib.stk_dataset_status(self._h.ptr(), ctypes.byref(st)))
        d = {name: getattr(st, name) for name, _ in _lib.DatasetStatus._fields_}
        d["warm"] = _lib.WARM_NAMES.get(st.warm, str(st.warm))
        d["error"] = _lib.errmsg() if st.failed else None
        return d

    def close(self):
        """Closes the dataset (deferred until its last View is released)."""
        self._h.close()


    def __repr__(self):
        return "<stoker.Dataset %r>" % (self.uri,)


class Client(_Closable):
    """A connection to stokerd.

    socket: the daemon's socket path (None: $STOKER_SOCKET, else
    /run/stoker/stoker.sock).  timeout: seconds a call waits for a silent
    daemon (None: $STOKER_TIMEOUT, else 30; 0: never).  plan_group: the
    plan group this connection joins (None: $STOKER_PLAN_GROUP, unset: none);
    see Dataset.plan(shared=True).
    """

    def __init__(self, socket: Union[str, bytes, None] = None, timeout: Optional[float] = None,
                 plan_group: Optional[str] = None) -> None:
        opts = _lib.ConnectOpts()
        opts.opts_size = ctypes.sizeof(opts)
        self._sock = None if socket is None else (socket.encode() if isinstance(socket, str) else bytes(socket))
        opts.socket_path = self._sock
        self._group = None if plan_group is None else str(plan_group).encode()
        opts.plan_group = self._group
        if timeout is not None:
            opts.timeout_ms = _lib.STK_TIMEOUT_NEVER if timeout == 0 else max(1, int(timeout * 1000))
        out = ctypes.c_void_p()
        _check(lib.stk_connect(ctypes.byref(opts), ctypes.byref(out)))
        self._h = _Handle(out.value, lib.stk_close)

    def open(self, uri: Union[str, bytes], manifest: bool = False, zstd: bool = False) -> Dataset:
        """Opens a dataset: a file:// URI or absolute path (directory or one
        file), or with manifest=True a manifest's URI.  With zstd=True,
        objects named *.zst are served decompressed, under keys without
        ".zst" and with their plain sizes (STK_DS_ZSTD in stoker.h)."""
        u = uri.encode("utf-8", "surrogateescape") if isinstance(uri, str) else bytes(uri)
        out = ctypes.c_void_p()
        flags = (_lib.STK_DS_MANIFEST if manifest else 0) | (_lib.STK_DS_ZSTD if zstd else 0)
        _check(lib.stk_dataset_open(self._h.ptr(), u, flags, ctypes.byref(out)))
        self._h.ref()
        return Dataset(self, _Handle(out.value, lib.stk_dataset_close, self._h), uri)

    def stats(self) -> Dict[str, int]:
        """The counters (struct stk_stats) as a dict: client_* for this process, the rest the daemon's."""
        st = _lib.Stats()
        st.size = ctypes.sizeof(st)
        _check(lib.stk_stats(self._h.ptr(), ctypes.byref(st)))
        return {name: getattr(st, name) for name in _lib.STATS_FIELDS}

    def _gpu_state(self):
        """This client's stagers and arena registration (stoker._gpu), made on first use."""
        g = self.__dict__.get("_gpu")
        if g is None:
            from . import _gpu

            g = self._gpu = _gpu._ClientGPU()
        return g

    def close(self):
        """Closes the connection (deferred until its datasets are closed)."""
        g = self.__dict__.pop("_gpu", None)
        if g is not None:
            g.close()
        self._h.close()

