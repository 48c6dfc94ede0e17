"""In-process fan-out of decision events to live streams.

Each subscriber owns a bounded queue; a subscriber that falls ``maxsize`` events behind is
cut off (its stream ends) and resumes from its last sequence number, so a slow member can
never hold the council's memory hostage and never misses an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shieldwall.model import DecisionEvent


class Subscription:
    def __init__(self, hub: Broadcaster, maxsize: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[DecisionEvent | None] = asyncio.Queue(maxsize + 1)
        self.maxsize = maxsize
        self.overflowed = False

    def offer(self, event: DecisionEvent) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.maxsize:
            self.overflowed = True
            self.queue.put_nowait(None)  # tells the stream to end; the member resumes
            return
        self.queue.put_nowait(event)

    async def next_batch(self) -> list[DecisionEvent] | None:
        """Wait for at least one event and take every queued one (coalesced writes)."""
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


class Broadcaster:
    def __init__(self, maxsize: int = 100_000) -> None:
        self._subs: set[Subscription] = set()
        self._maxsize = maxsize

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: Sequence[DecisionEvent]) -> None:
        for sub in list(self._subs):
            for e in events:
                sub.offer(e)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
