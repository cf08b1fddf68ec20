"""``citywok``: the command-line shell (``main``), one module per group of commands.

NumPy's BLAS (OpenBLAS) and any OpenMP pool are kept to one thread before NumPy loads,
as the bench runs them (a caller that sets these variables itself wins): a query's
products are small (a clip's 300 x 200 spectrogram by a 200 x 17 band matrix), and a
second thread only adds its wake-up, which on a busy machine costs milliseconds a product
(8 ms against 0.05 ms measured on two shared cores), more than the product itself.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
