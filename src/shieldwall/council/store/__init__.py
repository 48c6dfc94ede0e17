"""Council stores, chosen by URL: ``open_store("sqlite:///var/lib/shieldwall/council.db")``.

=========== ============================================ ====================================
scheme      implementation                                for
=========== ============================================ ====================================
``sqlite``  :class:`~.sqlite.SqliteStore` (one file, WAL) the embedded default
``memory``  :class:`~.memory.MemoryStore`                 unit tests, trying things out
=========== ============================================ ====================================

A new backend is a module with a ``from_url`` constructor registered in :data:`SCHEMES`; it
is done when ``tests/contract/test_store.py`` passes for it.
"""

from __future__ import annotations

from collections.abc import Callable

from shieldwall.council.registry import open_url
from shieldwall.council.store.base import MemberRecord, Store
from shieldwall.council.store.memory import MemoryStore
from shieldwall.council.store.sqlite import SqliteStore

SCHEMES: dict[str, Callable[[str], Store]] = {
    "sqlite": SqliteStore.from_url,
    "memory": MemoryStore.from_url,
}


def open_store(url: str, origin: str = "") -> Store:
    """The store for ``url`` (``scheme://…``): ConfigError (``origin``'s key ``store``) for
    an unknown scheme, StoreError when the backend cannot be opened."""
    return open_url(url, SCHEMES, origin, "store", "store")


__all__ = ["SCHEMES", "MemberRecord", "MemoryStore", "SqliteStore", "Store", "open_store"]
