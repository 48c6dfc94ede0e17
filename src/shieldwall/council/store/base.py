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
* Implementations wrap backend failures in :class:`~shieldwall.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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


class Store(Protocol):
    async def add_member(self, member: MemberRecord) -> None: ...

    async def get_member(self, name: str) -> MemberRecord | None: ...

    async def list_members(self) -> list[MemberRecord]: ...

    async def revoke_member(self, name: str, at: datetime) -> bool: ...

    async def remember_nonce(self, member: str, nonce: str, at: datetime) -> bool: ...

    async def forget_nonces(self, before: datetime) -> None: ...

    async def append(
        self, changes: Sequence[tuple[EventKind, Decision]], at: datetime
    ) -> list[DecisionEvent]: ...

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]: ...

    async def last_seq(self) -> int: ...

    async def active(self, now: datetime) -> tuple[int, list[Decision]]: ...

    async def get_decision(self, decision_id: str) -> Decision | None: ...

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]: ...

    async def record_refusals(self, refusals: Sequence[Refusal]) -> None: ...

    async def refusals(self, limit: int = 100) -> list[Refusal]: ...

    async def bump(self, counter: str, n: int = 1) -> None: ...

    async def counters(self) -> dict[str, int]: ...

    async def close(self) -> None: ...
