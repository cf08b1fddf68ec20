import subprocess
import sys

_PROBE = """
import sys
import numpy as np
from citywok.analysis.peaks import find_peaks
from citywok.params import AnalysisParams, MatchParams
x = np.random.default_rng(0).standard_normal(40000).astype(np.float32)
peaks = find_peaks(x, params=AnalysisParams(), peak_params=MatchParams().query_peaks)
assert len(peaks) > 0
print(sorted(m for m in sys.modules if m == "scipy" or m.startswith("scipy.")))
import scipy.fft
import scipy.ndimage
print(scipy.fft._pocketfft.basic.pfft is sys.modules["scipy.fft._pocketfft.pypocketfft"],
      scipy.ndimage._filters._nd_image is sys.modules["scipy.ndimage._nd_image"])
"""


def test_peaks_load_scipys_kernels_alone_and_scipy_then_shares_them() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["['scipy.fft._pocketfft.pypocketfft', 'scipy.ndimage._nd_image']",
                   "True True"], out


def test_threads_loading_at_once_get_one_module() -> None:
    code = """
import threading
from citywok.analysis import native
got = []
def load() -> None:
    got.append((native.pocketfft(), native.nd_image()))
threads = [threading.Thread(target=load) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(got), len({id(p) for p, _ in got}), len({id(n) for _, n in got}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["8", "1", "1"], out
