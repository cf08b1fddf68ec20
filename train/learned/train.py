"""Train the learned fingerprint contrastively (NT-Xent), on CPU, from ``prepare.py``'s cache.

A batch holds ``--batch`` anchors: clean 1 s windows of the library's training ranges
(the first 80 % of each episode, shared intro/outro/cues left out). Each anchor's
positive is the same window, moved by up to ±0.2 s, drawn from a codec round trip or the
clean audio, sped up or slowed down by up to ±3 %, played in a simulated room (RT60
0.2-1.0 s, 1-5 m) and buried under background speech or music (outside files kept for
training, or other library audio) and coloured noise at 0-15 dB in-band SNR. Every other
window of the batch is a negative. Everything comes from one seed.

    nice -n 15 .venv/bin/python -m train.learned.train --steps 3000 --out /tmp/citywok-learned/ckpt.pt
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
            self.coded.append([np.load(p) for p in sorted((cache / "coded").glob(f"{k:02d}_*.npy"))])
            ok = np.zeros(n_train, dtype=bool)
            ok[PRE + MAX_SHIFT: n_train - WIN - MAX_SHIFT - 400] = True
            for a, b in ep["shared_s"]:
                ok[max(0, int((a - 1.5) * SR)): int(b * SR)] = False
            self.valid.append(np.flatnonzero(ok[::80]) * 80)  # a 10 ms grid is plenty
        self.weights = np.array([len(v) for v in self.valid], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.background = [np.load(cache / "outside" / f"{n}.npy") for n in split["outside_train"]]
        self.rirs = np.load(cache / "rirs_train.npz")["rirs"]
        hours = sum(len(v) * 80 for v in self.valid) / SR / 3600
        print(f"training audio: {hours:.2f} h usable, {len(self.rirs)} rooms, "
              f"{len(self.background)} background files", flush=True)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anchors (n, WIN), positive sources (n, SEG) and backgrounds (n, SEG)."""
        rng = self.rng
        eps = rng.choice(len(self.valid), size=n, p=self.weights)
        anchors = np.zeros((n, WIN), np.float32)
        sources = np.zeros((n, SEG), np.float32)
        bgs = np.zeros((n, SEG), np.float32)
        for i, e in enumerate(eps):
            t = int(rng.choice(self.valid[e]))
            anchors[i] = self.clean[e][t: t + WIN]
            shift = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
            start = t - PRE - MAX_SHIFT + shift  # window then sits at PRE + MAX_SHIFT
            pool = self.coded[e]
            src = pool[int(rng.integers(len(pool)))] if (pool and rng.random() < 0.7) else self.clean[e]
            sources[i] = src[start: start + SEG]
            if rng.random() < 0.6:
                if rng.random() < 0.6:
                    b = self.background[int(rng.integers(len(self.background)))]
                else:  # other library audio: dialogue and music the model must look through
                    e2 = int(rng.integers(len(self.clean)))
                    b = self.clean[e2]
                s = int(rng.integers(0, len(b) - SEG))
                bgs[i] = b[s: s + SEG]
        return anchors, sources, bgs


def band_power(x: torch.Tensor) -> torch.Tensor:
    spec = torch.fft.rfft(x, dim=-1)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    mask = (f >= BAND[0]) & (f <= BAND[1])
    return (spec.abs() ** 2)[:, mask].sum(-1) + 1e-9


def coloured_noise(n: int, length: int, gen: torch.Generator) -> torch.Tensor:
    white = torch.randn(n, length, generator=gen)
    spec = torch.fft.rfft(white, dim=-1)
    f = torch.fft.rfftfreq(length, 1 / SR).clamp(min=20.0)
    slope = torch.rand(n, 1, generator=gen) * 2.0  # 0 white, 1 pink, 2 brown
    spec = spec / f[None, :] ** (slope / 2)
    return torch.fft.irfft(spec, n=length, dim=-1)


def augment(sources: torch.Tensor, bgs: torch.Tensor, rirs: torch.Tensor,
            gen: torch.Generator) -> torch.Tensor:
    """Degrade the positives' source segments, then cut the window (n, WIN)."""
    n = sources.shape[0]
    x = sources
    # Speed (time and pitch together) by up to ±3 %, about the window's centre.
    speed = 1.0 + (torch.rand(n, generator=gen) * 0.06 - 0.03)
    speed = torch.where(torch.rand(n, generator=gen) < 0.5, speed, torch.ones_like(speed))
    centre = PRE + MAX_SHIFT + WIN / 2
    pos = centre + (torch.arange(SEG, dtype=torch.float32)[None, :] - centre) * speed[:, None]
    pos = pos.clamp(0, SEG - 1.001)
    lo = pos.floor().long()
    frac = pos - lo
    x = torch.gather(x, 1, lo) * (1 - frac) + torch.gather(x, 1, lo + 1) * frac
    # Room: convolve with an impulse response (direct path aligned to zero delay).
    use_room = torch.rand(n, generator=gen) < 0.85
    idx = torch.randint(len(rirs), (n,), generator=gen)
    rir = rirs[idx]
    peak = rir.abs().argmax(dim=1)
    L = SEG + rir.shape[1]
    nfft = 1 << (L - 1).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(x, nfft) * torch.fft.rfft(rir, nfft), nfft)
    ar = torch.arange(SEG)[None, :] + peak[:, None]
    wet = torch.gather(wet, 1, ar)
    x = torch.where(use_room[:, None], wet, x)
    # Background speech or music at -3..15 dB below, where there is any.
    sig_p = band_power(x)
    has_bg = bgs.abs().sum(1) > 0
    snr_bg = torch.rand(n, generator=gen) * 18.0 - 3.0
    g_bg = torch.sqrt(sig_p / band_power(bgs) / 10 ** (snr_bg / 10))
    x = x + torch.where(has_bg[:, None], bgs * g_bg[:, None], torch.zeros_like(bgs))
    # Coloured noise at 0-15 dB in-band SNR (sometimes none).
    noise = coloured_noise(n, SEG, gen)
    snr = torch.rand(n, generator=gen) * 15.0
    g = torch.sqrt(sig_p / band_power(noise) / 10 ** (snr / 10))
    use_noise = torch.rand(n, generator=gen) < 0.75
    x = x + torch.where(use_noise[:, None], noise * g[:, None], torch.zeros_like(noise))
    # A phone microphone's high-pass, sometimes: first-order, 100-300 Hz.
    spec = torch.fft.rfft(x, dim=-1)
    f = torch.fft.rfftfreq(SEG, 1 / SR)
    fc = 100 + torch.rand(n, 1, generator=gen) * 200
    hp = (f[None, :] / fc) / torch.sqrt(1 + (f[None, :] / fc) ** 2)
    use_hp = torch.rand(n, 1, generator=gen) < 0.5
    spec = torch.where(use_hp, spec * hp, spec)
    x = torch.fft.irfft(spec, n=SEG, dim=-1)
    return x[:, PRE + MAX_SHIFT: PRE + MAX_SHIFT + WIN]


def nt_xent(a: torch.Tensor, p: torch.Tensor, tau: float) -> torch.Tensor:
    z = torch.cat([a, p])
    sim = z @ z.T / tau
    n = a.shape[0]
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return torch.nn.functional.cross_entropy(sim, target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/citywok-learned"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/citywok-learned/ckpt.pt"))
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop early after this much wall time (0: run all steps)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    data = Data(args.cache, rng)
    rirs = torch.from_numpy(data.rirs)
    enc, front = Encoder(), LogMel()
    opt = torch.optim.AdamW(enc.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = 100

    def lr_at(step: int) -> float:
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (args.steps - warm)))

    t0 = time.time()
    log = []
    for step in range(args.steps):
        for g_ in opt.param_groups:
            g_["lr"] = lr_at(step)
        anchors, sources, bgs = data.batch(args.batch)
        with torch.no_grad():
            pos = augment(torch.from_numpy(sources), torch.from_numpy(bgs), rirs, gen)
            wa = front(torch.from_numpy(anchors))
            wp = front(pos)
        enc.train()
        za, zp = enc(wa), enc(wp)
        loss = nt_xent(za, zp, args.tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            acc = float(((za @ zp.T).argmax(1) == torch.arange(len(za))).float().mean())
        log.append((step, float(loss), acc))
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(f"step {step} loss {float(loss):.3f} top1 {acc:.2f} lr {lr_at(step):.2e} "
                  f"{el / 60:.1f} min", flush=True)
        if step % 250 == 0 or step == args.steps - 1:
            torch.save({"encoder": enc.state_dict(), "step": step, "args": vars(args) | {
                "cache": str(args.cache), "out": str(args.out)}}, args.out)
        if args.max_minutes and time.time() - t0 > args.max_minutes * 60:
            print(f"stopping at step {step}: wall-time budget spent", flush=True)
            torch.save({"encoder": enc.state_dict(), "step": step, "args": vars(args) | {
                "cache": str(args.cache), "out": str(args.out)}}, args.out)
            break
    print(f"trained {len(log)} steps in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
