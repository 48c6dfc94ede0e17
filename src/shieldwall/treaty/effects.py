"""What the treaty tells the council to do. Pure values, each with its evidence chain.

================  ==========================================================================
effect            what the council does
================  ==========================================================================
``Decide``        append an ``add`` event for ``decision``; store ``evidence`` with it
``Refuse``        record ``refusal`` (``refusal.reason`` is the clause id)
``Revoke``        append a ``revoke`` event for ``decision``; store ``evidence`` (why)
``Amend``         replace the stored evidence of ``decision`` (a member joined or left it)
``Hold``          nothing to log yet: a low-trust request waits for its quorum
``Flag``          record and surface the flag (``shieldwall members``), alert the operator
``Consult``       ask every member about ``concern.source`` over the stream
``Close``         record the concern's outcome
``Audit``         store the audit record
================  ==========================================================================

``Decide`` and ``Refuse`` are the treaty v1 verdicts (:mod:`shieldwall.treaty.policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from shieldwall.model import Address, Decision, Scope, parse_address, scope_str
from shieldwall.treaty.evidence import (
    NO_EVIDENCE,
    Evidence,
    opt_str,
    scope_from,
    time_from,
    time_plain,
)
from shieldwall.treaty.policy import Decide, Refuse


@dataclass(frozen=True, slots=True)
class Concern:
    """Article 4: a suspicion about ``source`` put to every member until ``expires``."""

    id: str
    source: Address
    raised_by: str | None
    """The member that raised it, or None for an operator."""
    raised_at: datetime
    expires: datetime
    lookback: float
    """Seconds of logs members should search (their answer is a ``Answered`` event)."""
    reason: str = ""
    rule: str | None = None

    def to_plain(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": str(self.source),
            "raised_by": self.raised_by,
            "raised_at": time_plain(self.raised_at),
            "expires": time_plain(self.expires),
            "lookback": self.lookback,
            "reason": self.reason,
            "rule": self.rule,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Concern:
        return cls(
            id=str(data["id"]),
            source=parse_address(str(data["source"])),
            raised_by=opt_str(data.get("raised_by")),
            raised_at=time_from(data["raised_at"]),
            expires=time_from(data["expires"]),
            lookback=float(data["lookback"]),
            reason=str(data.get("reason", "")),
            rule=opt_str(data.get("rule")),
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What an operator (or the alliance's membership) changed, and what came of it.

    ``action`` is ``ban``, ``unban``, ``allowlist.add``, ``allowlist.remove``,
    ``member.enroll`` or ``member.revoke``; ``outcome`` is ``done`` or ``refused:<clause>``;
    ``decisions`` are the ids decided or revoked because of it.
    """

    at: datetime
    actor: str
    action: str
    outcome: str
    scope: Scope | None = None
    subject: str | None = None
    """The member concerned (``member.*`` actions)."""
    reason: str = ""
    decisions: tuple[str, ...] = ()
    forced: bool = False
    detail: str = ""

    def to_plain(self) -> dict[str, Any]:
        return {
            "at": time_plain(self.at),
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "scope": None if self.scope is None else scope_str(self.scope),
            "subject": self.subject,
            "reason": self.reason,
            "decisions": list(self.decisions),
            "forced": self.forced,
            "detail": self.detail,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> AuditRecord:
        scope = data.get("scope")
        return cls(
            at=time_from(data["at"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            outcome=str(data["outcome"]),
            scope=None if scope is None else scope_from(scope),
            subject=opt_str(data.get("subject")),
            reason=str(data.get("reason", "")),
            decisions=tuple(str(d) for d in data.get("decisions", ())),
            forced=bool(data.get("forced", False)),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True, slots=True)
class Revoke:
    """Retract ``decision``; ``evidence`` says why (``revocation``, ``sanction.range``…)."""

    decision: Decision
    evidence: Evidence = NO_EVIDENCE


@dataclass(frozen=True, slots=True)
class Amend:
    """``decision`` stays; its evidence chain is now ``evidence``."""

    decision: Decision
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Hold:
    """A low-trust member's request waits for ``need`` distinct members (``have`` so far)."""

    scope: Scope
    member: str
    need: int
    have: tuple[str, ...]
    evidence: Evidence = NO_EVIDENCE


@dataclass(frozen=True, slots=True)
class Flag:
    """A member misbehaved (``clause``: ``blast-radius``, ``article4.limit``)."""

    member: str
    clause: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Consult:
    """Article 4: ask every member about ``concern.source``."""

    concern: Concern


@dataclass(frozen=True, slots=True)
class Close:
    """A concern is closed. ``outcome``: ``decided``, ``expired``, ``friendly-fire``,
    ``already-decided``, ``member-revoked``."""

    concern: Concern
    outcome: str
    evidence: Evidence = NO_EVIDENCE
    decision: str | None = None


@dataclass(frozen=True, slots=True)
class Audit:
    record: AuditRecord


Effect: TypeAlias = Decide | Refuse | Revoke | Amend | Hold | Flag | Consult | Close | Audit
