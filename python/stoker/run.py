# SPDX-License-Identifier: MIT
"""python -m stoker.run: run an unmodified training script with epoch plans.

    LD_PRELOAD=libstoker_shim.so STOKER_SHIM_MAP=/data/train=s3://bucket/train/ \\
        python -m stoker.run train.py ARGS...
    python -m stoker.run -m package.module ARGS...

Runs the script (or module) as __main__ with sys.argv set, as `python
script.py` / `python -m module` would, after stoker._epoch.install(): each
DataLoader epoch over a map-style dataset draws its order in the main
process, and the files that order will open under a STOKER_SHIM_MAP prefix
become the plan of the DataLoader workers' shim connections (see
stoker._paths for the protocol that turns sample indices into paths, and
register() here to teach it a dataset type).  Exit status and exceptions are
the script's.  Planning never stops a training loop: a failure is one warning.
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import List, Optional

from ._paths import register  # noqa: F401  (stoker.run.register(type, fn))

__all__ = ["register", "install", "main"]

USAGE = """usage: python -m stoker.run SCRIPT [ARGS...]
       python -m stoker.run -m MODULE [ARGS...]
Runs SCRIPT (or MODULE) as __main__ with epoch plans for the stoker shim:
each DataLoader epoch's sample order, as file paths under STOKER_SHIM_MAP,
becomes the plan of the workers' connections (see python/README.md)."""


def install() -> bool:
    """stoker._epoch.install(), or a warning when it cannot be done; True when installed."""
    try:
        from . import _epoch  # noqa: PLC0415
        _epoch.install()
        return True
    except Exception as e:  # noqa: BLE001
        import warnings  # noqa: PLC0415
        warnings.warn("stoker.run: epoch plans are off: %r" % (e,), RuntimeWarning, stacklevel=2)
        return False


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    module = None
    if args[0] == "-m":
        if len(args) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        module, args = args[1], args[2:]
    elif args[0] == "--":
        args = args[1:]
        if not args:
            print(USAGE, file=sys.stderr)
            return 2
    install()
    if module is not None:
        # As `python -m module`: sys.path[0] is the current directory.
        sys.argv = [module] + args
        if sys.path and sys.path[0] in ("", os.getcwd()):
            sys.path[0] = os.getcwd()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script = args[0]
        sys.argv = args
        # As `python script.py`: sys.path[0] is the script's directory (or, for
        # a directory or zip with __main__.py, the path itself).
        target = os.path.abspath(script)
        first = target if os.path.isdir(target) or not script.endswith(".py") and \
            os.path.isfile(target) and _is_zip(target) else os.path.dirname(target)
        if sys.path:
            sys.path[0] = first
        else:
            sys.path.insert(0, first)
        runpy.run_path(script, run_name="__main__")
    return 0


def _is_zip(path):
    import zipfile  # noqa: PLC0415
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
