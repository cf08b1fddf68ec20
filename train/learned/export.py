"""Fold batch norm into the convolutions and write the NumPy weights (``.npz``, no pickle)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from citywok.learned import model as M

from .net import Encoder


def export(encoder: Encoder, path: Path) -> None:
    encoder.eval()
    arrays: dict[str, np.ndarray] = {}
    mods = list(encoder.convs)
    n_conv = 0
    for i in range(0, len(mods), 3):
        conv, bn = mods[i], mods[i + 1]
        assert isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
        assert bn.running_var is not None and bn.running_mean is not None
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        w = conv.weight.detach() * scale[:, None, None, None]  # (out, in, kh, kw)
        b = (bn.bias - bn.running_mean * scale).detach()
        # NumPy layout: (kh, kw, in) rows, out columns.
        arrays[f"conv{n_conv}_w"] = w.permute(2, 3, 1, 0).reshape(-1, w.shape[0]).numpy()
        arrays[f"conv{n_conv}_b"] = b.numpy()
        n_conv += 1
    c = encoder.proj.in_features // (encoder.out_hw[0] * encoder.out_hw[1])
    pw = encoder.proj.weight.detach().reshape(-1, c, *encoder.out_hw)  # (emb, c, h, w)
    arrays["proj_w"] = pw.permute(2, 3, 1, 0).reshape(-1, pw.shape[0]).numpy()
    arrays["proj_b"] = encoder.proj.bias.detach().numpy()
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    meta = {
        "n_conv": n_conv,
        "sample_rate_hz": M.SAMPLE_RATE_HZ,
        "n_fft": M.N_FFT,
        "hop_length": M.HOP_LENGTH,
        "n_mels": M.N_MELS,
        "window_frames": M.WINDOW_FRAMES,
        "embedding_dim": M.EMBEDDING_DIM,
    }
    arrays |= {k: np.array(v, dtype=np.int64) for k, v in meta.items()}
    np.savez(path, allow_pickle=False, **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, default=M.WEIGHTS_PATH)
    args = ap.parse_args()
    enc = Encoder()
    enc.load_state_dict(torch.load(args.checkpoint, weights_only=True)["encoder"])
    export(enc, args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
