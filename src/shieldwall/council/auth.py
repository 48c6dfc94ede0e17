"""The operator's token: made on the council's first start, checked on every operator request.
(A member's signed request is checked with :func:`shieldwall.wire.signing.verify_request`.)"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "operator.token"  # noqa: S105 (a file name)


def load_or_create_token(data_dir: str) -> str:
    """The operator token, created (mode 0600) on first start."""
    path = Path(data_dir) / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def check_token(expected: str, header: str | None) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(expected.encode(), header.removeprefix("Bearer ").strip().encode())
