"""A clip with video gets picture evidence, fused with its sound; a screenshot answers
alone; bad pictures are clear errors or the sound-only path (issue 17)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from citywok.cli.demo import encode, melody
from citywok.errors import CityWokError, MediaError
from citywok.index import Index
from citywok.pipeline import identify_file
from citywok.result import Evidence, IdentifyResult, Status
from citywok.vision.errors import (
    CorruptPictureError,
    NoPicturesIndexedError,
    PictureTooLargeError,
)
from tests.vision.conftest import AVLibrary


def _ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", *args], check=True)


def _ask(av: AVLibrary, path: Path) -> IdentifyResult:
    with Index.open(av.index_dir) as idx:
        return identify_file(path, idx)


@pytest.fixture(scope="module")
def clips(av_library: AVLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips")
    ep0, ep1 = str(av_library.path(0)), str(av_library.path(1))
    encode(melody(np.random.default_rng(77), 10.0, level=0.3), out / "song.wav")
    enc = ("-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
    _ff("-ss", "20", "-t", "5", "-i", ep0, *enc, str(out / "clip.mp4"))
    _ff("-ss", "20", "-t", "5", "-i", ep0, "-i", str(out / "song.wav"), "-map", "0:v",
        "-map", "1:a", "-t", "5", *enc, str(out / "song.mp4"))
    _ff("-ss", "20", "-t", "5", "-i", ep0, "-ss", "20", "-i", ep1, "-map", "0:v",
        "-map", "1:a", "-t", "5", *enc, str(out / "other.mp4"))
    _ff("-ss", "20", "-t", "5", "-i", ep0, "-an", "-c:v", "libx264", "-preset", "ultrafast",
        str(out / "mute.mp4"))
    _ff("-ss", "25", "-i", ep0, "-frames:v", "1", str(out / "shot.png"))
    _ff("-ss", "25", "-i", ep0, "-frames:v", "1", "-vf", "scale=3840:2160",
        str(out / "shot4k.jpg"))
    _ff("-ss", "2", "-i", ep0, "-frames:v", "1", str(out / "title.png"))
    _ff("-ss", "25", "-i", ep0, "-frames:v", "1", "-an", "-c:v", "libx264",
        str(out / "one-frame.mp4"))
    return out


def test_a_clip_whose_sound_and_pictures_agree_is_decided_by_both(
        av_library: AVLibrary, clips: Path) -> None:
    res = _ask(av_library, clips / "clip.mp4")
    assert res.status is Status.MATCH and res.match is not None
    assert res.match.episode.episode_id == "av-show-s01e01"
    assert res.match.offset_s == pytest.approx(20.0, abs=0.5)
    assert res.match.decided_by is Evidence.BOTH and res.disagreement is None
    assert res.to_json()["disagreement"] is None


def test_a_song_over_the_pictures_is_answered_by_the_pictures(
        av_library: AVLibrary, clips: Path) -> None:
    res = _ask(av_library, clips / "song.mp4")
    assert res.status is Status.MATCH and res.match is not None
    assert res.match.episode.episode_id == "av-show-s01e01"
    assert res.match.offset_s == pytest.approx(20.0, abs=1.0)
    assert res.match.decided_by is Evidence.PICTURE and res.match.front_end == "frames"


def test_sound_of_another_episode_is_said_not_picked_quietly(
        av_library: AVLibrary, clips: Path) -> None:
    res = _ask(av_library, clips / "other.mp4")
    assert res.status is Status.AMBIGUOUS and res.disagreement is not None
    assert res.disagreement.picture.episode.episode_id == "av-show-s01e01"
    assert res.disagreement.sound.episode.episode_id == "av-show-s01e02"
    out = res.to_json()["disagreement"]
    assert out["sound"]["decided_by"] == "sound" and out["picture"]["decided_by"] == "picture"
    assert {c.episode.episode_id for c in res.candidates} == {"av-show-s01e01",
                                                              "av-show-s01e02"}


def test_a_video_without_sound_and_a_one_frame_video_answer_by_pictures(
        av_library: AVLibrary, clips: Path) -> None:
    for name, at in (("mute.mp4", 20.0), ("one-frame.mp4", 25.0)):
        res = _ask(av_library, clips / name)
        assert res.status is Status.MATCH and res.match is not None, name
        assert res.match.episode.episode_id == "av-show-s01e01"
        assert res.match.offset_s == pytest.approx(at, abs=1.0)
        assert res.match.decided_by is Evidence.PICTURE


def test_a_screenshot_names_episode_and_time_and_the_title_card_is_ambiguous(
        av_library: AVLibrary, clips: Path) -> None:
    for name in ("shot.png", "shot4k.jpg"):
        res = _ask(av_library, clips / name)
        assert res.status is Status.MATCH and res.match is not None, name
        assert res.match.episode.episode_id == "av-show-s01e01"
        assert res.match.offset_s == pytest.approx(25.0, abs=1.0)
    title = _ask(av_library, clips / "title.png")
    assert title.status is Status.AMBIGUOUS
    assert {c.episode.episode_id for c in title.candidates} == {"av-show-s01e01",
                                                                "av-show-s01e02"}


def test_sound_files_answer_as_before(av_library: AVLibrary, tmp_path: Path) -> None:
    clip = encode(av_library.audio[2][16000 * 10:16000 * 15], tmp_path / "c.mp3",
                  audio_args=("-c:a", "libmp3lame"))
    res = _ask(av_library, clip)
    assert res.match is not None and res.match.episode.episode_id == "av-show-s01e03"
    assert res.match.decided_by is Evidence.SOUND and res.disagreement is None
    assert "pictures_ms" not in res.timings_ms


def test_bad_pictures_are_clear_errors(av_library: AVLibrary, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 megapixels in a small file
    damaged = tmp_path / "damaged.png"
    Image.new("RGB", (64, 36), "red").save(damaged)
    damaged.write_bytes(damaged.read_bytes()[:60])
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(b"\xff\xd8" + b"\0" * 60_000_000)
    with pytest.raises(PictureTooLargeError):
        _ask(av_library, bomb)
    with pytest.raises(CorruptPictureError):
        _ask(av_library, damaged)
    with pytest.raises(PictureTooLargeError):
        _ask(av_library, huge)
    for err in (PictureTooLargeError, CorruptPictureError):
        assert issubclass(err, MediaError) and issubclass(err, CityWokError)


def test_audio_with_a_still_image_is_answered_by_its_sound(
        av_library: AVLibrary, tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    Image.new("RGB", (320, 180), "navy").save(cover)
    wav = encode(av_library.audio[1][16000 * 12:16000 * 17], tmp_path / "c.wav")
    clip = tmp_path / "still.mp4"
    _ff("-loop", "1", "-i", str(cover), "-i", str(wav), "-shortest", "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    res = _ask(av_library, clip)
    assert res.match is not None and res.match.episode.episode_id == "av-show-s01e02"
    assert res.match.decided_by is Evidence.SOUND


def test_a_screenshot_needs_an_index_with_pictures(demo_index: Index, tmp_path: Path) -> None:
    shot = tmp_path / "shot.webp"
    Image.new("RGB", (64, 36), "red").save(shot)
    with pytest.raises(NoPicturesIndexedError, match="holds no episode's pictures"):
        identify_file(shot, demo_index)


def test_the_cli_says_which_evidence_decided(av_library: AVLibrary, clips: Path) -> None:
    import os
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "citywok.cli.main", "identify", "--index",
         str(av_library.index_dir), str(clips / "song.mp4"), str(clips / "other.mp4"),
         str(clips / "title.png")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "decided by the pictures" in lines[0] and "00:20.0" in lines[0]
    assert "sound and picture disagree" in lines[1]
    assert "the sound:" in lines[2] and "S01E02" in lines[2]
    assert "the pictures:" in lines[3] and "S01E01" in lines[3]
    assert "title card" in lines[4]
