"""Backends chosen by URL: ``scheme://…`` picks the constructor registered for ``scheme``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from shieldwall.errors import ConfigError

T = TypeVar("T")


def open_url(
    url: str, schemes: Mapping[str, Callable[[str], T]], origin: str, key: str, what: str
) -> T:
    """``schemes[scheme](url)``; an unknown scheme is a ConfigError naming ``origin``'s
    ``key`` and the schemes there are."""
    scheme, sep, _ = url.partition("://")
    factory = schemes.get(scheme) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(origin, key, f"unsupported {what} URL {url!r} (supported: {known})")
    return factory(url)
