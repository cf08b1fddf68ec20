"""Defaults every shell shares (the CLI, the web service's settings), declared once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

#: Longest clip the CLI and the web service decode by default, in seconds.
MAX_CLIP_DURATION_S = 600.0
#: Longest a clip's decoding may take, in seconds (then the decoder is killed).
CLIP_DECODE_TIMEOUT_S = 60.0
#: How the default index reads in help texts and docs (the real path depends on the OS).
DEFAULT_INDEX_TEXT = "the per-user data dir (~/.local/share/citywok/index on Linux)"


def default_index_dir() -> Path:
    """The index ``citywok index``, ``identify`` and ``serve`` use unless told otherwise
    (by ``--index`` or $CITYWOK_INDEX, which only the shells read: the CLI's
    ``resolve_index`` and the service's settings). The one default, for both shells."""
    return Path(user_data_dir("citywok")) / "index"


#: How the default data directory of the web service reads in help texts and docs.
DEFAULT_DATA_TEXT = "the per-user data dir (~/.local/share/citywok on Linux)"


def default_data_dir() -> Path:
    """Where the web service keeps its own state (keys, usage, shares) unless told
    otherwise: beside the default index, never inside any index."""
    return Path(user_data_dir("citywok"))


def install_hint(extra: str) -> str:
    """How to add an optional part: CityWok is installed from its clone (it is not
    published on PyPI, where another project may take the name)."""
    return f"pip install '.[{extra}]' in the CityWok clone"


def verified_memo(index_dir: Path) -> Path:
    """Where a reader of ``index_dir`` remembers the segments it has verified (the
    per-user cache dir): a fresh ``citywok identify`` hashes only what changed since."""
    name = hashlib.sha256(str(index_dir.expanduser().resolve()).encode()).hexdigest()[:32]
    return Path(user_cache_dir("citywok")) / "verified" / f"{name}.json"
