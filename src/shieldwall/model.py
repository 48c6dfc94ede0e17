"""Domain values shared by the core and the adapters. Frozen, typed, no I/O.

Vocabulary follows ``DESIGN.md``: a *hit* is one hostile line recognised by a rule at one
member (what becomes a *sighting* once attributed to a member), an *alert* is a source
overflowing a rule's bucket, a *decision* is a remedy against a *scope* with an expiry, and a
*decision event* is one entry of the append-only decision log.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, TypeAlias

from shieldwall.errors import InvalidScope
from shieldwall.net import Net, host, parse_net

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Scope: TypeAlias = Net
"""What a decision targets: a network (:class:`~shieldwall.net.Net`, one int). A single
address is a /32 (IPv4) or /128 (IPv6)."""


def parse_address(text: str) -> Address:
    """Parse one IP address; IPv4-mapped IPv6 (``::ffff:1.2.3.4``) becomes IPv4."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise InvalidScope(f"not an IP address: {text!r}") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_scope(text: str) -> Scope:
    """Parse ``1.2.3.4``, ``1.2.3.0/24``, ``2001:db8::/32``. Host bits must be zero."""
    text = text.strip()
    try:
        return parse_net(text)
    except ValueError as exc:
        if "/" not in text:
            raise InvalidScope(f"not an IP address: {text!r}") from exc
        raise InvalidScope(f"not an IP address or CIDR network: {text!r} ({exc})") from exc


def address_scope(addr: Address) -> Scope:
    return host(addr)


def scope_str(scope: Scope) -> str:
    """``1.2.3.4`` for a single address, ``1.2.3.0/24`` for a wider network."""
    return scope.text()


class Action(StrEnum):
    BAN = "ban"


class Origin(StrEnum):
    ALERT = "alert"  # a member's alert, decided by the treaty
    OPERATOR = "operator"  # `shieldwall ban`
    LOCAL = "local"  # an agent's own ban, before the council answers


class EventKind(StrEnum):
    ADD = "add"
    REVOKE = "revoke"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class Hit:
    """One hostile log line recognised by a rule."""

    rule: str
    source: Address
    at: datetime
    pattern: int
    line: str


@dataclass(frozen=True, slots=True)
class Alert:
    """A source overflowed a rule's bucket at one member."""

    rule: str
    source: Address
    first: datetime
    last: datetime
    count: int
    evidence: tuple[str, ...] = ()
    bantime: float | None = None  # the rule's own ban duration in seconds, if it sets one


class Decision(NamedTuple):
    """A remedy against a scope until ``expires``.

    A named tuple, not a frozen dataclass: as immutable and hashable, and built six times
    faster (0.4 µs against 2.4 here) — a bulk import makes a million of them."""

    id: str
    scope: Scope
    action: Action
    origin: Origin
    reason: str
    created: datetime
    expires: datetime
    member: str | None = None  # the member whose alert caused it, if any
    rule: str | None = None

    def active_at(self, now: datetime) -> bool:
        return self.expires > now


class DecisionEvent(NamedTuple):
    """One entry of the append-only decision log (a named tuple, like :class:`Decision`)."""

    seq: int
    kind: EventKind
    decision: Decision
    at: datetime


class LogEvent(NamedTuple):
    """A decision-log event as a member holds it: what it needs to enforce, nothing more
    (the stream's compact form; :class:`DecisionEvent` is the council's full one)."""

    seq: int
    kind: EventKind
    decision_id: str
    scope: Scope
    expires: float
    """Epoch seconds."""


class SightingKind(StrEnum):
    FAILURE = "failure"
    """A hostile event (a failed login, a probe): what a rule recognises."""
    SUCCESS = "success"
    """A successful authentication: evidence of legitimacy (clause ``friendly-fire``)."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """A member's aggregate for one (source, rule, kind): ``count`` events in [first, last],
    reported even below the rule's local threshold."""

    source: Address
    rule: str
    kind: SightingKind
    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decision the treaty refused, and why."""

    scope: Scope
    reason: str
    member: str | None
    at: datetime
    rule: str | None = None


@dataclass(slots=True)
class Counters:
    """Named counters for skipped or refused input (guarantee 6: skipped and counted)."""

    values: dict[str, int] = field(default_factory=dict)

    def inc(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def get(self, name: str) -> int:
        return self.values.get(name, 0)
