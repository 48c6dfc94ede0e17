from __future__ import annotations

import pytest

from shieldwall.errors import SignatureError
from shieldwall.wire import signing


def test_sign_and_verify_round_trip() -> None:
    private, public = signing.generate()
    sig = signing.sign(signing.signing_key(private), b"hello")
    signing.verify(signing.verify_key(public), b"hello", sig)
    assert signing.public_from_private(private) == public


def test_a_forged_or_altered_message_raises() -> None:
    private, public = signing.generate()
    other, _ = signing.generate()
    sig = signing.sign(signing.signing_key(other), b"hello")
    with pytest.raises(SignatureError) as exc:
        signing.verify(signing.verify_key(public), b"hello", sig)
    assert exc.value.reason == "bad-signature"
    good = signing.sign(signing.signing_key(private), b"hello")
    with pytest.raises(SignatureError):
        signing.verify(signing.verify_key(public), b"hellO", good)


@pytest.mark.parametrize("bad", ["", "not base64!", "AAAA", "A" * 200])
def test_malformed_keys_and_signatures_raise_not_crash(bad: str) -> None:
    _, public = signing.generate()
    with pytest.raises(SignatureError):
        signing.verify_key(bad)
    with pytest.raises(SignatureError):
        signing.verify(signing.verify_key(public), b"x", bad)


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "NaN", "x"])
def test_a_read_stamped_with_no_real_time_is_refused(stamp: str) -> None:
    """``nan`` is never "too far" from anything: it would make a signature that never
    expires."""
    from datetime import UTC, datetime

    private, public = signing.generate()
    now = datetime.now(UTC)
    message = signing.request_message("GET", "/v1/decisions", stamp)
    sig = signing.sign(signing.signing_key(private), message)
    with pytest.raises(SignatureError) as exc:
        signing.verify_request(public, "GET", "/v1/decisions", stamp, sig, now, 300)
    assert exc.value.reason == "malformed"
    good = signing.sign_request(private, "GET", "/v1/decisions", now)
    signing.verify_request(
        public,
        "GET",
        "/v1/decisions",
        good["X-Shieldwall-Time"],
        good["X-Shieldwall-Signature"],
        now,
        300,
    )
