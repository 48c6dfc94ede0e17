"""What the council kept: refusals, the audit trail, counters, health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shieldwall.council.api.common import api_of, iso, operator, refusal_json
from shieldwall.errors import StoreError


async def health(request: Request) -> Response:
    """
    summary: Liveness and the decision log's last sequence number.
    responses:
      200: {description: '{"status": "ok", "seq": N}'}
      503: {description: '{"status": "storage", "detail"}: the store cannot be written (a full
        disk…); it recovers by itself when it can'}
    """
    service = api_of(request).service
    fault = service.storage_fault
    if fault is not None:
        return JSONResponse({"status": "storage", "detail": fault}, status_code=503)
    try:
        seq = await service.last_seq()
    except StoreError as exc:
        return JSONResponse({"status": "storage", "detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "seq": seq})


async def council_key(request: Request) -> Response:
    """
    summary: The council's public key, which signs every stream message.
    description: >
      Members pin it as ``council-key`` in agent.toml (``shieldwall council key`` prints
      it); an agent without one pins what this answers on first contact, and warns.
    responses:
      200: {description: '{"public_key": BASE64}'}
    """
    return JSONResponse({"public_key": api_of(request).service.public_key})


@operator
async def refusals(request: Request) -> Response:
    """
    summary: Recent decisions the treaty refused, newest first.
    responses:
      200: {description: list}
    """
    return JSONResponse([refusal_json(r) for r in await api_of(request).service.refusals(500)])


@operator
async def audit(request: Request) -> Response:
    """
    summary: The audit trail, newest first.
    description: >
      Operators' decisions and revocations (an import or a bulk unban is one record with
      its counts), allowlist and membership changes: {at, actor, action, outcome (done |
      refused:CLAUSE), scope, subject, reason, decisions, forced, detail}.
    responses:
      200: {description: list of audit records}
    """
    records = await api_of(request).service.audit(500)
    return JSONResponse([{**r, "at": iso(r["at"])} for r in records])


@operator
async def stats(request: Request) -> Response:
    """
    summary: Counters (reports accepted/refused by reason, refusals, decisions, streams).
    responses:
      200: {description: map of counter to value}
    """
    return JSONResponse(await api_of(request).service.stats())


ROUTES = [
    Route("/v1/health", health, methods=["GET"]),
    Route("/v1/council", council_key, methods=["GET"]),
    Route("/v1/refusals", refusals, methods=["GET"]),
    Route("/v1/audit", audit, methods=["GET"]),
    Route("/v1/stats", stats, methods=["GET"]),
]
