"""The errors of :mod:`citywok.vision`, placed in CityWok's one tree.

::

    CityWokError
    ├── MediaError
    │   └── PictureError               the input's pictures cannot be used
    │       ├── NoVideoStreamError     a file with no video stream (audio only, or not media)
    │       ├── EmptyVideoError        a video stream without a single decodable frame
    │       ├── CorruptPictureError    the image or video decoder failed
    │       ├── PictureTooLargeError   over the pixel or byte limits (an image bomb)
    │       └── NoPicturesIndexedError a screenshot, but the index holds no pictures
    └── IndexStoreError
        ├── IndexFormatError
        │   └── FrameIndexFormatError  not a frame index, or one from another version
        └── IndexParamsMismatchError
            └── FrameParamsMismatchError  built with other frame-analysis parameters

They subclass the engine's own classes, so the shells' existing tables (exit codes,
HTTP statuses) already answer them; each has its own ``code`` for JSON bodies.
"""

from __future__ import annotations

from citywok.errors import IndexFormatError, IndexParamsMismatchError, MediaError


class PictureError(MediaError):
    code = "bad_picture"


class NoVideoStreamError(PictureError):
    code = "no_video_stream"


class EmptyVideoError(PictureError):
    code = "empty_video"


class CorruptPictureError(PictureError):
    code = "corrupt_picture"


class PictureTooLargeError(PictureError):
    code = "picture_too_large"


class NoPicturesIndexedError(PictureError):
    code = "no_pictures_indexed"


class FrameIndexFormatError(IndexFormatError):
    code = "frame_index_format"


class FrameParamsMismatchError(IndexParamsMismatchError):
    code = "frame_params_mismatch"
