"""Write the page's API types from the service's own OpenAPI document.

    .venv/bin/python scripts/gen_web_types.py            # write both files
    .venv/bin/python scripts/gen_web_types.py --check    # exit 1 when either is stale

``web/src/api/openapi.json`` is ``create_app(Settings()).openapi()`` (no server runs);
``web/src/api/schema.d.ts`` is openapi-typescript's reading of it (the page's npm
devDependency: run ``npm ci`` in web/ first). ``web/src/api/types.ts`` names the types the
page uses from it. tests/web/test_page_types.py fails when either file is stale.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from citywok.web.app import create_app
from citywok.web.core.config import Settings

WEB = Path(__file__).resolve().parent.parent / "web"
DOCUMENT = WEB / "src" / "api" / "openapi.json"
TYPES = WEB / "src" / "api" / "schema.d.ts"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


def document() -> str:
    """The OpenAPI document, as written to ``DOCUMENT``."""
    return json.dumps(create_app(Settings()).openapi(), indent=2, ensure_ascii=False) + "\n"


def types(document_text: str) -> str:
    """openapi-typescript's TypeScript for ``document_text``."""
    if not GENERATOR.is_file():
        raise FileNotFoundError(f"{GENERATOR} is missing: run `npm ci` in web/")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "openapi.json", Path(tmp) / "schema.d.ts"
        src.write_text(document_text)
        # A field with a default is optional: an answer stored, or a share link made,
        # before the field existed lacks it.
        subprocess.run([str(GENERATOR), str(src), "-o", str(out),
                        "--default-non-nullable=false"], check=True,
                       capture_output=True, cwd=WEB)
        return out.read_text()


if __name__ == "__main__":
    doc = document()
    if "--check" in sys.argv:
        sys.exit(0 if DOCUMENT.read_text() == doc and TYPES.read_text() == types(doc) else 1)
    DOCUMENT.write_text(doc)
    TYPES.write_text(types(doc))
