"""The council's HTTP API (Starlette). ``create_app(service, token)`` → ASGI app.

Every endpoint is described in its docstring (OpenAPI YAML), served at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from shieldwall.council.auth import check_token, verify_request
from shieldwall.council.fanout import Item, Notice
from shieldwall.council.service import CouncilService, ReportOutcome
from shieldwall.errors import InvalidScope, SignatureError, StoreError, WireError
from shieldwall.model import (
    Decision,
    DecisionEvent,
    Refusal,
    parse_address,
    parse_scope,
    scope_str,
)
from shieldwall.treaty import Concern
from shieldwall.wire.messages import Snapshot, batch_to_wire, decision_to_wire, encode, page_to_wire

log = logging.getLogger("shieldwall.council.api")

MAX_BODY = 8 * 1024 * 1024
HEARTBEAT = 15.0
PAGE = 5000
"""Decisions per snapshot page, and events per backlog batch, on the stream."""

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


def _sse(event: str, seq: int | None, data: bytes) -> bytes:
    if seq is None:
        return b"event: %s\ndata: %s\n\n" % (event.encode(), data)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.encode(), data)


def _event_frames(events: list[DecisionEvent]) -> bytes:
    """One SSE message for the events, ``id:`` the last one's sequence number."""
    return _sse("batch", events[-1].seq, encode(batch_to_wire(events))) if events else b""


def _notice_frame(n: Notice) -> bytes:
    """A live message outside the decision log: no ``id:``, so it moves no resume point."""
    return b"event: %s\ndata: %s\n\n" % (n.event.encode(), n.data)


def _iso(epoch: Any) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat()


def _concern_json(c: Concern) -> dict[str, Any]:
    return {
        "id": c.id,
        "source": str(c.source),
        "raised_by": c.raised_by,
        "raised_at": c.raised_at.isoformat(),
        "expires": c.expires.isoformat(),
        "lookback": c.lookback,
        "reason": c.reason,
        "rule": c.rule,
    }


def _concern_outcome(out: ReportOutcome) -> JSONResponse:
    """``consulting`` (members are asked), ``decided``, ``closed`` (already decided,
    friendly fire…) or ``refused`` (403: a protected target, a revoked member, too many)."""
    concern = out.concerns[0] if out.concerns else None
    outcome = None
    if out.closed:
        concern, outcome = out.closed[-1].concern, out.closed[-1].outcome
    if out.decided:
        status = "decided"
    elif out.closed:
        status = "closed"
    elif out.concerns:
        status = "consulting"
    else:
        status = "refused"
    body = {
        "status": status,
        "outcome": outcome,
        "concern": None if concern is None else _concern_json(concern),
        "decided": [d.id for d in out.decided],
        "refused": [_refusal_json(r) for r in out.refused],
    }
    return JSONResponse(body, status_code=403 if status == "refused" else 200)


def _frames(batch: list[Item], sent: int) -> tuple[bytes, int]:
    """SSE frames for a batch, in order: consecutive decision events in one message; those
    at or below ``sent`` are skipped."""
    out: list[bytes] = []
    run: list[DecisionEvent] = []
    for item in batch:
        if isinstance(item, Notice):
            out.append(_event_frames(run))
            run = []
            out.append(_notice_frame(item))
        elif item.seq > sent:
            run.append(item)
            sent = item.seq
    out.append(_event_frames(run))
    return b"".join(out), sent


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
        denied = await reader(request)
        return denied if isinstance(denied, Response) else None

    async def reader(request: Request) -> Response | str | None:
        """The member reading (signed request), None for the operator, or a refusal."""
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
        return member.name

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
          Body is a JSON Report {id, member, sent_at, alerts[]?, sightings[]?, answers[]?};
          header X-Shieldwall-Signature is the base64 Ed25519 signature of the exact body
          bytes by the member's key. An alert is {rule, source, first, last, count,
          evidence[]?, bantime?}; a sighting {source, rule, kind (failure|success), count,
          first, last} (at most 10,000 per report); an answer to a consultation {concern,
          failures, successes?} (at most 1,000). Each item goes through the treaty
          (docs/treaty.md). Refused: 400 malformed, 401 unsigned / bad-signature /
          unknown-member / stale, 403 revoked, 409 replayed, 413 too large. Every refusal
          is counted.
        responses:
          200:
            description: '{"decided": [ids], "refused": [...], "held": n, "duplicates": n,
              "malformed": n, "sightings": n, "answers": n}'
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
                "held": len(out.held),
                "duplicates": out.duplicates,
                "malformed": out.malformed,
                "sightings": out.sightings,
                "answers": out.answers,
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
          A comment line is sent every 15 s as a heartbeat. Consultations (Article 4) are
          sent live as `consult` events without `id:` (they are not part of the log):
          {concern, source, lookback, expires, reason, rule}; a member answers with a report
          carrying `answers`.
        parameters:
          - {name: since, in: query, required: false, schema: {type: integer}}
        responses:
          200: {description: text/event-stream}
        """
        who = await reader(request)
        if isinstance(who, Response):
            return who
        since_raw = request.query_params.get("since")
        since: int | None = None
        if since_raw is not None:
            try:
                since = int(since_raw)
            except ValueError:
                return _error(400, "malformed", "since must be an integer")
            if since < 0:
                return _error(400, "malformed", "since must be ≥ 0")
        sub = service.broadcaster.subscribe(who)

        async def body() -> AsyncIterator[bytes]:
            try:
                last = await service.store.last_seq()
                if since is None or since > last:
                    # pages read after `last` may show later events too: those events come
                    # again after the snapshot and are idempotent (an add by id, an end)
                    after = ""
                    while True:
                        page = await service.store.active_page(
                            service.clock.now(), after, PAGE
                        )
                        final = len(page) < PAGE
                        data = encode(page_to_wire(last, page, final))
                        yield _sse("snapshot", last if final else None, data)
                        if final:
                            break
                        after = page[-1].id
                    sent = last
                else:
                    sent = since
                    while True:
                        events = await service.events_since(sent, PAGE)
                        if not events:
                            break
                        yield _event_frames(events)
                        sent = events[-1].seq
                while True:
                    try:
                        batch = await asyncio.wait_for(sub.next_batch(), HEARTBEAT)
                    except TimeoutError:
                        yield b": ping\n\n"
                        continue
                    if batch is None:  # fell behind: end; the member resumes from `sent`
                        return
                    frames, sent = _frames(batch, sent)
                    if frames:
                        yield frames
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
        description: >
          Every active decision that rested on this member's evidence alone is revoked
          through the decision log (clause revocation); decisions other members
          corroborated stay, without it in their evidence chain.
        responses:
          200: {description: '{"revoked": name, "decisions_revoked": [ids], "amended": n}'}
          404: {description: no such active member}
        """
        name = request.path_params["name"]
        out = await service.revoke_member(name)
        if out is None:
            return _error(404, "not-found", f"no active member {name!r}")
        return JSONResponse(
            {
                "revoked": name,
                "decisions_revoked": [d.id for d in out.revoked],
                "amended": out.amended,
            }
        )

    @operator
    async def refusals(request: Request) -> Response:
        """
        summary: Recent decisions the treaty refused, newest first.
        responses:
          200: {description: list}
        """
        return JSONResponse([_refusal_json(r) for r in await service.store.refusals(500)])

    async def concerns(request: Request) -> Response:
        """
        summary: Raise a concern about a source (Article 4 consultation).
        description: >
          Operator (bearer token) body {"source", "reason"?, "rule"?}, or a member's signed
          body {id, member, sent_at, source, reason?, rule?} with X-Shieldwall-Signature
          over the exact bytes (like a report; id is a nonce). If members' recent
          sightings already corroborate it, the source is decided at once; otherwise every
          connected member is asked (SSE `consult`) and the concern is decided when
          consult.members members answer with failures (none with successes) before
          consult.timeout. Raising an open concern again returns it.
        responses:
          200: {description: '{"status": consulting|decided|closed, "outcome", "concern",
            "decided": [ids], "refused": []}'}
          400: {description: malformed}
          401: {description: refused signature}
          403: {description: 'refused by the treaty (status refused) or a revoked member'}
          409: {description: replayed}
        """
        if check_token(token, request.headers.get("authorization")):
            try:
                data = await read_json(request)
                if not isinstance(data, dict):
                    raise WireError("body must be an object")
                source = parse_address(str(data["source"]))
                reason = str(data.get("reason") or "")[:500]
                rule = data.get("rule")
                if rule is not None and not isinstance(rule, str):
                    raise WireError("rule must be a string")
            except (KeyError, InvalidScope, WireError) as exc:
                return _error(400, "malformed", str(exc))
            out = await service.raise_concern(source, None, reason, rule and rule[:100])
            return _concern_outcome(out)
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "too-large", f"max {MAX_BODY} bytes")
        try:
            out = await service.receive_concern(body, request.headers.get("x-shieldwall-signature"))
        except SignatureError as exc:
            return _error(_STATUS.get(exc.reason, 401), exc.reason, exc.detail)
        except WireError as exc:
            return _error(400, "malformed", str(exc))
        return _concern_outcome(out)

    async def explain(request: Request) -> Response:
        """
        summary: A decision's evidence chain.
        description: >
          Operator token or a member-signed request. The decision, its state (active,
          revoked, expired), the evidence chain it rests on (treaty clauses, members,
          exhibits, summary) and, if it was revoked, why. Decisions made before the treaty
          kept evidence have "evidence" null.
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: '{"decision", "state", "evidence", "revoked"}'}
          404: {description: no such decision}
        """
        if (denied := await reader_allowed(request)) is not None:
            return denied
        found = await service.explain(request.path_params["id"])
        if found is None:
            return _error(404, "not-found", "no such decision")
        return JSONResponse(
            {
                "decision": _decision_json(found.decision),
                "state": found.state,
                "evidence": _evidence_json(found.evidence),
                "revoked": _evidence_json(found.revoked),
            }
        )

    @operator
    async def allowlist(request: Request) -> Response:
        """
        summary: The allowlist (GET), or a change to it (POST).
        description: >
          GET gives {"configured": [...], "added": [...]}: entries of the council's config
          file, and entries added at run time. POST {"scope", "action": "add"|"remove",
          "reason"?} changes the run-time part; every change is audited, and adding a scope
          revokes the active decisions that overlap it. Config entries are changed in the
          config file (removing one here answers 409).
        responses:
          200: {description: the allowlist, or the result of the change}
          400: {description: malformed}
          409: {description: not a run-time entry}
        """
        if request.method == "GET":
            configured, added = service.allowlist()
            return JSONResponse(
                {
                    "configured": [scope_str(s) for s in configured],
                    "added": [scope_str(s) for s in added],
                }
            )
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise WireError("body must be an object")
            scope = parse_scope(str(data["scope"]))
            action = str(data.get("action", "add"))
            if action not in ("add", "remove"):
                raise WireError("action is add or remove")
            reason = str(data.get("reason") or "")[:500]
        except (KeyError, InvalidScope, WireError) as exc:
            return _error(400, "malformed", str(exc))
        if action == "add":
            revoked = await service.allowlist_add(scope, reason)
            return JSONResponse(
                {"added": scope_str(scope), "revoked": [_decision_json(d) for d in revoked]}
            )
        if not await service.allowlist_remove(scope, reason):
            return _error(409, "not-run-time", f"{scope_str(scope)} is not a run-time entry")
        return JSONResponse({"removed": scope_str(scope)})

    @operator
    async def flags(request: Request) -> Response:
        """
        summary: Members flagged by the treaty, newest first.
        description: >
          A flag says a member misbehaved: it reached its blast-radius cap
          (clause blast-radius) or raised too many concerns (article4.limit).
        responses:
          200: {description: '[{"member", "clause", "at", "reason"}]'}
        """
        return JSONResponse(
            [
                {
                    "member": f.member,
                    "clause": f.clause,
                    "at": f.at.isoformat(),
                    "reason": f.reason,
                }
                for f in await service.store.flags(500)
            ]
        )

    @operator
    async def audit(request: Request) -> Response:
        """
        summary: The audit trail, newest first.
        description: >
          Operators' decisions and revocations, allowlist and membership changes:
          {at, actor, action, outcome (done | refused:CLAUSE), scope, subject, reason,
          decisions, forced, detail}.
        responses:
          200: {description: list of audit records}
        """
        records = await service.store.audit(500)
        return JSONResponse([{**r, "at": _iso(r["at"])} for r in records])

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
                    await service.tick()
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
            try:
                await service.stop()  # the treaty's state, for the next start
            except Exception:
                log.exception("treaty.state.save_failed")

    routes = [
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/reports", reports, methods=["POST"]),
        Route("/v1/decisions", decisions, methods=["GET"]),
        Route("/v1/decisions", ban, methods=["POST"]),
        Route("/v1/decisions/stream", stream, methods=["GET"]),
        Route("/v1/decisions/revoke", unban, methods=["POST"]),
        Route("/v1/decisions/{id}/explain", explain, methods=["GET"]),
        Route("/v1/concerns", concerns, methods=["POST"]),
        Route("/v1/flags", flags, methods=["GET"]),
        Route("/v1/allowlist", allowlist, methods=["GET", "POST"]),
        Route("/v1/audit", audit, methods=["GET"]),
        Route("/v1/members", members, methods=["GET", "POST"]),
        Route("/v1/members/{name}/revoke", revoke_member, methods=["POST"]),
        Route("/v1/refusals", refusals, methods=["GET"]),
        Route("/v1/stats", stats, methods=["GET"]),
        Route("/openapi.json", openapi, include_in_schema=False),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _evidence_json(plain: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored evidence chain with readable times."""
    if plain is None:
        return None
    exhibits = [{**x, "at": _iso(x["at"])} for x in plain.get("exhibits", [])]
    return {**plain, "exhibits": exhibits}


def _member_json(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "public_key": m.public_key,
        "addresses": [scope_str(a) for a in m.addresses],
        "trust": m.trust,
        "created": m.created.isoformat(),
        "revoked_at": m.revoked_at.isoformat() if m.revoked_at else None,
    }
