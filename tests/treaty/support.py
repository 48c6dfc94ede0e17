"""Shared helpers for the treaty tests: a council stand-in that applies effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from shieldwall.model import Address, Alert, Decision, parse_address, parse_scope
from shieldwall.treaty import (
    Alerted,
    Amend,
    Decide,
    Effect,
    Event,
    Evidence,
    MemberInfo,
    Revoke,
    Sighted,
    Sighting,
    SightingKind,
    Treaty,
    TreatyTerms,
)

_E = TypeVar("_E")
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def member(name: str, trust: str = "member", *addresses: str) -> MemberInfo:
    return MemberInfo(name, trust, addresses=tuple(parse_scope(a) for a in addresses))


def members(n: int, trust: str = "member", prefix: str = "m") -> list[MemberInfo]:
    """``n`` members, each owning one address in 192.0.2.0/24 (protected as theirs)."""
    return [member(f"{prefix}{i}", trust, f"192.0.2.{i % 250 + 1}") for i in range(n)]


def alert(source: str | Address, rule: str = "sshd", count: int = 5, at: datetime = NOW) -> Alert:
    addr = parse_address(source) if isinstance(source, str) else source
    return Alert(rule, addr, at, at, count)


def fails(
    name: str, source: str, count: int, at: datetime, rule: str = "ssh-bf", kind: str = "failure"
) -> Sighted:
    s = Sighting(parse_address(source), rule, SightingKind(kind), count, at, at)
    return Sighted(name, (s,))


def logins(name: str, source: str, count: int, at: datetime) -> Sighted:
    return fails(name, source, count, at, rule="ssh-login", kind="success")


@dataclass
class Council:
    """Applies effects the way the council will: the active set and each decision's
    evidence, as seen from outside the treaty."""

    treaty: Treaty
    active: dict[str, Decision] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    log: list[Effect] = field(default_factory=list)

    @classmethod
    def of(cls, roster: list[MemberInfo], terms: TreatyTerms | None = None) -> Council:
        return cls(Treaty(terms, roster))

    def send(self, event: Event, now: datetime = NOW) -> list[Effect]:
        effects = self.treaty.handle(event, now)
        for e in effects:
            if isinstance(e, Decide):
                self.active[e.decision.id] = e.decision
                self.evidence[e.decision.id] = e.evidence
            elif isinstance(e, Revoke):
                assert e.decision.id in self.active, "revoked a decision that is not active"
                del self.active[e.decision.id]
            elif isinstance(e, Amend):
                self.evidence[e.decision.id] = e.evidence
        self.log += effects
        return effects

    def alert(
        self, name: str, source: str, now: datetime = NOW, rule: str = "sshd", count: int = 5
    ) -> list[Effect]:
        return self.send(Alerted(name, alert(source, rule, count, now)), now)

    def live(self, now: datetime) -> list[Decision]:
        return [d for d in self.active.values() if d.active_at(now)]

    def scopes(self, now: datetime = NOW) -> set[str]:
        return {str(d.scope) for d in self.live(now)}


def of_type(effects: list[Effect], kind: type[_E]) -> list[_E]:
    return [e for e in effects if isinstance(e, kind)]


def decided(effects: list[Effect]) -> list[Decide]:
    return [e for e in effects if isinstance(e, Decide)]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
