"""POST /api/v1/identify in process: uploads of several containers, JSON and SSE."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citywok.index import Index
from citywok.pipeline import identify_file
from tests.web.conftest import Library, parse_sse

URL = "/api/v1/identify"


@pytest.mark.parametrize("ext", [".mp3", ".ogg", ".m4a", ".webm", ".flac", ".wav", ".mkv"])
def test_upload_identifies_episode_and_offset(client: TestClient, library: Library,
                                              ext: str) -> None:
    clip = library.clips[ext]
    with clip.path.open("rb") as fh:
        r = client.post(URL, files={"file": (f"clip{ext}", fh, "application/octet-stream")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "match"
    assert body["match"]["episode_id"] == clip.episode_id
    assert abs(body["match"]["offset_s"] - clip.offset_s) <= 1.0
    assert body["file"] == f"clip{ext}"


def test_json_shape_is_the_cli_shape(client: TestClient, library: Library) -> None:
    clip = library.clips[".mp3"]
    with Index.open(library.index) as idx:
        cli = identify_file(clip.path, idx).to_json(file="x.mp3")
    r = client.post(URL, files={"file": ("x.mp3", clip.path.read_bytes())})
    body = r.json()
    # The web answer adds links to act on and to share (docs/web.md, "Answers"); both
    # say how much of the library was not searched.
    assert set(body) == set(cli) | {"share_url"}
    assert body["episodes_not_searched"] == cli["episodes_not_searched"] == 0
    assert set(body["match"]) == set(cli["match"]) | {
        "end_s", "episode_duration_s", "watch_url", "preview_image", "preview_video"}
    assert {k: body["match"][k] for k in cli["match"]} == cli["match"]


def test_sse_stream_event_by_event(client: TestClient, library: Library) -> None:
    clip = library.clips[".ogg"]
    names: list[str] = []
    with client.stream("POST", URL, files={"file": ("c.ogg", clip.path.read_bytes())},
                       headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for name, data in parse_sse(r.iter_lines()):
            names.append(name)
            if name == "received":
                assert data["bytes"] == clip.path.stat().st_size
            if name == "result":
                assert data["match"]["episode_id"] == clip.episode_id
                assert abs(data["match"]["offset_s"] - clip.offset_s) <= 1.0
    stages = [n for n in names if n != "heartbeat"]
    assert stages == ["received", "decoding", "fingerprinting", "matching", "result"]


def test_stream_flag_in_query_and_form(client: TestClient, library: Library) -> None:
    data = library.clips[".wav"].path.read_bytes()
    r = client.post(URL + "?stream=true", files={"file": ("c.wav", data)})
    assert r.headers["content-type"].startswith("text/event-stream")
    r = client.post(URL, files={"file": ("c.wav", data)}, data={"stream": "true"})
    assert [n for n, _ in parse_sse(iter(r.text.splitlines()))][-1] == "result"


def test_heartbeats_while_a_stage_runs(make_client: Callable[..., TestClient],
                                       library: Library) -> None:
    client = make_client(sse_heartbeat_s=0.01)
    r = client.post(URL + "?stream=1", files={"file": ("l.mp3", library.long_clip.read_bytes())})
    events = list(parse_sse(iter(r.text.splitlines())))
    beats = [d for n, d in events if n == "heartbeat"]
    assert beats and all("stage" in d and "elapsed_s" in d for d in beats)
    assert events[-1][0] == "result"


def test_sse_error_event(client: TestClient) -> None:
    r = client.post(URL, files={"file": ("x.mp3", b"this is not audio at all" * 50)},
                    headers={"Accept": "text/event-stream"})
    events = list(parse_sse(iter(r.text.splitlines())))
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["code"] == "not_media"
    assert events[-1][1]["status"] == 415


@pytest.mark.parametrize(("body", "code", "status"), [
    (b"this is not audio at all" * 50, "not_media", 415),
    (b"#EXTM3U\n#EXTINF:1,\nhttp://169.254.169.254/a.mp3\n", "not_media", 415),
    (b"ffconcat version 1.0\nfile '/etc/passwd'\n", "not_media", 415),
])
def test_upload_refused_by_content(client: TestClient, body: bytes, code: str,
                                   status: int) -> None:
    r = client.post(URL, files={"file": ("clip.mp3", body, "audio/mpeg")})
    assert r.status_code == status
    assert r.json() == {"error": {"code": code, "message": r.json()["error"]["message"]}}


def test_empty_upload(client: TestClient) -> None:
    r = client.post(URL, files={"file": ("e.mp3", b"")})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "empty_media"


def test_duration_limit(make_client: Callable[..., TestClient], library: Library) -> None:
    client = make_client(max_clip_duration_s=20)
    r = client.post(URL, files={"file": ("l.mp3", library.long_clip.read_bytes())})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "media_too_long"


def test_upload_size_limit_by_content_length(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=10_000)
    r = client.post(URL, files={"file": ("big.mp3", b"\0" * 200_000)})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_upload_size_limit_while_streaming(make_client: Callable[..., TestClient]) -> None:
    """A chunked body (no Content-Length) is refused by counting as it streams in.

    (That the rest is never read is shown against a real server in test_server.py.)
    """
    client = make_client(max_upload_bytes=10_000)
    boundary = "b0undary"

    def body() -> Iterator[bytes]:
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                "filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n").encode()
        yield head
        for _ in range(1000):
            yield b"\0" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post(URL, content=body(),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_temp_files_removed(client: TestClient, library: Library, tmp_path: Path) -> None:
    work = tmp_path / "work"
    client.post(URL, files={"file": ("a.mp3", library.clips[".mp3"].path.read_bytes())})
    client.post(URL, files={"file": ("a.mp3", b"junk" * 100)})
    client.post(URL, files={"file": ("a.mp3", b"")})
    client.post(URL, files={"file": ("a.mp3", b"x")}, data={"url": "https://youtube.com/x"})
    client.post(URL + "?stream=1", files={"file": ("a.mp3", b"junk" * 100)})
    assert work.is_dir()
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"files": {"file": ("a.mp3", b"x")}, "data": {"url": "https://youtube.com/w"}}, 422,
     "invalid_request"),
    ({"data": {"other": "1"}}, 422, "invalid_request"),
    ({"json": {}}, 422, "invalid_request"),
    ({"json": {"url": "https://youtube.com/x", "extra": 1}}, 422, "invalid_request"),
    ({"json": {"url": 5}}, 422, "invalid_request"),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
     "malformed_json"),
    ({"content": b"[" * 50 + b"]" * 50, "headers": {"Content-Type": "application/json"}}, 400,
     "json_too_deep"),
    ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415,
     "unsupported_media_type"),
    ({"files": {"url": ("a.txt", io.BytesIO(b"x"))}}, 422, "invalid_request"),
    ({"data": {"file": "not a file"}}, 422, "invalid_request"),
])
def test_malformed_requests(client: TestClient, kwargs: dict[str, object], status: int,
                            code: str) -> None:
    r = client.post(URL, **kwargs)  # type: ignore[arg-type,unused-ignore]
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert set(r.json()["error"]) == {"code", "message"}


def test_json_body_size_limit(client: TestClient) -> None:
    r = client.post(URL, content=json.dumps({"url": "https://youtube.com/" + "a" * 70_000}),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
