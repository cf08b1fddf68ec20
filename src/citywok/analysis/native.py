"""SciPy's compiled kernels, without SciPy's import.

``import scipy.fft`` and ``import scipy.ndimage`` take 0.2-0.5 s each (SciPy 1.17 builds
its array-API layer and parses docstrings as it imports), more than a clip's whole
query. The spectrogram and the peaks need two compiled modules of it, pocketfft's real
FFT and ndimage's line filters, which need none of that: each is loaded here from its
file under its own name, so that a later ``import scipy.fft`` or ``import
scipy.ndimage`` uses the same module, and the results are SciPy's bit for bit (called
as SciPy's own wrappers call them; tests compare them with ``scipy.fft.rfft`` and
``scipy.ndimage.uniform_filter1d``). A SciPy laid out otherwise is imported the
ordinary way.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

#: One loader at a time: a compiled module is initialised once per process.
_loading = threading.Lock()


def _extension(name: str) -> ModuleType:
    """The compiled module ``name`` (``scipy.<package path>.<module>``), loaded from its
    file without its packages' ``__init__``."""
    with _loading:
        if name in sys.modules:
            return sys.modules[name]
        return _load(name)


def _load(name: str) -> ModuleType:
    top, *inner = name.split(".")
    spec = importlib.util.find_spec(top)  # finds the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(root, *inner[:-1], inner[-1] + suffix)
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader(name, str(path))
                found = importlib.util.spec_from_file_location(name, path, loader=loader)
                assert found is not None
                module = importlib.util.module_from_spec(found)
                loader.exec_module(module)
                sys.modules[name] = module
                return module
    return importlib.import_module(name)  # not laid out as expected


@functools.cache
def pocketfft() -> ModuleType:
    """SciPy's pocketfft (``scipy.fft.rfft(x, axis=a)`` is ``r2c(x, (a,), True, 0,
    None, 1)``: forward, no normalisation, one thread)."""
    return _extension("scipy.fft._pocketfft.pypocketfft")


@functools.cache
def nd_image() -> ModuleType:
    """SciPy's ndimage filters (``uniform_filter1d(x, size, axis=a, mode="nearest")``
    is ``uniform_filter1d(x, size, a, out, 0, 0.0, 0)`` into a float32 ``out``)."""
    return _extension("scipy.ndimage._nd_image")
