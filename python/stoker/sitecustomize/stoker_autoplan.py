# SPDX-License-Identifier: MIT
"""stoker_autoplan: epoch plans for every Python program that imports torch, lazily.

Importing this module (as this directory's sitecustomize.py does) installs a
hook that waits for the program to import torch; nothing else is imported and
libstoker is not loaded before that, and nothing at all happens unless
STOKER_SHIM_MAP is set and STOKER_AUTOPLAN is not 0.  When torch's import
finishes, stoker.run.install() (stoker._epoch.install()) runs: the same as
`python -m stoker.run SCRIPT`.  Any failure is one warning; the program is
never stopped by this module.
"""
import os
import sys


def _stoker_install():
    try:
        import importlib.util  # noqa: PLC0415
        if importlib.util.find_spec("stoker") is None:
            # The package this file ships in: python/stoker/sitecustomize/ -> python/
            here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            sys.path.append(here)
        from stoker.run import install  # noqa: PLC0415
        install()
    except Exception as e:  # noqa: BLE001
        import warnings  # noqa: PLC0415
        warnings.warn("stoker sitecustomize: epoch plans are off: %r" % (e,), RuntimeWarning)


class _StokerTorchHook:
    """A meta path finder that lets `torch` import as usual, then installs."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        try:
            sys.meta_path.remove(self)  # once
        except ValueError:
            pass
        import importlib.util  # noqa: PLC0415
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None) if spec is not None else None
        orig = getattr(loader, "exec_module", None)
        if orig is None:
            return spec

        def exec_module(module):
            try:
                orig(module)
            finally:
                try:
                    del loader.exec_module  # back to the class's method
                except AttributeError:
                    pass
            _stoker_install()  # only when torch imported

        try:
            loader.exec_module = exec_module
        except Exception:  # noqa: BLE001  (a loader without instance attributes)
            return spec
        return spec


def enable():
    """Installs the hook (idempotent); a no-op without STOKER_SHIM_MAP or with STOKER_AUTOPLAN=0."""
    if os.environ.get("STOKER_AUTOPLAN", "1").lower() in ("0", "no", "off", "false"):
        return
    if not os.environ.get("STOKER_SHIM_MAP"):
        return
    if "torch" in sys.modules:
        _stoker_install()
        return
    if not any(isinstance(f, _StokerTorchHook) or type(f).__name__ == "_StokerTorchHook"
               for f in sys.meta_path):
        sys.meta_path.insert(0, _StokerTorchHook())


try:
    enable()
except Exception:  # noqa: BLE001
    pass
