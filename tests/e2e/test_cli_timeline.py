"""``citywok timeline`` and ``citywok listen``, run as a user would run them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from citywok.cli.demo import RATE_HZ, encode
from tests.conftest import DemoLibrary
from tests.e2e.test_cli import EXE, run


@pytest.fixture(scope="module")
def compilation(demo_library: DemoLibrary, outside_audio: np.ndarray,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Episode 2 from 10 s (9 s), outside audio (6 s), episode 4 from 12 s (10 s)."""
    x = np.concatenate([demo_library.clip(1, 10.0, 9.0), outside_audio[: 6 * RATE_HZ],
                        demo_library.clip(3, 12.0, 10.0)])
    return encode(x, tmp_path_factory.mktemp("tl") / "compilation.mp3",
                  audio_args=("-c:a", "libmp3lame", "-b:a", "128k"))


def test_timeline_json(compilation: Path, demo_library: DemoLibrary) -> None:
    proc = run("timeline", str(compilation), "--index", str(demo_library.index_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    segs = out["segments"]
    assert [s["status"] for s in segs] == ["match", "unknown", "match"]
    assert segs[0]["start_s"] == 0.0 and segs[-1]["end_s"] == pytest.approx(out["duration_s"])
    first, last = segs[0]["match"], segs[2]["match"]
    assert first["episode_id"] == demo_library.episode_id(1)
    assert abs(first["offset_s"] - 10.0) < 0.3 and abs(segs[0]["end_s"] - 9.0) < 0.4
    assert last["episode_id"] == demo_library.episode_id(3)
    assert abs(last["offset_s"] - (12.0 + segs[2]["start_s"] - 15.0)) < 0.2
    assert abs(segs[2]["start_s"] - 15.0) < 0.4
    # identify's match shape, plus where the segment ends in the episode.
    assert set(first) == {"show", "season", "episode", "title", "episode_id", "offset_s",
                          "confidence", "score", "speed", "pitch_semitones", "decided_by",
                          "front_end", "end_offset_s"}


def test_timeline_chapters_vtt_and_table(compilation: Path, demo_library: DemoLibrary) -> None:
    index = str(demo_library.index_dir)
    chapters = run("timeline", str(compilation), "--index", index, "--chapters")
    lines = chapters.stdout.splitlines()
    assert lines[0].startswith("00:00 S01E02 ") and lines[0].endswith(" @ 00:10")
    assert lines[1].startswith("00:09 Unknown") and lines[2].startswith("00:15 S01E04 ")
    vtt = run("timeline", str(compilation), "--index", index, "--vtt").stdout
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 2
    table = run("timeline", str(compilation), "--index", index)
    assert table.returncode == 0 and "S01E04" in table.stdout and "unknown" in table.stdout
    both = run("timeline", str(compilation), "--index", index, "--json", "--vtt")
    assert both.returncode == 2


def test_timeline_of_a_link_under_the_timeline_limits(compilation: Path,
                                                      demo_library: DemoLibrary) -> None:
    import functools
    import http.server
    import threading

    pytest.importorskip("yt_dlp", reason="links need the links extra")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(compilation.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        url = f"http://127.0.0.1:{port}/{compilation.name}"
        # Test-only settings: loopback is refused unless explicitly allowed. A clip's
        # download cap far below the file: a timeline's own limits are the ones that hold.
        env = {"CITYWOK_ALLOWED_HOSTS": "127.0.0.1", "CITYWOK_ALLOWED_PORTS": str(port),
               "CITYWOK_FETCH_ALLOW_LOOPBACK": "true", "CITYWOK_DOWNLOAD_MAX_BYTES": "1000"}
        proc = run("timeline", url, "--index", str(demo_library.index_dir), "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        tl = json.loads(proc.stdout)
        assert tl["file"] == url
        assert [s["status"] for s in tl["segments"]] == ["match", "unknown", "match"]
        refused = run("timeline", url, "--index", str(demo_library.index_dir))
        assert refused.returncode == 69 and "Traceback" not in refused.stderr, refused.stderr
    finally:
        server.shutdown()


def test_timeline_errors_map_to_exit_codes(tmp_path: Path, demo_library: DemoLibrary) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not media at all" * 100)
    proc = run("timeline", str(junk), "--index", str(demo_library.index_dir))
    assert proc.returncode == 65 and "not a media file" in proc.stderr
    assert run("timeline", str(junk), "--index", str(tmp_path / "none")).returncode == 66
    # An empty --index is misuse, as for every command, never the current folder.
    assert run("timeline", str(junk), "--index", "").returncode == 2


def test_listen_follows_a_stream_on_stdin(compilation: Path, demo_library: DemoLibrary) -> None:
    proc = subprocess.run([*EXE, "listen", "-", "--index", str(demo_library.index_dir),
                           "--json"], stdin=compilation.open("rb"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    found = [e for e in events if e["event"] == "found"]
    assert found[0]["match"]["episode_id"] == demo_library.episode_id(1)
    assert abs(found[0]["match"]["offset_s"] - (10.0 + found[0]["at_s"])) < 0.3
    assert any(e["event"] == "lost" for e in events)
    last = found[-1]
    assert last["match"]["episode_id"] == demo_library.episode_id(3)
    assert abs(last["match"]["offset_s"] - (12.0 + last["at_s"] - 15.0)) < 0.3
