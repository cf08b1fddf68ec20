"""Docs generated from the code stay in step with it."""

import importlib.util
import re
import tomllib
from pathlib import Path

import typer

from citywok.cli.main import app

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "cli.md").read_text() == gen.render(), (
        "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py")


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    head = text[: text.index("## ")]
    assert "scripts/demo" in head and "scripts/test" in head


def test_readme_lists_every_command() -> None:
    """The README's command line once named 11 commands of 14."""
    text = (ROOT / "README.md").read_text()
    line = re.search(r"`citywok ((?:[a-z]+ \| )+[a-z]+)`", text)
    assert line is not None, "the README's list of commands is gone"
    listed = line.group(1).split(" | ")
    registered = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert sorted(listed) == sorted(registered)


def test_install_commands_name_the_clone_not_an_unpublished_package() -> None:
    """CityWok is not on PyPI: every ``pip install`` the docs and the CLI's hints give
    installs from a path, never ``citywok`` by name."""
    from citywok.cli.main import LINKS_EXTRA, WEB_EXTRA

    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "bench" / "README.md"]
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in docs}
    texts["hints"] = f"{WEB_EXTRA}\n{LINKS_EXTRA}"
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    for where, text in texts.items():
        for cmd in re.findall(r"pip install ([^`\n]+)", text):
            targets = [t.strip("'\"") for t in cmd.split() if not t.startswith("-")]
            assert targets, (where, cmd)
            for target in targets:
                assert not re.fullmatch(rf"{name}(\[[a-z,]+\])?", target), (where, cmd)


def test_the_benchmark_corpus_is_explained_where_it_is_used() -> None:
    """The benchmark commands take ``../shared/corpus``: the README says what it is."""
    readme = (ROOT / "README.md").read_text()
    bench = readme[readme.index("## Benchmark"):readme.index("## How it works")
                   if readme.index("## How it works") > readme.index("## Benchmark")
                   else len(readme)]
    assert "../shared/corpus" in bench
    assert "is not in this repository" in bench and "manifest.json" in bench
    assert "bench/README.md#the-corpus" in bench
    assert "## The corpus" in (ROOT / "bench" / "README.md").read_text()
