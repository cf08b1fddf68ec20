"""Identification through the whole pipeline, on generated audio with real distortions."""

from pathlib import Path

import numpy as np
import pytest

from citywok.index import Index
from citywok.pipeline import identify_file, identify_file_steps
from citywok.result import Progress, Status
from tests.conftest import DemoLibrary, write_clip

R = 16000
#: name -> (ffmpeg filter, codec args, time scale of the clip relative to the episode)
DISTORTIONS: dict[str, tuple[str | None, tuple[str, ...], float]] = {
    "clean": (None, ("-c:a", "pcm_s16le"), 1.0),
    "mp3_32k": (None, ("-c:a", "libmp3lame", "-b:a", "32k"), 1.0),
    "opus_16k": (None, ("-c:a", "libopus", "-b:a", "16k"), 1.0),
    "phone": ("highpass=f=300,lowpass=f=3400", ("-c:a", "pcm_s16le"), 1.0),
    "speed_0.8": (f"asetrate={int(R * 0.8)},aresample={R}", ("-c:a", "pcm_s16le"), 0.8),
    "speed_1.25": (f"asetrate={int(R * 1.25)},aresample={R}", ("-c:a", "pcm_s16le"), 1.25),
    "tempo_0.8": ("atempo=0.8", ("-c:a", "pcm_s16le"), 0.8),
    "tempo_1.25": ("atempo=1.25", ("-c:a", "pcm_s16le"), 1.25),
    "pitch_-3": (f"rubberband=pitch={2 ** (-3 / 12):.5f}", ("-c:a", "pcm_s16le"), 1.0),
    "pitch_+3": (f"rubberband=pitch={2 ** (3 / 12):.5f}", ("-c:a", "pcm_s16le"), 1.0),
    "louder_quieter": ("volume=-18dB", ("-c:a", "pcm_s16le"), 1.0),
}


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_distorted_clip_is_found(name: str, demo_library: DemoLibrary, demo_index: Index,
                                 tmp_path: Path) -> None:
    filt, args, speed = DISTORTIONS[name]
    episode, start_s = 2, 17.4
    clip = demo_library.clip(episode, start_s, 6.0)
    path = write_clip(clip, tmp_path / f"clip-{name}.mkv", filters=filt, audio_args=args)
    res = identify_file(path, demo_index)
    assert res.status is Status.MATCH, res
    assert res.match is not None
    assert res.match.episode.episode_id == demo_library.episode_id(episode)
    assert abs(res.match.offset_s - start_s) < 1.0
    assert abs(res.match.speed - speed) < 0.05
    assert 0.5 < res.match.confidence <= 1.0


def test_noise_at_10_db(demo_library: DemoLibrary, demo_index: Index, tmp_path: Path) -> None:
    clip = demo_library.clip(1, 25.0, 5.0)
    rng = np.random.default_rng(4)
    noise = rng.standard_normal(len(clip)).astype(np.float32)
    noise *= np.sqrt(np.mean(clip**2) / np.mean(noise**2) / 10)
    res = identify_file(write_clip(clip + noise, tmp_path / "noisy.wav"), demo_index)
    assert res.match is not None
    assert res.match.episode.episode_id == demo_library.episode_id(1)
    assert abs(res.match.offset_s - 25.0) < 1.0


def test_shared_theme_is_ambiguous(demo_library: DemoLibrary, demo_index: Index,
                                   tmp_path: Path) -> None:
    clip = demo_library.clip(0, 1.5, 5.0)
    res = identify_file(write_clip(clip, tmp_path / "theme.wav"), demo_index)
    assert res.status is Status.AMBIGUOUS
    found = {c.episode.episode_id for c in res.candidates}
    assert found == {demo_library.episode_id(n) for n in range(4)}
    assert all(abs(c.offset_s - 1.5) < 1.0 for c in res.candidates)


def test_outside_audio_is_no_match(outside_audio: np.ndarray, demo_index: Index,
                                   tmp_path: Path) -> None:
    res = identify_file(write_clip(outside_audio[: 16000 * 6], tmp_path / "o.wav"), demo_index)
    assert res.status is Status.NO_MATCH
    assert res.match is None and res.candidates == ()


def test_progress_events_name_each_stage(demo_library: DemoLibrary, demo_index: Index,
                                         tmp_path: Path) -> None:
    path = write_clip(demo_library.clip(3, 10.0, 4.0), tmp_path / "c.wav")
    gen = identify_file_steps(path, demo_index)
    stages = []
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        assert isinstance(ev, Progress)
        stages.append(ev.stage)
    assert stages == ["decoding", "fingerprinting", "matching"]
    assert result.match.episode.episode_id == demo_library.episode_id(3)
    assert set(result.timings_ms) == {"decode_ms", "fingerprint_ms", "match_ms"}


def test_three_second_clip(demo_library: DemoLibrary, demo_index: Index,
                           tmp_path: Path) -> None:
    clip = demo_library.clip(0, 30.0, 3.0)
    res = identify_file(write_clip(clip, tmp_path / "short.mp3",
                                   audio_args=("-c:a", "libmp3lame", "-b:a", "64k")),
                        demo_index)
    assert res.match is not None and abs(res.match.offset_s - 30.0) < 1.0


def test_stored_lengths_are_checked_until_every_episode_is_whole(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    """An index from before decodes were checked: each run compares every stored episode
    with its file until none is short, then no more (a run with nothing to do stays
    quick); a short episode outside this run's folders keeps the check going."""
    import shutil
    import sqlite3

    from citywok.pipeline import drive, index_paths

    folders = []
    for n in range(2):
        folder = tmp_path / f"shows{n}"
        folder.mkdir()
        shutil.copy(demo_library.folder / demo_library.truth[n]["file"], folder)
        folders.append(folder)
    index_dir = tmp_path / "index"
    with Index.open(index_dir, writable=True) as idx:
        for folder in folders:
            drive(index_paths(idx, [folder]))
        assert idx.lengths_checked  # built by this version: checked as it was decoded
    with sqlite3.connect(index_dir / "catalog.sqlite") as db:  # as an older version left it
        db.execute("UPDATE episodes SET duration_s = 9.0 WHERE episode_id = ?",
                   (demo_library.episode_id(1),))
        db.execute("DELETE FROM meta WHERE key = 'lengths_checked'")
    with Index.open(index_dir, writable=True) as idx:
        first = drive(index_paths(idx, [folders[0]]))
        assert first.updated == () and not idx.lengths_checked  # the short one is elsewhere
        second = drive(index_paths(idx, [folders[1]]))
        assert second.updated == (demo_library.episode_id(1),) and idx.lengths_checked
        assert all(abs(e.duration_s - 40.0) < 0.1 for e in idx.episodes.values())
