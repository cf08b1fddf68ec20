"""Every knob is declared once, in params.py, with a line on why its value."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from citywok import params

SOURCE = Path(params.__file__).read_text()
KNOBS = ("AnalysisParams", "MatchParams", "FollowParams", "TimelineParams", "LiveParams",
         "SharedParams", "BuildParams", "FuseParams")


@pytest.mark.parametrize("name", KNOBS)
def test_every_knob_has_a_line_on_why(name: str) -> None:
    """A field has a ``#:`` comment above it, or belongs to a run of fields under one."""
    lines = SOURCE.splitlines()
    cls = next(n for n in ast.parse(SOURCE).body
               if isinstance(n, ast.ClassDef) and n.name == name)
    fields = [n for n in cls.body if isinstance(n, ast.AnnAssign)]
    assert {f.target.id for f in fields if isinstance(f.target, ast.Name)} == {
        f.name for f in dataclasses.fields(getattr(params, name))}
    undocumented = []
    for f in fields:
        row = f.lineno - 2  # the line above, 0-based
        while lines[row].strip() and not lines[row].strip().startswith("#"):
            row -= 1  # another field of the same run (or its continuation)
        if not lines[row].strip().startswith("#:"):
            undocumented.append(ast.unparse(f.target))
    assert not undocumented, f"{name}: no comment says why: {undocumented}"


@pytest.mark.parametrize("name", KNOBS)
def test_knobs_are_frozen_and_have_defaults(name: str) -> None:
    cls = getattr(params, name)
    made = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, dataclasses.fields(cls)[0].name, None)
