"""Who is asking: the operator (bearer token) or an enrolled member (signed request)."""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

from shieldwall.errors import SignatureError
from shieldwall.wire import signing

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


def request_message(method: str, target: str, timestamp: str) -> bytes:
    """What a member signs to read: ``METHOD\\nPATH?QUERY\\nTIMESTAMP``."""
    return f"{method.upper()}\n{target}\n{timestamp}".encode()


def sign_request(key_b64: str, method: str, target: str, now: datetime) -> dict[str, str]:
    ts = f"{now.timestamp():.3f}"
    sig = signing.sign(signing.signing_key(key_b64), request_message(method, target, ts))
    return {"X-Shieldwall-Time": ts, "X-Shieldwall-Signature": sig}


def verify_request(
    public_key: str,
    method: str,
    target: str,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    window: float,
) -> None:
    if not timestamp or not signature:
        raise SignatureError("unsigned", "X-Shieldwall-Time and X-Shieldwall-Signature needed")
    try:
        ts = float(timestamp)
    except ValueError as exc:
        raise SignatureError("malformed", "X-Shieldwall-Time is epoch seconds") from exc
    if abs(now.timestamp() - ts) > window:
        raise SignatureError("stale", "request time too far from council time")
    signing.verify(
        signing.verify_key(public_key), request_message(method, target, timestamp), signature
    )
