"""Treaty v1: an alert from an enrolled member becomes an alliance-wide ban, unless protected.

``judge_alert`` and ``judge_manual`` take plain values (the alert, the reporter, the protected
set, the active decisions, ``now``) and return a :class:`Verdict`; they never do I/O.
The whole treaty (alliance-wide detection, quorum, blast radius, sanctions, consultation,
revocation) is :class:`shieldwall.treaty.engine.Treaty`; its ``Decide`` and ``Refuse``
effects are the verdicts below, with their evidence chain filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, TypeAlias

from shieldwall.model import (
    Action,
    Alert,
    Decision,
    Origin,
    Refusal,
    Scope,
    address_scope,
)
from shieldwall.treaty.evidence import (
    ARTICLE5,
    INVALID_DURATION,
    MEMBER_REVOKED,
    NO_EVIDENCE,
    OPERATOR,
    OPERATOR_FORCE,
    Evidence,
    Exhibit,
)
from shieldwall.treaty.protect import Protected

MAX_DURATION = 366 * 86400.0


@dataclass(frozen=True, slots=True)
class TreatyConfig:
    ban_duration: float = 4 * 3600.0
    """Seconds a decision lasts unless the rule or the operator says otherwise."""
    honour_rule_bantime: bool = True
    """Use the reporting rule's own ``bantime`` when it sets one (capped by ``max_duration``)."""
    max_duration: float = 7 * 86400.0
    protect_private: bool = True
    allowlist: tuple[Scope, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberInfo:
    name: str
    trust: str
    revoked: bool = False
    addresses: tuple[Scope, ...] = ()
    """The member's own addresses: protected, never decided against."""


class Decide(NamedTuple):
    """Append ``decision`` to the decision log. ``extends``: it replaces the active decision
    of the same id (a later expiry). ``keep``: store ``evidence`` with it (a bulk import's
    decisions share one chain, and only the ledger holds it). A named tuple: an import makes
    one per decision."""

    decision: Decision
    evidence: Evidence = NO_EVIDENCE
    extends: bool = False
    keep: bool = True


@dataclass(frozen=True, slots=True)
class Refuse:
    """Record ``refusal`` (``refusal.reason`` is the clause id that refused)."""

    refusal: Refusal
    evidence: Evidence = NO_EVIDENCE


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An active decision already covers the target for at least as long."""

    existing: Decision


Verdict: TypeAlias = Decide | Refuse | Duplicate


def judge_alert(
    alert: Alert,
    member: MemberInfo,
    protected: Protected,
    active: Mapping[Scope, Decision],
    config: TreatyConfig,
    now: datetime,
    new_id: str,
) -> Verdict:
    scope = address_scope(alert.source)
    exhibit = Exhibit(member.name, "alert", now, alert.rule, alert.count)
    if member.revoked:
        return Refuse(
            Refusal(scope, MEMBER_REVOKED, member.name, now, alert.rule),
            Evidence.of((MEMBER_REVOKED,), (member.name,), (exhibit,)),
        )
    reason = protected.reason_for(scope)
    if reason is not None:
        return Refuse(
            Refusal(scope, reason, member.name, now, alert.rule),
            Evidence.of((reason, ARTICLE5), (member.name,), (exhibit,)),
        )
    duration = config.ban_duration
    if config.honour_rule_bantime and alert.bantime is not None:
        duration = alert.bantime
    duration = min(duration, config.max_duration)
    expires = now + timedelta(seconds=duration)
    covering = _covering(scope, active, now)
    if covering is not None and covering.expires >= expires:
        return Duplicate(covering)
    decision = Decision(
        id=new_id,
        scope=scope,
        action=Action.BAN,
        origin=Origin.ALERT,
        reason=f"{alert.rule}: {alert.count} failures at {member.name}",
        created=now,
        expires=expires,
        member=member.name,
        rule=alert.rule,
    )
    return Decide(decision, Evidence.of((ARTICLE5,), (member.name,), (exhibit,), decision.reason))


def judge_manual(
    scope: Scope,
    duration: float,
    reason: str,
    protected: Protected,
    now: datetime,
    new_id: str,
    *,
    force: bool = False,
) -> Verdict:
    """An operator's ``shieldwall ban``: protected targets are refused unless ``force``."""
    why = protected.reason_for(scope)
    if why is not None and not force:
        return Refuse(Refusal(scope, why, None, now), Evidence.of((why, OPERATOR)))
    if not (0 < duration <= MAX_DURATION):
        return Refuse(
            Refusal(scope, INVALID_DURATION, None, now), Evidence.of((INVALID_DURATION, OPERATOR))
        )
    clauses = (OPERATOR,) if why is None else (OPERATOR, OPERATOR_FORCE, why)
    exhibit = Exhibit(None, "operator", now)
    return Decide(
        Decision(
            id=new_id,
            scope=scope,
            action=Action.BAN,
            origin=Origin.OPERATOR,
            reason=reason or "operator ban",
            created=now,
            expires=now + timedelta(seconds=duration),
        ),
        Evidence.of(clauses, (), (exhibit,), reason or "operator ban"),
    )


def _covering(scope: Scope, active: Mapping[Scope, Decision], now: datetime) -> Decision | None:
    """The longest-lasting active decision whose scope contains ``scope`` (one lookup per
    prefix length, so the cost does not grow with the number of active decisions)."""
    best: Decision | None = None
    for prefix in range(scope.prefixlen, -1, -1):
        d = active.get(scope.supernet(new_prefix=prefix))
        if d is not None and d.active_at(now) and (best is None or d.expires > best.expires):
            best = d
    return best
