"""The learned family: a room-proof front end (engine v3) that embeds 1 s windows of
sound with the committed encoder (:mod:`citywok.learned`).

The signal side (log-mel, encoder, weights) is :mod:`citywok.learned.model`; this module
is what the store, ingest and matching ask of it: the header an index records, the check
of that header against the weights at hand, a sink for a recording's samples, and a
clip's embeddings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from citywok.errors import IndexFormatError
from citywok.learned import model
from citywok.params import AnalysisParams

NAME = "learned"
REFERENCE_HOP_S = model.REFERENCE_HOP_FRAMES * model.HOP_LENGTH / model.SAMPLE_RATE_HZ
DIM = model.EMBEDDING_DIM

__all__ = ["DIM", "NAME", "REFERENCE_HOP_S", "check_header", "check_params", "embed_query",
           "header", "reference_sink"]


def header() -> dict[str, str | int | float]:
    return model.front_end().header()


def check_header(stored: dict[str, object], *, index_name: str) -> None:
    try:
        model.front_end().check(stored, index_name=index_name)
    except ValueError as exc:
        raise IndexFormatError(str(exc)) from None


def check_params(params: AnalysisParams) -> list[str]:
    if params.sample_rate_hz != model.SAMPLE_RATE_HZ:
        return [f"the learned front end hears {model.SAMPLE_RATE_HZ} Hz audio, not "
                f"{params.sample_rate_hz} Hz"]
    return []


def reference_sink() -> model.EmbeddingStream:
    return model.EmbeddingStream(hop_frames=model.REFERENCE_HOP_FRAMES)


def embed_query(samples: npt.NDArray[np.float32]
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    return model.embed_signal(samples, hop_frames=model.QUERY_HOP_FRAMES)
