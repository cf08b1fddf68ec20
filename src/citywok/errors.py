"""The one exception tree of CityWok.

::

    CityWokError                      anything CityWok raises on purpose
    ├── MediaError                    the input audio cannot be used
    │   ├── NotMediaError             not a media file, or no audio stream in it
    │   ├── CorruptMediaError         the decoder failed part-way
    │   ├── EmptyMediaError           no samples, or shorter than a clip can be
    │   ├── SilentMediaError          only digital silence
    │   └── MediaTooLongError         longer than the caller allows
    ├── IndexStoreError               the on-disk index cannot be used
    │   ├── IndexNotFoundError        no index at that path
    │   ├── IndexFormatError          wrong magic, unknown version, truncated or damaged file
    │   ├── IndexParamsMismatchError  built with other analysis parameters
    │   ├── IndexLockedError          another writer holds the index
    │   └── IndexWriteError           the index cannot be written (disk full, read-only)
    ├── EpisodeNotFoundError          no such episode id in the catalogue
    ├── KeyNotFoundError              no active API key with that id
    ├── DatabaseUnavailableError      the database of API keys and usage cannot be used
    ├── LibraryError                  a library folder or sidecar CSV is unusable
    │   ├── NoMediaFoundError         nothing under the paths given is media
    │   ├── IndexingFailedError       no media file given could be indexed
    │   └── IndexingIncompleteError   some media files could not be indexed, others were
    ├── InputsIncompleteError         some inputs could not be read, the others were answered
    ├── FetchError                    a link could not be turned into media
    │   ├── URLRefusedError           scheme, host, address, port or platform not allowed
    │   ├── DownloadTooLargeError     over the size or duration cap
    │   └── DownloadFailedError       the remote end or the downloader failed
    ├── SnapshotError                 an index snapshot cannot be pushed or pulled
    │   └── SnapshotCorruptError      a snapshot is incomplete or fails its checksums
    ├── RateLimitedError              too many requests for this client
    ├── ServiceBusyError              more work queued than can be answered in time
    └── ConfigError                   settings that cannot work together

Apart from the tree, :class:`IndexInterrupted` is a ``KeyboardInterrupt``: work stopped
on request is not an error, and nothing that catches errors must swallow it.

The shells map these to exit codes (``citywok.cli.main``) and HTTP statuses
(``citywok.web``), each in exactly one table. Messages are written for the person who
sent the input: they never contain a traceback, and they name no server-side path that
the caller did not give.
"""

from __future__ import annotations


class CityWokError(Exception):
    """Base of every error CityWok raises on purpose."""

    #: Stable machine-readable code used in JSON error bodies.
    code: str = "citywok_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def reason(self, name: str) -> str:
        """The message without its leading ``name: ``, for a caller that shows the name
        itself (``failed X.mp4: X.mp4: ...`` says it twice)."""
        return self.message.removeprefix(f"{name}: ")


class MediaError(CityWokError):
    code = "bad_media"


class NotMediaError(MediaError):
    code = "not_media"


class CorruptMediaError(MediaError):
    code = "corrupt_media"


class EmptyMediaError(MediaError):
    code = "empty_media"


class SilentMediaError(MediaError):
    code = "silent_media"


class MediaTooLongError(MediaError):
    code = "media_too_long"


class IndexStoreError(CityWokError):
    code = "index_error"


class IndexNotFoundError(IndexStoreError):
    code = "index_not_found"


class IndexFormatError(IndexStoreError):
    code = "index_format"


class IndexParamsMismatchError(IndexStoreError):
    code = "index_params_mismatch"


class IndexLockedError(IndexStoreError):
    code = "index_locked"


class IndexWriteError(IndexStoreError):
    code = "index_write_failed"


class EpisodeNotFoundError(CityWokError):
    code = "episode_not_found"


class KeyNotFoundError(CityWokError):
    code = "key_not_found"


class DatabaseUnavailableError(CityWokError):
    code = "database_unavailable"


class LibraryError(CityWokError):
    code = "library_error"


class NoMediaFoundError(LibraryError):
    code = "no_media_found"


class IndexingFailedError(LibraryError):
    code = "indexing_failed"


class IndexingIncompleteError(LibraryError):
    code = "indexing_incomplete"


class InputsIncompleteError(CityWokError):
    code = "inputs_incomplete"


class FetchError(CityWokError):
    code = "fetch_failed"


class URLRefusedError(FetchError):
    code = "url_refused"


class DownloadTooLargeError(FetchError):
    code = "download_too_large"


class DownloadFailedError(FetchError):
    code = "download_failed"


class SnapshotError(CityWokError):
    code = "snapshot_error"


class SnapshotCorruptError(SnapshotError):
    code = "snapshot_corrupt"


class RateLimitedError(CityWokError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceBusyError(CityWokError):
    """More identifications are queued than can be answered within the wait allowed: the
    work is refused at once, with the seconds after which to try again."""

    code = "busy"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(CityWokError):
    code = "config_error"


class IndexInterrupted(KeyboardInterrupt):
    """Indexing stopped on request (Ctrl-C, SIGTERM) after committing what it finished:
    ``kept`` of the ``total`` media files are in the index; a rerun does the rest."""

    def __init__(self, *, kept: int, total: int) -> None:
        super().__init__(f"kept {kept} of {total}")
        self.kept = kept
        self.total = total
