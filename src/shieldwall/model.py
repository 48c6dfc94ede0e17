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
from typing import TypeAlias

from shieldwall.errors import InvalidScope

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Scope: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
"""What a decision targets: a network. A single address is a /32 (IPv4) or /128 (IPv6)."""


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
    if "/" not in text:
        return address_scope(parse_address(text))
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidScope(f"not an IP address or CIDR network: {text!r} ({exc})") from exc
    return net


def address_scope(addr: Address) -> Scope:
    return ipaddress.ip_network(addr)


def scope_str(scope: Scope) -> str:
    """``1.2.3.4`` for a single address, ``1.2.3.0/24`` for a wider network."""
    if scope.num_addresses == 1:
        return str(scope.network_address)
    return str(scope)


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


@dataclass(frozen=True, slots=True)
class Decision:
    """A remedy against a scope until ``expires``."""

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


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One entry of the append-only decision log."""

    seq: int
    kind: EventKind
    decision: Decision
    at: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decision the treaty refused, and why."""

    scope: Scope
    reason: str
    member: str | None
    at: datetime
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Add:
    """Enforcer change: block ``scope`` until ``expires``."""

    scope: Scope
    expires: datetime


@dataclass(frozen=True, slots=True)
class Remove:
    """Enforcer change: stop blocking ``scope``."""

    scope: Scope


Change: TypeAlias = Add | Remove


@dataclass(slots=True)
class Counters:
    """Named counters for skipped or refused input (guarantee 6: skipped and counted)."""

    values: dict[str, int] = field(default_factory=dict)

    def inc(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def get(self, name: str) -> int:
        return self.values.get(name, 0)
