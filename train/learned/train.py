"""Train the learned fingerprint contrastively (NT-Xent), on CPU, from ``prepare.py``'s cache.

A batch holds ``--batch`` anchors: clean 1 s windows of the library's training ranges
(the first 80 % of each episode, shared intro/outro/cues left out). Each anchor's
positive is the same window, moved by up to ±0.2 s, drawn from a codec round trip or the
clean audio, sped up or slowed down by up to ±3 %, played in a simulated room (RT60
0.2-1.0 s, 1-5 m) and buried under background speech or music (outside files kept for
training, or other library audio) and coloured noise at 0-15 dB in-band SNR. Every other
window of the batch is a negative. Everything comes from one seed.

    nice -n 15 .venv/bin/python -m train.learned.train --steps 1400 --max-minutes 50
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from citywok.learned import model as M

from .net import Encoder, LogMel

SR = M.SAMPLE_RATE_HZ
WIN = (M.WINDOW_FRAMES - 1) * M.HOP_LENGTH + M.N_FFT  # samples in one window: 8352
PRE = SR // 2  # audio before the window that the room's tail carries into it
MAX_SHIFT = int(0.2 * SR)
SEG = PRE + WIN + 2 * MAX_SHIFT + 400  # source segment around a positive
BAND = (150.0, 3400.0)


class Data:
    def __init__(self, cache: Path, rng: np.random.Generator) -> None:
        split = json.loads((cache / "split.json").read_text())
        self.rng = rng
        self.clean: list[np.ndarray] = []
        self.coded: list[list[np.ndarray]] = []
        self.valid: list[np.ndarray] = []  # allowed anchor start samples per episode
        for ep in split["episodes"]:
            k = ep["index"]
            sig = np.load(cache / "library" / f"{k:02d}.npy")
            n_train = int(ep["train_range_s"][1] * SR)
            self.clean.append(sig[:n_train].copy())
            self.coded.append(
                [np.load(p) for p in sorted((cache / "coded").glob(f"{k:02d}_*.npy"))]
            )
            ok = np.zeros(n_train, dtype=bool)
            ok[PRE + 2 * MAX_SHIFT : n_train - WIN - 2 * MAX_SHIFT - 400] = True
            for a, b in ep["shared_s"]:
                ok[max(0, int((a - 1.5) * SR)) : int(b * SR)] = False
            self.valid.append(np.flatnonzero(ok[::80]) * 80)  # a 10 ms grid is plenty
        self.weights = np.array([len(v) for v in self.valid], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.background = [np.load(cache / "outside" / f"{n}.npy") for n in split["outside_train"]]
        self.rirs = np.load(cache / "rirs_train.npz")["rirs"]
        hours = sum(len(v) * 80 for v in self.valid) / SR / 3600
        print(
            f"training audio: {hours:.2f} h usable, {len(self.rirs)} rooms, "
            f"{len(self.background)} background files",
            flush=True,
        )

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anchors (n, WIN), positive sources (n, SEG) and backgrounds (n, SEG)."""
        rng = self.rng
        eps = rng.choice(len(self.valid), size=n, p=self.weights)
        anchors = np.zeros((n, WIN), np.float32)
        sources = np.zeros((n, SEG), np.float32)
        bgs = np.zeros((n, SEG), np.float32)
        for i, e in enumerate(eps):
            t = int(rng.choice(self.valid[e]))
            anchors[i] = self.clean[e][t : t + WIN]
            shift = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
            start = t - PRE - MAX_SHIFT + shift  # window then sits at PRE + MAX_SHIFT
            pool = self.coded[e]
            src = (
                pool[int(rng.integers(len(pool)))]
                if (pool and rng.random() < 0.7)
                else self.clean[e]
            )
            sources[i] = src[start : start + SEG]
            if rng.random() < 0.6:
                if rng.random() < 0.6:
                    b = self.background[int(rng.integers(len(self.background)))]
                else:  # other library audio: dialogue and music the model must look through
                    e2 = int(rng.integers(len(self.clean)))
                    b = self.clean[e2]
                s = int(rng.integers(0, len(b) - SEG))
                bgs[i] = b[s : s + SEG]
        return anchors, sources, bgs


NFFT = 24576  # ≥ SEG + a 1 s room response: every filter below is one product of spectra
FREQS = torch.fft.rfftfreq(NFFT, 1 / SR)
IN_BAND = (BAND[0] <= FREQS) & (BAND[1] >= FREQS)


def room_spectra(rirs: np.ndarray) -> torch.Tensor:
    """The rooms' transfer functions, direct path moved to zero delay (computed once)."""
    out = torch.zeros(len(rirs), NFFT // 2 + 1, dtype=torch.complex64)
    for i, r in enumerate(rirs):
        peak = int(np.argmax(np.abs(r)))
        out[i] = torch.fft.rfft(torch.from_numpy(r[peak:].astype(np.float32)), NFFT)
    return out


def band_power(spec: torch.Tensor) -> torch.Tensor:
    return (spec.abs() ** 2)[:, IN_BAND].sum(-1) + 1e-9


def augment(
    sources: torch.Tensor, bgs: torch.Tensor, rooms: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Degrade the positives' source segments, then cut the window (n, WIN).

    In order: speed ±3 % (half the time), a room (85 %), background speech or music at
    -3..15 dB in-band SNR (where the batch drew one), white-to-brown noise at 0-15 dB
    in-band SNR (75 %), a first-order high-pass at 100-300 Hz (50 %).
    """
    n = sources.shape[0]
    x = sources
    speed = 1.0 + (torch.rand(n, generator=gen) * 0.06 - 0.03)
    speed = torch.where(torch.rand(n, generator=gen) < 0.5, speed, torch.ones_like(speed))
    centre = PRE + MAX_SHIFT + WIN / 2
    pos = centre + (torch.arange(SEG, dtype=torch.float32)[None, :] - centre) * speed[:, None]
    pos = pos.clamp(0, SEG - 1.001)
    lo = pos.floor().long()
    frac = pos - lo
    x = torch.gather(x, 1, lo) * (1 - frac) + torch.gather(x, 1, lo + 1) * frac
    spec = torch.fft.rfft(x, NFFT)
    use_room = torch.rand(n, 1, generator=gen) < 0.85
    room = rooms[torch.randint(len(rooms), (n,), generator=gen)]
    spec = torch.where(use_room, spec * room, spec)
    sig_p = band_power(spec)
    bg = torch.fft.rfft(bgs, NFFT)
    has_bg = (bgs.abs().sum(1) > 0)[:, None]
    snr_bg = torch.rand(n, generator=gen) * 18.0 - 3.0
    g_bg = torch.sqrt(sig_p / band_power(bg) / 10 ** (snr_bg / 10))[:, None]
    spec = spec + torch.where(has_bg, bg * g_bg, torch.zeros_like(bg))
    # Noise drawn in the frequency domain, slope 0 (white) to 2 (brown).
    noise = torch.complex(
        torch.randn(n, len(FREQS), generator=gen), torch.randn(n, len(FREQS), generator=gen)
    )
    slope = torch.rand(n, 1, generator=gen) * 2.0
    noise = noise / FREQS.clamp(min=20.0)[None, :] ** (slope / 2)
    snr = torch.rand(n, generator=gen) * 15.0
    g = torch.sqrt(sig_p / band_power(noise) / 10 ** (snr / 10))[:, None]
    use_noise = torch.rand(n, 1, generator=gen) < 0.75
    spec = spec + torch.where(use_noise, noise * g, torch.zeros_like(noise))
    fc = 100 + torch.rand(n, 1, generator=gen) * 200
    ratio = FREQS[None, :] / fc
    hp = ratio / torch.sqrt(1 + ratio**2)
    spec = torch.where(torch.rand(n, 1, generator=gen) < 0.5, spec * hp, spec)
    x = torch.fft.irfft(spec, NFFT)
    out: torch.Tensor = x[:, PRE + MAX_SHIFT : PRE + MAX_SHIFT + WIN].contiguous()
    return out


def nt_xent(a: torch.Tensor, p: torch.Tensor, tau: float) -> torch.Tensor:
    z = torch.cat([a, p])
    sim = z @ z.T / tau
    n = a.shape[0]
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return torch.nn.functional.cross_entropy(sim, target)


class Pairs(torch.utils.data.IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """Endless (anchor windows, positive windows) batches, made in one worker process so
    that augmentation and the encoder's update use a core each; seeded, so the stream is
    the same on every run."""

    def __init__(self, cache: Path, seed: int, batch: int) -> None:
        self.cache, self.seed, self.batch = cache, seed, batch

    def __iter__(self):  # type: ignore[no-untyped-def]
        torch.set_num_threads(1)
        data = Data(self.cache, np.random.default_rng(self.seed))
        gen = torch.Generator().manual_seed(self.seed + 1)
        rooms = room_spectra(data.rirs)
        front = LogMel()
        while True:
            anchors, sources, bgs = data.batch(self.batch)
            with torch.no_grad():
                pos = augment(torch.from_numpy(sources), torch.from_numpy(bgs), rooms, gen)
                yield front(torch.from_numpy(anchors)), front(pos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/citywok-learned"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/citywok-learned/ckpt.pt"))
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="stop early after this much wall time (0: run all steps)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's encoder (a second stage)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(
        Pairs(args.cache, args.seed, args.batch), batch_size=None, num_workers=1, prefetch_factor=4
    )
    enc = Encoder()
    if args.init is not None:
        enc.load_state_dict(torch.load(args.init, weights_only=True)["encoder"])
    opt = torch.optim.AdamW(enc.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = 100

    def lr_at(step: int) -> float:
        if step < warm:
            return float(args.lr * (step + 1) / warm)
        return float(args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (args.steps - warm))))

    def save(step: int) -> None:
        torch.save(
            {
                "encoder": enc.state_dict(),
                "step": step,
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            args.out,
        )

    t0 = time.time()
    log = []
    batches = iter(loader)
    for step in range(args.steps):
        for g_ in opt.param_groups:
            g_["lr"] = lr_at(step)
        wa, wp = next(batches)
        enc.train()
        za, zp = enc(wa), enc(wp)
        loss = nt_xent(za, zp, args.tau)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        with torch.no_grad():
            acc = float(((za @ zp.T).argmax(1) == torch.arange(len(za))).float().mean())
        log.append((step, float(loss.detach()), acc))
        if step % 50 == 0 or step == args.steps - 1:
            recent = np.mean([x[2] for x in log[-50:]])
            print(
                f"step {step} loss {log[-1][1]:.3f} top1 {recent:.2f} lr {lr_at(step):.2e} "
                f"{(time.time() - t0) / 60:.1f} min",
                flush=True,
            )
        if step % 250 == 0 or step == args.steps - 1:
            save(step)
        if args.max_minutes and time.time() - t0 > args.max_minutes * 60:
            print(f"stopping at step {step}: wall-time budget spent", flush=True)
            save(step)
            break
    print(f"trained {len(log)} steps in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
