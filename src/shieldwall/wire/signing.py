"""Ed25519 keys and signatures (PyNaCl). Keys travel as base64 text.

Security checks raise :class:`~shieldwall.errors.SignatureError`; they never return False.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Sequence
from datetime import datetime

import nacl.exceptions
import nacl.signing

from shieldwall.errors import SignatureError


def generate() -> tuple[str, str]:
    """A new key pair as ``(private_b64, public_b64)``."""
    key = nacl.signing.SigningKey.generate()
    return _b64(bytes(key)), _b64(bytes(key.verify_key))


def public_from_private(private_b64: str) -> str:
    return _b64(bytes(signing_key(private_b64).verify_key))


def signing_key(private_b64: str) -> nacl.signing.SigningKey:
    raw = _unb64(private_b64, "private key")
    if len(raw) != 32:
        raise SignatureError("malformed", "a private key is 32 bytes of base64")
    return nacl.signing.SigningKey(raw)


@functools.lru_cache(maxsize=4096)
def verify_key(public_b64: str) -> nacl.signing.VerifyKey:
    """The key of a base64 public key (kept: a council checks the same members' keys over
    and over)."""
    raw = _unb64(public_b64, "public key")
    if len(raw) != 32:
        raise SignatureError("malformed", "a public key is 32 bytes of base64")
    return nacl.signing.VerifyKey(raw)


def sign(key: nacl.signing.SigningKey, message: bytes) -> str:
    return _b64(key.sign(message).signature)


def verify(key: nacl.signing.VerifyKey, message: bytes, signature_b64: str) -> None:
    """Raise SignatureError('bad-signature') unless ``signature_b64`` signs ``message``."""
    sig = _unb64(signature_b64, "signature")
    if len(sig) != 64:
        raise SignatureError("bad-signature", "a signature is 64 bytes")
    try:
        key.verify(message, sig)
    except nacl.exceptions.BadSignatureError as exc:
        raise SignatureError("bad-signature", "signature does not match") from exc


def verify_all(
    items: Sequence[tuple[nacl.signing.VerifyKey, bytes, str]],
) -> list[SignatureError | None]:
    """:func:`verify` over many (key, message, signature): for each, None or the error it
    raised (to be raised by the caller). libsodium runs without the GIL, so a caller may
    hand this to a thread."""
    out: list[SignatureError | None] = []
    for key, message, signature in items:
        try:
            verify(key, message, signature)
            out.append(None)
        except SignatureError as exc:
            out.append(exc)
    return out


def check_public_key(public_b64: str) -> str:
    """Validate and normalise a public key given by an operator."""
    return _b64(bytes(verify_key(public_b64)))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed", f"{what} is not valid base64") from exc


# -- signed reads: what a member signs to read the council --------------------------


def request_message(method: str, target: str, timestamp: str) -> bytes:
    """What a member signs to read: ``METHOD\\nPATH?QUERY\\nTIMESTAMP``."""
    return f"{method.upper()}\n{target}\n{timestamp}".encode()


def sign_request(key_b64: str, method: str, target: str, now: datetime) -> dict[str, str]:
    ts = f"{now.timestamp():.3f}"
    sig = sign(signing_key(key_b64), request_message(method, target, ts))
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
    """Raise SignatureError unless ``signature`` signs this read, made within ``window``
    seconds of ``now``."""
    if not timestamp or not signature:
        raise SignatureError("unsigned", "X-Shieldwall-Time and X-Shieldwall-Signature needed")
    try:
        ts = float(timestamp)
    except ValueError as exc:
        raise SignatureError("malformed", "X-Shieldwall-Time is epoch seconds") from exc
    if not math.isfinite(ts):  # nan would pass any window: a signature that never expires
        raise SignatureError("malformed", "X-Shieldwall-Time is epoch seconds")
    if abs(now.timestamp() - ts) > window:
        raise SignatureError("stale", "request time too far from council time")
    verify(verify_key(public_key), request_message(method, target, timestamp), signature)
