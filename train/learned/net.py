"""The PyTorch twin of ``citywok.learned.model``: the encoder that training updates.

The log-mel front end reuses the NumPy filterbank and window constants, so the features
training sees are the ones inference computes; ``export.py`` folds batch norm into the
convolutions and writes the ``.npz`` that the NumPy forward pass reads.
"""

from __future__ import annotations

import torch
from torch import nn

from citywok.learned import model as M

CHANNELS = (16, 32, 64, 128, 128)


class Encoder(nn.Module):
    """Five 3x3 stride-2 conv + BN + ReLU blocks over (64 bands x 50 frames), then a
    linear projection to 64 dimensions and L2 normalisation."""

    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in CHANNELS:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*blocks)
        h, w = M.N_MELS, M.WINDOW_FRAMES
        for _ in CHANNELS:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.out_hw = (h, w)
        self.proj = nn.Linear(c_in * h * w, M.EMBEDDING_DIM)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """``windows``: (n, N_MELS, WINDOW_FRAMES), normalised as ``M.normalise_windows``."""
        x = self.convs(windows[:, None])
        emb = self.proj(x.flatten(1))
        return nn.functional.normalize(emb, dim=1)


class LogMel(nn.Module):
    """Batched log-mel (dB) and window normalisation, equal to the NumPy front end."""

    fb: torch.Tensor
    hann: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fb", torch.from_numpy(M.mel_filterbank()))
        self.register_buffer("hann", torch.hann_window(M.N_FFT, periodic=True))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """``signal``: (n, samples) → normalised windows (n, N_MELS, frames)."""
        spec = torch.stft(
            signal, M.N_FFT, M.HOP_LENGTH, window=self.hann, center=False, return_complex=True
        )
        power = spec.real**2 + spec.imag**2  # (n, freq, frames)
        mel = torch.einsum("nft,fm->nmt", power, self.fb)
        db = 10.0 * torch.log10(mel + 1e-10)
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.clamp(db - peak, min=-M.FLOOR_DB) / 20.0 + 1.5
