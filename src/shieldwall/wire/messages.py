"""msgspec structs for everything that crosses the wire, and conversions to core values.

Decoding is strict (unknown fields are errors) and every conversion into the core validates
addresses, so a malformed message becomes a :class:`~shieldwall.errors.WireError`, never a
crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import msgspec

from shieldwall.blocklist import Claim
from shieldwall.errors import InvalidScope, WireError
from shieldwall.model import (
    Action,
    Address,
    Alert,
    Decision,
    DecisionEvent,
    EventKind,
    LogEvent,
    Origin,
    Sighting,
    SightingKind,
    parse_address,
    parse_scope,
    scope_str,
)
from shieldwall.net import parse_net

MAX_EVIDENCE = 20
MAX_EVIDENCE_CHARS = 1000
MAX_ALERTS = 10_000
MAX_SIGHTINGS = 10_000
"""Sightings per report (an agent sends at most ``agent.run.MAX_REPORT_SIGHTINGS``)."""
MAX_ANSWERS = 1_000
MAX_RULE_CHARS = 100
MAX_REASON_CHARS = 500
MAX_ID_CHARS = 128
"""A report's or concern's id (a nonce): agents send 32 hex digits."""
MAX_FUTURE = timedelta(days=1)
MAX_PAST = timedelta(days=366)
"""An alert's or sighting's times must fall within this much of the report's ``sent_at``."""


class WireAlert(msgspec.Struct, forbid_unknown_fields=True):
    rule: str
    source: str
    first: datetime
    last: datetime
    count: int
    evidence: list[str] = []
    bantime: float | None = None


class WireSighting(msgspec.Struct, forbid_unknown_fields=True):
    """A member's aggregate for one (source, rule, kind): ``count`` events in [first, last],
    reported even below the rule's local threshold (alliance-wide detection)."""

    source: str
    rule: str
    kind: Literal["failure", "success"]
    count: int
    first: datetime
    last: datetime


class WireAnswer(msgspec.Struct, forbid_unknown_fields=True):
    """A member's answer to a consultation: what it saw of the concern's source."""

    concern: str
    failures: int
    successes: int = 0


class Report(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A member's signed batch. ``id`` is a random nonce: a second report with it is a replay.

    Empty lists are left out when encoding, so a report with alerts only is what a council
    that knows no sightings expects."""

    id: str
    member: str
    sent_at: datetime
    alerts: list[WireAlert] = []
    sightings: list[WireSighting] = []
    answers: list[WireAnswer] = []


class ConcernRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A member's signed concern (Article 4), ``POST /v1/concerns``; ``id`` is a nonce."""

    id: str
    member: str
    sent_at: datetime
    source: str
    reason: str = ""
    rule: str | None = None


class WireConsult(msgspec.Struct, forbid_unknown_fields=True):
    """A consultation (SSE ``event: consult``): has the member seen ``source`` within the
    last ``lookback`` seconds? Members answer with a report carrying ``answers``."""

    concern: str
    source: str
    lookback: float
    expires: datetime
    reason: str = ""
    rule: str | None = None


class WireDecision(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    scope: str
    action: str
    origin: str
    reason: str
    created: datetime
    expires: datetime
    member: str | None = None
    rule: str | None = None


class Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    """The active set as of ``seq``, in full: ``GET /v1/decisions``."""

    seq: int
    decisions: list[WireDecision]


WireLogEvent = tuple[int, str, str, str, float]
"""One decision-log event on the stream: ``[seq, kind, decision id, scope, expires]``
(``expires`` in epoch seconds)."""


class WireBatch(msgspec.Struct, forbid_unknown_fields=True):
    """SSE ``event: batch`` (``id:`` its last sequence number): decision-log events, in order.
    One message carries every event the council committed together (a report's decision, a
    chunk of an import: thousands)."""

    events: list[WireLogEvent]


class WireSnapshotPage(msgspec.Struct, forbid_unknown_fields=True):
    """SSE ``event: snapshot``: one page of the active set as of ``seq``, each decision
    ``[id, scope, expires]``. The last page has ``last: true`` (and ``id:`` the seq); the set
    is the union of the pages, and the member resumes from ``seq``."""

    seq: int
    decisions: list[tuple[str, str, float]]
    last: bool = True


class WireProtect(msgspec.Struct, forbid_unknown_fields=True):
    """SSE ``event: protect``: what the council protects beyond a member's own ranges — its
    allowlist and members' addresses — each ``[scope, reason]``; the whole set, sent when a
    stream starts and whenever it changes. Members never ban these locally."""

    scopes: list[tuple[str, str]]


class WireLift(msgspec.Struct, forbid_unknown_fields=True):
    """SSE ``event: lift``: an operator unbanned these scopes: members lift their own local
    bans inside them too (a live message: a member not connected keeps its local ban until
    it expires)."""

    scopes: list[str]


MAX_BULK = 20_000
"""Decisions (or scopes) in one bulk request: an import sends chunks of at most this many."""


class ImportItem(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One decision of ``POST /v1/decisions/import``: ``duration`` in seconds."""

    scope: str
    duration: float | None = None
    reason: str | None = None


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A chunk of an import: one transaction, one treaty pass, one stream message."""

    decisions: list[ImportItem]
    duration: float | None = None
    reason: str = ""
    source: str = ""


class BulkRevokeRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/decisions/revoke/bulk``: every decision on each scope is revoked."""

    scopes: list[str]
    source: str = ""


# -- operator requests: strict types (a JSON boolean is a boolean; a number is a number) --


class BanRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/decisions``: ``duration`` in seconds; ``force`` overrides protection."""

    scope: str
    duration: float | None = None
    reason: str | None = None
    force: bool = False


class RevokeRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/decisions/revoke``: a scope, or a decision's id."""

    scope: str | None = None
    id: str | None = None


class MemberRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/members``: enroll ``name`` with its public key."""

    name: str
    public_key: str
    addresses: list[str] = []
    trust: str = "member"


class RekeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/members/{name}/rekey``: the member's new public key."""

    public_key: str


class AllowlistRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/allowlist``: add (or remove) a run-time entry."""

    scope: str
    action: Literal["add", "remove"] = "add"
    reason: str = ""


class OperatorConcern(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/concerns`` by the operator."""

    source: str
    reason: str = ""
    rule: str | None = None


OPERATOR_REQUESTS: dict[str, type[msgspec.Struct]] = {
    "ban": BanRequest,
    "revoke": RevokeRequest,
    "member": MemberRequest,
    "rekey": RekeyRequest,
    "allowlist": AllowlistRequest,
    "concern": OperatorConcern,
    "import": ImportRequest,
    "bulk-revoke": BulkRevokeRequest,
}
_operator_decoders = {cls: msgspec.json.Decoder(cls) for cls in OPERATOR_REQUESTS.values()}
_T_REQ = TypeVar("_T_REQ", bound=msgspec.Struct)


def decode_request(body: bytes, cls: type[_T_REQ]) -> _T_REQ:
    """An operator's request body as ``cls``; anything else is a WireError saying what."""
    decoder: msgspec.json.Decoder[_T_REQ] = _operator_decoders[cls]  # type: ignore[assignment]
    return _decode(decoder, body, "request")


_report_decoder = msgspec.json.Decoder(Report)
_import_decoder = msgspec.json.Decoder(ImportRequest)
_bulk_revoke_decoder = msgspec.json.Decoder(BulkRevokeRequest)
_concern_decoder = msgspec.json.Decoder(ConcernRequest)
_consult_decoder = msgspec.json.Decoder(WireConsult)
_protect_decoder = msgspec.json.Decoder(WireProtect)
_lift_decoder = msgspec.json.Decoder(WireLift)
_snapshot_decoder = msgspec.json.Decoder(Snapshot)
_batch_decoder = msgspec.json.Decoder(WireBatch)
_page_decoder = msgspec.json.Decoder(WireSnapshotPage)
encode = msgspec.json.encode


_M = TypeVar("_M")


def _decode(decoder: msgspec.json.Decoder[_M], body: bytes | str, what: str) -> _M:
    """Strict decoding: anything malformed is a WireError naming what it should have been."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"malformed {what}: {exc}") from exc
    except UnicodeDecodeError as exc:  # msgspec checks strings' UTF-8 as it reads them
        raise WireError(f"malformed {what}: invalid UTF-8 at byte {exc.start}") from exc
    except RecursionError as exc:
        raise WireError(f"malformed {what}: nested too deep") from exc


def check_nonce(value: str, what: str = "id") -> str:
    """A report's or concern's id (its nonce): 1 to ``MAX_ID_CHARS`` printable ASCII."""
    if not 0 < len(value) <= MAX_ID_CHARS or not value.isascii() or not value.isprintable():
        raise WireError(f"{what} is 1 to {MAX_ID_CHARS} printable ASCII characters")
    return value


def decode_report(body: bytes) -> Report:
    report = _decode(_report_decoder, body, "report")
    check_nonce(report.id)
    if len(report.alerts) > MAX_ALERTS:
        raise WireError(f"too many alerts in one report (max {MAX_ALERTS})")
    if len(report.sightings) > MAX_SIGHTINGS:
        raise WireError(f"too many sightings in one report (max {MAX_SIGHTINGS})")
    if len(report.answers) > MAX_ANSWERS:
        raise WireError(f"too many answers in one report (max {MAX_ANSWERS})")
    return report


def decode_import(body: bytes) -> ImportRequest:
    req = _decode(_import_decoder, body, "import request")
    if len(req.decisions) > MAX_BULK:
        raise WireError(f"too many decisions in one request (max {MAX_BULK})")
    return req


def decode_bulk_revoke(body: bytes) -> BulkRevokeRequest:
    req = _decode(_bulk_revoke_decoder, body, "revoke request")
    if len(req.scopes) > MAX_BULK:
        raise WireError(f"too many scopes in one request (max {MAX_BULK})")
    return req


def decode_concern(body: bytes) -> ConcernRequest:
    concern = _decode(_concern_decoder, body, "concern")
    check_nonce(concern.id)
    return concern


def decode_consult(body: bytes | str) -> WireConsult:
    return _decode(_consult_decoder, body, "consultation")


def decode_protect(body: bytes | str) -> WireProtect:
    return _decode(_protect_decoder, body, "protected set")


def decode_lift(body: bytes | str) -> WireLift:
    return _decode(_lift_decoder, body, "lift")


def decode_batch(body: bytes | str) -> WireBatch:
    return _decode(_batch_decoder, body, "event batch")


def decode_page(body: bytes | str) -> WireSnapshotPage:
    return _decode(_page_decoder, body, "snapshot page")


def decode_snapshot(body: bytes | str) -> Snapshot:
    return _decode(_snapshot_decoder, body, "snapshot")


def alert_to_wire(alert: Alert) -> WireAlert:
    return WireAlert(
        rule=alert.rule,
        source=str(alert.source),
        first=alert.first,
        last=alert.last,
        count=alert.count,
        evidence=[e[:MAX_EVIDENCE_CHARS] for e in alert.evidence[:MAX_EVIDENCE]],
        bantime=alert.bantime,
    )


def _span(first: datetime, last: datetime, sent_at: datetime | None, what: str) -> None:
    if first > last:
        raise WireError(f"{what} first is after last")
    if sent_at is not None and (last > sent_at + MAX_FUTURE or first < sent_at - MAX_PAST):
        raise WireError(f"{what} times are not within a year before sent_at (or a day after)")


def alert_from_wire(w: WireAlert, sent_at: datetime | None = None) -> Alert:
    """``sent_at``: the report's, which the alert's times must be near."""
    try:
        source = parse_address(w.source)
    except InvalidScope as exc:
        raise WireError(str(exc)) from exc
    if w.count < 1:
        raise WireError("alert count must be at least 1")
    if not w.rule:
        raise WireError("alert rule must not be empty")
    if w.bantime is not None and not (0 < w.bantime <= 366 * 86400):
        raise WireError("alert bantime out of range")
    first, last = _aware(w.first), _aware(w.last)
    _span(first, last, None if sent_at is None else _aware(sent_at), "alert")
    return Alert(
        rule=w.rule[:100],
        source=source,
        first=first,
        last=last,
        count=w.count,
        evidence=tuple(e[:MAX_EVIDENCE_CHARS] for e in w.evidence[:MAX_EVIDENCE]),
        bantime=w.bantime,
    )


def sighting_from_wire(w: WireSighting, sent_at: datetime | None = None) -> Sighting:
    try:
        source = parse_address(w.source)
    except InvalidScope as exc:
        raise WireError(str(exc)) from exc
    if w.count < 1:
        raise WireError("sighting count must be at least 1")
    if not w.rule:
        raise WireError("sighting rule must not be empty")
    first, last = _aware(w.first), _aware(w.last)
    _span(first, last, None if sent_at is None else _aware(sent_at), "sighting")
    return Sighting(source, w.rule[:MAX_RULE_CHARS], SightingKind(w.kind), w.count, first, last)


def sighting_to_wire(s: Sighting) -> WireSighting:
    return WireSighting(
        source=str(s.source),
        rule=s.rule,
        kind="success" if s.kind is SightingKind.SUCCESS else "failure",
        count=s.count,
        first=s.first,
        last=s.last,
    )


def check_answer(w: WireAnswer) -> WireAnswer:
    if not w.concern or len(w.concern) > 100:
        raise WireError("answer concern must be an id of 1 to 100 characters")
    if w.failures < 0 or w.successes < 0:
        raise WireError("answer counts must not be negative")
    return w


def concern_source(w: ConcernRequest) -> Address:
    """The single address a concern is about (WireError otherwise)."""
    try:
        return parse_address(w.source)
    except InvalidScope as exc:
        raise WireError(str(exc)) from exc


def decision_to_wire(d: Decision) -> WireDecision:
    return WireDecision(
        id=d.id,
        scope=scope_str(d.scope),
        action=d.action.value,
        origin=d.origin.value,
        reason=d.reason,
        created=d.created,
        expires=d.expires,
        member=d.member,
        rule=d.rule,
    )


def decision_from_wire(w: WireDecision) -> Decision:
    try:
        return Decision(
            id=w.id,
            scope=parse_scope(w.scope),
            action=Action(w.action),
            origin=Origin(w.origin),
            reason=w.reason,
            created=_aware(w.created),
            expires=_aware(w.expires),
            member=w.member,
            rule=w.rule,
        )
    except (InvalidScope, ValueError) as exc:
        raise WireError(f"malformed decision: {exc}") from exc


def batch_to_wire(events: Sequence[DecisionEvent]) -> WireBatch:
    return WireBatch(
        events=[
            (
                e.seq,
                e.kind.value,
                e.decision.id,
                e.decision.scope.text(),
                e.decision.expires.timestamp(),
            )
            for e in events
        ]
    )


def page_to_wire(seq: int, decisions: Sequence[Decision], last: bool) -> WireSnapshotPage:
    return WireSnapshotPage(
        seq=seq,
        decisions=[(d.id, d.scope.text(), d.expires.timestamp()) for d in decisions],
        last=last,
    )


_KINDS = {k.value: k for k in EventKind}


def events_from_wire(w: WireBatch) -> tuple[list[LogEvent], int]:
    """The batch's events as a member holds them, and how many were malformed (skipped: an
    unknown kind, a scope that does not parse)."""
    out: list[LogEvent] = []
    bad = 0
    make = LogEvent._make
    kinds = _KINDS
    for seq, kind, decision_id, scope, expires in w.events:
        k = kinds.get(kind)
        try:
            net = parse_net(scope)  # the council's canonical text: no spaces to strip
        except ValueError:
            net = None
        if k is None or net is None:
            bad += 1
            continue
        out.append(make((seq, k, decision_id, net, expires)))
    return out, bad


def claims_from_wire(w: WireSnapshotPage) -> tuple[list[Claim], int]:
    """A snapshot page's decisions as claims, and how many were malformed (skipped)."""
    out: list[Claim] = []
    bad = 0
    for decision_id, scope, expires in w.decisions:
        try:
            out.append((decision_id, parse_scope(scope), expires))
        except InvalidScope:
            bad += 1
    return out, bad


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise WireError("timestamps must carry a time zone")
    return t
