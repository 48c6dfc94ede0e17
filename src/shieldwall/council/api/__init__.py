"""The council's HTTP API (Starlette): ``create_app(service, token)`` → ASGI app.

One router module per resource — ``reports`` (and concerns), ``decisions`` (the set, bans,
imports, unbans, explanations, the stream), ``members`` (and flags), ``allowlist``,
``records`` (refusals, audit, stats, health). Handlers talk to the
:class:`~shieldwall.council.service.CouncilService` only, never to the store or the fan-out.
Every endpoint is described in its docstring (OpenAPI YAML), served at ``/openapi.json``.
"""

from __future__ import annotations

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

schemas = SchemaGenerator(
    {"openapi": "3.0.0", "info": {"title": "shieldwall council", "version": "1"}}
)


async def openapi(request: Request) -> Response:
    return JSONResponse(schemas.get_schema(routes=request.app.routes))


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
