"""The council's HTTP API (Starlette): ``create_app(service, token)`` → ASGI app.

One router module per resource — ``reports`` (and concerns), ``decisions`` (the set, bans,
imports, unbans, explanations, the stream), ``members`` (and flags), ``allowlist``,
``records`` (refusals, audit, stats, health). Handlers talk to the
:class:`~shieldwall.council.service.CouncilService` only, never to the store or the fan-out.
Every endpoint is described in its docstring (OpenAPI YAML), served at ``/openapi.json``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from shieldwall.council.api import allowlist, decisions, members, records, reports
from shieldwall.council.api.common import MAX_BODY, Api
from shieldwall.council.api.intake import BoundedIntake
from shieldwall.council.run import lifespan
from shieldwall.council.service import CouncilService
from shieldwall.errors import StoreError
from shieldwall.wire.messages import (
    AllowlistRequest,
    BanRequest,
    BulkRevokeRequest,
    ImportRequest,
    MemberRequest,
    OperatorConcern,
    RekeyRequest,
    Report,
    RevokeRequest,
)

schemas = SchemaGenerator(
    {"openapi": "3.0.0", "info": {"title": "shieldwall council", "version": "1"}}
)


BODIES: dict[tuple[str, str], type[msgspec.Struct]] = {
    ("/v1/reports", "post"): Report,
    ("/v1/concerns", "post"): OperatorConcern,
    ("/v1/decisions", "post"): BanRequest,
    ("/v1/decisions/import", "post"): ImportRequest,
    ("/v1/decisions/revoke", "post"): RevokeRequest,
    ("/v1/decisions/revoke/bulk", "post"): BulkRevokeRequest,
    ("/v1/members", "post"): MemberRequest,
    ("/v1/members/{name}/rekey", "post"): RekeyRequest,
    ("/v1/allowlist", "post"): AllowlistRequest,
}
"""Each endpoint's request body, as the msgspec struct it is decoded into: its JSON Schema
goes into the OpenAPI document (what schemathesis generates bodies from)."""


@functools.cache
def _body_schemas() -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    keys = list(BODIES)
    refs, components = msgspec.json.schema_components(
        [BODIES[k] for k in keys], ref_template="#/components/schemas/{name}"
    )
    return dict(zip(keys, refs, strict=True)), components


async def openapi(request: Request) -> Response:
    spec = schemas.get_schema(routes=request.app.routes)
    bodies, components = _body_schemas()
    for (path, method), ref in bodies.items():
        op = spec.get("paths", {}).get(path, {}).get(method)
        if op is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref}},
            }
    for path, ops in spec.get("paths", {}).items():  # {name} in a path is a parameter
        names = re.findall(r"\{(\w+)\}", path)
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            op.setdefault("parameters", []).extend(
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in names
                if n not in declared
            )
    spec["components"] = {
        "schemas": components,
        "securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}},
    }
    return JSONResponse(spec)


async def _storage_failed(request: Request, exc: Exception) -> Response:
    """The store cannot be written (a full disk…): 503, not a bare 500; nothing of the
    request was kept."""
    return JSONResponse(
        {"error": "storage", "detail": f"{exc}; nothing was kept: retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_app(service: CouncilService, token: str, *, reaper_interval: float = 1.0) -> Starlette:
    routes = [
        *records.ROUTES,
        *reports.ROUTES,
        *decisions.ROUTES,
        *members.ROUTES,
        *allowlist.ROUTES,
        Route("/openapi.json", openapi, include_in_schema=False),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={StoreError: _storage_failed},
        lifespan=lifespan(service, reaper_interval),
        middleware=[Middleware(BoundedIntake, limit=MAX_BODY)],
    )
    app.state.api = Api(service, token)
    return app


__all__ = ["create_app"]
