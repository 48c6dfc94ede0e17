"""What every router shares: the service and the operator token (``request.app.state.api``),
who is asking, reading a body within its limit, errors as JSON, JSON views of core values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shieldwall.council.auth import check_token
from shieldwall.council.service import CouncilService, ReportOutcome
from shieldwall.errors import SignatureError, WireError
from shieldwall.model import Decision, Refusal, scope_str
from shieldwall.treaty import Concern
from shieldwall.wire.messages import decision_to_wire, decode_request
from shieldwall.wire.signing import verify_request

_R = TypeVar("_R", bound=msgspec.Struct)

MAX_BODY = 8 * 1024 * 1024

STATUS = {
    "malformed": 400,
    "unsigned": 401,
    "bad-signature": 401,
    "unknown-member": 401,
    "stale": 401,
    "revoked": 403,
    "replayed": 409,
}
"""Refusal reason → HTTP status."""

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Api:
    service: CouncilService
    token: str


def api_of(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


class FastJSON(Response):
    """A JSON response encoded by msgspec (the answer to every report: five times faster to
    render than starlette's ``json.dumps``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def error(status: int, reason: str, detail: str = "") -> JSONResponse:
    """A refusal as JSON (a body still arriving is cut by :mod:`.intake`)."""
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


class TooLarge(WireError):
    """A body over its limit."""


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, read as it arrives and refused (:class:`TooLarge`) as soon as it
    is over ``limit`` bytes (a chunked upload with no length is never held beyond it)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(f"max {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise TooLarge(f"max {limit} bytes")
        parts.append(part)
    return b"".join(parts)


async def read_request(request: Request, cls: type[_R], limit: int = MAX_BODY) -> _R:
    """An operator's request body decoded as ``cls`` (strict types); WireError or
    TooLarge otherwise."""
    return decode_request(await read_body(request, limit), cls)


def operator(fn: Handler) -> Handler:
    """The operator token is required."""

    async def wrapped(request: Request) -> Response:
        if not check_token(api_of(request).token, request.headers.get("authorization")):
            return error(401, "unauthorized", "operator token required")
        return await fn(request)

    wrapped.__doc__ = fn.__doc__
    wrapped.__name__ = fn.__name__
    return wrapped


def is_operator(request: Request) -> bool:
    return check_token(api_of(request).token, request.headers.get("authorization"))


async def reader(request: Request) -> Response | str | None:
    """Who reads: the member (a signed request), None for the operator, or a refusal."""
    api = api_of(request)
    if is_operator(request):
        return None
    name = request.headers.get("x-shieldwall-member")
    if not name:
        return error(401, "unsigned", "operator token or member signature required")
    member = await api.service.member(name)
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
            api.service.clock.now(),
            api.service.replay_window,
        )
    except SignatureError as exc:
        await api.service.bump({f"reads.refused.{exc.reason}": 1})
        return error(STATUS.get(exc.reason, 401), exc.reason, exc.detail)
    return member.name


async def reader_refusal(request: Request) -> Response | None:
    """Operators and enrolled, unrevoked members may read; the refusal otherwise."""
    who = await reader(request)
    return who if isinstance(who, Response) else None


# -- JSON views ------------------------------------------------------------------------


def refusal_json(r: Refusal) -> dict[str, Any]:
    return {
        "scope": scope_str(r.scope),
        "reason": r.reason,
        "member": r.member,
        "rule": r.rule,
        "at": r.at.isoformat(),
    }


def decision_json(d: Decision) -> Any:
    return msgspec.to_builtins(decision_to_wire(d))


def iso(epoch: Any) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat()


def concern_json(c: Concern) -> dict[str, Any]:
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


def concern_outcome(out: ReportOutcome) -> JSONResponse:
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
        "concern": None if concern is None else concern_json(concern),
        "decided": [d.id for d in out.decided],
        "refused": [refusal_json(r) for r in out.refused],
    }
    return JSONResponse(body, status_code=403 if status == "refused" else 200)


def evidence_json(plain: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored evidence chain with readable times."""
    if plain is None:
        return None
    exhibits = [{**x, "at": iso(x["at"])} for x in plain.get("exhibits", [])]
    return {**plain, "exhibits": exhibits}


def member_json(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "public_key": m.public_key,
        "addresses": [scope_str(a) for a in m.addresses],
        "trust": m.trust,
        "created": m.created.isoformat(),
        "revoked_at": m.revoked_at.isoformat() if m.revoked_at else None,
    }
