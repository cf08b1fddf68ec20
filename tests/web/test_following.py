"""Listening that goes on following (``WS /api/v1/listen`` with ``"follow": true``), over a
real server: a WebM/Opus recording (as the page's MediaRecorder makes) that plays one
episode, seeks within it, then switches episode; the answer, then the live events with
the position within a tolerance, as one identification. Also the follow limits, and
that the decoder loses nothing at the start of a piped recording."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from citywok.analysis.decode import ffmpeg_binary
from citywok.cli.demo import RATE_HZ
from citywok.web.capture import decoder_command
from tests.web.conftest import Library, LiveServer, start_server, stop_server

#: The recording: (episode, start in it, seconds played), back to back.
PLAYED = ((1, 9.0, 7.0), (1, 21.0, 8.0), (2, 10.0, 10.0))
SEEK_S = 7.0  # where in the recording the seek is
SWITCH_S = 15.0  # ... and the change of episode
#: How much faster than real time the recording is sent (the tracker counts sound, not
#: wall time, so the events are the same; the test is quicker).
SPEEDUP = 3.0
#: Positions are right within this (seconds).
TOLERANCE_S = 0.5
#: Chunks of about this much sound, as the page sends them.
CHUNK_S = 0.25
WEBM = ("-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "webm",
        "-cluster_time_limit", "250")


def _webm(samples: np.ndarray, path: Path) -> Path:
    subprocess.run([ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le",
                    "-ar", str(RATE_HZ), "-ac", "1", "-i", "pipe:0", *WEBM, str(path)],
                   input=samples.astype(np.float32).tobytes(), check=True,
                   capture_output=True)
    return path


def _chunks(path: Path, seconds: float) -> list[bytes]:
    data = path.read_bytes()
    size = max(1, int(len(data) * CHUNK_S / seconds))
    return [data[i: i + size] for i in range(0, len(data), size)]


def _truth(at_s: float) -> tuple[int, float]:
    """The episode and the position in it at ``at_s`` seconds of the recording."""
    begin = 0.0
    for episode, start, length in PLAYED:
        if at_s < begin + length:
            return episode, start + at_s - begin
        begin += length
    episode, start, length = PLAYED[-1]
    return episode, start + length


def _episode_id(n: int) -> str:
    return f"demo-show-s01e{n + 1:02d}"


@dataclass(frozen=True)
class Session:
    messages: list[dict[str, Any]]
    before: int
    after: int


@pytest.fixture(scope="module")
def server(library: Library, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("follow")
    srv = start_server(library, tmp, env={"CITYWOK_ANONYMOUS_RATE_LIMIT": "5/hour",
                                          "CITYWOK_SHARES_DB": str(tmp / "shares.sqlite"),
                                          "CITYWOK_LISTEN_FOLLOW_MAX_SESSIONS": "1"})
    yield srv
    stop_server(srv)


def _remaining(server: LiveServer) -> int:
    return int(httpx.get(server.url + "/api/v1/me", timeout=10).json()["remaining"])


@pytest.fixture(scope="module")
def session(server: LiveServer, library: Library,
            tmp_path_factory: pytest.TempPathFactory) -> Session:
    """The recording streamed with ``"follow": true``; every message until the end."""
    from websockets.sync.client import connect

    audio = np.concatenate([library.raw[ep][int(s * RATE_HZ): int((s + n) * RATE_HZ)]
                            for ep, s, n in PLAYED])
    seconds = len(audio) / RATE_HZ
    path = _webm(audio, tmp_path_factory.mktemp("rec") / "mic.webm")
    before = _remaining(server)
    messages: list[dict[str, Any]] = []

    def drain(ws: Any) -> None:
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=0)))
        except TimeoutError:
            pass

    with connect(server.url.replace("http", "ws") + "/api/v1/listen", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "follow": True}))
        for chunk in _chunks(path, seconds):
            ws.send(chunk)
            time.sleep(CHUNK_S / SPEEDUP)
            drain(ws)
        # Let the last sound be heard: wait for a position past the change of episode.
        deadline = time.monotonic() + 30
        while not any(m.get("event") == "position" and m["at_s"] > seconds - 1.0
                      for m in messages) and time.monotonic() < deadline:
            messages.append(json.loads(ws.recv(timeout=30)))
        ws.send(json.dumps({"type": "stop"}))
        while messages[-1]["type"] != "follow_ended":
            messages.append(json.loads(ws.recv(timeout=30)))
    # For the record (pytest -s): when each place was found, and how far the positions
    # were off while a place played (from each found on, until the next change).
    found = [m for m in messages if m.get("event") == "found"]
    answer = next((m for m in messages if m["type"] == "result"), {})
    ends = [SEEK_S, SWITCH_S, seconds]
    steady = [abs(m["match"]["offset_s"] - _truth(m["at_s"])[1])
              for f, end in zip(found, ends, strict=False) for m in messages
              if m.get("event") in ("found", "position") and f["at_s"] <= m["at_s"] < end]
    print(f"following: answer after {answer.get('heard_s')} s of sound; found at "
          + ", ".join(f"{m['at_s']:.2f} s ({m['change']})" for m in found)
          + f" (seek at {SEEK_S} s, switch at {SWITCH_S} s); positions off by median "
          f"{np.median(steady):.3f} s, max {max(steady):.3f} s ({len(steady)} events)")
    return Session(messages=messages, before=before, after=_remaining(server))


def _live(session: Session, event: str, after_s: float = 0.0) -> list[dict[str, Any]]:
    return [m for m in session.messages
            if m["type"] == "live" and m["event"] == event and m["at_s"] >= after_s]


def test_the_answer_comes_first_and_says_following_goes_on(session: Session) -> None:
    kinds = [m["type"] for m in session.messages]
    assert kinds[0] == "listening"
    result = next(m for m in session.messages if m["type"] == "result")
    assert kinds.index("result") < kinds.index("live")
    answer = result["answer"]
    assert answer["status"] == "match", answer
    assert answer["match"]["episode_id"] == _episode_id(1)
    assert abs(answer["match"]["offset_s"] - PLAYED[0][1]) < 1.0
    assert result["follow"] == {"max_s": 1800.0, "idle_s": 300.0}
    assert result["heard_s"] < SEEK_S


def test_positions_follow_the_episode_as_it_plays(session: Session) -> None:
    first = _live(session, "found")[0]
    assert first["change"] == "first" and first["match"]["episode_id"] == _episode_id(1)
    assert abs(first["match"]["episode_duration_s"] - 30.0) < 0.1  # for "10:07 of 22:00"
    playing = [m for m in _live(session, "position") if m["at_s"] < SEEK_S - 0.5]
    assert len(playing) >= 2, session.messages
    for m in [first, *playing]:
        assert abs(m["match"]["offset_s"] - _truth(m["at_s"])[1]) < TOLERANCE_S, m


def test_a_seek_is_lost_then_found_again_within_5_s(session: Session) -> None:
    lost = _live(session, "lost", after_s=SEEK_S)[0]
    assert lost["reason"] == "mismatch" and abs(lost["since_s"] - SEEK_S) < 1.0
    # Where the first stretch would have been then, had it played on.
    assert abs(lost["last"]["offset_s"] - (PLAYED[0][1] + lost["since_s"])) < 1.0
    found = _live(session, "found", after_s=SEEK_S)[0]
    assert found["change"] == "seek" and found["match"]["episode_id"] == _episode_id(1)
    assert found["at_s"] - SEEK_S <= 5.0 and found["at_s"] < SWITCH_S
    assert abs(found["match"]["offset_s"] - _truth(found["at_s"])[1]) < TOLERANCE_S


def test_a_change_of_episode_is_found_within_5_s(session: Session) -> None:
    found = _live(session, "found", after_s=SWITCH_S)[0]
    assert found["change"] == "episode" and found["match"]["episode_id"] == _episode_id(2)
    assert found["at_s"] - SWITCH_S <= 5.0
    for m in [found, *_live(session, "position", after_s=found["at_s"])]:
        assert m["match"]["episode_id"] == _episode_id(2)
        assert abs(m["match"]["offset_s"] - _truth(m["at_s"])[1]) < TOLERANCE_S, m


def test_stop_ends_following_and_it_all_counted_once(session: Session) -> None:
    end = session.messages[-1]
    assert end["type"] == "follow_ended" and end["reason"] == "stopped"
    assert end["heard_s"] >= sum(n for _, _, n in PLAYED) - 1.0
    assert session.before - session.after == 1


def test_a_worker_follows_at_most_its_sessions_at_once(server: LiveServer, library: Library,
                                                      tmp_path: Path) -> None:
    """CITYWOK_LISTEN_FOLLOW_MAX_SESSIONS=1 here: while one session follows, the next gets
    its answer without following (and is told why); once the first ends, the slot is free."""
    from websockets.sync.client import connect

    chunks = _chunks(_webm(library.raw[2][int(10 * RATE_HZ): int(15 * RATE_HZ)],
                           tmp_path / "c.webm"), 5.0)
    url = server.url.replace("http", "ws") + "/api/v1/listen"

    def answer(ws: Any) -> dict[str, Any]:
        ws.send(json.dumps({"type": "start", "follow": True}))
        for chunk in chunks:
            ws.send(chunk)
        message: dict[str, Any] = {}
        while message.get("type") != "result":
            message = json.loads(ws.recv(timeout=30))
            assert message["type"] != "error", message
        assert message["answer"]["status"] == "match", message
        return message

    def stop(ws: Any) -> None:
        ws.send(json.dumps({"type": "stop"}))
        while json.loads(ws.recv(timeout=30))["type"] != "follow_ended":
            pass

    with connect(url, open_timeout=10) as first:
        assert answer(first)["follow"] is not None
        with connect(url, open_timeout=10) as second:
            refused = answer(second)
        assert refused["follow"] is None and refused["follow_refused"] == "busy"
        stop(first)
    with connect(url, open_timeout=10) as third:
        again = answer(third)
        assert again["follow"] is not None and "follow_refused" not in again
        stop(third)


def _over(messages: list[dict[str, Any]]) -> bool:
    return messages[-1]["type"] in ("follow_ended", "error")


def test_following_ends_at_its_limits(library: Library, tmp_path: Path) -> None:
    """No sound after the answer ends it as idle; a client that never stops is stopped at
    the follow limit (both wall-clock: 2.5 s and 3 s here; positions come every second)."""
    from websockets.sync.client import connect

    clip = _webm(library.raw[2][int(10 * RATE_HZ): int(22 * RATE_HZ)], tmp_path / "c.webm")
    chunks = _chunks(clip, 12.0)
    srv = start_server(library, tmp_path, env={"CITYWOK_LISTEN_FOLLOW_IDLE_S": "2.5",
                                                "CITYWOK_LISTEN_FOLLOW_MAX_S": "3"})
    try:
        for reason, sent in (("idle", chunks[: len(chunks) // 2]), ("limit", chunks)):
            with connect(srv.url.replace("http", "ws") + "/api/v1/listen",
                         open_timeout=10) as ws:
                ws.send(json.dumps({"type": "start", "follow": True}))
                messages = [json.loads(ws.recv(timeout=10))]
                started = time.monotonic()
                for chunk in sent:  # 6 s, then nothing; or 12 s in real time, on and on
                    ws.send(chunk)
                    if reason == "limit":
                        time.sleep(CHUNK_S)
                        with contextlib.suppress(TimeoutError):
                            while not _over(messages):
                                messages.append(json.loads(ws.recv(timeout=0)))
                        if _over(messages):
                            break
                with contextlib.suppress(TimeoutError):
                    while not _over(messages):
                        messages.append(json.loads(ws.recv(timeout=10)))
                took = time.monotonic() - started
            assert messages[-1]["type"] == "follow_ended", messages
            assert messages[-1]["reason"] == reason, messages
            assert any(m.get("event") == "position" for m in messages)
            if reason == "limit":
                assert took < 12.0  # not after the sound ran out
    finally:
        stop_server(srv)


def test_the_decoder_loses_nothing_at_the_start_of_a_piped_recording(
        library: Library, tmp_path: Path) -> None:
    """The page's WebM/Opus through the listening decoder, in the page's chunks, gives
    the same sound as ffmpeg reading the whole file (``-fflags nobuffer`` lost 20-60 ms)."""
    path = _webm(library.raw[1][int(9 * RATE_HZ): int(13 * RATE_HZ)], tmp_path / "s.webm")
    whole = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(path),
                            "-ac", "1", "-ar", "8000", "-f", "f32le", "pipe:1"],
                           capture_output=True, check=True).stdout
    proc = subprocess.Popen(decoder_command(8000), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    for chunk in _chunks(path, 4.0):
        proc.stdin.write(chunk)
        proc.stdin.flush()
    proc.stdin.close()
    piped = proc.stdout.read()
    proc.wait()
    a = np.frombuffer(whole, dtype=np.float32)
    b = np.frombuffer(piped, dtype=np.float32)
    assert abs(len(a) - len(b)) <= 8, (len(a), len(b))  # 1 ms at 8 kHz
    n = min(len(a), len(b), 8000)
    assert np.allclose(a[:n], b[:n], atol=1e-4)
