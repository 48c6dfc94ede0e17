"""Server-sent-event framing of the decision stream. Pure: values in, bytes out.

``batch`` messages carry decision-log events (``id:`` the last sequence number), ``snapshot``
messages a page of the active set (``id:`` on the last page only), ``consult`` messages a
consultation (no ``id:``: it is not part of the log and moves no resume point).

Every message is signed by the council's key: its JSON object ends with a ``"sig"`` member,
the Ed25519 signature of ``shieldwall-stream/1`` + the event name + the object *without*
that member, each followed by a newline. So the signed bytes are exactly the bytes sent
(no canonical form to agree on), and the payload is the object as it was before signing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shieldwall.model import Decision, DecisionEvent
from shieldwall.wire.messages import batch_to_wire, encode, page_to_wire

HEARTBEAT = b": ping\n\n"
Signer = Callable[[bytes], str]
"""Signs a message's bytes: the base64 Ed25519 signature (``signing.sign`` with a key)."""

_DOMAIN = b"shieldwall-stream/1\n"
_SIG_HEAD = ',"sig":"'
_SIG_LEN = 88  # base64 of 64 bytes
_SIG_TAIL = len(_SIG_HEAD) + _SIG_LEN + 2  # ,"sig":"…"}


def signed_message(event: str, payload: bytes) -> bytes:
    """What a stream message's signature covers."""
    return _DOMAIN + event.encode() + b"\n" + payload


def sign_payload(event: str, payload: bytes, sign: Signer | None) -> bytes:
    """``payload`` (a JSON object) with its signature as a last ``"sig"`` member."""
    if sign is None:
        return payload
    if not payload.endswith(b"}") or payload == b"{}":
        raise ValueError("a signed stream payload is a non-empty JSON object")
    return payload[:-1] + f'{_SIG_HEAD}{sign(signed_message(event, payload))}"}}'.encode()


def split_signature(data: str) -> tuple[str, str | None]:
    """A message's data as (the payload that was signed, its signature), or (data, None)
    when it carries no signature."""
    if len(data) > _SIG_TAIL and data.endswith('"}') and data[-_SIG_TAIL:].startswith(_SIG_HEAD):
        return data[:-_SIG_TAIL] + "}", data[-_SIG_LEN - 2 : -2]
    return data, None


def sse(event: str, data: bytes, seq: int | None = None, sign: Signer | None = None) -> bytes:
    data = sign_payload(event, data, sign)
    if seq is None:
        return b"event: %s\ndata: %s\n\n" % (event.encode(), data)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.encode(), data)


def batch_frame(events: Sequence[DecisionEvent], sign: Signer | None = None) -> bytes:
    """One message for the events (in order), ``id:`` the last one's sequence number."""
    if not events:
        return b""
    return sse("batch", encode(batch_to_wire(events)), events[-1].seq, sign)


def page_frame(
    seq: int, decisions: Sequence[Decision], last: bool, sign: Signer | None = None
) -> bytes:
    return sse("snapshot", encode(page_to_wire(seq, decisions, last)), seq if last else None, sign)
