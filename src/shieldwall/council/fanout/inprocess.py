"""In-process fan-out (``inprocess://``): the embedded default. One bounded queue per
subscriber, in the council's event loop; publishing is a few list appends per subscriber.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from shieldwall.council.fanout.base import Batch, Item, Notice

MAX_QUEUED = 200_000
"""Events a subscriber may have waiting before it is cut (it resumes from the store)."""


class _Subscription:
    __slots__ = ("_items", "_ready", "cut", "maxsize", "member", "queued")

    def __init__(self, member: str | None, maxsize: int) -> None:
        self.member = member
        self.maxsize = maxsize
        self.queued = 0
        """Events waiting (a notice counts as one)."""
        self.cut = False
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()

    def offer(self, item: Item) -> None:
        if self.cut:
            return
        size = len(item) if isinstance(item, Batch) else 1
        if self.queued + size > self.maxsize:
            self.cut = True  # what was queued is still read; then next() says None
        else:
            self._items.append(item)
            self.queued += size
        self._ready.set()

    def end(self) -> None:
        """Cut it now (the council stops): next() says None once the queue is read."""
        self.cut = True
        self._ready.set()

    def drop(self) -> None:
        """Cut it now and forget what was queued: next() says None at once."""
        self._items.clear()
        self.queued = 0
        self.end()

    async def next(self) -> list[Item] | None:
        while not self._items:
            if self.cut:
                return None
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        self.queued = 0
        return items


class InProcessFanout:
    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self._subs: dict[_Subscription, None] = {}
        self.max_queued = max_queued

    @classmethod
    def from_url(cls, url: str) -> InProcessFanout:
        """``inprocess://`` (anything after the scheme is ignored)."""
        return cls()

    async def publish(self, batch: Batch, first: Sequence[str] = ()) -> None:
        for sub in self._ordered(first):
            sub.offer(batch)

    async def notify(self, notice: Notice) -> None:
        for sub in list(self._subs):
            sub.offer(notice)

    def _ordered(self, first: Sequence[str]) -> list[_Subscription]:
        subs = list(self._subs)
        if not first:
            return subs
        rank = {name: i for i, name in enumerate(first)}
        last = len(rank)
        return sorted(subs, key=lambda s: rank.get(s.member, last) if s.member else last)

    @asynccontextmanager
    async def subscribe(self, member: str | None = None) -> AsyncIterator[_Subscription]:
        sub = _Subscription(member, self.max_queued)
        self._subs[sub] = None
        try:
            yield sub
        finally:
            self._subs.pop(sub, None)

    def members(self) -> set[str]:
        return {s.member for s in self._subs if s.member is not None}

    async def drop(self, member: str) -> int:
        subs = [s for s in self._subs if s.member == member]
        for sub in subs:
            sub.drop()
        return len(subs)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def close(self) -> None:
        for sub in list(self._subs):
            sub.end()
