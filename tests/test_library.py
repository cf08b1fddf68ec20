import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citywok.errors import LibraryError
from citywok.ingest.library import (
    EpisodeInfo,
    make_episode_id,
    parse_episode_name,
    scan,
    scan_library,
)

#: Release tags (``720p``, ``AAC`` ...) are dropped from titles by design, so a title made
#: only of one cannot survive a dotted release name.
RELEASE_TAGS = {"aac", "ac3", "dts", "hevc", "webrip", "bluray", "hdtv", "webdl", "web"}
words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=2,
                max_size=8).filter(lambda w: w.lower() not in RELEASE_TAGS)
shows = st.lists(words, min_size=1, max_size=3).map(" ".join)
titles = st.lists(words, min_size=1, max_size=4).map(" ".join)


@given(shows, st.integers(1, 40), st.integers(1, 300), titles)
def test_show_dash_sxxeyy_dash_title(show: str, season: int, episode: int, title: str) -> None:
    name = f"{show} - S{season:02d}E{episode:02d} - {title}.mkv"
    assert parse_episode_name(Path("/lib") / name) == EpisodeInfo(show, season, episode, title)


@given(shows, st.integers(1, 40), st.integers(1, 99), titles)
def test_dotted_release_name(show: str, season: int, episode: int, title: str) -> None:
    dotted = f"{show.replace(' ', '.')}.S{season:02d}E{episode:02d}.{title.replace(' ', '.')}"
    info = parse_episode_name(Path(f"/lib/{dotted}.720p.WEB-DL.x264.mp4"))
    assert (info.show, info.season, info.episode, info.title) == (show, season, episode, title)


@given(st.integers(1, 9), st.integers(1, 99))
def test_lowercase_s1e2_and_1x02(season: int, episode: int) -> None:
    assert parse_episode_name(Path(f"/x/My Show s{season}e{episode}.mp3")).episode == episode
    info = parse_episode_name(Path(f"/x/My Show {season}x{episode:02d} Pilot.mp4"))
    assert (info.show, info.season, info.episode, info.title) == ("My Show", season, episode,
                                                                  "Pilot")


@given(shows, st.integers(1, 30), st.integers(1, 99))
def test_season_folder_episode_file(show: str, season: int, episode: int) -> None:
    info = parse_episode_name(Path(f"/lib/{show}/Season {season}/Episode {episode:02d}.mkv"))
    assert (info.show, info.season, info.episode) == (show, season, episode)
    info2 = parse_episode_name(Path(f"/lib/{show}/Season {season}/{episode:02d} - Title.mkv"))
    assert (info2.season, info2.episode, info2.title) == (season, episode, "Title")


@given(st.text(max_size=40))
def test_any_name_parses_without_error(name: str) -> None:
    safe = name.replace("/", "_").replace("\0", "_") or "x"
    info = parse_episode_name(Path("/lib") / (safe + ".mp4"))
    assert info.show


def test_unstructured_name_uses_folder_as_show() -> None:
    info = parse_episode_name(Path("/media/Nature Docs/the big river.mp4"))
    assert info == EpisodeInfo("Nature Docs", None, None, "the big river")


def test_episode_ids() -> None:
    assert make_episode_id(EpisodeInfo("Harbor Lights", 1, 2, "X"), Path("a.mp4")) == \
        "harbor-lights-s01e02"
    assert make_episode_id(EpisodeInfo("Docs", None, None, None), Path("The River.mp4")) == \
        "docs-the-river"


def test_sidecar_overrides_names(tmp_path: Path) -> None:
    (tmp_path / "a.mp3").write_bytes(b"")
    (tmp_path / "Show - S01E01 - Old.mp3").write_bytes(b"")
    (tmp_path / "citywok.csv").write_text(
        "file,show,season,episode,title\n"
        "a.mp3,Other Show,2,5,Fresh Title\n"
        "Show - S01E01 - Old.mp3,,,,New Title\n")
    found = {f.path.name: f.info for f in scan([tmp_path])}
    assert found["a.mp3"] == EpisodeInfo("Other Show", 2, 5, "Fresh Title")
    assert found["Show - S01E01 - Old.mp3"] == EpisodeInfo("Show", 1, 1, "New Title")


def test_bad_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.mp3").write_bytes(b"")
    (tmp_path / "citywok.csv").write_text("name,show\na.mp3,X\n")
    with pytest.raises(LibraryError, match="file"):
        list(scan([tmp_path]))
    (tmp_path / "citywok.csv").write_text("file,season\na.mp3,two\n")
    with pytest.raises(LibraryError, match="season"):
        list(scan([tmp_path]))


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryError):
        list(scan([tmp_path / "nope"]))


def test_sidecar_watch_urls_per_file_and_per_show(tmp_path: Path) -> None:
    from citywok.ingest.library import render_watch_url

    (tmp_path / "Show - S01E01.mkv").write_bytes(b"x")
    (tmp_path / "Show - S01E02.mkv").write_bytes(b"x")
    (tmp_path / "Other - S02E05.mkv").write_bytes(b"x")
    (tmp_path / "citywok.csv").write_text(
        "file,show,watch_url\n"
        ",Show,https://tv.example/show/{season}x{episode:02d}?t={t}\n"
        "Show - S01E02.mkv,,https://special.example/two#t={t}\n")
    infos = {f.path.name: f.info for f in scan([tmp_path])}
    one = infos["Show - S01E01.mkv"].watch_url
    assert one == "https://tv.example/show/{season}x{episode:02d}?t={t}"
    assert render_watch_url(one, season=1, episode=1, t_s=600.7) == \
        "https://tv.example/show/1x01?t=601"  # as the page shows it: 10:01
    assert render_watch_url(one, season=1, episode=1, t_s=600.4) == \
        "https://tv.example/show/1x01?t=600"
    assert infos["Show - S01E02.mkv"].watch_url == "https://special.example/two#t={t}"
    assert infos["Other - S02E05.mkv"].watch_url is None
    assert render_watch_url(one, season=None, episode=3, t_s=1) is None


@pytest.mark.parametrize("bad", ["ftp://x.example/{t}", "https://x.example/{path}",
                                 "https://x.example/{t", "javascript:alert(1)"])
def test_sidecar_refuses_bad_watch_urls(tmp_path: Path, bad: str) -> None:
    (tmp_path / "Show - S01E01.mkv").write_bytes(b"x")
    (tmp_path / "citywok.csv").write_text(f"file,watch_url\nShow - S01E01.mkv,{bad}\n")
    with pytest.raises(LibraryError, match="watch_url"):
        list(scan([tmp_path]))


@pytest.mark.parametrize(("name", "show", "title"), [
    ("Rock [live] - S01E01 - Rock [i] Roll.mkv", "Rock [live]", "Rock [i] Roll"),
    ("Show (2019) - S01E02 - Pilot (Part 1).mp4", "Show (2019)", "Pilot (Part 1)"),
    ("Show [S01E03] Title.mp4", "Show", "Title"),
])
def test_brackets_in_names_stay_whole(name: str, show: str, title: str) -> None:
    info = parse_episode_name(Path("/lib") / name)
    assert (info.show, info.title) == (show, title)


def _tone(path: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", *args, str(path)], check=True)
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is missing")
def test_scan_takes_what_ffmpeg_reads_and_names_what_it_leaves_out(tmp_path: Path) -> None:
    """Issue 8, item 1: .mka, .wv, .ac3, .caf, .mts, no extension at all: all audio."""
    for name, fmt in (("a.mka", "matroska"), ("b.wv", "wv"), ("c.ac3", "ac3"),
                      ("d.caf", "caf"), ("e.mts", "mpegts"), ("no-extension", "wav"),
                      ("f.audio", "ogg")):
        _tone(tmp_path / name, "-f", fmt)
    _tone(tmp_path / "known.mp3")
    _tone(tmp_path / "cover.png", "-f", "lavfi", "-i", "color=c=red:s=8x8:d=1", "-map",
          "1:v", "-frames:v", "1")
    (tmp_path / "notes.txt").write_text("the best episodes\n")
    _tone(tmp_path / ".hidden.mp3")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.mp3").write_bytes(b"")
    (tmp_path / "citywok.csv").write_text("file,title\n")
    found = scan_library([tmp_path])
    assert sorted(f.path.name for f in found.files) == [
        "a.mka", "b.wv", "c.ac3", "d.caf", "e.mts", "f.audio", "known.mp3", "no-extension"]
    reasons = dict(found.left_out)
    assert set(reasons) == {"cover.png", "notes.txt", ".hidden.mp3", ".git"}
    assert "no audio" in reasons["cover.png"]
    assert "not a media file" in reasons["notes.txt"]
    assert "hidden" in reasons[".hidden.mp3"] and "hidden" in reasons[".git"]
