"""Fan-out of decision events to live streams, chosen by URL: ``open_fanout("inprocess://")``.

A new backend (NATS JetStream next) is a module with a ``from_url`` constructor registered in
:data:`SCHEMES`; it is done when ``tests/contract/test_fanout.py`` passes for it.
"""

from __future__ import annotations

from collections.abc import Callable

from shieldwall.council.fanout.base import Batch, Fanout, Item, Notice, Subscription
from shieldwall.council.fanout.inprocess import InProcessFanout
from shieldwall.council.registry import open_url

SCHEMES: dict[str, Callable[[str], Fanout]] = {"inprocess": InProcessFanout.from_url}


def open_fanout(url: str, origin: str = "") -> Fanout:
    """The fan-out for ``url``: ConfigError (``origin``'s key ``fanout``) for an unknown
    scheme."""
    return open_url(url, SCHEMES, origin, "fanout", "fan-out")


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
