"""What this member saw recently, per source: the agent's answer to a consultation. Pure.

A consultation (Article 4) asks every member whether it has seen a source within the last
``lookback`` seconds (a retro-hunt). The agent keeps, per source, its failures and successes
and when it last saw each — in memory, bounded: at most ``max_sources`` sources, the least
recently seen evicted first. Counts are kept from the first sighting after a quiet period
longer than ``window`` (so an answer never adds up more than about ``window`` of history);
a source not seen within ``lookback`` is answered with nothing. The index is rebuilt from
new log lines after a restart.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from shieldwall.model import Address, Scope, address_scope


@dataclass(slots=True)
class Seen:
    failures: int = 0
    successes: int = 0
    first: datetime | None = None
    last: datetime | None = None


class RecentIndex:
    def __init__(self, max_sources: int = 100_000, window: float = 3600.0) -> None:
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.max_sources = max_sources
        self.window = timedelta(seconds=window)
        self._seen: OrderedDict[Scope, Seen] = OrderedDict()
        """Keyed by the address's scope (an int: hashed in C)."""
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def add(
        self, source: Address | Scope, at: datetime, failures: int = 0, successes: int = 0
    ) -> None:
        if not isinstance(source, int):
            source = address_scope(source)
        seen = self._seen.get(source)
        if seen is None:
            while len(self._seen) >= self.max_sources:
                self._seen.popitem(last=False)
                self.evicted += 1
            seen = self._seen[source] = Seen()
        else:
            self._seen.move_to_end(source)
            if seen.last is not None and at - seen.last > self.window:
                seen.failures = seen.successes = 0  # a new episode
                seen.first = None
        seen.failures += failures
        seen.successes += successes
        seen.first = at if seen.first is None or at < seen.first else seen.first
        seen.last = at if seen.last is None or at > seen.last else seen.last

    def answer(self, source: Address | Scope, lookback: float, now: datetime) -> tuple[int, int]:
        """``(failures, successes)`` seen from ``source``, if seen within ``lookback``."""
        seen = self._seen.get(source if isinstance(source, int) else address_scope(source))
        if seen is None or seen.last is None or seen.last < now - timedelta(seconds=lookback):
            return 0, 0
        return seen.failures, seen.successes
