"""``POST /v1/reports`` (members' signed reports) and ``POST /v1/concerns`` (Article 4)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shieldwall.council.api.common import (
    STATUS,
    FastJSON,
    TooLarge,
    api_of,
    concern_outcome,
    error,
    is_operator,
    read_body,
    read_request,
    refusal_json,
)
from shieldwall.errors import InvalidScope, SignatureError, WireError
from shieldwall.model import parse_address
from shieldwall.wire.messages import OperatorConcern


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
      (docs/treaty.md). Reports that arrive within a few milliseconds of each other are
      committed together (one transaction, one stream message). Refused: 400 malformed,
      401 unsigned / bad-signature / unknown-member / stale, 403 revoked, 409 replayed,
      413 too large. Every refusal is counted.
    responses:
      200:
        description: '{"decided": [ids], "refused": [...], "held": n, "duplicates": n,
          "malformed": n, "sightings": n, "answers": n}'
      400: {description: malformed}
      401: {description: refused signature}
      403: {description: revoked member}
      409: {description: replayed report}
      413: {description: too large}
    """
    service = api_of(request).service
    try:
        body = await read_body(request)
    except TooLarge as exc:
        await service.bump({"reports.refused.too-large": 1})
        return error(413, "too-large", str(exc))
    try:
        out = await service.receive_report(body, request.headers.get("x-shieldwall-signature"))
    except SignatureError as exc:
        return error(STATUS.get(exc.reason, 401), exc.reason, exc.detail)
    except WireError as exc:
        return error(400, "malformed", str(exc))
    return FastJSON(
        {
            "decided": [d.id for d in out.decided],
            "refused": [refusal_json(r) for r in out.refused],
            "held": len(out.held),
            "duplicates": out.duplicates,
            "malformed": out.malformed,
            "sightings": out.sightings,
            "answers": out.answers,
        }
    )


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
      413: {description: too large}
    """
    service = api_of(request).service
    if is_operator(request):
        try:
            req = await read_request(request, OperatorConcern)
            source = parse_address(req.source)
            reason = req.reason[:500]
            rule = req.rule
        except TooLarge as exc:
            return error(413, "too-large", str(exc))
        except (InvalidScope, WireError) as exc:
            return error(400, "malformed", str(exc))
        out = await service.raise_concern(source, None, reason, rule and rule[:100])
        return concern_outcome(out)
    try:
        body = await read_body(request)
    except TooLarge as exc:
        return error(413, "too-large", str(exc))
    try:
        out = await service.receive_concern(body, request.headers.get("x-shieldwall-signature"))
    except SignatureError as exc:
        return error(STATUS.get(exc.reason, 401), exc.reason, exc.detail)
    except WireError as exc:
        return error(400, "malformed", str(exc))
    return concern_outcome(out)


ROUTES = [
    Route("/v1/reports", reports, methods=["POST"]),
    Route("/v1/concerns", concerns, methods=["POST"]),
]
