"""The Store port: the council's durable state.

Contract:

* ``append`` assigns strictly increasing sequence numbers, writes the events and the current
  state of their decisions in one transaction, and returns the stored events. Sequence numbers
  are never reused, even after a crash.
* ``since(seq)`` returns the events with a larger sequence number, in order — the exact
  resume point of a member's stream.
* ``active(now)`` returns the current sequence number and every decision that is neither
  revoked, expired by an event, nor past its expiry — always equal to replaying the log.
* ``remember_nonce`` is atomic: of two concurrent calls with one nonce, exactly one wins.
* ``append`` also stores the treaty's evidence chains given for its changes (``evidence[i]``
  for ``changes[i]``, or None), in the same transaction: for an ``add`` the chain the
  decision rests on, for a ``revoke`` why it was revoked. ``set_evidence`` replaces a
  decision's chain (a member joined or left it).
  Evidence, audit records and flags are JSON-ready plain values (``to_plain()``); the store
  never interprets them.
* ``save_treaty_state`` keeps one blob, the treaty's state (``TreatyState.to_plain()``); it
  is written periodically, not per report, so a crash loses what changed since the last
  save (see ``docs/treaty.md``).
* Implementations wrap backend failures in :class:`~shieldwall.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shieldwall.model import Decision, DecisionEvent, EventKind, Refusal, Scope


@dataclass(frozen=True, slots=True)
class MemberRecord:
    name: str
    public_key: str
    addresses: tuple[Scope, ...]
    trust: str
    created: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """A member flagged by the treaty (clause ``blast-radius``, ``article4.limit``…)."""

    member: str
    clause: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """The stored evidence of one decision: the chain it rests on, and why it was revoked."""

    decision_id: str
    evidence: dict[str, Any] | None
    revoked: dict[str, Any] | None = None


Plain = Mapping[str, Any]
"""A JSON-ready value (``Evidence.to_plain()``, ``AuditRecord.to_plain()``…)."""


class Store(Protocol):
    async def add_member(self, member: MemberRecord) -> None: ...

    async def get_member(self, name: str) -> MemberRecord | None: ...

    async def list_members(self) -> list[MemberRecord]: ...

    async def revoke_member(self, name: str, at: datetime) -> bool: ...

    async def remember_nonce(self, member: str, nonce: str, at: datetime) -> bool: ...

    async def forget_nonces(self, before: datetime) -> None: ...

    async def append(
        self,
        changes: Sequence[tuple[EventKind, Decision]],
        at: datetime,
        evidence: Sequence[Plain | None] = (),
    ) -> list[DecisionEvent]: ...

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]: ...

    async def last_seq(self) -> int: ...

    async def active(self, now: datetime) -> tuple[int, list[Decision]]: ...

    async def active_page(self, now: datetime, after: str, limit: int) -> list[Decision]:
        """Up to ``limit`` active decisions with ids above ``after``, by id (keyset paging:
        a page costs what it holds)."""
        ...

    async def get_decision(self, decision_id: str) -> Decision | None: ...

    async def decision_state(self, decision_id: str) -> str | None:
        """``active``, ``revoked`` or ``expired`` (by an event), or None if unknown."""
        ...

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]: ...

    async def record_refusals(self, refusals: Sequence[Refusal]) -> None: ...

    async def refusals(self, limit: int = 100) -> list[Refusal]: ...

    async def set_evidence(self, items: Sequence[tuple[str, Plain]]) -> None: ...

    async def evidence(self, decision_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def get_evidence(self, decision_id: str) -> EvidenceRecord | None: ...

    async def record_flags(self, flags: Sequence[FlagRecord]) -> None: ...

    async def flags(self, limit: int = 100) -> list[FlagRecord]: ...

    async def record_audit(self, records: Sequence[Plain]) -> None: ...

    async def audit(self, limit: int = 100) -> list[dict[str, Any]]: ...

    async def save_treaty_state(self, state: Plain, at: datetime) -> None: ...

    async def load_treaty_state(self) -> dict[str, Any] | None: ...

    async def bump(self, counter: str, n: int = 1) -> None: ...

    async def counters(self) -> dict[str, int]: ...

    async def close(self) -> None: ...
