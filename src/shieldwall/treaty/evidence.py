"""Evidence chains: why the treaty decided, refused or revoked something. Pure values.

Every effect of the treaty carries an :class:`Evidence`: the treaty clauses that applied (ids
below, listed in ``docs/treaty.md``), the members whose evidence it rests on, and the exhibits
(alerts, sightings, testimony, superseded decisions) that were weighed. Revoking a member
retracts exactly the decisions whose ``members`` are that member alone.

The ``*_plain`` helpers turn these values into JSON-ready plain values (str, int, float,
bool, None, lists, dicts) and back, for the council's store. Times are UTC epoch seconds,
like the store's other columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shieldwall.model import Action, Decision, Origin, Scope, parse_scope, scope_str

# -- clause ids ------------------------------------------------------------------------------

ARTICLE5 = "article5.alert"
"""A member's local alert (its own bucket overflowed) becomes an alliance-wide decision."""
ALLIANCE = "alliance.threshold"
"""Alliance-wide sightings crossed the threshold (distinct members and attempts in a window)."""
FRIENDLY_FIRE = "friendly-fire"
"""The source also logged in successfully at members: alliance-wide sums do not decide it."""
QUORUM = "quorum"
"""A low-trust member's request needed, and got (or did not get), k distinct members."""
BLAST_RADIUS = "blast-radius"
"""A member reached its cap of decisions per window: the excess is refused and it is flagged."""
REVOCATION = "revocation"
"""A member was revoked: what rested only on its evidence is retracted."""
SANCTION_REPEAT = "sanction.repeat"
"""A repeat offender: the ban lasts longer (``bantime * factor ** n``, capped)."""
SANCTION_RANGE = "sanction.range"
"""Enough attackers from one range, decided by enough members: the range replaces them."""
ARTICLE4 = "article4.corroborated"
"""A concern was corroborated by k distinct members with failures and no successes."""
ARTICLE4_EXPIRED = "article4.expired"
"""A concern was not corroborated before its timeout."""
ARTICLE4_LIMIT = "article4.limit"
"""Too many open concerns (in all, or raised by one member)."""
OPERATOR = "operator"
"""An operator's decision (``shieldwall ban``) or revocation (``unban``)."""
OPERATOR_FORCE = "operator.force"
"""An operator forced a decision over a protected target."""
HISTORY = "history"
"""An alert whose last failure is older than the alliance's window: not news."""
MEMBER_UNKNOWN = "member-unknown"
MEMBER_REVOKED = "member-revoked"
INVALID_DURATION = "invalid-duration"
PROTECTED_PREFIX = "protected:"
"""``protected:loopback``, ``protected:private``, ``protected:allowlist``,
``protected:member:NAME``… — the target overlaps a protected network."""

MAX_EXHIBITS = 64
"""Exhibits kept per evidence chain (the member list is always complete)."""


# -- plain-value helpers ---------------------------------------------------------------------


def time_plain(t: datetime) -> float:
    return t.timestamp()


def time_from(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def decision_plain(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "scope": scope_str(d.scope),
        "action": d.action.value,
        "origin": d.origin.value,
        "reason": d.reason,
        "created": time_plain(d.created),
        "expires": time_plain(d.expires),
        "member": d.member,
        "rule": d.rule,
    }


def decision_from(data: Mapping[str, Any]) -> Decision:
    return Decision(
        id=str(data["id"]),
        scope=parse_scope(str(data["scope"])),
        action=Action(str(data["action"])),
        origin=Origin(str(data["origin"])),
        reason=str(data["reason"]),
        created=time_from(data["created"]),
        expires=time_from(data["expires"]),
        member=opt_str(data.get("member")),
        rule=opt_str(data.get("rule")),
    )


def scope_from(value: Any) -> Scope:
    return parse_scope(str(value))


# -- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exhibit:
    """One piece of evidence: who saw what, when.

    ``kind`` is ``alert`` (a local bucket overflow), ``sightings`` (alliance-wide counts),
    ``testimony`` (an answer to a consultation), ``concern`` (a suspicion raised),
    ``decision`` (a decision superseded or extended), ``operator`` or ``import`` (a bulk ban;
    ``ref`` is what was imported).
    """

    member: str | None
    kind: str
    at: datetime
    rule: str | None = None
    failures: int = 0
    successes: int = 0
    ref: str | None = None
    """A report id, a concern id, or a decision id."""

    def to_plain(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "kind": self.kind,
            "at": time_plain(self.at),
            "rule": self.rule,
            "failures": self.failures,
            "successes": self.successes,
            "ref": self.ref,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Exhibit:
        return cls(
            member=opt_str(data.get("member")),
            kind=str(data["kind"]),
            at=time_from(data["at"]),
            rule=opt_str(data.get("rule")),
            failures=int(data.get("failures", 0)),
            successes=int(data.get("successes", 0)),
            ref=opt_str(data.get("ref")),
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """The evidence chain of one treaty effect.

    ``clauses`` is never empty for a treaty decision; ``members`` is sorted and distinct, and
    lists every member the effect rests on (empty only for operators' decisions).
    """

    clauses: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    exhibits: tuple[Exhibit, ...] = ()
    summary: str = ""

    @classmethod
    def of(
        cls,
        clauses: Iterable[str],
        members: Iterable[str] = (),
        exhibits: Iterable[Exhibit] = (),
        summary: str = "",
    ) -> Evidence:
        """Build one with distinct clauses (in order), sorted members, capped exhibits."""
        return cls(
            tuple(dict.fromkeys(clauses)),
            tuple(sorted(set(members))),
            tuple(exhibits)[:MAX_EXHIBITS],
            summary,
        )

    def with_exhibit(self, exhibit: Exhibit) -> Evidence:
        """This chain plus one exhibit (its member joins ``members``)."""
        members = self.members
        if exhibit.member is not None and exhibit.member not in members:
            members = tuple(sorted((*members, exhibit.member)))
        exhibits = self.exhibits
        if len(exhibits) < MAX_EXHIBITS:
            exhibits = (*exhibits, exhibit)
        return Evidence(self.clauses, members, exhibits, self.summary)

    def without_member(self, name: str) -> Evidence:
        """This chain once ``name`` was revoked: its member and exhibits are dropped."""
        return Evidence(
            self.clauses,
            tuple(m for m in self.members if m != name),
            tuple(e for e in self.exhibits if e.member != name),
            self.summary,
        )

    def merged(self, other: Evidence) -> Evidence:
        return Evidence.of(
            (*self.clauses, *other.clauses),
            (*self.members, *other.members),
            (*self.exhibits, *other.exhibits),
            self.summary or other.summary,
        )

    def to_plain(self) -> dict[str, Any]:
        return {
            "clauses": list(self.clauses),
            "members": list(self.members),
            "exhibits": [e.to_plain() for e in self.exhibits],
            "summary": self.summary,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            tuple(str(c) for c in data.get("clauses", ())),
            tuple(str(m) for m in data.get("members", ())),
            tuple(Exhibit.from_plain(e) for e in data.get("exhibits", ())),
            str(data.get("summary", "")),
        )


NO_EVIDENCE = Evidence()
