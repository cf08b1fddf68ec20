"""Schemathesis against /openapi.json: whatever it sends, never a 5xx, and every error
has the stable body.

Bounded (a couple of dozen examples per operation, no shrinking) so that it runs in well
under a minute; longer fuzzing belongs outside CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from citywok.web.app import create_app
from citywok.web.core.config import Settings
from tests.web.conftest import Library, base_settings

# The operations, read from an app built without an index (routes do not depend on it).
_OPERATIONS = sorted(
    (path, method.upper())
    for path, item in create_app(Settings()).openapi()["paths"].items()
    for method in item
)


@pytest.fixture(scope="module")
def api_schema(library: Library, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("schema")
    app = create_app(base_settings(library, Path(tmp), anonymous_rate_limit="100000/hour"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("path", "method"), _OPERATIONS)
def test_api_never_answers_5xx(api_schema: Any, path: str, method: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=50, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}

    check()


def test_schema_documents_errors_and_the_identify_body() -> None:
    """Issue 8, item 19: every operation lists the errors the guard layer answers with
    (400, 414, 431) in the error body's shape; identify says "file or url, not both"."""
    schema = create_app(Settings()).openapi()
    error_ref = "#/components/schemas/ErrorBody"
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status in ("400", "414", "431"):
                content = op["responses"][status]["content"]["application/json"]
                assert content["schema"]["$ref"] == error_ref, (method, path, status)
            if "422" in op["responses"]:
                content = op["responses"]["422"]["content"]["application/json"]
                assert content["schema"]["$ref"] == error_ref, (method, path)
    identify = schema["paths"]["/api/v1/identify"]["post"]
    assert "422" in identify["responses"] and "413" in identify["responses"]
    form = identify["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["oneOf"] == [{"required": ["file"]}, {"required": ["url"]}]
    assert "not both" in form["description"] and "not both" in identify["description"]
