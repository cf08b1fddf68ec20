"""Write docs/cli.md from the commands' own --help (checked by tests/test_docs.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from citywok.cli.main import app

COMMANDS = ("", "index", "identify", "timeline", "listen", "stats", "check", "list", "remove",
            "compact", "demo", "serve", "keys create", "keys list", "keys revoke", "usage",
            "snapshot push", "snapshot pull")
DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render() -> str:
    runner = CliRunner()
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    parts = ["# CLI reference", "",
             "Generated from `--help` by `scripts/gen_cli_docs.py`; a test keeps it current.",
             ""]
    for cmd in COMMANDS:
        args = [*cmd.split(), "--help"]
        res = runner.invoke(app, args, env=env, prog_name="citywok")
        text = "\n".join(line.rstrip() for line in res.output.strip().splitlines())
        parts += [f"## `citywok {cmd}`".replace("citywok `", "citywok`") if cmd else
                  "## `citywok`", "", "```", text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
