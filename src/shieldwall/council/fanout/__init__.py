"""Fan-out of decision events to live streams, chosen by URL: ``open_fanout("inprocess://")``.

A new backend (NATS JetStream next) is a module with a ``from_url`` constructor registered in
:data:`SCHEMES`; it is done when ``tests/contract/test_fanout.py`` passes for it.
"""

from __future__ import annotations

from collections.abc import Callable

from shieldwall.council.fanout.base import Batch, Fanout, Item, Notice, Subscription
from shieldwall.council.fanout.inprocess import InProcessFanout
from shieldwall.errors import ConfigError

SCHEMES: dict[str, Callable[[str], Fanout]] = {"inprocess": InProcessFanout.from_url}


def open_fanout(url: str, origin: str = "") -> Fanout:
    scheme, sep, _ = url.partition("://")
    factory = SCHEMES.get(scheme) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(origin, "fanout", f"unsupported fan-out URL {url!r} (supported: {known})")
    return factory(url)


__all__ = [
    "SCHEMES",
    "Batch",
    "Fanout",
    "InProcessFanout",
    "Item",
    "Notice",
    "Subscription",
    "open_fanout",
]
