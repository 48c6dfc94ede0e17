"""Members: enroll, list, revoke; the flags the treaty raised about them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shieldwall.council.api.common import (
    TooLarge,
    api_of,
    error,
    member_json,
    operator,
    read_request,
)
from shieldwall.errors import InvalidScope, SignatureError, StoreError, WireError
from shieldwall.model import parse_scope
from shieldwall.wire.messages import MemberRequest, RekeyRequest


@operator
async def members(request: Request) -> Response:
    """
    summary: List members (GET) or enroll one (POST).
    description: 'POST body {"name", "public_key", "addresses"?, "trust"?}'
    responses:
      200: {description: member list}
      201: {description: enrolled}
      409: {description: 'name or key already enrolled (a revoked name may be enrolled
        again, with a new key)'}
    """
    service = api_of(request).service
    if request.method == "GET":
        return JSONResponse([member_json(m) for m in await service.members()])
    try:
        req = await read_request(request, MemberRequest)
        record = await service.enroll(
            req.name,
            req.public_key,
            tuple(parse_scope(a) for a in req.addresses),
            req.trust,
        )
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except (InvalidScope, WireError, SignatureError) as exc:
        return error(400, "malformed", str(exc))
    except StoreError as exc:
        return error(409, "conflict", str(exc))
    return JSONResponse(member_json(record), status_code=201)


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
    out = await api_of(request).service.revoke_member(name)
    if out is None:
        return error(404, "not-found", f"no active member {name!r}")
    return JSONResponse(
        {
            "revoked": name,
            "decisions_revoked": [d.id for d in out.revoked],
            "amended": out.amended,
        }
    )


@operator
async def rekey_member(request: Request) -> Response:
    """
    summary: Give a member a new public key (body {"public_key"}).
    description: >
      The old key is refused from now on and the member's open streams end; its
      decisions, trust and addresses stay.
    responses:
      200: {description: the member}
      400: {description: malformed}
      404: {description: no such active member}
      409: {description: the key is another member's}
    """
    name = request.path_params["name"]
    try:
        req = await read_request(request, RekeyRequest)
        record = await api_of(request).service.rekey(name, req.public_key)
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except (WireError, SignatureError) as exc:
        return error(400, "malformed", str(exc))
    except StoreError as exc:
        return error(409, "conflict", str(exc))
    if record is None:
        return error(404, "not-found", f"no active member {name!r}")
    return JSONResponse(member_json(record))


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
            {"member": f.member, "clause": f.clause, "at": f.at.isoformat(), "reason": f.reason}
            for f in await api_of(request).service.flags(500)
        ]
    )


ROUTES = [
    Route("/v1/members", members, methods=["GET", "POST"]),
    Route("/v1/members/{name}/revoke", revoke_member, methods=["POST"]),
    Route("/v1/members/{name}/rekey", rekey_member, methods=["POST"]),
    Route("/v1/flags", flags, methods=["GET"]),
]
