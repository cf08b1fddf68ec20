"""Cold start: one clip through ``citywok identify`` as a whole process, paired with
another command run on the same clip (ffmpeg's own decode of it, by default; Olaf's
query with ``--olaf``).

    .venv/bin/python -m bench.cold_start clip.m4a --index IDX [--runs 10]
    .venv/bin/python -m bench.cold_start clip.m4a --index IDX --olaf /path/to/olaf_core

The two commands run in turn (A B A B ..., after one warm-up each), so a machine whose
speed drifts slows both alike: quote the medians of the ratios A/B, pair by pair. Each
run's CPU time is its process tree's (user + system, from ``wait4``); wall time is from
start to exit. Olaf (github.com/JorenSix/Olaf, its C core built with ``make
compile_core``) reads raw 16 kHz mono float32: ffmpeg decodes the clip into its pipe, as
its own front end does, and its database must hold the same library (each episode stored
with ``ffmpeg -i EP -ac 1 -ar 16000 -f f32le ep.raw && olaf_core store ep.raw EP``; it
lives under ``$HOME/.olaf/db``: ``--olaf-home`` sets that HOME).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the process and its children, exit status) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def _row(name: str, values: list[float]) -> str:
    return (f"{name:<22} {min(values):8.3f} {statistics.median(values):8.3f} "
            f"{max(values):8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--olaf", type=Path, help="olaf_core, to pair with instead of ffmpeg")
    ap.add_argument("--olaf-home", type=Path, help="the HOME whose .olaf/db Olaf reads")
    args = ap.parse_args()
    clip = str(args.clip)
    a = [sys.executable, "-m", "citywok.cli", "identify", clip, "--index", str(args.index)]
    decode = f"ffmpeg -v error -i {shlex.quote(clip)}"
    if args.olaf is None:
        b = [*shlex.split(decode), "-f", "s16le", "-ac", "1", "-ar", "8000", "-"]
        b_name = "ffmpeg decode"
    else:
        b = ["sh", "-c", f"{decode} -ac 1 -ar 16000 -f f32le - | "
             f"{shlex.quote(str(args.olaf))} query /dev/stdin {shlex.quote(clip)}"]
        b_name = "Olaf query"
    env = dict(os.environ)
    b_env = env if args.olaf_home is None else {**env, "HOME": str(args.olaf_home)}
    for cmd, cmd_env in ((a, env), (b, b_env)):  # warm-up: page cache, bytecode
        _run(cmd, cmd_env)
    got: dict[str, list[float]] = {k: [] for k in ("a_wall", "a_cpu", "b_wall", "b_cpu")}
    codes = set()
    for _ in range(args.runs):
        for side, cmd, cmd_env in (("a", a, env), ("b", b, b_env)):
            wall, cpu, code = _run(cmd, cmd_env)
            got[f"{side}_wall"].append(wall)
            got[f"{side}_cpu"].append(cpu)
            codes.add((side, code))
    print(f"A = citywok identify, B = {b_name}; {args.runs} runs each, in turn; "
          f"exit codes {sorted(codes)}")
    print(f"{'':<22} {'min':>8} {'median':>8} {'max':>8}")
    for key in got:
        print(_row(f"{key[0].upper()} {key[2:]} s", got[key]))
    for what in ("wall", "cpu"):
        print(_row(f"A/B {what}", [x / y for x, y in zip(got[f"a_{what}"], got[f"b_{what}"],
                                                       strict=True)]))


if __name__ == "__main__":
    main()
