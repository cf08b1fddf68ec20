"""Answers → figures: hits per cell, false hits, shared material, reliability, latency.

Every identification the bench makes becomes one :class:`Record` (written to
``records.jsonl``); every table in the report is computed from the records alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.corpus import SR, Audio

#: A hit: the right episode, the clip's start within this many seconds.
OFFSET_TOL_S = 1.0
#: Reliability bins of the best candidate's score (lower edges; the last is open).
SCORE_EDGES = (-100.0, 0.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 15.0, 20.0,
               30.0, 50.0)


@dataclass(frozen=True)
class Record:
    """One identification and what the bench knows about the clip."""

    #: ``library`` (episode-specific audio), ``outside``, ``shared`` (inside an intro,
    #: outro or cue), ``straddle`` (half shared, half the episode's own), ``file``.
    kind: str
    distortion: str
    group: str
    length_s: float
    source: str
    start_s: float
    status: str
    elapsed_ms: float
    episode_file: str | None = None
    offset_s: float | None = None
    score: float | None = None
    candidate_files: tuple[str, ...] = ()
    #: ``calibration`` or ``held_out`` for outside clips; for ``file``: what was cut.
    part: str = ""
    #: Whether the best candidate is right (library and straddling clips: the episode
    #: and the start within ``OFFSET_TOL_S``; outside clips: never).
    right: bool | None = None
    #: The best score with the threshold out of the way (outside and library clips), and
    #: whether that best candidate is right (library clips).
    raw_score: float | None = None
    raw_right: bool | None = None
    #: Outside clips answered, and library clips answered wrong: whether the clip's
    #: waveform holds the same recording as the place named (:func:`same_recording`).
    identical_audio: bool | None = None
    correlation: float | None = None
    #: Shared clips: the material's name and whether every episode holding it was listed.
    shared: str = ""
    all_listed: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status != "no_match"

    @property
    def hit(self) -> bool:
        return self.status == "match" and bool(self.right)

    @property
    def outcome(self) -> str:
        """What a library clip's answer was, one of :data:`OUTCOMES`: a ``hit``; a miss
        (``no_match``, or ``ambiguous`` whatever it lists); or a wrong answer: a ``match``
        naming another episode (``wrong_episode``), or the clip's own more than
        :data:`OFFSET_TOL_S` from its start (``wrong_place``)."""
        if self.status in ("no_match", "ambiguous"):
            return self.status
        if self.right:
            return "hit"
        return "wrong_episode" if self.episode_file != self.source else "wrong_place"


#: Every :attr:`Record.outcome`: the hit, the two misses, the two wrong answers.
OUTCOMES = ("hit", "no_match", "ambiguous", "wrong_episode", "wrong_place")


def waveform_correlation(clip: Audio, ref: Audio, *, window_s: float = 0.5) -> float:
    """Highest normalised correlation of any ``window_s`` of ``clip`` with ``ref`` at
    any lag (both at 8 kHz): near 1 means the same recording, not a look-alike."""
    w = int(window_s * SR)
    best = 0.0
    energy = np.convolve(ref.astype(np.float64) ** 2, np.ones(w), mode="valid")
    for start in range(0, max(1, len(clip) - w), w // 2):
        x = clip[start : start + w].astype(np.float64)
        ex = float(np.dot(x, x))
        if len(x) < w or ex < 1e-6 or len(ref) < w:
            continue
        corr = np.correlate(ref.astype(np.float64), x, mode="valid")
        best = max(best, float(np.max(corr / np.sqrt(ex * energy + 1e-12))))
    return best


#: Correlation from which one window alone says "the same recording".
IDENTICAL = 0.95
#: Correlation that two windows at one alignment must both reach to say it: the library's
#: dialogue is mixed over music, so a prompt that is also in outside/
#: correlates only 0.3-0.9 with its copy in an episode, but at one lag throughout.
SHARED_WINDOWS = 0.4
_LAG_TOL_S = 0.0025
MAX_DRIFT = 0.03


def same_recording(clip: Audio, ref: Audio, *, window_s: float = 0.5) -> tuple[bool, float]:
    """Whether ``clip`` contains a recording that ``ref`` holds too (both at 8 kHz), and
    the best window correlation: one window at :data:`IDENTICAL` or more, or two windows
    at :data:`SHARED_WINDOWS` or more that agree on the alignment (unrelated audio never
    lines up twice at one lag)."""
    w = int(window_s * SR)
    if len(ref) < w:
        return False, 0.0
    energy = np.convolve(ref.astype(np.float64) ** 2, np.ones(w), mode="valid")
    found: list[tuple[float, int, int]] = []
    best = 0.0
    for start in range(0, max(1, len(clip) - w), w // 2):
        x = clip[start : start + w].astype(np.float64)
        ex = float(np.dot(x, x))
        if len(x) < w or ex < 1e-6:
            continue
        corr = np.correlate(ref.astype(np.float64), x, mode="valid")
        z = corr / np.sqrt(ex * energy + 1e-12)
        lag = int(np.argmax(z))
        best = max(best, float(z[lag]))
        if z[lag] >= SHARED_WINDOWS:
            found.append((float(z[lag]), lag - start, start))
    if best >= IDENTICAL:
        return True, best
    # The copy may play a little faster or slower (a resampled prompt): the alignment may
    # drift by up to MAX_DRIFT of the distance between the windows.
    agree = any(abs(a[1] - b[1]) <= _LAG_TOL_S * SR + MAX_DRIFT * abs(a[2] - b[2])
                for i, a in enumerate(found) for b in found[i + 1 :])
    return agree, best


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def share(n: int, d: int) -> float | None:
    return n / d if d else None


def length_key(length_s: float) -> str:
    return f"{length_s:g}s"


def group_by(records: Iterable[Record], key: Callable[[Record], Any]) -> dict[Any, list[Record]]:
    out: dict[Any, list[Record]] = defaultdict(list)
    for r in records:
        out[key(r)].append(r)
    return dict(out)


def hits_table(records: Sequence[Record], order: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per distortion and length: hits (``match``, the right episode and place) over
    clips, and every other clip by what went wrong: the misses (``no_match``,
    ``ambiguous``) apart from the wrong answers (a ``match`` naming a wrong episode or
    place; ``wrong_answers`` is their sum). Each clip is counted once.
    ``wrong_same_recording``: those of the wrong answers whose named place holds the same
    recording as the clip (a repeat in the corpus that its manifest does not declare);
    they stay wrong answers."""
    lib = group_by((r for r in records if r.kind == "library"),
                   lambda r: (r.distortion, r.length_s))
    table: dict[str, dict[str, Any]] = {}
    for name in order:
        row: dict[str, Any] = {}
        for (d, length), rs in sorted(lib.items()):
            if d == name:
                n = {o: sum(r.outcome == o for r in rs) for o in OUTCOMES}
                row[length_key(length)] = {
                    "hits": n["hit"], "clips": len(rs), "share": share(n["hit"], len(rs)),
                    "no_match": n["no_match"], "ambiguous": n["ambiguous"],
                    "misses": n["no_match"] + n["ambiguous"],
                    "wrong_episode": n["wrong_episode"], "wrong_place": n["wrong_place"],
                    "wrong_answers": n["wrong_episode"] + n["wrong_place"],
                    "wrong_same_recording": sum(r.outcome.startswith("wrong")
                                                and bool(r.identical_audio) for r in rs)}
        if row:
            table[name] = row
    return table


def outside_table(records: Sequence[Record], thresholds: dict[str, float]
                  ) -> dict[str, Any]:
    """False hits on each part of the outside audio, identical audio kept in the count."""
    out: dict[str, Any] = {}
    for part in ("calibration", "held_out"):
        rs = [r for r in records if r.kind == "outside" and r.part == part]
        by_len: dict[str, Any] = {}
        for length, group in sorted(group_by(rs, lambda r: length_key(r.length_s)).items()):
            raws = [r.raw_score for r in group if r.raw_score is not None]
            by_len[length] = {
                "clips": len(group),
                "false_hits": sum(r.answered and not r.identical_audio for r in group),
                "identical_audio": sum(r.answered and bool(r.identical_audio) for r in group),
                "max_raw_score": max(raws) if raws else None,
                "threshold": thresholds.get(length),
            }
        out[part] = {
            "clips": len(rs),
            "no_match": sum(not r.answered for r in rs),
            "false_hits": sum(r.answered and not r.identical_audio for r in rs),
            "identical_audio": sum(r.answered and bool(r.identical_audio) for r in rs),
            "by_length": by_len,
            "by_variant": {v: {"clips": len(g), "answered": sum(r.answered for r in g)}
                           for v, g in sorted(group_by(rs, lambda r: r.distortion).items())},
            "answered": [{"source": r.source, "start_s": round(r.start_s, 2),
                          "length_s": r.length_s, "variant": r.distortion,
                          "named": r.episode_file, "at_s": r.offset_s, "score": r.score,
                          "correlation": r.correlation,
                          "identical_audio": r.identical_audio}
                         for r in rs if r.answered],
        }
    return out


def shared_table(records: Sequence[Record]) -> dict[str, Any]:
    rs = [r for r in records if r.kind == "shared"]
    out: dict[str, Any] = {}
    for (name, length), group in sorted(group_by(rs, lambda r: (r.shared,
                                                                 length_key(r.length_s))).items()):
        out.setdefault(name, {})[length] = {
            "clips": len(group),
            "ambiguous": sum(r.status == "ambiguous" for r in group),
            "all_holders_listed": sum(bool(r.all_listed) for r in group),
            "single_confident": sum(r.status == "match" for r in group),
            "no_match": sum(r.status == "no_match" for r in group),
        }
    total: dict[str, Any] = {}
    for length, group in sorted(group_by(rs, lambda r: length_key(r.length_s)).items()):
        total[length] = {
            "clips": len(group),
            "ambiguous": sum(r.status == "ambiguous" for r in group),
            "ambiguous_share": share(sum(r.status == "ambiguous" for r in group), len(group)),
            "all_holders_listed": sum(bool(r.all_listed) for r in group),
            "single_confident": sum(r.status == "match" for r in group),
        }
    st = [r for r in records if r.kind == "straddle"]
    straddle = {length: {"clips": len(g), "named_episode": sum(r.hit for r in g),
                         "ambiguous": sum(r.status == "ambiguous" for r in g)}
                for length, g in sorted(group_by(st, lambda r: length_key(r.length_s)).items())}
    return {"by_material": out, "total": total, "straddling": straddle}


def _bins(rs: Sequence[Record], edges: Sequence[float], *, raw: bool) -> list[dict[str, Any]]:
    out = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        sel = [r for r in rs if (s := r.raw_score if raw else r.score) is not None
               and s >= lo and (hi is None or s < hi)]
        right = sum(bool(r.raw_right if raw else r.right) and r.kind != "outside" for r in sel)
        out.append({"lo": lo, "hi": hi, "answered": len(sel), "right": right,
                    "share_right": share(right, len(sel)),
                    "outside": sum(r.kind == "outside" for r in sel)})
    return out


def reliability(records: Sequence[Record], edges: Sequence[float] = SCORE_EDGES
                ) -> dict[str, Any]:
    """How often the best candidate is right, per bin of its score, per length and in
    all: for the answers given (``answered``), and for every clip with the threshold out
    of the way (``raw``: library clips under every distortion and outside clips, below
    the threshold too: the curve a confidence mapping is read from). Outside clips always
    count as wrong, identical audio included (the clip is not from the library)."""
    pool = [r for r in records if r.kind in ("library", "outside")]
    answered = [r for r in pool if r.answered and r.score is not None]
    raw = [r for r in pool if r.raw_score is not None]

    def section(rs: list[Record], is_raw: bool) -> dict[str, Any]:
        by_len = group_by(rs, lambda r: length_key(r.length_s))
        return {"all": _bins(rs, edges, raw=is_raw),
                "by_length": {k: _bins(v, edges, raw=is_raw) for k, v in sorted(by_len.items())}}

    return {
        "edges": list(edges),
        "score": "the best candidate's score (Candidate.score)",
        "right": "library clip: the right episode and start within 1 s; outside: never",
        "answered": {**section(answered, False),
                     "by_status": {s: _bins([r for r in answered if r.status == s], edges,
                                            raw=False) for s in ("match", "ambiguous")}},
        "raw": {**section(raw, True),
                "mapping": confidence_mapping(_bins(raw, edges, raw=True)),
                "no_candidate": {"library": sum(r.raw_score is None for r in pool
                                                if r.kind == "library"),
                                 "outside": sum(r.raw_score is None for r in pool
                                                if r.kind == "outside")}},
    }


def confidence_mapping(bins: Sequence[dict[str, Any]], min_clips: int = 5
                       ) -> list[tuple[float, float]]:
    """``MatchParams.reliability`` from reliability bins: (score, share right) at each
    bin's middle (an open last bin at its lower edge), made non-decreasing by pooling
    adjacent bins that break the order (pool-adjacent-violators, weighted by clips), so a
    higher score never reads as less sure. Shares are (right + 1) / (clips + 2), so no
    finite count reads as certainty (104 of 104 right: 0.99, not 1). Bins with fewer than
    ``min_clips`` are left out: a share of 1 or 2 clips says nothing."""
    pts: list[list[float]] = []  # [x, share, weight]
    for b in bins:
        if b["answered"] < min_clips:
            continue
        x = b["lo"] if b["hi"] is None else (b["lo"] + b["hi"]) / 2
        pts.append([x, (b["right"] + 1) / (b["answered"] + 2), float(b["answered"])])
    blocks: list[list[float]] = []  # [share, weight, first index, last index]
    for i, (_, y, w) in enumerate(pts):
        blocks.append([y, w, i, i])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            y2, w2, _, last = blocks.pop()
            y1, w1, first, _ = blocks.pop()
            blocks.append([(y1 * w1 + y2 * w2) / (w1 + w2), w1 + w2, first, last])
    out: list[tuple[float, float]] = []
    for y, _, first, last in blocks:
        for i in range(int(first), int(last) + 1):
            out.append((round(pts[i][0], 2), round(y, 4)))
    return out


def latency_table(records: Sequence[Record]) -> dict[str, Any]:
    """p50/p99 per group of decoded clips (5 s and all lengths), ``no_match`` answers
    apart, and file to answer."""
    decoded = [r for r in records if r.kind != "file"]

    def stats(rs: list[Record]) -> dict[str, Any]:
        ms = [r.elapsed_ms for r in rs]
        return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
                "max_ms": max(ms) if ms else None}

    def group(r: Record) -> str:
        return r.kind if r.kind in ("outside", "shared", "straddle") else r.group

    groups = group_by(decoded, group)
    out: dict[str, Any] = {
        "by_group": {g: {"5s": stats([r for r in rs if r.length_s == 5.0]), "all": stats(rs)}
                     for g, rs in sorted(groups.items())},
        "by_status": {s: {"5s": stats([r for r in decoded if r.status == s
                                        and r.length_s == 5.0]),
                          "all": stats([r for r in decoded if r.status == s])}
                      for s in ("match", "ambiguous", "no_match")},
        "every_decoded_clip": {"5s": stats([r for r in decoded if r.length_s == 5.0]),
                               "all": stats(decoded)},
        "file_to_answer": {p: stats(rs) for p, rs in sorted(group_by(
            (r for r in records if r.kind == "file"), lambda r: r.part).items())},
    }
    m = out["by_status"]["match"]["5s"]["p50_ms"]
    n = out["by_status"]["no_match"]["5s"]["p50_ms"]
    out["no_match_over_match_p50_5s"] = n / m if m and n else None
    return out
