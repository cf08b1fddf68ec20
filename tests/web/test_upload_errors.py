"""What a refused or unusable upload says (issue 8, item 9): the uploaded file's own name,
never the server's temporary name, and sizes a person can read, never an internal byte
count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywok.cli.demo import encode


def test_a_silent_upload_is_named_by_its_own_name(client: TestClient, tmp_path: Path) -> None:
    silent = encode(np.zeros(16000 * 3, dtype=np.float32), tmp_path / "x.wav")
    with silent.open("rb") as fh:
        r = client.post("/api/v1/identify",
                        files={"file": ("quiet take [tv].wav", fh, "audio/wav")})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "quiet take [tv].wav" in message
    assert "upload.bin" not in message


@pytest.mark.parametrize("route", ["identify", "timeline"])
def test_an_unusable_upload_is_named_by_its_own_name(client: TestClient, tmp_path: Path,
                                                     route: str) -> None:
    junk = tmp_path / "x.mp4"
    junk.write_bytes(b"not media at all" * 100)
    with junk.open("rb") as fh:
        r = client.post(f"/api/v1/{route}",
                        files={"file": ("bad take [tv].mp4", fh, "video/mp4")})
    assert r.status_code == 415, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("bad take [tv].mp4: "), message


def test_a_hostile_upload_name_is_reduced_to_a_plain_file_name(client: TestClient,
                                                               tmp_path: Path) -> None:
    silent = encode(np.zeros(16000 * 3, dtype=np.float32), tmp_path / "x.wav")
    with silent.open("rb") as fh:
        r = client.post("/api/v1/identify",
                        files={"file": ("../../etc/passwd.wav", fh, "audio/wav")})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("passwd.wav: "), message


def test_too_large_says_the_limit_in_words(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=1_000_000)
    body = b"\0" * 3_000_000
    r = client.post("/api/v1/identify", files={"file": ("big clip.mp4", body, "video/mp4")})
    assert r.status_code == 413
    message = r.json()["error"]["message"]
    assert "1 MB" in message, message
    # Neither the configured count in bytes nor the internal one (limit + form overhead).
    assert not any(ch.isdigit() for ch in message.replace("1 MB", "")), message


def test_too_large_while_streaming_says_the_limit_in_words(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=1_000_000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while the body streams in
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"'
               b"\r\n\r\n")
        for _ in range(40):
            yield b"\0" * 100_000

    r = client.post("/api/v1/identify", content=chunks(),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    message = r.json()["error"]["message"]
    assert "1 MB" in message and "1065536" not in message, message


@pytest.mark.parametrize(("route", "setting"), [("identify", "max_upload_bytes"),
                                               ("timeline", "timeline_max_upload_bytes")])
def test_a_file_just_past_the_limit_says_it_in_words(
        make_client: Callable[..., TestClient], route: str, setting: str) -> None:
    # Within the room the guard leaves for the form around the file: the route's own
    # count of the file's bytes refuses it.
    client = make_client(**{setting: 1_000_000})
    r = client.post(f"/api/v1/{route}",
                    files={"file": ("a.mp4", b"\0" * 1_010_000, "video/mp4")})
    assert r.status_code == 413
    message = r.json()["error"]["message"]
    assert message == "the file is larger than the 1 MB this server accepts", message


def test_upload_name_keeps_the_name_and_drops_what_is_unsafe() -> None:
    from citywok.web.sources import upload_name

    assert upload_name("clip [web].mp3") == "clip [web].mp3"
    assert upload_name("C:\\fakepath\\scene.mp4") == "scene.mp4"
    assert upload_name("a/b/\x07bell\n.wav") == "bell.wav"
    assert upload_name("..") == upload_name("") == upload_name(None) == "upload"
    long = upload_name("é" * 300 + ".webm")
    assert long.endswith(".webm") and len(long.encode()) <= 200
