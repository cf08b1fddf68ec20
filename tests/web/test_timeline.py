"""POST /api/v1/timeline: uploads and links, JSON and SSE, limits, and a cancelled job
letting go of its worker at once (on a real server)."""

from __future__ import annotations

import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywok.cli.demo import RATE_HZ, encode
from tests.web.conftest import (
    Library,
    LiveServer,
    MediaServer,
    link_settings,
    parse_sse,
    start_server,
    stop_server,
)

URL = "/api/v1/timeline"


@pytest.fixture(scope="module")
def compilation(library: Library, outside_audio: np.ndarray,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Episode 1 from 10 s (9 s), outside audio (6 s), episode 3 from 12 s (10 s)."""
    raw = library.raw
    x = np.concatenate([raw[0][10 * RATE_HZ : 19 * RATE_HZ], outside_audio[: 6 * RATE_HZ],
                        raw[2][12 * RATE_HZ : 22 * RATE_HZ]]).astype(np.float32)
    return encode(x, tmp_path_factory.mktemp("tl") / "compilation.mp3",
                  audio_args=("-c:a", "libmp3lame", "-b:a", "96k"))


def episode_id(library: Library, n: int) -> str:
    del library  # the generated library names its episodes this way
    return f"demo-show-s01e{n + 1:02d}"


def check_segments(segments: list[dict[str, object]], library: Library) -> None:
    assert [s["status"] for s in segments] == ["match", "unknown", "match"]
    first, last = segments[0]["match"], segments[2]["match"]
    assert isinstance(first, dict) and isinstance(last, dict)
    assert first["episode_id"] == episode_id(library, 0)
    assert abs(float(first["offset_s"]) - 10.0) < 0.3
    assert last["episode_id"] == episode_id(library, 2)
    assert abs(float(segments[2]["start_s"]) - 15.0) < 0.4  # type: ignore[arg-type]


def test_upload_answers_the_cli_shape(client: TestClient, library: Library,
                                      compilation: Path) -> None:
    r = client.post(URL, files={"file": ("mix.mp3", compilation.read_bytes())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"file", "duration_s", "segments", "elapsed_ms"}
    assert body["file"] == "mix.mp3" and abs(body["duration_s"] - 25.0) < 0.1
    check_segments(body["segments"], library)
    assert set(body["segments"][0]["match"]) == {
        "show", "season", "episode", "title", "episode_id", "offset_s", "confidence", "score",
        "speed", "pitch_semitones", "decided_by", "front_end", "end_offset_s"}


def test_sse_sends_segments_as_they_are_found(client: TestClient, library: Library,
                                              compilation: Path) -> None:
    with client.stream("POST", URL + "?stream=true",
                       files={"file": ("mix.mp3", compilation.read_bytes())}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(parse_sse(r.iter_lines()))
    names = [n for n, _ in events if n != "heartbeat"]
    assert names[:2] == ["received", "decoding"] and names[-1] == "result"
    assert "progress" in names
    segments = [d for n, d in events if n == "segment"]
    result = events[-1][1]
    assert [s["index"] for s in segments] == [0, 1, 2]
    assert [{k: v for k, v in s.items() if k != "index"} for s in segments] == result["segments"]
    check_segments(result["segments"], library)


def test_link(make_client: Callable[..., TestClient], media_server: MediaServer,
              library: Library, compilation: Path) -> None:
    media_server.files["/compilation.mp3"] = compilation.read_bytes()
    client = make_client(**link_settings(media_server))
    r = client.post(URL, json={"url": f"{media_server.url}/compilation.mp3"})
    assert r.status_code == 200, r.text
    check_segments(r.json()["segments"], library)


def test_limits_are_its_own(make_client: Callable[..., TestClient],
                            compilation: Path) -> None:
    data = compilation.read_bytes()
    # The identify limit does not apply; the timeline's does, while the upload streams in.
    roomy = make_client(max_upload_bytes=1000)
    assert roomy.post(URL, files={"file": ("m.mp3", data)}).status_code == 200
    small = make_client(timeline_max_upload_bytes=len(data) // 2)
    r = small.post(URL, files={"file": ("m.mp3", data)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    short = make_client(timeline_max_duration_s=10.0)
    r = short.post(URL, files={"file": ("m.mp3", data)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "media_too_long"
    r = short.post(URL, files={"file": ("m.txt", b"not media" * 100)})
    assert r.status_code == 415


@pytest.fixture(scope="module")
def one_worker(library: Library, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("tl-live")
    srv = start_server(library, tmp, workers=1, env={"CITYWOK_MAX_CONCURRENT_JOBS": "1"})
    yield srv
    stop_server(srv)


@pytest.mark.slow
def test_disconnect_lets_go_of_the_worker_at_once(one_worker: LiveServer, library: Library,
                                                  tmp_path: Path) -> None:
    # Half an hour of tones that are in no library (the slow kind of input: every window
    # is searched), as a WAV, which costs nothing to write or to decode.
    rng = np.random.default_rng(5)
    notes = rng.uniform(200, 1500, (100, 3))
    t = np.arange(1600) / 8000
    pattern = np.concatenate([sum(np.sin(2 * np.pi * f * t) for f in row) for row in notes])
    pcm = np.tile((pattern * 6000).astype("<i2"), 90)  # 20 s, 90 times
    long = tmp_path / "long.wav"
    with wave.open(str(long), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    with httpx.stream("POST", one_worker.url + URL + "?stream=true",
                      files={"file": ("long.wav", long.read_bytes())}, timeout=60) as r:
        for name, _ in parse_sse(r.iter_lines()):
            if name == "progress":
                break
    # The only worker must be free for the next request straight away.
    started = time.monotonic()
    clip = library.clips[".mp3"]
    r2 = httpx.post(one_worker.url + "/api/v1/identify",
                    files={"file": ("c.mp3", clip.path.read_bytes())}, timeout=30)
    assert r2.status_code == 200 and r2.json()["match"]["episode_id"] == clip.episode_id
    assert time.monotonic() - started < 3.0
    work = one_worker.tmp / "work"
    deadline = time.monotonic() + 5
    while any(work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(work.iterdir()) == []
