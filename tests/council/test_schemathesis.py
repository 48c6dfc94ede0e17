"""Property-based API testing (schemathesis) over the council's OpenAPI document — whose
request bodies come from the msgspec structs they are decoded into — with and without the
operator token: no input makes the council answer with a server error."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from shieldwall.clock import SystemClock
from shieldwall.council.api import create_app
from shieldwall.council.service import CouncilService
from shieldwall.council.store.memory import MemoryStore
from shieldwall.treaty import TreatyTerms

TOKEN = "schemathesis-token"  # noqa: S105

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    APP = create_app(CouncilService(MemoryStore(), TreatyTerms(), SystemClock()), TOKEN)
    SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)

# the stream answers forever; everything else is fair game
API = SCHEMA.exclude(path="/v1/decisions/stream")


@API.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.parametrize("token", [True, False], ids=["operator", "anyone"])
def test_no_input_is_a_server_error(case: Any, token: bool) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        response = case.call(headers=headers)
    case.validate_response(response, checks=(not_a_server_error,))
