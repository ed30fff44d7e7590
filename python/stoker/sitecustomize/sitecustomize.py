# SPDX-License-Identifier: MIT
"""stoker's opt-in sitecustomize: epoch plans for unmodified programs in a container.

Opt in with either
  - PYTHONPATH=/opt/stoker/python/stoker/sitecustomize (this directory), or
  - two lines in the container's own sitecustomize.py:
        import sys; sys.path.append("/opt/stoker/python/stoker/sitecustomize")
        import stoker_autoplan
(see stoker_autoplan.py: lazy until torch is imported; off without
STOKER_SHIM_MAP or with STOKER_AUTOPLAN=0).  The sitecustomize this file
shadows on sys.path (Debian's /usr/lib/python3.X/sitecustomize.py) still runs.
"""
import os
import sys

try:
    import stoker_autoplan  # noqa: F401
except Exception as e:  # noqa: BLE001
    print("stoker sitecustomize: %r" % (e,), file=sys.stderr)


def _chain():
    """Runs the next sitecustomize on sys.path, the one this file shadows."""
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        from importlib.machinery import PathFinder  # noqa: PLC0415
        rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
        spec = PathFinder.find_spec("sitecustomize", rest)
        if spec is None or spec.origin is None or spec.loader is None:
            return
        if os.path.abspath(spec.origin) == os.path.abspath(__file__):
            return
        import importlib.util  # noqa: PLC0415
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001
        print("stoker sitecustomize: the next sitecustomize failed: %r" % (e,), file=sys.stderr)


if __name__ == "sitecustomize":
    _chain()
