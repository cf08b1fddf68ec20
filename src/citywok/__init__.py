"""CityWok: tell which TV episode a short clip comes from, and where in it.

The core is a pipeline of stages, one module each::

    decode → spectrogram → peaks → hashes → index → match

composed by :mod:`citywok.pipeline`; :mod:`citywok.cli.main` and :mod:`citywok.web` are thin
shells over it.
"""

__version__ = "0.1.0"
