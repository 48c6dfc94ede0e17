"""The Fanout port: decision events (and consultations) from the council to live streams.

Contract (``tests/contract/test_fanout.py`` runs it over every implementation):

* ``publish(batch, first)`` offers a :class:`Batch` — the events of one commit, in sequence
  order — to every subscriber. Publishing happens *after* the commit: the store is the
  truth, and an event a subscriber never got (a lost publish, a cut subscription) is recovered
  by resuming from the store with ``since=SEQ``.
* Every subscriber receives every batch, in publish order; a batch is one item, however many
  events it holds, and its wire form is computed once for all subscribers (:meth:`Batch.wire`).
* ``first`` names members whose subscribers are offered the batch before the others (forward
  presence); it changes who is served first, never what anyone receives.
* A :class:`Notice` is a live message outside the log (a consultation): no sequence number;
  a member not subscribed when it is published never receives it.
* Each subscriber's queue is bounded (in events): a subscriber that falls that far behind is
  *cut* — ``next()`` answers None once what was queued before the cut is read — and resumes
  from its last sequence number. A slow member can never hold the council's memory hostage.
* ``subscribe(member)`` is an async context: leaving it unsubscribes.
* ``drop(member)`` cuts that member's subscriptions at once (what was queued is not read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from shieldwall.model import DecisionEvent


class Batch:
    """Decision events committed together, in sequence order."""

    __slots__ = ("_wire", "events")

    def __init__(self, events: Sequence[DecisionEvent]) -> None:
        if not events:
            raise ValueError("a batch holds at least one event")
        self.events = tuple(events)
        self._wire: bytes | None = None

    @property
    def first_seq(self) -> int:
        return self.events[0].seq

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq

    def __len__(self) -> int:
        return len(self.events)

    def wire(self, encode: Callable[[Sequence[DecisionEvent]], bytes]) -> bytes:
        """The batch encoded by ``encode``, computed once (every subscriber sends the same
        bytes)."""
        if self._wire is None:
            self._wire = encode(self.events)
        return self._wire

    def __repr__(self) -> str:
        return f"Batch(seq {self.first_seq}..{self.last_seq})"


@dataclass(frozen=True, slots=True)
class Notice:
    """A live message outside the decision log: SSE ``event: <event>`` with ``data``."""

    event: str
    data: bytes


Item = Batch | Notice


class Subscription(Protocol):
    member: str | None
    """The member reading this stream (None: an operator)."""

    async def next(self) -> list[Item] | None:
        """Wait for at least one item and take every queued one, in order; None once the
        subscription was cut (fell behind): resume from the store."""
        ...


class Fanout(Protocol):
    async def publish(self, batch: Batch, first: Sequence[str] = ()) -> None: ...

    async def notify(self, notice: Notice) -> None: ...

    def subscribe(self, member: str | None = None) -> AbstractAsyncContextManager[Subscription]: ...

    def members(self) -> set[str]:
        """The members with a live subscription."""
        ...

    async def drop(self, member: str) -> int:
        """Cut every subscription of ``member`` now (it was revoked, or its key changed):
        ``next()`` answers None at once, even with items queued. Returns how many."""
        ...

    @property
    def subscribers(self) -> int: ...

    async def close(self) -> None: ...
