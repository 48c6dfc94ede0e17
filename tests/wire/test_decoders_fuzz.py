"""Every decoder of what crosses the wire, fed anything — random bytes, random JSON, JSON
shaped almost like the real thing — raises WireError or returns a value: never another
exception (what would be a 500 at the council, a crash in an agent's stream)."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.errors import WireError
from shieldwall.wire import messages as m

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "report": m.decode_report,
    "concern": m.decode_concern,
    "import": m.decode_import,
    "bulk-revoke": m.decode_bulk_revoke,
    "batch": m.decode_batch,
    "page": m.decode_page,
    "snapshot": m.decode_snapshot,
    "consult": m.decode_consult,
    "protect": m.decode_protect,
    "lift": m.decode_lift,
    **{
        f"request:{name}": functools.partial(m.decode_request, cls=cls)
        for name, cls in m.OPERATOR_REQUESTS.items()
    },
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "id",
    "member",
    "sent_at",
    "alerts",
    "events",
    "seq",
    "decisions",
    "scope",
    "scopes",
    "source",
    "rule",
    "first",
    "last",
    "count",
    "concern",
    "public_key",
    "name",
    "force",
    "duration",
    "reason",
    "last",
    "lookback",
    "expires",
]
shaped = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()[:-1]),  # cut short
    st.binary(min_size=1, max_size=40).map(lambda b: b'{"id": "' + b + b'"}'),  # bad UTF-8
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_decoders_raise_wire_error_or_return(name: str, body: bytes) -> None:
    with contextlib.suppress(WireError):
        DECODERS[name](body)


def test_deep_nesting_is_a_wire_error() -> None:
    for name, decode in DECODERS.items():
        with pytest.raises(WireError):
            decode(b"[" * 200_000 + b"]" * 200_000)
        with pytest.raises(WireError):
            decode(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
        assert name
