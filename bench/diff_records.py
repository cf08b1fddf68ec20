"""Two benchmark runs' answers, clip by clip: what a refactoring that must not change any
answer shows with a stored diff, not a claim.

    .venv/bin/python -m bench.diff_records BEFORE/records.jsonl AFTER/records.jsonl OUT.json

Clips are paired by what made them (kind, distortion, length, source, start, part); every
answer field a record keeps is compared (status, episode, offset, score, the candidates
listed, the raw score with the threshold out of the way, right or wrong). Timings are not.
Exit status 1 when any clip differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: What identifies a clip of the run, and what its answer is.
CLIP = ("kind", "distortion", "length_s", "source", "start_s", "part")
ANSWER = ("status", "episode_file", "offset_s", "score", "candidate_files", "raw_score",
          "raw_right", "right")


def load(path: Path) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Records by clip (a clip identified twice, timed and untimed, keeps both)."""
    out: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out.setdefault(tuple(rec.get(k) for k in CLIP), []).append(rec)
    return out


def diff(before: Path, after: Path) -> dict[str, Any]:
    a, b = load(before), load(after)
    differing = []
    same = 0
    for key in sorted(set(a) & set(b), key=repr):
        left = [{k: r.get(k) for k in ANSWER} for r in a[key]]
        right = [{k: r.get(k) for k in ANSWER} for r in b[key]]
        if left == right:
            same += len(left)
        else:
            differing.append({"clip": dict(zip(CLIP, key, strict=True)), "before": left,
                              "after": right})
    return {
        "before": str(before), "after": str(after), "compared_fields": list(ANSWER),
        "clips_before": sum(map(len, a.values())), "clips_after": sum(map(len, b.values())),
        "identical": same, "differing": differing,
        "only_before": [dict(zip(CLIP, k, strict=True)) for k in sorted(set(a) - set(b), key=repr)],
        "only_after": [dict(zip(CLIP, k, strict=True)) for k in sorted(set(b) - set(a), key=repr)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    report = diff(args.before, args.after)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    bad = len(report["differing"]) + len(report["only_before"]) + len(report["only_after"])
    print(f"{report['identical']} answers identical, {len(report['differing'])} clips differ, "
          f"{len(report['only_before'])} only before, {len(report['only_after'])} only after")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
