"""scripts/setup finds what a fresh machine lacks (python3-venv, Node.js new enough for
the page) and says plainly what it cannot install; without Node.js the page's tests are
skipped with a message, not failed (issue 8, item 7)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ROOT / "scripts" / "lib" / "requirements.sh"


def sh(script: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"source {CHECKS}; {script}"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env or dict(os.environ))


def test_node_version_wanted_is_the_pages_own() -> None:
    engines = json.loads((ROOT / "web" / "package.json").read_text())["engines"]["node"]
    assert sh("node_wanted").stdout.strip() == engines.removeprefix(">=").split(".")[0]


@pytest.mark.parametrize(("have", "candidate", "plan"), [
    ("20", "", "ok"), ("22", "18", "ok"),
    ("0", "20", "install"), ("18", "20", "install"),
    ("0", "18", "too-old"), ("12", "12", "too-old"), ("0", "", "too-old"),
])
def test_node_plan(have: str, candidate: str, plan: str) -> None:
    assert sh(f"node_plan '{have}' '{candidate}' 20").stdout.strip() == plan


@pytest.mark.parametrize(("text", "major"), [("v20.20.2", "20"), ("18.20.4+dfsg-1~deb12u2", "18"),
                                             ("1:12.22.9~dfsg-1ubuntu3", "12"), ("", "0"),
                                             ("(none)", "0")])
def test_version_major(text: str, major: str) -> None:
    assert sh(f"version_major '{text}'").stdout.strip() == major


def _path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with every command of this one but ``hidden``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(":"):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name not in hidden and not target.exists():
                target.symlink_to(entry.path)
    return str(bin_dir)


def test_without_node_setup_says_what_it_will_do_and_page_tests_skip(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, "node", "npm", "npx")}
    plan = subprocess.run([str(ROOT / "scripts" / "setup"), "--check"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert plan.returncode == 0, plan.stderr
    said = plan.stdout + plan.stderr
    assert "would install: nodejs" in said or "cannot install Node.js 20+" in said, said
    if shutil.which("apt-get"):
        assert "would install" in said or "cannot install" in said, said
    skipped = subprocess.run([str(ROOT / "scripts" / "test-web")], capture_output=True,
                             text=True, timeout=120, env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert "SKIPPED" in skipped.stderr and "Node.js" in skipped.stderr


def test_setup_check_installs_nothing_when_all_is_there() -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "setup"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("node") and shutil.which("ffmpeg") and shutil.which("espeak-ng"):
        assert "would install" not in proc.stdout, proc.stdout


def test_the_page_tests_write_screenshots_where_git_does_not_track_them() -> None:
    """scripts/test once rewrote 17 committed screenshots, leaving the checkout dirty."""
    import re

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    setup = (ROOT / "web" / "e2e" / "global-setup.ts").read_text()
    m = re.search(r'process\.env\.CITYWOK_SCREENSHOTS \|\| "([^"]+)"', setup)
    assert m is not None, "global-setup.ts no longer says where screenshots go"
    folder = m.group(1)
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/match-390.png"],
                             cwd=ROOT, timeout=30)
    assert ignored.returncode == 0, f"{folder} is not ignored by git"
    tracked = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True,
                             text=True, timeout=30).stdout
    assert tracked == "", tracked
