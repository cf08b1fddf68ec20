"""The learned front end's NumPy forward pass: shapes, determinism, and agreement with
the PyTorch model it was exported from (skipped where torch is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from citywok.learned import model as M

HAVE_WEIGHTS = M.WEIGHTS_PATH.exists()
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="no committed weights.npz")


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * M.SAMPLE_RATE_HZ)) / M.SAMPLE_RATE_HZ
    tones = sum(np.sin(2 * np.pi * f * t) for f in (440.0, 1210.0, 2333.0))
    return (0.1 * tones + 0.05 * rng.normal(size=len(t))).astype(np.float32)


def test_log_mel_shape_and_short_signal() -> None:
    mel = M.log_mel(_signal(2.0))
    assert mel.shape == (1 + (16000 - M.N_FFT) // M.HOP_LENGTH, M.N_MELS)
    assert M.log_mel(np.zeros(100, dtype=np.float32)).shape == (0, M.N_MELS)


def test_windows_are_level_invariant() -> None:
    x = _signal(3.0)
    a, starts = M.windows(M.log_mel(x), hop_frames=5)
    b, _ = M.windows(M.log_mel(10 * x), hop_frames=5)
    assert a.shape[1:] == (M.N_MELS, M.WINDOW_FRAMES)
    assert starts[1] - starts[0] == 5
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_mel_filterbank_covers_the_band() -> None:
    fb = M.mel_filterbank()
    assert fb.shape == (M.N_FFT // 2 + 1, M.N_MELS)
    assert np.all(fb.max(axis=0) > 0.5)  # every band has a bin near its centre


@needs_weights
def test_embeddings_shape_unit_length_and_deterministic() -> None:
    x = _signal(5.0)
    emb, times = M.embed_signal(x, hop_frames=5)
    assert emb.shape == (40, M.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(times[:3], [0.0, 0.1, 0.2])
    again, _ = M.embed_signal(x.copy(), hop_frames=5)
    np.testing.assert_array_equal(emb, again)


@needs_weights
def test_too_short_signal_gives_no_embedding() -> None:
    emb, times = M.embed_signal(_signal(0.5), hop_frames=5)
    assert emb.shape == (0, M.EMBEDDING_DIM) and len(times) == 0


@needs_weights
def test_weights_hash_names_the_file() -> None:
    import hashlib

    assert M.weights_sha256() == hashlib.sha256(M.WEIGHTS_PATH.read_bytes()).hexdigest()


def test_weights_with_other_parameters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(
        path,
        n_conv=np.array(0),
        sample_rate_hz=np.array(16000),
        n_fft=np.array(M.N_FFT),
        hop_length=np.array(M.HOP_LENGTH),
        n_mels=np.array(M.N_MELS),
        window_frames=np.array(M.WINDOW_FRAMES),
        embedding_dim=np.array(M.EMBEDDING_DIM),
        proj_w=np.zeros((1, 1), np.float32),
        proj_b=np.zeros(1, np.float32),
    )
    with pytest.raises(ValueError, match="trained with"):
        M.load_encoder(path)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_numpy_forward_matches_torch(tmp_path: Path) -> None:
    import torch

    from train.learned.export import export
    from train.learned.net import Encoder, LogMel

    torch.manual_seed(0)
    enc = Encoder()
    for m in enc.modules():  # batch-norm statistics away from the identity, so folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    enc.eval()
    export(enc, tmp_path / "w.npz")
    npy = M.load_encoder(tmp_path / "w.npz")
    x = _signal(3.0, seed=1)
    win, _ = M.windows(M.log_mel(x), hop_frames=5)
    with torch.no_grad():
        ref = enc(torch.from_numpy(win)).numpy()
        first = LogMel()(
            torch.from_numpy(x[None, : (M.WINDOW_FRAMES - 1) * M.HOP_LENGTH + M.N_FFT])
        )
    np.testing.assert_allclose(first[0].numpy(), win[0], atol=1e-4)
    np.testing.assert_allclose(M.embed_windows(win, npy), ref, atol=1e-4)


def test_front_end_refuses_an_index_built_with_other_weights() -> None:
    mine = M.FrontEnd(weights_sha256="a" * 64)
    mine.check(mine.header(), index_name="idx")
    other = M.FrontEnd(weights_sha256="b" * 64).header()
    with pytest.raises(
        ValueError, match=r"index idx .*weights_sha256.*re-index with `citywok index`"
    ):
        mine.check(other, index_name="idx")
