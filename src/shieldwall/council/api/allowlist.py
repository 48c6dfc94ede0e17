"""The allowlist: what the alliance never decides against."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shieldwall.council.api.common import (
    TooLarge,
    api_of,
    decision_json,
    error,
    operator,
    read_request,
)
from shieldwall.errors import InvalidScope, WireError
from shieldwall.model import parse_scope, scope_str
from shieldwall.wire.messages import AllowlistRequest


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
    service = api_of(request).service
    if request.method == "GET":
        configured, added = service.allowlist()
        return JSONResponse(
            {
                "configured": [scope_str(s) for s in configured],
                "added": [scope_str(s) for s in added],
            }
        )
    try:
        req = await read_request(request, AllowlistRequest)
        scope = parse_scope(req.scope)
        action = req.action
        reason = req.reason[:500]
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    except (InvalidScope, WireError) as exc:
        return error(400, "malformed", str(exc))
    if action == "add":
        revoked = await service.allowlist_add(scope, reason)
        return JSONResponse(
            {"added": scope_str(scope), "revoked": [decision_json(d) for d in revoked]}
        )
    if not await service.allowlist_remove(scope, reason):
        return error(409, "not-run-time", f"{scope_str(scope)} is not a run-time entry")
    return JSONResponse({"removed": scope_str(scope)})


ROUTES = [Route("/v1/allowlist", allowlist, methods=["GET", "POST"])]
