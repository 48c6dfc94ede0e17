"""Stream messages carry the council's signature over exactly the bytes sent."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.errors import SignatureError
from shieldwall.wire import signing
from shieldwall.wire.stream import sign_payload, signed_message, split_signature

PRIVATE, PUBLIC = signing.generate()
SIGN = functools.partial(signing.sign, signing.signing_key(PRIVATE))
KEY = signing.verify_key(PUBLIC)

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
objects = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k != "sig"),
    st.one_of(st.integers(), texts, st.lists(st.integers(), max_size=5)),
    min_size=1,
    max_size=5,
)


def _check(event: str, data: str) -> dict[str, object]:
    payload, sig = split_signature(data)
    if sig is None:
        raise SignatureError("bad-signature", "unsigned")
    signing.verify(KEY, signed_message(event, payload.encode()), sig)
    out: dict[str, object] = json.loads(payload)
    return out


@given(objects, st.sampled_from(["batch", "snapshot", "consult"]))
def test_a_signed_payload_is_the_object_with_sig_and_verifies(
    obj: dict[str, object], event: str
) -> None:
    payload = json.dumps(obj, separators=(",", ":")).encode()
    data = sign_payload(event, payload, SIGN).decode()
    decoded = json.loads(data)  # a reader that ignores signatures still reads the object
    assert {k: v for k, v in decoded.items() if k != "sig"} == obj
    assert _check(event, data) == obj
    assert split_signature(payload.decode()) == (payload.decode(), None)


@given(objects, st.integers(min_value=0), st.integers(min_value=1, max_value=127))
def test_any_changed_byte_fails_the_signature(obj: dict[str, object], at: int, flip: int) -> None:
    data = bytearray(sign_payload("batch", json.dumps(obj).encode(), SIGN))
    i = at % len(data)
    data[i] = (data[i] ^ flip) or 1  # another ASCII byte (JSON text holds no NUL nor \x01)
    text = data.decode()
    with pytest.raises((SignatureError, ValueError)):
        _check("batch", text)


def test_a_batch_signature_does_not_pass_for_a_snapshot() -> None:
    data = sign_payload("batch", b'{"events":[]}', SIGN).decode()
    with pytest.raises(SignatureError):
        _check("snapshot", data)
    assert _check("batch", data) == {"events": []}


def test_only_non_empty_objects_are_signed() -> None:
    for bad in (b"{}", b"[1]", b"1"):
        with pytest.raises(ValueError, match="non-empty JSON object"):
            sign_payload("batch", bad, SIGN)
    assert sign_payload("batch", b"[1]", None) == b"[1]"
