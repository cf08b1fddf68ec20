"""Pictures: name the episode, and the time in it, from video frames or a screenshot.

The package reads as its data flow, pure functions over arrays except where a module
says it runs ffmpeg or reads a file::

    frames   (ffmpeg → small grey frames, times; images through Pillow, bounded)
      → dedupe   (skip near-duplicate frames at index time)
      → descriptor (64-bit DCT hashes of overlapping vertical strips of each frame)
      → store    (self-describing folder of numpy arrays: codes, times, episodes)
      → search   (content box of the query: bars, picture-in-picture; FAISS Hamming
                  range search; votes for one place per episode, time and crop)

Every error it raises on purpose is in :mod:`citywok.vision.errors`.
"""

#: Files answered as a screenshot, by suffix (here, not in ``frames``: the CLI asks before
#: it imports NumPy or Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
