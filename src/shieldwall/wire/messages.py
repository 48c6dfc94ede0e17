"""msgspec structs for everything that crosses the wire, and conversions to core values.

Decoding is strict (unknown fields are errors) and every conversion into the core validates
addresses, so a malformed message becomes a :class:`~shieldwall.errors.WireError`, never a
crash.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from shieldwall.errors import InvalidScope, WireError
from shieldwall.model import (
    Action,
    Alert,
    Decision,
    DecisionEvent,
    EventKind,
    Origin,
    parse_address,
    parse_scope,
    scope_str,
)

MAX_EVIDENCE = 20
MAX_EVIDENCE_CHARS = 1000
MAX_ALERTS = 10_000


class WireAlert(msgspec.Struct, forbid_unknown_fields=True):
    rule: str
    source: str
    first: datetime
    last: datetime
    count: int
    evidence: list[str] = []
    bantime: float | None = None


class Report(msgspec.Struct, forbid_unknown_fields=True):
    """A member's signed batch. ``id`` is a random nonce: a second report with it is a replay."""

    id: str
    member: str
    sent_at: datetime
    alerts: list[WireAlert] = []


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


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    kind: str
    at: datetime
    decision: WireDecision


class Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    """The active set as of ``seq``: what a stream sends first, and ``GET /v1/decisions``."""

    seq: int
    decisions: list[WireDecision]


_report_decoder = msgspec.json.Decoder(Report)
_event_decoder = msgspec.json.Decoder(WireEvent)
_snapshot_decoder = msgspec.json.Decoder(Snapshot)
encode = msgspec.json.encode


def decode_report(body: bytes) -> Report:
    try:
        report = _report_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"malformed report: {exc}") from exc
    if len(report.alerts) > MAX_ALERTS:
        raise WireError(f"too many alerts in one report (max {MAX_ALERTS})")
    return report


def decode_event(body: bytes | str) -> WireEvent:
    try:
        return _event_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"malformed event: {exc}") from exc


def decode_snapshot(body: bytes | str) -> Snapshot:
    try:
        return _snapshot_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"malformed snapshot: {exc}") from exc


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


def alert_from_wire(w: WireAlert) -> Alert:
    try:
        source = parse_address(w.source)
    except InvalidScope as exc:
        raise WireError(str(exc)) from exc
    if w.count < 1:
        raise WireError("alert count must be at least 1")
    if w.bantime is not None and not (0 < w.bantime <= 366 * 86400):
        raise WireError("alert bantime out of range")
    return Alert(
        rule=w.rule[:100],
        source=source,
        first=_aware(w.first),
        last=_aware(w.last),
        count=w.count,
        evidence=tuple(e[:MAX_EVIDENCE_CHARS] for e in w.evidence[:MAX_EVIDENCE]),
        bantime=w.bantime,
    )


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


def event_to_wire(e: DecisionEvent) -> WireEvent:
    return WireEvent(seq=e.seq, kind=e.kind.value, at=e.at, decision=decision_to_wire(e.decision))


def event_from_wire(w: WireEvent) -> DecisionEvent:
    try:
        kind = EventKind(w.kind)
    except ValueError as exc:
        raise WireError(f"unknown event kind {w.kind!r}") from exc
    return DecisionEvent(
        seq=w.seq, kind=kind, at=_aware(w.at), decision=decision_from_wire(w.decision)
    )


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise WireError("timestamps must carry a time zone")
    return t
