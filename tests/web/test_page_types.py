"""The page's API types are generated from the service's OpenAPI document
(scripts/gen_web_types.py); these fail when either generated file is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
STALE = "is stale: run .venv/bin/python scripts/gen_web_types.py"


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_web_types",
                                                  ROOT / "scripts" / "gen_web_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_openapi_document_the_page_reads_is_current() -> None:
    gen = _gen()
    assert gen.DOCUMENT.read_text() == gen.document(), f"web/src/api/openapi.json {STALE}"


def test_the_page_types_are_generated_from_it() -> None:
    gen = _gen()
    if not gen.GENERATOR.is_file():
        pytest.skip("openapi-typescript is not installed: run `npm ci` in web/ "
                    "(scripts/build-web does)")
    assert gen.TYPES.read_text() == gen.types(gen.DOCUMENT.read_text()), \
        f"web/src/api/schema.d.ts {STALE}"
