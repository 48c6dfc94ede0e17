"""What the council tells the treaty: one event at a time, with ``now``. Pure values.

Member events (``Alerted``, ``Sighted``, ``Answered``, and ``RaiseConcern`` with a member)
come from verified reports; the member is named, and the treaty checks it is enrolled and not
revoked. Operator events carry an ``actor`` for the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from shieldwall.model import Address, Alert, Scope, Sighting
from shieldwall.treaty.policy import MemberInfo


@dataclass(frozen=True, slots=True)
class Alerted:
    """A member's local alert (its bucket overflowed): Article 5."""

    member: str
    alert: Alert
    report: str | None = None


@dataclass(frozen=True, slots=True)
class Sighted:
    """A member's sightings: alliance-wide detection and friendly fire."""

    member: str
    sightings: tuple[Sighting, ...]
    report: str | None = None


@dataclass(frozen=True, slots=True)
class RaiseConcern:
    """Article 4: a member (or, with ``member=None``, an operator) is suspicious of ``source``."""

    source: Address
    member: str | None = None
    reason: str = ""
    rule: str | None = None
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Answered:
    """A member's answer to a consultation: what it saw of the source within the lookback."""

    concern: str
    member: str
    failures: int
    successes: int = 0
    rule: str | None = None
    report: str | None = None


@dataclass(frozen=True, slots=True)
class ManualBan:
    """``shieldwall ban``. ``duration=None`` is the treaty's ``ban-duration``."""

    scope: Scope
    duration: float | None = None
    reason: str = ""
    actor: str = "operator"
    force: bool = False


@dataclass(frozen=True, slots=True)
class BanItem:
    """One decision of a bulk ban: ``duration=None`` is the bulk's (or the treaty's)."""

    scope: Scope
    duration: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ManualBans:
    """A bulk ban (a chunk of ``shieldwall decisions import``): every item is judged as a
    :class:`ManualBan` would be — protected targets refused (never forced), an operator
    decision already on the scope extended rather than duplicated — in one pass, with one
    audit record for the lot."""

    items: tuple[BanItem, ...]
    duration: float | None = None
    reason: str = ""
    actor: str = "operator"
    source: str = ""
    """What was imported (a file name), for the audit."""


@dataclass(frozen=True, slots=True)
class ManualUnban:
    """``shieldwall unban``: a scope (every decision on it) or a decision id."""

    target: Scope | str
    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ManualUnbans:
    """A bulk unban (``shieldwall unban --file``): every decision on each scope, one audit."""

    targets: tuple[Scope, ...]
    actor: str = "operator"
    reason: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class AllowlistAdd:
    """Protect ``scope`` from now on; active decisions overlapping it are revoked."""

    scope: Scope
    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AllowlistRemove:
    """Stop protecting a scope added with :class:`AllowlistAdd` (configured entries stay)."""

    scope: Scope
    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Enroll:
    """A member joined (or its trust or addresses changed); its addresses become protected."""

    member: MemberInfo
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class RevokeMember:
    """A member was revoked: what rested only on its evidence is retracted."""

    name: str
    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire concerns and quorum requests, forget what left every window."""


Event: TypeAlias = (
    Alerted
    | Sighted
    | RaiseConcern
    | Answered
    | ManualBan
    | ManualBans
    | ManualUnban
    | ManualUnbans
    | AllowlistAdd
    | AllowlistRemove
    | Enroll
    | RevokeMember
    | Tick
)
