"""Decisions: the active set, operator bans and unbans (one at a time and in bulk), the
evidence chain of one decision, and the stream."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shieldwall.council.api.common import (
    TooLarge,
    api_of,
    decision_json,
    error,
    evidence_json,
    operator,
    read_body,
    read_request,
    reader,
    reader_refusal,
    refusal_json,
)
from shieldwall.errors import InvalidScope, StoreError, WireError
from shieldwall.model import Scope, parse_scope
from shieldwall.treaty import BanItem
from shieldwall.treaty.policy import MAX_DURATION
from shieldwall.wire.messages import (
    MAX_REASON_CHARS,
    BanRequest,
    RevokeRequest,
    WireDecision,
    decision_to_wire,
    decode_bulk_revoke,
    decode_import,
    encode,
)

MAX_PAGE = 10_000


async def list_decisions(request: Request) -> Response:
    """
    summary: The active decision set and the log sequence number it reflects.
    description: >
      Operator token or a member-signed request. Without parameters, every active
      decision, streamed in pages from the store (never built whole in memory). With
      `limit` (at most 10,000), one page from `after` (a cursor: absent for the first page),
      and `next`, the cursor of the following page (null after the last).
    parameters:
      - {name: after, in: query, required: false, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer}}
    responses:
      200: {description: '{"seq": N, "decisions": [...], "next"?: id}'}
    """
    if (denied := await reader_refusal(request)) is not None:
        return denied
    service = api_of(request).service
    seq = await service.last_seq()
    limit_raw = request.query_params.get("limit")
    if limit_raw is not None:
        if not limit_raw.isdigit() or not 0 < int(limit_raw) <= MAX_PAGE:
            return error(400, "malformed", f"limit is 1 to {MAX_PAGE}")
        limit = int(limit_raw)
        try:
            page, cursor = await service.active_page(request.query_params.get("after"), limit)
        except StoreError as exc:
            return error(400, "malformed", str(exc))
        body: dict[str, Any] = {
            "seq": seq,
            "decisions": [decision_to_wire(d) for d in page],
            "next": cursor,
        }
        return Response(encode(body), media_type="application/json")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"seq":%d,"decisions":[' % seq
        first = True
        async for page in service.active_pages():
            items: list[WireDecision] = [decision_to_wire(d) for d in page]
            data = encode(items)[1:-1]  # the objects, without the array's brackets
            yield data if first else b"," + data
            first = False
        yield b"]}"

    return StreamingResponse(chunks(), media_type="application/json")


def _duration(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError("duration is a number of seconds")
    if not math.isfinite(value) or not 0 < value <= MAX_DURATION:
        raise WireError(f"duration is above 0 and at most {MAX_DURATION:.0f} seconds")
    return float(value)


@operator
async def ban(request: Request) -> Response:
    """
    summary: Operator ban (body {"scope", "duration"?, "reason"?, "force"?}).
    description: >
      Refused with 403 and a reason when the scope overlaps a protected target, unless
      force is true. An operator decision already on the scope is extended (200, outcome
      extended) or, if it already lasts as long, left as it is (200, outcome unchanged):
      banning twice never makes two decisions.
    responses:
      201: {description: 'the decision, with "outcome": "added"'}
      200: {description: 'the decision, with "outcome": "extended" or "unchanged"'}
      403: {description: refused by the treaty}
    """
    service = api_of(request).service
    try:
        req = await read_request(request, BanRequest)
        scope = parse_scope(req.scope)
        duration = _duration(req.duration)
        reason = (req.reason or "operator ban")[:MAX_REASON_CHARS]
        force = req.force
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except (InvalidScope, WireError) as exc:
        return error(400, "malformed", str(exc))
    result = await service.ban(scope, duration, reason, force=force)
    if result.refusal is not None:
        return JSONResponse({"error": "refused", **refusal_json(result.refusal)}, status_code=403)
    assert result.decision is not None  # noqa: S101 - a ban is decided or refused
    return JSONResponse(
        {**decision_json(result.decision), "outcome": result.outcome},
        status_code=201 if result.outcome == "added" else 200,
    )


@operator
async def import_decisions(request: Request) -> Response:
    """
    summary: A chunk of an import (shieldwall decisions import).
    description: >
      Body {"decisions": [{"scope", "duration"?, "reason"?}…], "duration"?, "reason"?,
      "source"?} (at most 20,000 decisions; durations in seconds). The chunk is one treaty
      pass, one transaction and one stream message: it is applied whole or not at all.
      Each decision is judged as an operator ban (protected targets refused with their
      clause, never forced); an operator decision already on a scope is extended, or left
      as it is if it lasts as long — importing a list again never duplicates it.
    responses:
      200: {description: '{"added", "extended", "unchanged", "refused": [{"index", "scope",
        "reason"}], "malformed": [{"index", "error"}], "seq"}'}
      400: {description: malformed}
      413: {description: too large}
    """
    service = api_of(request).service
    try:
        req = decode_import(await read_body(request))
        duration = _duration(req.duration)
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except WireError as exc:
        return error(400, "malformed", str(exc))
    items: list[BanItem] = []
    indexes: list[int] = []
    malformed: list[dict[str, Any]] = []
    for i, item in enumerate(req.decisions):
        try:
            items.append(
                BanItem(
                    parse_scope(item.scope),
                    _duration(item.duration),
                    None if item.reason is None else item.reason[:MAX_REASON_CHARS],
                )
            )
            indexes.append(i)
        except (InvalidScope, WireError) as exc:
            malformed.append({"index": i, "error": str(exc)})
    out = await service.ban_many(
        items,
        duration=duration,
        reason=req.reason[:MAX_REASON_CHARS],
        source=req.source[:200],
    )
    return JSONResponse(
        {
            "added": out.added,
            "extended": out.extended,
            "unchanged": out.unchanged,
            "refused": [{"index": indexes[i], **refusal_json(r)} for i, r in out.refused],
            "malformed": malformed,
            "seq": out.seq,
        }
    )


@operator
async def unban(request: Request) -> Response:
    """
    summary: Operator unban (body {"scope"} or {"id"}); revokes every matching decision.
    responses:
      200: {description: '{"revoked": [...]}'}
    """
    service = api_of(request).service
    try:
        req = await read_request(request, RevokeRequest)
        if (req.id is None) == (req.scope is None):
            raise WireError("give one of scope or id")
        target: Scope | str = req.id if req.id is not None else parse_scope(str(req.scope))
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except (InvalidScope, WireError) as exc:
        return error(400, "malformed", str(exc))
    revoked = await service.unban(target)
    return JSONResponse({"revoked": [decision_json(d) for d in revoked]})


@operator
async def unban_bulk(request: Request) -> Response:
    """
    summary: Revoke every decision on each of many scopes (shieldwall unban --file).
    description: >
      Body {"scopes": [...], "source"?} (at most 20,000): one transaction and one stream
      message.
    responses:
      200: {description: '{"revoked": n, "missing": n, "malformed": [{"index", "error"}],
        "seq"}'}
    """
    service = api_of(request).service
    try:
        req = decode_bulk_revoke(await read_body(request))
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except WireError as exc:
        return error(400, "malformed", str(exc))
    scopes: list[Scope] = []
    malformed: list[dict[str, Any]] = []
    for i, text in enumerate(req.scopes):
        try:
            scopes.append(parse_scope(text))
        except InvalidScope as exc:
            malformed.append({"index": i, "error": str(exc)})
    out = await service.unban_many(scopes, req.source[:200])
    return JSONResponse(
        {"revoked": out.revoked, "missing": out.missing, "malformed": malformed, "seq": out.seq}
    )


async def explain(request: Request) -> Response:
    """
    summary: A decision's evidence chain.
    description: >
      Operator token or a member-signed request. The decision, its state (active,
      revoked, expired), the evidence chain it rests on (treaty clauses, members,
      exhibits, summary) and, if it was revoked, why. Decisions made before the treaty
      kept evidence, and those of an import once they ended, have "evidence" null.
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: '{"decision", "state", "evidence", "revoked"}'}
      404: {description: no such decision}
    """
    if (denied := await reader_refusal(request)) is not None:
        return denied
    found = await api_of(request).service.explain(request.path_params["id"])
    if found is None:
        return error(404, "not-found", "no such decision")
    return JSONResponse(
        {
            "decision": decision_json(found.decision),
            "state": found.state,
            "evidence": evidence_json(found.evidence),
            "revoked": evidence_json(found.revoked),
        }
    )


async def stream(request: Request) -> Response:
    """
    summary: Server-sent events of the decision log.
    description: >
      Without `since`, the active set first, in `snapshot` pages of 5,000 decisions
      ([id, scope, expires] each; the last page has "last" true and `id:` its seq), then
      live `batch` messages: every event one commit made, each [seq, kind, decision id,
      scope, expires], `id:` the last seq. With `since=SEQ`, every event after SEQ is sent
      first, then live ones: a member resumes exactly where it stopped. If SEQ is ahead of
      the log, the snapshot is sent instead. A comment line is sent every 15 s as a
      heartbeat. Consultations (Article 4) are sent live as `consult` events without `id:`
      (they are not part of the log): {concern, source, lookback, expires, reason, rule};
      a member answers with a report carrying `answers`.
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
        if not since_raw.isdigit() or not since_raw.isascii():
            return error(400, "malformed", "since is a sequence number (an integer ≥ 0)")
        since = int(since_raw)
    return StreamingResponse(
        api_of(request).service.follow(who, since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [
    Route("/v1/decisions", list_decisions, methods=["GET"]),
    Route("/v1/decisions", ban, methods=["POST"]),
    Route("/v1/decisions/import", import_decisions, methods=["POST"]),
    Route("/v1/decisions/stream", stream, methods=["GET"]),
    Route("/v1/decisions/revoke", unban, methods=["POST"]),
    Route("/v1/decisions/revoke/bulk", unban_bulk, methods=["POST"]),
    Route("/v1/decisions/{id}/explain", explain, methods=["GET"]),
]
