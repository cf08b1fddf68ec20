"""The benchmark: corpus → clips → distortions → answers → report (see README.md).

Timings are meant per core: NumPy's and SciPy's thread pools are kept to one thread
before either is imported (a caller that sets these variables itself wins).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")
