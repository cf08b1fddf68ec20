"""``citywok index`` tells success from failure (issue 8, items 1 and 2)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from citywok.cli.main import EXIT_CODES
from citywok.errors import (
    IndexingFailedError,
    IndexingIncompleteError,
    IndexNotFoundError,
    InputsIncompleteError,
    MediaError,
    NoMediaFoundError,
)
from tests.conftest import DemoLibrary
from tests.e2e.test_cli import EXE, run


def _code(cls: type) -> int:
    return next(code for c, code, _ in EXIT_CODES if c is cls)


@pytest.fixture(scope="module")
def episode(demo_library: DemoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo episode in Matroska audio (.mka), an extension the scan once skipped."""
    src = demo_library.folder / demo_library.truth[0]["file"]
    out = tmp_path_factory.mktemp("mka") / "Demo Show - S01E01 - Pilot.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-vn", "-c:a", "copy",
                    str(out)], check=True)
    return out


def test_mka_indexed_and_left_out_files_named(episode: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shows"
    folder.mkdir()
    shutil.copy(episode, folder)
    (folder / "notes.txt").write_text("not audio\n")
    proc = run("index", str(folder), "--index", str(tmp_path / "index"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["added"] == ["demo-show-s01e01"]
    assert [f["file"] for f in summary["left_out"]] == ["notes.txt"]
    assert "not a media file" in summary["left_out"][0]["reason"]
    again = run("index", str(folder), "--index", str(tmp_path / "index"))
    assert "left out notes.txt: not a media file" in again.stdout, again.stdout
    assert "index: 1 episode, " in again.stdout, again.stdout  # never "1 episodes"


def test_partial_and_total_failure_have_their_own_codes(episode: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shows"
    folder.mkdir()
    (folder / "broken - S01E02.mp3").write_text("not audio")
    (folder / "broken - S01E03.mp4").write_text("not video")
    failed = run("index", str(folder), "--index", str(tmp_path / "i1"))
    assert failed.returncode == _code(IndexingFailedError) != 0, failed.stderr
    assert "failed 2" in failed.stdout and "Traceback" not in failed.stderr
    # Each named once ("failed X.mp3: X.mp3: ..." said it twice).
    assert "  failed broken - S01E02.mp3: not a media file" in failed.stdout, failed.stdout
    # Nothing was indexed: no empty index is left to answer "no match" for every clip.
    assert not (tmp_path / "i1").exists()
    shutil.copy(episode, folder)
    partial = run("index", str(folder), "--index", str(tmp_path / "i2"), "--json")
    assert partial.returncode == _code(IndexingIncompleteError) not in (0, 1, 2, 65)
    summary = json.loads(partial.stdout)
    assert len(summary["added"]) == 1 and len(summary["failed"]) == 2


def test_empty_folder_says_no_media_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    proc = run("index", str(tmp_path / "empty"), "--index", str(tmp_path / "index"))
    assert proc.returncode == _code(NoMediaFoundError) != 0
    assert "no media found" in proc.stderr and "readme.txt" in proc.stdout
    assert not (tmp_path / "index").exists()


def test_usage_errors_create_nothing(tmp_path: Path) -> None:
    # A path that does not exist is an input that cannot be read (as for identify).
    missing = run("index", str(tmp_path / "nope"), "--index", str(tmp_path / "index"))
    assert missing.returncode == 65 and "nope: no such file or folder" in missing.stderr
    assert not (tmp_path / "index").exists()
    (tmp_path / "shows").mkdir()
    blank = subprocess.run([*EXE, "index", "shows", "--index", ""], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert blank.returncode == 2 and "--index" in blank.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shows"]


def test_exit_codes_are_documented() -> None:
    help_text = " ".join(run("--help").stdout.split())
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    for _, code, meaning in EXIT_CODES:
        assert f"{code} {meaning}" in help_text, (code, meaning)
        assert f", {code} " in readme, f"README does not list exit code {code}"


def test_one_exit_code_rule_for_identify_timeline_and_index(
        episode: Path, demo_library: DemoLibrary, tmp_path: Path) -> None:
    """The same typo gives the same answer from every command that takes inputs: a path
    that is not there could not be read (65); some of several inputs, 3 (the others are
    done); all of them read, 0."""
    index = str(demo_library.index_dir)
    gone = str(tmp_path / "missing.mp4")
    commands: list[tuple[str, ...]] = [("identify", gone, "--index", index),
                                       ("identify", gone, "--json", "--index", index),
                                       ("timeline", gone, "--index", index),
                                       ("index", gone, "--index", str(tmp_path / "i"))]
    for args in commands:
        proc = run(*args)
        assert proc.returncode == _code(MediaError) == 65, (args, proc.stdout, proc.stderr)
        said = proc.stdout + proc.stderr
        assert "missing.mp4" in said and "no such file" in said, args
    # identify names the file once, before the reason.
    human = run("identify", gone, "--index", index)
    assert human.stderr == f"{gone}: error: no such file\n"
    # Some inputs: 3 for identify (each line as before) and for index.
    shutil.copy(episode, tmp_path / "clip.mka")
    clip = tmp_path / "clip.mka"
    some = run("identify", str(clip), gone, "--index", index, "--json")
    assert some.returncode == _code(InputsIncompleteError) == 3, some.stderr
    lines = [json.loads(line) for line in some.stdout.splitlines()]
    assert [ln["status"] for ln in lines] == ["match", "error"]
    assert lines[1] == {"file": gone, "status": "error", "error": "missing.mp4: no such file"}
    folder = tmp_path / "shows"
    folder.mkdir()
    shutil.copy(episode, folder)
    part = run("index", str(folder), gone, "--index", str(tmp_path / "i2"), "--json")
    assert part.returncode == 3, part.stderr
    summary = json.loads(part.stdout)
    assert summary["added"] == ["demo-show-s01e01"]
    assert summary["failed"] == [{"file": gone, "error": "no such file or folder"}]
    assert run("identify", str(clip), "--index", index).returncode == 0


def test_an_empty_index_says_it_is_empty(tmp_path: Path, episode: Path) -> None:
    from citywok.index import Index

    Index.open(tmp_path / "index", writable=True).close()  # made by hand: no episode
    for cmd in ("identify", "timeline"):
        proc = run(cmd, str(episode), "--index", str(tmp_path / "index"))
        assert proc.returncode == _code(IndexNotFoundError) == 66, proc.stderr
        assert "is empty: add episodes with `citywok index FOLDER`" in proc.stderr
        assert "no match" not in proc.stdout
