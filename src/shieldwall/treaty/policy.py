"""Treaty v1: an alert from an enrolled member becomes an alliance-wide ban, unless protected.

``judge_alert`` and ``judge_manual`` take plain values (the alert, the reporter, the protected
set, the active decisions, ``now``) and return a :class:`Verdict`; they never do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from shieldwall.model import (
    Action,
    Alert,
    Decision,
    Origin,
    Refusal,
    Scope,
    address_scope,
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


@dataclass(frozen=True, slots=True)
class Decide:
    decision: Decision


@dataclass(frozen=True, slots=True)
class Refuse:
    refusal: Refusal


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
    if member.revoked:
        return Refuse(Refusal(scope, "member-revoked", member.name, now, alert.rule))
    reason = protected.reason_for(scope)
    if reason is not None:
        return Refuse(Refusal(scope, reason, member.name, now, alert.rule))
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
    return Decide(decision)


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
    if not force:
        why = protected.reason_for(scope)
        if why is not None:
            return Refuse(Refusal(scope, why, None, now))
    if not (0 < duration <= MAX_DURATION):
        return Refuse(Refusal(scope, "invalid-duration", None, now))
    return Decide(
        Decision(
            id=new_id,
            scope=scope,
            action=Action.BAN,
            origin=Origin.OPERATOR,
            reason=reason or "operator ban",
            created=now,
            expires=now + timedelta(seconds=duration),
        )
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
