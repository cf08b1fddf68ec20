"""The API takes pictures and videos too, with the same answer model (issue 17)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from citywok.web.app import create_app
from citywok.web.core.config import Settings
from tests.vision.conftest import AVLibrary
from tests.vision.test_identify_pictures import clips  # noqa: F401 - a fixture

URL = "/api/v1/identify"


@pytest.fixture
def client(av_library: AVLibrary, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(index=av_library.index_dir, keys_db=tmp_path / "keys.sqlite",
                        data_dir=tmp_path / "data", temp_dir=tmp_path / "work",
                        anonymous_rate_limit="1000/hour", key_rate_limit="1000/hour",
                        auth_failure_delay_s=0.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_screenshot_upload_is_answered_by_its_picture(client: TestClient,
                                                        clips: Path) -> None:  # noqa: F811
    # named by what it holds, not by what its name says
    r = client.post(URL, files={"file": ("screenshot", (clips / "shot.png").read_bytes())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "match" and body["match"]["decided_by"] == "picture"
    assert abs(body["match"]["offset_s"] - 25.0) <= 1.0
    assert body["disagreement"] is None and body["file"] == "screenshot"


def test_videos_with_and_without_sound_say_what_decided(client: TestClient,
                                                        clips: Path) -> None:  # noqa: F811
    for name, decided in (("mute.mp4", "picture"), ("clip.mp4", "both")):
        r = client.post(URL, files={"file": (name, (clips / name).read_bytes())})
        assert r.status_code == 200, r.text
        assert r.json()["match"]["decided_by"] == decided, name
    r = client.post(URL, files={"file": ("o.mp4", (clips / "other.mp4").read_bytes())})
    body = r.json()
    assert body["status"] == "ambiguous"
    assert body["disagreement"]["sound"]["episode_id"] == "av-show-s01e02"
    assert body["disagreement"]["picture"]["episode_id"] == "av-show-s01e01"


def test_a_picture_bomb_and_a_damaged_picture_are_refused_plainly(client: TestClient) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    r = client.post(URL, files={"file": ("bomb.png", bomb.getvalue())})
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == "picture_too_large", r.text
    good = io.BytesIO()
    Image.new("RGB", (64, 36), "red").save(good, "PNG")
    r = client.post(URL, files={"file": ("cut.png", good.getvalue()[:50])})
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == "corrupt_picture", r.text
    assert "Traceback" not in r.text
