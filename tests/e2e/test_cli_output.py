"""What ``citywok`` prints: user text exactly as given, times rounded once."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import DemoLibrary, write_clip
from tests.e2e.test_cli import run

TITLE = "Rock [/i] Roll"


@pytest.fixture(scope="module")
def bracket_index(demo_library: DemoLibrary, tmp_path_factory: pytest.TempPathFactory,
                  ) -> tuple[Path, Path]:
    """One episode whose folder, file name and title hold square brackets."""
    root = tmp_path_factory.mktemp("brackets")
    folder = root / "shows [hd]"
    folder.mkdir()
    source = demo_library.folder / demo_library.truth[1]["file"]
    shutil.copy(source, folder / f"Rock [live] - S01E01{source.suffix}")
    (folder / "broken [x].mkv").write_text("not a video")
    (folder / "citywok.csv").write_text(f"file,title\nRock [live] - S01E01{source.suffix},"
                                        f"{TITLE}\n")
    index_dir = root / "index"
    run("index", str(folder), "--index", str(index_dir))
    return index_dir, folder


def test_index_names_files_with_brackets(bracket_index: tuple[Path, Path]) -> None:
    index_dir, folder = bracket_index
    proc = run("index", str(folder), "--index", str(index_dir), "--metadata",
               str(folder / "citywok.csv"))
    assert "Traceback" not in proc.stderr
    assert "broken [x].mkv" in proc.stdout, proc.stdout


def test_identify_and_list_print_brackets(bracket_index: tuple[Path, Path],
                                          demo_library: DemoLibrary, tmp_path: Path) -> None:
    index_dir, _ = bracket_index
    clip = write_clip(demo_library.clip(1, 12.0, 5.0), tmp_path / "clip [web].mp3",
                      audio_args=("-c:a", "libmp3lame"))
    proc = run("identify", str(clip), str(tmp_path / "gone [x].mp3"), "--index", str(index_dir))
    # One input could not be read: exit 3 (docs/cli.md), the other still answered.
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert f"clip [web].mp3: Rock [live] S01E01 - {TITLE}  at 00:1" in proc.stdout, proc.stdout
    assert "gone [x].mp3: error: no such file" in proc.stderr, proc.stderr
    listed = run("list", "--index", str(index_dir))
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert TITLE in listed.stdout, listed.stdout
    as_json = json.loads(run("list", "--index", str(index_dir), "--json").stdout)
    assert as_json["title"] == TITLE
