"""In-process fan-out of decision events (and consultations) to live streams.

Each subscriber owns a bounded queue; a subscriber that falls ``maxsize`` items behind is
cut off (its stream ends) and resumes from its last sequence number, so a slow member can
never hold the council's memory hostage and never misses an event.

Every subscriber receives every event; ``publish`` may be given an ``order`` (forward
presence, :func:`shieldwall.treaty.forward_order`): for each event, the subscribers of the
members it names are offered the event first, in that order, then every other subscriber.
Each subscriber still receives the events in sequence order.

A :class:`Notice` is a live message that is not part of the decision log (a consultation,
SSE ``event: consult``): it has no sequence number, and a member that is not connected when
it is published does not receive it later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shieldwall.model import DecisionEvent


@dataclass(frozen=True, slots=True)
class Notice:
    """A live message outside the decision log: SSE ``event: <event>`` with ``data``."""

    event: str
    data: bytes


Item = DecisionEvent | Notice


class Subscription:
    def __init__(self, hub: Broadcaster, maxsize: int, member: str | None = None) -> None:
        self._hub = hub
        self.member = member
        """The member reading this stream (None: an operator)."""
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize + 1)
        self.maxsize = maxsize
        self.overflowed = False

    def offer(self, item: Item) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.maxsize:
            self.overflowed = True
            self.queue.put_nowait(None)  # tells the stream to end; the member resumes
            return
        self.queue.put_nowait(item)

    async def next_batch(self) -> list[Item] | None:
        """Wait for at least one item and take every queued one (coalesced writes)."""
        first = await self.queue.get()
        if first is None:
            return None
        batch = [first]
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is None:
                return None
            batch.append(item)
        return batch

    def close(self) -> None:
        self._hub.unsubscribe(self)


Order = Callable[[DecisionEvent], Sequence[str]]
"""An event → member names, first served first (members not named come after)."""


class Broadcaster:
    def __init__(self, maxsize: int = 100_000) -> None:
        self._subs: set[Subscription] = set()
        self._maxsize = maxsize

    def subscribe(self, member: str | None = None) -> Subscription:
        sub = Subscription(self, self._maxsize, member)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: Sequence[DecisionEvent], order: Order | None = None) -> None:
        subs = list(self._subs)
        for e in events:
            for sub in subs if order is None else _ordered(subs, order(e)):
                sub.offer(e)

    def notify(self, notice: Notice) -> None:
        """Offer a live message to every subscriber."""
        for sub in list(self._subs):
            sub.offer(notice)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def members(self) -> set[str]:
        """The members with a live stream."""
        return {s.member for s in self._subs if s.member is not None}


def _ordered(subs: list[Subscription], names: Sequence[str]) -> list[Subscription]:
    rank = {name: i for i, name in enumerate(names)}
    last = len(rank)
    return sorted(subs, key=lambda s: rank.get(s.member, last) if s.member else last)
