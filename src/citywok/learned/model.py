"""The learned front end's inference: log-mel windows in, unit-length embeddings out.

Pure functions over arrays, NumPy only (no torch at run time). The stages:

``signal (8 kHz mono float32) → log_mel (frames x bands) → windows (1 s, any hop)
→ encoder (five strided 3x3 convolutions, one linear layer) → L2-normalised embedding``

The weights are a small ``.npz`` committed beside this module (``weights.npz``), written
by ``train/learned/export.py`` from the trained PyTorch model, with batch norm folded
into the convolutions. It is read with ``allow_pickle=False``; :func:`weights_sha256`
names the exact file, so an index built with other weights can be refused.

Constraints: the signal must be mono at :data:`SAMPLE_RATE_HZ`; a window is
:data:`WINDOW_FRAMES` frames (1.044 s of audio) and starts on the frame grid
(:data:`HOP_LENGTH` samples, 20 ms).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

SAMPLE_RATE_HZ = 8000
"""The signal's sample rate: the engine decodes everything to 8 kHz mono."""
N_FFT = 512
"""STFT window length in samples (64 ms, periodic Hann)."""
HOP_LENGTH = 160
"""STFT hop in samples (20 ms): one frame of the log-mel grid."""
N_MELS = 64
"""Mel bands between :data:`FMIN_HZ` and :data:`FMAX_HZ` (HTK mel scale, triangular)."""
FMIN_HZ = 150.0
FMAX_HZ = 3800.0
WINDOW_FRAMES = 50
"""Frames per embedded window: 50 x 20 ms hop + the 64 ms STFT window = 1.044 s."""
FLOOR_DB = 60.0
"""A window's log-mel is taken relative to its loudest cell and floored this far below."""
EMBEDDING_DIM = 64

WEIGHTS_PATH = Path(__file__).with_name("weights.npz")


def frame_time_s(frame: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Start times (s) of log-mel frames (the starts of their STFT windows)."""
    return np.asarray(np.asarray(frame) * (HOP_LENGTH / SAMPLE_RATE_HZ), dtype=np.float64)


@lru_cache(maxsize=1)
def mel_filterbank() -> FloatArray:
    """Triangular HTK-mel filters, shape ``(N_FFT // 2 + 1, N_MELS)``, unit peak each."""

    def hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(2595.0 * np.log10(1.0 + f / 700.0), dtype=np.float64)

    def mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0), dtype=np.float64)

    edges_mel = np.linspace(hz_to_mel(np.array(FMIN_HZ)), hz_to_mel(np.array(FMAX_HZ)), N_MELS + 2)
    edges_hz = mel_to_hz(edges_mel)
    freqs = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE_HZ / N_FFT
    fb = np.zeros((len(freqs), N_MELS), dtype=np.float64)
    for m in range(N_MELS):
        lo, centre, hi = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        rising = (freqs - lo) / (centre - lo)
        falling = (hi - freqs) / (hi - centre)
        fb[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb.astype(np.float32)


@lru_cache(maxsize=1)
def _hann() -> FloatArray:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)


def log_mel(signal: npt.ArrayLike) -> FloatArray:
    """Log-mel power (dB) of ``signal``, shape ``(frames, N_MELS)``.

    Frame ``i`` covers samples ``[i * HOP_LENGTH, i * HOP_LENGTH + N_FFT)``; a signal
    shorter than one STFT window gives zero frames.
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("log_mel takes a mono signal (one dimension)")
    n_frames = 0 if len(x) < N_FFT else 1 + (len(x) - N_FFT) // HOP_LENGTH
    if n_frames == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH][:n_frames]
    spec = np.fft.rfft(frames * _hann(), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ mel_filterbank()
    return np.asarray(10.0 * np.log10(mel + 1e-10), dtype=np.float32)


def windows(mel_db: FloatArray, *, hop_frames: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Cut ``mel_db`` into windows of :data:`WINDOW_FRAMES` frames every ``hop_frames``.

    Returns the normalised windows, shape ``(n, N_MELS, WINDOW_FRAMES)``, and each
    window's first frame. Each window is taken relative to its own loudest cell (so the
    level cancels), floored :data:`FLOOR_DB` below it and scaled to about [-1.5, 1.5].
    """
    if hop_frames < 1:
        raise ValueError("hop_frames must be at least 1")
    n = 0 if len(mel_db) < WINDOW_FRAMES else 1 + (len(mel_db) - WINDOW_FRAMES) // hop_frames
    starts = np.arange(n, dtype=np.int64) * hop_frames
    if n == 0:
        return np.zeros((0, N_MELS, WINDOW_FRAMES), dtype=np.float32), starts
    view = np.lib.stride_tricks.sliding_window_view(mel_db, WINDOW_FRAMES, axis=0)[::hop_frames]
    view = view[:n]  # (n, N_MELS, WINDOW_FRAMES)
    return normalise_windows(view), starts


def normalise_windows(view: npt.ArrayLike) -> FloatArray:
    """The per-window normalisation of :func:`windows`, shape kept."""
    v = np.asarray(view, dtype=np.float32)
    peak = v.max(axis=(1, 2), keepdims=True)
    rel = np.maximum(v - peak, -FLOOR_DB)
    return np.asarray(rel / 20.0 + 1.5, dtype=np.float32)


@dataclass(frozen=True)
class ConvLayer:
    """A 3x3 convolution, stride 2, padding 1, with batch norm folded in, then ReLU.

    ``weight`` is ``(3 * 3 * c_in, c_out)`` in (kh, kw, c_in) order; ``bias`` ``(c_out,)``.
    """

    weight: FloatArray
    bias: FloatArray


@dataclass(frozen=True)
class Encoder:
    """The exported encoder: convolutions, then ``embedding = normalise(x @ proj + b)``."""

    convs: tuple[ConvLayer, ...]
    proj_weight: FloatArray
    proj_bias: FloatArray
    sha256: str


def load_encoder(path: Path = WEIGHTS_PATH) -> Encoder:
    """Read an exported ``.npz`` (never pickled) and check its analysis parameters."""
    raw = path.read_bytes()
    with np.load(path, allow_pickle=False) as z:
        meta = {
            k: int(z[k])
            for k in (
                "sample_rate_hz",
                "n_fft",
                "hop_length",
                "n_mels",
                "window_frames",
                "embedding_dim",
            )
        }
        expected = {
            "sample_rate_hz": SAMPLE_RATE_HZ,
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "n_mels": N_MELS,
            "window_frames": WINDOW_FRAMES,
            "embedding_dim": EMBEDDING_DIM,
        }
        if meta != expected:
            raise ValueError(f"{path}: weights were trained with {meta}, this code uses {expected}")
        n_conv = int(z["n_conv"])
        convs = tuple(
            ConvLayer(
                weight=z[f"conv{i}_w"].astype(np.float32), bias=z[f"conv{i}_b"].astype(np.float32)
            )
            for i in range(n_conv)
        )
        return Encoder(
            convs=convs,
            proj_weight=z["proj_w"].astype(np.float32),
            proj_bias=z["proj_b"].astype(np.float32),
            sha256=hashlib.sha256(raw).hexdigest(),
        )


@lru_cache(maxsize=1)
def default_encoder() -> Encoder:
    """The committed weights, loaded once per process."""
    return load_encoder(WEIGHTS_PATH)


@lru_cache(maxsize=1)
def weights_sha256() -> str:
    """SHA-256 of the committed weights file: what an index header records (read
    without loading the model: every index open checks it)."""
    return hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()


def _conv3x3_s2(x: FloatArray, layer: ConvLayer) -> FloatArray:
    """3x3 stride-2 convolution with padding 1 on NHWC input, then ReLU."""
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2, w + 2, c), dtype=np.float32)
    padded[:, 1:-1, 1:-1, :] = x
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    s = padded.strides
    patches = np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, ho, wo, 3, 3, c),
        strides=(s[0], 2 * s[1], 2 * s[2], s[1], s[2], s[3]),
        writeable=False,
    )
    cols = patches.reshape(n * ho * wo, 9 * c)
    out = cols @ layer.weight
    out += layer.bias
    np.maximum(out, 0.0, out=out)
    return out.reshape(n, ho, wo, -1)


BATCH_WINDOWS = 256
"""Windows embedded at a time: bounds the im2col buffers (about 40 MB) for long signals."""


def embed_windows(windows_: FloatArray, encoder: Encoder | None = None) -> FloatArray:
    """Embeddings of normalised windows ``(n, N_MELS, WINDOW_FRAMES)`` → ``(n, EMBEDDING_DIM)``.

    Each row has unit length (an all-zero output stays zero).
    """
    enc = encoder or default_encoder()
    w = np.asarray(windows_, dtype=np.float32)
    out = np.zeros((len(w), EMBEDDING_DIM), dtype=np.float32)
    for lo in range(0, len(w), BATCH_WINDOWS):
        x = np.ascontiguousarray(w[lo : lo + BATCH_WINDOWS, :, :, None])  # NHWC, C=1
        for layer in enc.convs:
            x = _conv3x3_s2(x, layer)
        emb = x.reshape(len(x), -1) @ enc.proj_weight + enc.proj_bias
        norm = np.sqrt((emb * emb).sum(axis=1, keepdims=True))
        out[lo : lo + len(x)] = emb / np.maximum(norm, 1e-12)
    return out


def embed_signal(
    signal: npt.ArrayLike, *, hop_frames: int, encoder: Encoder | None = None
) -> tuple[FloatArray, npt.NDArray[np.float64]]:
    """Embed every 1 s window of ``signal`` every ``hop_frames`` frames.

    Returns the embeddings ``(n, EMBEDDING_DIM)`` and each window's start time in seconds.
    ``hop_frames`` = 25 is the reference's 0.5 s hop; 5 the query's 0.1 s.
    """
    win, starts = windows(log_mel(signal), hop_frames=hop_frames)
    times = np.asarray(frame_time_s(starts), dtype=np.float64)
    if len(win) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32), times
    return embed_windows(win, encoder), times


REFERENCE_HOP_FRAMES = 25
"""The reference's hop: one window every 25 frames (0.5 s)."""
QUERY_HOP_FRAMES = 5
"""The query's hop: one window every 5 frames (0.1 s)."""


@dataclass(frozen=True)
class FrontEnd:
    """What an index built by this front end must record, and check when opened.

    :meth:`header` is the JSON-ready description for the index header;
    :meth:`check` refuses an index whose stored description differs.
    """

    weights_sha256: str
    sample_rate_hz: int = SAMPLE_RATE_HZ
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    fmin_hz: float = FMIN_HZ
    fmax_hz: float = FMAX_HZ
    window_frames: int = WINDOW_FRAMES
    floor_db: float = FLOOR_DB
    embedding_dim: int = EMBEDDING_DIM
    reference_hop_frames: int = REFERENCE_HOP_FRAMES

    def header(self) -> dict[str, str | int | float]:
        return {"family": "learned", **self.__dict__}

    def check(self, stored: Mapping[str, object], *, index_name: str) -> None:
        """Raise ``ValueError`` with one sentence when ``stored`` was built otherwise."""
        mine = self.header()
        differ = sorted(k for k in mine.keys() | stored.keys() if mine.get(k) != stored.get(k))
        if differ:
            what = ", ".join(f"{k} {stored.get(k)!r} (now {mine.get(k)!r})" for k in differ)
            raise ValueError(
                f"index {index_name} was built by another learned front end: {what}; "
                "re-index with `citywok index`"
            )


def front_end() -> FrontEnd:
    """The front end of the committed weights."""
    return FrontEnd(weights_sha256=weights_sha256())


class EmbeddingStream:
    """Embeddings of a long signal fed in chunks, every ``hop_frames`` frames: the same
    rows :func:`embed_signal` gives for the whole signal, with memory bounded by a chunk
    (an hour-long episode is never held whole)."""

    def __init__(self, *, hop_frames: int = REFERENCE_HOP_FRAMES,
                 encoder: Encoder | None = None) -> None:
        if hop_frames < 1:
            raise ValueError("hop_frames must be at least 1")
        self._hop_samples = hop_frames * HOP_LENGTH
        self._hop_frames = hop_frames
        self._span = (WINDOW_FRAMES - 1) * HOP_LENGTH + N_FFT  # samples one window reads
        self._encoder = encoder
        self._pending = np.zeros(0, dtype=np.float32)
        self._parts: list[FloatArray] = []

    def feed(self, chunk: npt.ArrayLike) -> None:
        """Take the next samples; every window they complete is embedded now."""
        self._pending = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32)])
        if len(self._pending) < self._span:
            return
        n = 1 + (len(self._pending) - self._span) // self._hop_samples
        used = (n - 1) * self._hop_samples + self._span
        emb, _ = embed_signal(self._pending[:used], hop_frames=self._hop_frames,
                              encoder=self._encoder)
        self._parts.append(emb)
        # The next window starts n hops in.
        self._pending = self._pending[n * self._hop_samples :].copy()

    def finish(self) -> FloatArray:
        """Every window's embedding, ``(n, EMBEDDING_DIM)``, window ``k`` starting at
        ``k * hop_frames`` frames."""
        if not self._parts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.concatenate(self._parts)
