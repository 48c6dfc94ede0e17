"""The council's secrets, made on its first start in its data-dir (mode 0600): the operator's
token, checked on every operator request, and the council's Ed25519 key, which signs every
stream message (members pin its public half: ``council-key``). A member's signed request is
checked with :func:`shieldwall.wire.signing.verify_request`."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from shieldwall.wire import signing

TOKEN_FILE = "operator.token"  # noqa: S105 (a file name)
KEY_FILE = "council.key"


def load_or_create_token(data_dir: str) -> str:
    """The operator token, created (mode 0600) on first start."""
    return _load_or_create(Path(data_dir) / TOKEN_FILE, lambda: secrets.token_urlsafe(32))


def load_or_create_key(data_dir: str) -> tuple[str, bool]:
    """The council's private signing key (base64), created on first start; and whether it
    was created now."""
    path = Path(data_dir) / KEY_FILE
    created = not path.exists()
    return _load_or_create(path, lambda: signing.generate()[0]), created


def _load_or_create(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def check_token(expected: str, header: str | None) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(expected.encode(), header.removeprefix("Bearer ").strip().encode())
