"""A timeline of a video: what the sound leaves unknown, the pictures may name (issue 17)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np

from citywok.cli.demo import encode, melody
from citywok.index import Index
from citywok.long.timeline import StretchStatus, timeline_file
from citywok.result import Evidence
from tests.vision.conftest import AVLibrary


def test_a_song_over_the_scene_is_named_by_its_pictures(av_library: AVLibrary,
                                                        tmp_path: Path) -> None:
    song = encode(melody(np.random.default_rng(78), 20.0, level=0.3), tmp_path / "song.wav")
    clip = tmp_path / "mix.mp4"
    ep0, ep1 = str(av_library.path(0)), str(av_library.path(1))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", "10", "-t", "18", "-i", ep0,
         "-i", str(song), "-ss", "12", "-t", "18", "-i", ep1, "-filter_complex",
         "[0:v]setpts=PTS-STARTPTS[v0];[1:a]atrim=0:18,asetpts=PTS-STARTPTS[a0];"
         "[2:v]setpts=PTS-STARTPTS[v1];[2:a]asetpts=PTS-STARTPTS[a1];"
         "[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]", "-map", "[v]", "-map", "[a]",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(clip)], check=True)
    with Index.open(av_library.index_dir) as idx:
        tl = timeline_file(clip, idx)
    found = [(s.match.candidate.episode.episode_id, s.match.candidate.decided_by,
              s.start_s, s.match.candidate.offset_s)
             for s in tl.stretches if s.status is StretchStatus.MATCH and s.match]
    by_picture = [f for f in found if f[1] is Evidence.PICTURE]
    assert by_picture and by_picture[0][0] == "av-show-s01e01"
    assert abs(by_picture[0][3] - (10.0 + by_picture[0][2])) <= 1.5
    assert any(f[0] == "av-show-s01e02" and f[1] is Evidence.SOUND for f in found)
    ends = [(s.start_s, s.end_s) for s in tl.stretches]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))
    assert tl.to_json()["segments"][0]["match"]["decided_by"] in ("picture", "sound")
