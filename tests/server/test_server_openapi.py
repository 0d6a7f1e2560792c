"""Schemathesis against the served OpenAPI document: generated requests (valid and invalid) never
get a 500, and every answer matches what the document promises (status codes, content types,
response schemas). The server is a real one on 127.0.0.1 (see conftest).

The cases come from schemathesis's strategies, run by hypothesis directly, and are sent with httpx
(schemathesis's own pytest plugin and requests transport do not work with this environment's
pytest and urllib3-future); schemathesis then validates each response.
"""

from __future__ import annotations

import base64

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import OPS, Served

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{OPS[0]}:{OPS[1]}".encode()).decode()}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def send(case: schemathesis.Case, base_url: str) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=AUTH)
    body = kwargs.get("data")
    if isinstance(body, str):
        body = body.encode()
    return httpx.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"], params=kwargs.get("params"),
                         json=kwargs.get("json"), content=body, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_api_never_fails_and_matches_its_document(make_server, mode: schemathesis.GenerationMode) -> None:  # type: ignore[no-untyped-def]
    server: Served = make_server("rate_limit_per_minute = 1000000")
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"POST /api/v1/freebusy", "GET /api/v1/people"} <= {op.label for op in operations}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            case.validate_response(send(case, server.url), checks=CHECKS)

        run()
