"""The council's durable state, behind small ports by aggregate.

A :class:`Store` is composed of six ports — the decision log (with each decision's evidence),
members, nonces, records (refusals, flags, audit), the treaty's state, counters — so that one
:meth:`Store.transaction` can span them: a batch of reports (group commit) or a chunk of an
import is one transaction, whatever it touches. Every implementation passes one contract
suite (``tests/contract/test_store.py``): ``memory://`` (the fake for unit tests) and
``sqlite://`` (the embedded default).

Contract:

* ``log.append`` assigns strictly increasing, gap-free sequence numbers, writes the events and
  the current state of their decisions atomically, and returns the stored events; sequence
  numbers are never reused, even after a crash. An ``add`` for a decision id that is active
  *replaces* it (an extension: new expiry and reason); ``revoke``/``expire`` end it.
  ``evidence[i]`` goes with ``changes[i]`` (for an ``add`` the chain the decision rests on,
  for a ``revoke`` why it was revoked; None: nothing to keep). A batch costs one round trip.
* ``log.since(seq)`` returns the events with a larger sequence number, in order — the exact
  resume point of a member's stream. ``log.active(now)`` returns the sequence number and every
  decision neither ended by an event nor past its expiry — always what replaying the log
  gives. ``log.active_page`` pages the same set (a cursor per page).
* ``nonces.remember`` is atomic: of two calls with one (member, nonce), exactly one wins.
* Evidence, audit records and flags are JSON-ready plain values (``to_plain()``); the store
  never interprets them. ``treaty.save`` keeps one blob (``TreatyState.to_plain()``).
* ``transaction()``: every write inside commits together or not at all. Nested uses join the
  outer one. Writes outside a transaction commit one call at a time.
* Implementations wrap backend failures in :class:`~shieldwall.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
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

Change = tuple[EventKind, Decision]


class DecisionLog(Protocol):
    """The append-only decision log, the decisions' current state and their evidence."""

    async def append(
        self,
        changes: Sequence[Change],
        at: datetime,
        evidence: Sequence[Plain | None] = (),
    ) -> list[DecisionEvent]: ...

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]: ...

    async def last_seq(self) -> int: ...

    async def active(self, now: datetime) -> tuple[int, list[Decision]]: ...

    async def active_page(
        self, now: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Decision], str | None]:
        """Up to ``limit`` active decisions from ``cursor`` (None: the first page), and the
        cursor of the next page (None: this was the last). Keyset paging in the store's own
        order: a page costs what it holds. Decisions added while paging may be missed and
        ones extended may come twice (a stream sends the events after its snapshot's seq)."""
        ...

    async def get(self, decision_id: str) -> Decision | None: ...

    async def state(self, decision_id: str) -> str | None:
        """``active``, ``revoked`` or ``expired`` (by an event), or None if unknown."""
        ...

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]: ...

    async def set_evidence(self, items: Sequence[tuple[str, Plain]]) -> None:
        """Replace decisions' chains (a member joined or left one)."""
        ...

    async def evidence(self, decision_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def get_evidence(self, decision_id: str) -> EvidenceRecord | None: ...


class Members(Protocol):
    async def add(self, member: MemberRecord) -> None:
        """Enroll; StoreError if the name or the key is taken."""
        ...

    async def get(self, name: str) -> MemberRecord | None: ...

    async def list(self) -> list[MemberRecord]: ...

    async def revoke(self, name: str, at: datetime) -> bool:
        """True if an unrevoked member of that name was revoked."""
        ...

    async def replace(self, member: MemberRecord) -> None:
        """Replace the record of an enrolled name (a new key for it, or a revoked name
        enrolled again); StoreError if no member has that name, or the key is another's."""
        ...


class Nonces(Protocol):
    async def remember(self, member: str, nonce: str, at: datetime) -> bool:
        """True the first time (member, nonce) is seen, False for a replay."""
        ...

    async def seen(self, member: str, nonce: str) -> bool:
        """Whether (member, nonce) was remembered (a read: nothing is written)."""
        ...

    async def forget(self, before: datetime) -> None: ...


class Records(Protocol):
    """What the treaty refused and flagged, and the audit trail (newest first when read)."""

    async def add_refusals(self, refusals: Sequence[Refusal]) -> None: ...

    async def refusals(self, limit: int = 100) -> list[Refusal]: ...

    async def add_flags(self, flags: Sequence[FlagRecord]) -> None: ...

    async def flags(self, limit: int = 100) -> list[FlagRecord]: ...

    async def add_audit(self, records: Sequence[Plain]) -> None: ...

    async def audit(self, limit: int = 100) -> list[dict[str, Any]]: ...


class TreatyStates(Protocol):
    async def save(self, state: Plain, at: datetime) -> None: ...

    async def load(self) -> dict[str, Any] | None: ...


class Counters(Protocol):
    async def bump(self, counters: Mapping[str, int]) -> None:
        """Add to named counters (one round trip for the whole mapping)."""
        ...

    async def all(self) -> dict[str, int]: ...


class Store(Protocol):
    @property
    def log(self) -> DecisionLog: ...

    @property
    def members(self) -> Members: ...

    @property
    def nonces(self) -> Nonces: ...

    @property
    def records(self) -> Records: ...

    @property
    def treaty(self) -> TreatyStates: ...

    @property
    def counters(self) -> Counters: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...
