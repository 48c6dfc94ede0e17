"""The council's HTTP API (Starlette). ``create_app(service, token)`` → ASGI app.

Every endpoint is described in its docstring (OpenAPI YAML), served at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from shieldwall.council.auth import check_token, verify_request
from shieldwall.council.service import CouncilService
from shieldwall.errors import InvalidScope, SignatureError, StoreError, WireError
from shieldwall.model import Decision, DecisionEvent, Refusal, parse_scope, scope_str
from shieldwall.wire.messages import Snapshot, decision_to_wire, encode, event_to_wire

log = logging.getLogger("shieldwall.council.api")

MAX_BODY = 8 * 1024 * 1024
HEARTBEAT = 15.0

_STATUS = {
    "malformed": 400,
    "unsigned": 401,
    "bad-signature": 401,
    "unknown-member": 401,
    "stale": 401,
    "revoked": 403,
    "replayed": 409,
}

schemas = SchemaGenerator(
    {"openapi": "3.0.0", "info": {"title": "shieldwall council", "version": "1"}}
)


def _error(status: int, reason: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


def _refusal_json(r: Refusal) -> dict[str, Any]:
    return {
        "scope": scope_str(r.scope),
        "reason": r.reason,
        "member": r.member,
        "rule": r.rule,
        "at": r.at.isoformat(),
    }


def _decision_json(d: Decision) -> Any:
    return msgspec.to_builtins(decision_to_wire(d))


def _sse(event: str, seq: int, data: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.encode(), data)


def _event_frames(events: list[DecisionEvent]) -> bytes:
    return b"".join(_sse(e.kind.value, e.seq, encode(event_to_wire(e))) for e in events)


Handler = Callable[[Request], Awaitable[Response]]


def create_app(service: CouncilService, token: str, *, reaper_interval: float = 1.0) -> Starlette:
    def operator(fn: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if not check_token(token, request.headers.get("authorization")):
                return _error(401, "unauthorized", "operator token required")
            return await fn(request)

        wrapped.__doc__ = fn.__doc__
        wrapped.__name__ = fn.__name__
        return wrapped

    async def reader_allowed(request: Request) -> Response | None:
        """Operators and enrolled, unrevoked members (signed request) may read decisions."""
        if check_token(token, request.headers.get("authorization")):
            return None
        name = request.headers.get("x-shieldwall-member")
        if not name:
            return _error(401, "unsigned", "operator token or member signature required")
        member = await service.store.get_member(name)
        try:
            if member is None:
                raise SignatureError("unknown-member", "not enrolled")
            if member.revoked:
                raise SignatureError("revoked", "member was revoked")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            verify_request(
                member.public_key,
                request.method,
                target,
                request.headers.get("x-shieldwall-time"),
                request.headers.get("x-shieldwall-signature"),
                service.clock.now(),
                service.replay_window,
            )
        except SignatureError as exc:
            await service.store.bump(f"reads.refused.{exc.reason}")
            return _error(_STATUS.get(exc.reason, 401), exc.reason, exc.detail)
        return None

    async def read_json(request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise WireError("body too large")
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise WireError(f"body is not JSON: {exc}") from exc

    async def health(request: Request) -> Response:
        """
        summary: Liveness and the decision log's last sequence number.
        responses:
          200: {description: '{"status": "ok", "seq": N}'}
        """
        return JSONResponse({"status": "ok", "seq": await service.store.last_seq()})

    async def reports(request: Request) -> Response:
        """
        summary: Receive a member's signed report.
        description: >
          Body is a JSON Report {id, member, sent_at, alerts[]}; header X-Shieldwall-Signature
          is the base64 Ed25519 signature of the exact body bytes by the member's key. Refused:
          400 malformed, 401 unsigned / bad-signature / unknown-member / stale,
          403 revoked, 409 replayed, 413 too large. Every refusal is counted.
        responses:
          200:
            description: '{"decided": [ids], "refused": [...], "duplicates": n, "malformed": n}'
          400: {description: malformed}
          401: {description: refused signature}
          403: {description: revoked member}
          409: {description: replayed report}
        """
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            await service.store.bump("reports.refused.too-large")
            return _error(413, "too-large", f"max {MAX_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_BODY:
            await service.store.bump("reports.refused.too-large")
            return _error(413, "too-large", f"max {MAX_BODY} bytes")
        try:
            out = await service.receive_report(body, request.headers.get("x-shieldwall-signature"))
        except SignatureError as exc:
            return _error(_STATUS.get(exc.reason, 401), exc.reason, exc.detail)
        except WireError as exc:
            return _error(400, "malformed", str(exc))
        return JSONResponse(
            {
                "decided": [d.id for d in out.decided],
                "refused": [_refusal_json(r) for r in out.refused],
                "duplicates": out.duplicates,
                "malformed": out.malformed,
            }
        )

    async def decisions(request: Request) -> Response:
        """
        summary: The active decision set and the log sequence number it reflects.
        description: Operator token or a member-signed request.
        responses:
          200: {description: '{"seq": N, "decisions": [...]}'}
        """
        if (denied := await reader_allowed(request)) is not None:
            return denied
        seq, active = await service.snapshot()
        snap = Snapshot(seq=seq, decisions=[decision_to_wire(d) for d in active])
        return Response(encode(snap), media_type="application/json")

    async def stream(request: Request) -> Response:
        """
        summary: Server-sent events of the decision log.
        description: >
          Without `since`, the first event is `snapshot` (the active set at seq N), then live
          `add`, `revoke` and `expire` events, each with `id:` its sequence number. With
          `since=SEQ`, every event after SEQ is sent first, then live ones: a member resumes
          exactly where it stopped. If SEQ is ahead of the log, a snapshot is sent instead.
          A comment line is sent every 15 s as a heartbeat.
        parameters:
          - {name: since, in: query, required: false, schema: {type: integer}}
        responses:
          200: {description: text/event-stream}
        """
        if (denied := await reader_allowed(request)) is not None:
            return denied
        since_raw = request.query_params.get("since")
        since: int | None = None
        if since_raw is not None:
            try:
                since = int(since_raw)
            except ValueError:
                return _error(400, "malformed", "since must be an integer")
            if since < 0:
                return _error(400, "malformed", "since must be ≥ 0")
        sub = service.broadcaster.subscribe()

        async def body() -> AsyncIterator[bytes]:
            try:
                last = await service.store.last_seq()
                if since is None or since > last:
                    seq, active = await service.snapshot()
                    snap = Snapshot(seq=seq, decisions=[decision_to_wire(d) for d in active])
                    yield _sse("snapshot", seq, encode(snap))
                    sent = seq
                else:
                    sent = since
                    while True:
                        page = await service.events_since(sent, 5000)
                        if not page:
                            break
                        yield _event_frames(page)
                        sent = page[-1].seq
                while True:
                    try:
                        batch = await asyncio.wait_for(sub.next_batch(), HEARTBEAT)
                    except TimeoutError:
                        yield b": ping\n\n"
                        continue
                    if batch is None:  # fell behind: end; the member resumes from `sent`
                        return
                    fresh = [e for e in batch if e.seq > sent]
                    if fresh:
                        yield _event_frames(fresh)
                        sent = fresh[-1].seq
            finally:
                sub.close()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @operator
    async def ban(request: Request) -> Response:
        """
        summary: Operator ban (body {"scope", "duration"?, "reason"?, "force"?}).
        description: Refused with 403 and a reason when the scope overlaps a protected target,
          unless force is true.
        responses:
          201: {description: the decision}
          403: {description: refused by the treaty}
        """
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise WireError("body must be an object")
            scope = parse_scope(str(data["scope"]))
            duration = data.get("duration")
            if duration is not None and not isinstance(duration, int | float):
                raise WireError("duration is seconds")
            reason = str(data.get("reason") or "operator ban")[:500]
            force = bool(data.get("force", False))
        except (KeyError, InvalidScope, WireError) as exc:
            return _error(400, "malformed", str(exc))
        result = await service.ban(
            scope, float(duration) if duration else None, reason, force=force
        )
        if isinstance(result, Refusal):
            return JSONResponse({"error": "refused", **_refusal_json(result)}, status_code=403)
        return JSONResponse(_decision_json(result), status_code=201)

    @operator
    async def unban(request: Request) -> Response:
        """
        summary: Operator unban (body {"scope"} or {"id"}); revokes every matching decision.
        responses:
          200: {description: '{"revoked": [...]}'}
        """
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise WireError("body must be an object")
            target: Any = str(data["id"]) if "id" in data else parse_scope(str(data["scope"]))
        except (KeyError, InvalidScope, WireError) as exc:
            return _error(400, "malformed", str(exc))
        revoked = await service.unban(target)
        return JSONResponse({"revoked": [_decision_json(d) for d in revoked]})

    @operator
    async def members(request: Request) -> Response:
        """
        summary: List members (GET) or enroll one (POST).
        description: 'POST body {"name", "public_key", "addresses"?, "trust"?}'
        responses:
          200: {description: member list}
          201: {description: enrolled}
          409: {description: name or key already enrolled}
        """
        if request.method == "GET":
            return JSONResponse([_member_json(m) for m in await service.members()])
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise WireError("body must be an object")
            addresses = tuple(parse_scope(str(a)) for a in data.get("addresses", []))
            record = await service.enroll(
                str(data["name"]),
                str(data["public_key"]),
                addresses,
                str(data.get("trust", "member")),
            )
        except (KeyError, InvalidScope, WireError, SignatureError) as exc:
            return _error(400, "malformed", str(exc))
        except StoreError as exc:
            return _error(409, "conflict", str(exc))
        return JSONResponse(_member_json(record), status_code=201)

    @operator
    async def revoke_member(request: Request) -> Response:
        """
        summary: Revoke a member; its reports and reads are refused from now on.
        responses:
          200: {description: revoked}
          404: {description: no such active member}
        """
        name = request.path_params["name"]
        if not await service.revoke_member(name):
            return _error(404, "not-found", f"no active member {name!r}")
        return JSONResponse({"revoked": name})

    @operator
    async def refusals(request: Request) -> Response:
        """
        summary: Recent decisions the treaty refused, newest first.
        responses:
          200: {description: list}
        """
        return JSONResponse([_refusal_json(r) for r in await service.store.refusals(500)])

    @operator
    async def stats(request: Request) -> Response:
        """
        summary: Counters (reports accepted/refused by reason, refusals, decisions, streams).
        responses:
          200: {description: map of counter to value}
        """
        return JSONResponse(await service.stats())

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()

        async def reap() -> None:
            while True:
                try:
                    await service.expire_due()
                except Exception:  # keep reaping; the next round retries
                    log.exception("reaper.failed")
                await asyncio.sleep(reaper_interval)

        task = asyncio.create_task(reap())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/reports", reports, methods=["POST"]),
        Route("/v1/decisions", decisions, methods=["GET"]),
        Route("/v1/decisions", ban, methods=["POST"]),
        Route("/v1/decisions/stream", stream, methods=["GET"]),
        Route("/v1/decisions/revoke", unban, methods=["POST"]),
        Route("/v1/members", members, methods=["GET", "POST"]),
        Route("/v1/members/{name}/revoke", revoke_member, methods=["POST"]),
        Route("/v1/refusals", refusals, methods=["GET"]),
        Route("/v1/stats", stats, methods=["GET"]),
        Route("/openapi.json", openapi, include_in_schema=False),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _member_json(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "public_key": m.public_key,
        "addresses": [scope_str(a) for a in m.addresses],
        "trust": m.trust,
        "created": m.created.isoformat(),
        "revoked_at": m.revoked_at.isoformat() if m.revoked_at else None,
    }
