"""Answers to act on and to share: scene, watch link and previews on every candidate, a
short share link whose page previews in chat apps (read back by a plain HTTP client over
a real server), the caller's quota, and listening over a WebSocket."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywok.analysis.decode import ffmpeg_binary
from citywok.cli.demo import RATE_HZ, THEME_S, episode_audio, melody
from citywok.index import Index
from citywok.pipeline import drive, index_paths
from citywok.web.app import create_app
from citywok.web.core.config import Settings
from tests.web.conftest import Library, LiveServer, start_server, stop_server

WATCH = "https://tv.example/vid-show/s{season}e{episode}?t={t}"


@dataclass(frozen=True)
class VideoLibrary:
    index: Path
    raw: list[np.ndarray]
    folder: Path


def _encode(audio: np.ndarray, path: Path, *, video: bool) -> None:
    dur = len(audio) / RATE_HZ
    cmd = [ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le", "-ar",
           str(RATE_HZ), "-ac", "1", "-i", "pipe:0"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"testsrc=s=160x90:r=10:d={dur:.3f}", "-map", "1:v",
                "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-shortest"]
    cmd += ["-c:a", "aac", "-b:a", "64k", str(path)]
    subprocess.run(cmd, input=audio.astype(np.float32).tobytes(), check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def video_library(tmp_path_factory: pytest.TempPathFactory) -> VideoLibrary:
    """Two episodes opening with one theme: S01E01 has a picture (ffmpeg's testsrc), S01E02
    is sound only; the sidecar gives the show's watch URL."""
    root = tmp_path_factory.mktemp("vidlib")
    folder = root / "Vid Show"
    folder.mkdir()
    rng = np.random.default_rng(3)
    theme = melody(np.random.default_rng(33), THEME_S, level=0.3)
    raw = [episode_audio(rng, theme, seconds=22.0) for _ in range(2)]
    _encode(raw[0], folder / "Vid Show - S01E01 - Pilot.mp4", video=True)
    _encode(raw[1], folder / "Vid Show - S01E02 - Radio.m4a", video=False)
    (folder / "citywok.csv").write_text(f"file,show,watch_url\n,Vid Show,{WATCH}\n")
    with Index.open(root / "index", writable=True) as idx:
        drive(index_paths(idx, [folder]))
    return VideoLibrary(index=root / "index", raw=raw, folder=folder)


def _settings(lib: VideoLibrary, tmp: Path, **more: Any) -> Settings:
    return Settings(index=lib.index, keys_db=tmp / "keys.sqlite", temp_dir=tmp / "work",
                    shares_db=tmp / "shares.sqlite", preview_cache_dir=tmp / "previews",
                    anonymous_rate_limit="1000/hour", **more)


@pytest.fixture(scope="module")
def vclient(video_library: VideoLibrary, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("vclient")
    with TestClient(create_app(_settings(video_library, tmp)),
                    raise_server_exceptions=False) as client:
        yield client


def _clip(lib: VideoLibrary, ep: int, start_s: float, length_s: float, path: Path,
          *, codec: tuple[str, ...] = ("-c:a", "libmp3lame", "-b:a", "96k")) -> Path:
    samples = lib.raw[ep][int(start_s * RATE_HZ): int((start_s + length_s) * RATE_HZ)]
    subprocess.run([ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le",
                    "-ar", str(RATE_HZ), "-ac", "1", "-i", "pipe:0", *codec, str(path)],
                   input=samples.astype(np.float32).tobytes(), check=True, capture_output=True)
    return path


def _identify(client: TestClient, path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        r = client.post("/api/v1/identify", files={"file": (path.name, fh, "audio/mpeg")})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def test_a_match_carries_its_scene_watch_link_previews_and_share_link(
        vclient: TestClient, video_library: VideoLibrary, tmp_path: Path) -> None:
    answer = _identify(vclient, _clip(video_library, 0, 12.0, 5.0, tmp_path / "c.mp3"))
    assert answer["status"] == "match", answer
    m = answer["match"]
    assert m["episode_id"] == "vid-show-s01e01"
    assert abs(m["offset_s"] - 12.0) < 0.5
    assert abs(m["end_s"] - (m["offset_s"] + answer["clip_duration_s"] * m["speed"])) < 0.01
    assert abs(m["episode_duration_s"] - 22.0) < 0.2
    assert m["watch_url"] == f"https://tv.example/vid-show/s1e1?t={int(m['offset_s'])}"
    share = answer["share_url"]
    assert share.startswith("http://testserver/r/") and len(share.rsplit("/", 1)[1]) == 8

    image = vclient.get(m["preview_image"] + "?size=small")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"
    assert "max-age" in image.headers["cache-control"]
    video = vclient.get(m["preview_video"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=codec_type,width:format=duration", "-of", "json", "-"],
                           input=video.content, capture_output=True, check=True)
    info = json.loads(probe.stdout)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]  # muted by default
    assert info["streams"][0]["width"] == 640
    assert 2.0 <= float(info["format"]["duration"]) <= 6.5
    # Cut once: the same still again comes from the cache.
    again = vclient.get(m["preview_image"] + "?size=small")
    assert again.content == image.content


def test_an_audio_only_source_gets_a_drawn_still(vclient: TestClient,
                                                 video_library: VideoLibrary,
                                                 tmp_path: Path) -> None:
    answer = _identify(vclient, _clip(video_library, 1, 14.0, 5.0, tmp_path / "r.mp3"))
    assert answer["match"]["episode_id"] == "vid-show-s01e02", answer
    image = vclient.get(answer["match"]["preview_image"])
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"


def test_previews_only_of_stored_answers(vclient: TestClient) -> None:
    for path in ("/api/v1/previews/AAAAAAAA/0.jpg", "/api/v1/previews/..%2F..%2Fx/0.jpg",
                 "/api/v1/previews/AAAAAAAA/0.mp4?size=huge", "/api/v1/shares/nope"):
        r = vclient.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert set(r.json()) == {"error"}
    # The library's files are not served unless the operator says so.
    assert vclient.get("/api/v1/episodes/vid-show-s01e01/media").status_code == 404


def test_an_ambiguous_answer_lists_every_episode_and_its_reason_field(
        vclient: TestClient, video_library: VideoLibrary, tmp_path: Path) -> None:
    answer = _identify(vclient, _clip(video_library, 0, 1.0, 6.0, tmp_path / "t.mp3"))
    assert answer["status"] == "ambiguous", answer
    assert {c["episode_id"] for c in answer["candidates"]} == {"vid-show-s01e01",
                                                              "vid-show-s01e02"}
    assert "shared" in answer  # the kind of shared material, or null until the catalogue knows


def test_me_tells_the_quota_without_spending_it(video_library: VideoLibrary,
                                                tmp_path: Path) -> None:
    settings = _settings(video_library, tmp_path).model_copy(
        update={"anonymous_rate_limit": "5/hour"})
    app = create_app(settings)
    with TestClient(app) as client:
        first = client.get("/api/v1/me").json()
        assert first == {"tier": "anonymous", "key_id": None, "key_name": None, "limit": 5,
                         "remaining": 5, "window_s": 3600, "reset_s": first["reset_s"]}
        assert client.get("/api/v1/me").json()["remaining"] == 5
        client.post("/api/v1/identify", json={"url": "https://example.com/x.mp4"})
        assert client.get("/api/v1/me").json()["remaining"] <= 5
        token = app.state.services.keys.create("pat", rate_limit="7/minute").token
        keyed = client.get("/api/v1/me", headers={"X-API-Key": token}).json()
        assert (keyed["tier"], keyed["key_name"], keyed["limit"], keyed["window_s"]) == \
            ("key", "pat", 7, 60)
        assert client.get("/api/v1/me", headers={"X-API-Key": "cwk_x_y"}).status_code == 401


# -- over a real server: the share page read by a plain HTTP client, and listening ------


class _Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "meta" and (a.get("property") or a.get("name")):
            self.tags[str(a.get("property") or a.get("name"))] = str(a.get("content"))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


@pytest.fixture(scope="module")
def live(video_library: VideoLibrary, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    lib = Library(folder=video_library.folder, index=video_library.index, raw=[], clips={},
                  long_clip=tmp)
    server = start_server(lib, tmp, env={
        "CITYWOK_SHARES_DB": str(tmp / "shares.sqlite"),
        "CITYWOK_PREVIEW_CACHE_DIR": str(tmp / "previews"),
        "CITYWOK_PUBLIC_URL": "https://citywok.example",
        "CITYWOK_LISTEN_MAX_S": "8"})
    yield server
    stop_server(server)


def test_the_share_page_previews_in_chat_apps(live: LiveServer, video_library: VideoLibrary,
                                              tmp_path: Path) -> None:
    clip = _clip(video_library, 0, 12.0, 5.0, tmp_path / "c.mp3")
    r = httpx.post(live.url + "/api/v1/identify", timeout=60,
                   files={"file": ("c.mp3", clip.read_bytes(), "audio/mpeg")})
    answer = r.json()
    share_url = answer["share_url"]
    assert share_url.startswith("https://citywok.example/r/")
    page = httpx.get(live.url + "/r/" + share_url.rsplit("/", 1)[1], timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    meta = _Meta()
    meta.feed(page.text)
    assert meta.tags["og:title"] == "Vid Show S01E01: Pilot"
    at = int(answer["match"]["offset_s"])
    assert meta.tags["og:description"].startswith(
        f"The clip is from Vid Show S01E01: Pilot, at 00:{at:02d} of 00:22")
    assert meta.tags["og:url"] == share_url
    assert meta.tags["og:image"] == answer["match"]["preview_image"]
    assert meta.tags["twitter:card"] == "summary_large_image"
    assert meta.tags["twitter:image"] == meta.tags["og:image"]
    assert "Vid Show S01E01: Pilot" in meta.title
    # The image a chat app fetches is there (the public address stands for this server).
    still = httpx.get(meta.tags["og:image"].replace("https://citywok.example", live.url))
    assert still.status_code == 200 and still.headers["content-type"] == "image/jpeg"
    # The share keeps the answer, not the clip's name.
    stored = httpx.get(live.url + "/api/v1/shares/" + share_url.rsplit("/", 1)[1]).json()
    assert stored["file"] is None and stored["match"]["episode_id"] == "vid-show-s01e01"
    gone = httpx.get(live.url + "/r/ZZZZZZZZ")
    assert gone.status_code == 404 and "expired" in gone.text


def _chunks(path: Path, size: int) -> list[bytes]:
    data = path.read_bytes()
    return [data[i: i + size] for i in range(0, len(data), size)]


def test_listening_answers_before_the_recording_ends(live: LiveServer,
                                                     video_library: VideoLibrary,
                                                     tmp_path: Path) -> None:
    """A 12 s WebM/Opus recording streamed at real speed: the answer comes well before."""
    from websockets.sync.client import connect

    clip = _clip(video_library, 0, 9.5, 12.0, tmp_path / "mic.webm",
                 codec=("-c:a", "libopus", "-b:a", "32k", "-f", "webm",
                        "-cluster_time_limit", "250"))
    chunks = _chunks(clip, 1200)  # about 0.25 s of Opus at 32 kb/s each
    per_chunk_s = 12.0 / len(chunks)
    started = time.monotonic()
    with connect(live.url.replace("http", "ws") + "/api/v1/listen", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "follow": False}))
        assert json.loads(ws.recv(timeout=10))["type"] == "listening"
        result: dict[str, Any] | None = None
        for chunk in chunks:
            ws.send(chunk)
            time.sleep(per_chunk_s)
            try:
                while True:
                    msg = json.loads(ws.recv(timeout=0))
                    if msg["type"] == "result":
                        result = msg
                        break
            except TimeoutError:
                pass
            if result is not None:
                break
        if result is None:
            ws.send(json.dumps({"type": "stop"}))
            while (msg := json.loads(ws.recv(timeout=20)))["type"] != "result":
                pass
            result = msg
    took = time.monotonic() - started
    print(f"listening answered after {result['heard_s']} s of sound, {took:.2f} s")
    answer = result["answer"]
    assert answer["status"] == "match", answer
    assert answer["match"]["episode_id"] == "vid-show-s01e01"
    assert abs(answer["match"]["offset_s"] - 9.5) < 1.0
    assert answer["share_url"].startswith("https://citywok.example/r/")
    assert result["heard_s"] < 6.0 and took < 8.0, (result["heard_s"], took)


def test_listening_to_something_else_stops_with_not_found(live: LiveServer,
                                                          tmp_path: Path) -> None:
    from websockets.sync.client import connect

    noise = np.random.default_rng(1).normal(0, 0.1, RATE_HZ * 10).astype(np.float32)
    path = tmp_path / "noise.webm"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le",
                    "-ar", str(RATE_HZ), "-ac", "1", "-i", "pipe:0", "-c:a", "libopus",
                    "-f", "webm", str(path)], input=noise.tobytes(), check=True)
    with connect(live.url.replace("http", "ws") + "/api/v1/listen", open_timeout=10) as ws:
        for chunk in _chunks(path, 4000):
            ws.send(chunk)
        messages = []
        while (msg := json.loads(ws.recv(timeout=30)))["type"] != "result":
            messages.append(msg)
    assert msg["answer"]["status"] == "no_match"
    assert 7.5 <= msg["heard_s"] <= 8.5  # CITYWOK_LISTEN_MAX_S
    assert any(m["type"] == "heard" for m in messages)


def test_listening_refuses_another_sites_page(live: LiveServer) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    from websockets.typing import Origin

    with pytest.raises(InvalidStatus), connect(
            live.url.replace("http", "ws") + "/api/v1/listen", open_timeout=10,
            origin=Origin("https://evil.example")):
        pass


def test_listening_counts_against_the_limit(video_library: VideoLibrary,
                                            tmp_path: Path) -> None:
    settings = _settings(video_library, tmp_path).model_copy(
        update={"anonymous_rate_limit": "1/hour"})
    with TestClient(create_app(settings)) as client:
        with client.websocket_connect("/api/v1/listen") as ws:
            assert ws.receive_json()["type"] == "listening"
        with client.websocket_connect("/api/v1/listen") as ws:
            msg = ws.receive_json()
        assert msg["type"] == "error" and msg["status"] == 429, msg
        assert msg["error"]["code"] == "rate_limited" and msg["retry_after_s"] > 0


def test_the_share_text_reads_the_one_clock() -> None:
    from citywok.web.routes.shares import describe_answer

    title, text = describe_answer({"status": "match", "match": {
        "show": "Demo Show", "season": 1, "episode": 2, "title": "Forest Orange",
        "offset_s": 599.99, "episode_duration_s": 1799.6}})
    assert title == "Demo Show S01E02: Forest Orange"
    assert "at 10:00 of 30:00." in text  # rounded once, as the page and the CLI show it
