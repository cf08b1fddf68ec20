"""What every ``citywok`` command shares: the ``--index`` option and its default, and
the consoles it prints on.

Commands live in several modules (:mod:`citywok.cli.main`, :mod:`citywok.cli.timeline`,
:mod:`citywok.cli.snapshot`, :mod:`citywok.cli.serve`); ``cli`` imports the others to
register them, so what they share at import time is here, not in ``cli``. The error
table (``cli.EXIT_CODES``) and :func:`citywok.cli.main.fail` stay in ``cli``: the others
import them when a command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from citywok import defaults

# Markup is off: file names, titles and messages are the user's text, and "[web]" or
# "[/i]" in them must print as they are (styles are applied with Text, never parsed).
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)


def say(console: Console, *parts: str | tuple[str, str]) -> None:
    """Print plain text and (text, style) pieces; nothing in them is parsed as markup."""
    console.print(Text.assemble(*parts))


def parse_index_path(value: str) -> Path:
    """``--index`` as given; an empty one is a usage error."""
    # An empty --index would otherwise become "." and write an index into the current folder.
    if not value.strip():
        raise typer.BadParameter("must not be empty (use '.' for the current folder)")
    return Path(value)


IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", "-i", parser=parse_index_path, metavar="<path>",
                 help="Index directory (default: $CITYWOK_INDEX, else the per-user data "
                 "dir).", show_default=False),
]


def resolve_index(path: Path | None) -> Path:
    """The ``--index`` given, else $CITYWOK_INDEX, else
    :func:`citywok.defaults.default_index_dir`: the same order as ``serve``'s settings
    (an empty $CITYWOK_INDEX is "not set", never the current folder)."""
    if path is not None:
        return path
    env = os.environ.get("CITYWOK_INDEX", "").strip()
    return Path(env) if env else defaults.default_index_dir()
