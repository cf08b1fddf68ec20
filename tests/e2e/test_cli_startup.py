"""``citywok`` starts with only what a command uses (issue 19): its import and ``--help``
load no SciPy, NumPy, web stack or downloader; ``identify`` loads the engine, never the
web stack, and spawns one decoder per clip."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DemoLibrary
from tests.test_decode import write_wav

#: What no command line outside ``serve``, ``keys``, ``usage`` and links needs.
WEB_AND_LINKS = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic_settings",
                 "limits", "yt_dlp")
#: Typer (0.2x) coerces a command's parameters with pydantic once the command is chosen,
#: so only the import and the top-level help are free of it.
TYPER_COERCION = ("pydantic",)
#: What ``citywok --help`` needs none of.
ENGINE = ("scipy", "numpy", "asyncio", "rich.progress", "rich.table", "citywok.index",
          "citywok.pipeline")

#: Runs the CLI in-process with ARGS, then names the modules of WATCH it loaded; counts
#: the processes it started.
_PROBE = """
import subprocess, sys
watch, args = sys.argv[1].split(","), sys.argv[2:]
spawned = []
_popen = subprocess.Popen.__init__
def _count(self, cmd, *a, **k):
    spawned.append(str(cmd[0]))
    _popen(self, cmd, *a, **k)
subprocess.Popen.__init__ = _count
sys.argv = ["citywok", *args]
try:
    from citywok.cli.main import main
    if args:
        main()
except SystemExit:
    pass
finally:
    loaded = [m for m in watch if m in sys.modules]
    print("LOADED=" + ",".join(loaded), "SPAWNED=" + ",".join(spawned), file=sys.stderr)
"""


def _run(watch: tuple[str, ...], *args: str) -> tuple[list[str], list[str], str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, ",".join(watch), *args],
                          capture_output=True, text=True, timeout=300)
    tail = proc.stderr.rsplit("LOADED=", 1)
    assert len(tail) == 2, proc.stderr
    loaded, spawned = tail[1].rstrip().split(" SPAWNED=")
    return ([m for m in loaded.split(",") if m], [s for s in spawned.split(",") if s],
            proc.stdout + tail[0])


def test_import_and_help_load_neither_the_engine_nor_the_web_stack() -> None:
    for args in ((), ("--help",), ("identify", "--help")):
        watch = WEB_AND_LINKS + ENGINE + (TYPER_COERCION if len(args) < 2 else ())
        loaded, spawned, output = _run(watch, *args)
        assert loaded == [], (args, loaded)
        assert spawned == [], (args, spawned)
        assert not args or "Usage" in output, output


def test_identify_loads_no_web_stack_and_runs_one_decoder(demo_library: DemoLibrary,
                                                          tmp_path: Path) -> None:
    clip = write_wav(tmp_path / "clip.wav", 6, rate_hz=16000)
    loaded, spawned, output = _run(WEB_AND_LINKS, "identify", str(clip), "--index",
                                   str(demo_library.index_dir), "--json")
    assert '"status"' in output, output
    assert loaded == [], loaded
    assert [Path(s).name for s in spawned] == ["ffmpeg"], spawned


def test_identify_decodes_the_next_clip_ahead_one_decoder_each(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    # Each next clip decodes while the one before is matched: answers in the order
    # given, an unreadable one named in its place, one ffmpeg per clip.
    clips = [write_wav(tmp_path / "a.wav", 6, rate_hz=16000), tmp_path / "missing.wav",
             write_wav(tmp_path / "b.wav", 5, rate_hz=8000)]
    _, spawned, output = _run((), "identify", *map(str, clips), "--index",
                              str(demo_library.index_dir), "--json")
    files = [line.split('"file": "', 1)[1].split('"', 1)[0]
             for line in output.splitlines() if line.startswith('{"file"')]
    assert files == [str(c) for c in clips], output
    assert '"error": "missing.wav: no such file"' in output, output
    assert [Path(s).name for s in spawned] == ["ffmpeg", "ffmpeg"], spawned


def test_identify_still_refuses_a_clip_over_the_cap(demo_library: DemoLibrary,
                                                    tmp_path: Path) -> None:
    # 20 minutes at 1 Hz: its container says 1200 s; the cap is 600 s by default.
    long = write_wav(tmp_path / "long.wav", 1200, rate_hz=1)
    _, spawned, output = _run((), "identify", str(long), "--index",
                              str(demo_library.index_dir))
    assert "long.wav: error: 1200 s long, longer than the 600 s allowed (--max-duration 0 " \
           "lifts the cap)" in output, output
    assert [Path(s).name for s in spawned] == ["ffmpeg"], spawned
    _, _, output = _run((), "identify", str(long), "--index", str(demo_library.index_dir),
                        "--max-duration", "1300", "--json")
    assert '"status": "no_match"' in output, output


def test_query_commands_keep_blas_to_one_thread_unless_told() -> None:
    code = """
import os, sys
sys.argv = ["citywok", *sys.argv[1:]]
from citywok.cli.main import main
try:
    main()
except SystemExit:
    pass
print("THREADS=" + os.environ.get("OPENBLAS_NUM_THREADS", "unset"))
"""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for args, given, expect in ((["identify", "--help"], None, "1"),
                                (["timeline", "--help"], None, "1"),
                                (["identify", "--help"], "3", "3"),
                                (["index", "--help"], None, "unset")):
        run_env = env if given is None else {**env, "OPENBLAS_NUM_THREADS": given}
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                             text=True, check=True, env=run_env).stdout
        assert "THREADS=" + expect in out, (args, given, out)


def test_plain_identify_reads_what_typer_reads() -> None:
    # identify's plain arguments skip Typer's pydantic coercion: the same parameters.
    from typer.main import get_command

    from citywok.cli.main import app, plain_identify

    command = get_command(app).commands["identify"]  # type: ignore[attr-defined]
    plain = (["a.mp3"], ["a.mp3", "b c.m4a", "--json"], ["-i", "/x/idx", "a.mp3"],
             ["a.mp3", "--index=rel/idx", "--max-duration", "12.5"],
             ["--max-duration=0", "a.mp3", "--json", "--index", "i d x"],
             ["a.mp3", "--max-duration", "7", "b.mp3"], ["a.mp3", "--max-duration", ".5"],
             ["a.mp3", "--max-duration", "12."], ["a.mp3", "--max-duration=007"])
    for args in plain:
        got = plain_identify(["identify", *args])
        assert got == command.make_context("identify", list(args)).params, args
    for args in ([], ["--help"], ["a.mp3", "--help"], ["a.mp3", "--json", "--json"],
                 ["a.mp3", "--index", ""], ["a.mp3", "-i"], ["a.mp3", "--max-duration", "-1"],
                 ["a.mp3", "--max-duration", "1e3"], ["a.mp3", "--max-duration", "inf"],
                 ["a.mp3", "--json=1"], ["a.mp3", "--"], ["-"], ["a.mp3", "-ix"],
                 ["a.mp3", "--indx", "x"], ["a.mp3", "-i", "x", "--index", "y"]):
        assert plain_identify(["identify", *args]) is None, args
    assert plain_identify(["index", "a.mp3"]) is None
    assert plain_identify([]) is None


def test_python_dash_m_citywok_is_the_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "citywok", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("citywok "), proc
