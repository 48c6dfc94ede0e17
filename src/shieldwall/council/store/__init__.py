"""Council stores. ``open_store(url)`` picks the implementation by URL scheme."""

from __future__ import annotations

from shieldwall.council.store.base import MemberRecord, Store
from shieldwall.council.store.sqlite import SqliteStore
from shieldwall.errors import StoreError


def open_store(url: str) -> Store:
    """``sqlite:///path/to/council.db`` or ``sqlite://:memory:``."""
    if url.startswith("sqlite://"):
        return SqliteStore(url.removeprefix("sqlite://"))
    raise StoreError(f"unsupported store URL {url!r} (supported: sqlite://)")


__all__ = ["MemberRecord", "SqliteStore", "Store", "open_store"]
