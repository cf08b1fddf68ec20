"""bench.diff_records pairs two runs' clips and names every answer that moved."""

import json
from pathlib import Path

from bench.diff_records import diff


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _rec(start: float, **answer: object) -> dict[str, object]:
    base = {"kind": "library", "distortion": "clean", "length_s": 5.0, "source": "a.webm",
            "start_s": start, "part": "", "status": "match", "episode_file": "a.webm",
            "offset_s": start, "score": 12.5, "elapsed_ms": 40.0}
    return {**base, **answer}


def test_timings_do_not_count_but_every_answer_field_does(tmp_path: Path) -> None:
    before = _write(tmp_path / "a.jsonl", [_rec(1.0), _rec(2.0), _rec(3.0)])
    after = _write(tmp_path / "b.jsonl", [_rec(1.0, elapsed_ms=99.0), _rec(2.0, score=12.4),
                                          _rec(4.0)])
    report = diff(before, after)
    assert report["identical"] == 1
    assert [d["clip"]["start_s"] for d in report["differing"]] == [2.0]
    assert report["differing"][0]["after"][0]["score"] == 12.4
    assert [c["start_s"] for c in report["only_before"]] == [3.0]
    assert [c["start_s"] for c in report["only_after"]] == [4.0]
