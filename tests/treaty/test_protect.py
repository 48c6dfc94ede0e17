"""Protected targets: every check equals the first overlapping entry (in order), whatever
the entries — the bisected partition and the /16 fast path never disagree with a scan."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.net import Net
from shieldwall.treaty.protect import Protected


def _net(version: int) -> st.SearchStrategy[Net]:
    width = 32 if version == 4 else 128
    return st.builds(
        lambda v, p: Net.of(version, v >> (width - p) << (width - p) if p else 0, p),
        st.integers(0, 2**width - 1),
        st.integers(0, width)
        if version == 6
        else st.sampled_from([0, 4, 8, 12, 16, 20, 24, 28, 30, 32]),
    )


scopes = st.one_of(_net(4), _net(4), _net(6))


@given(st.lists(scopes, max_size=25), st.lists(scopes, min_size=1, max_size=40))
@settings(max_examples=400, deadline=None)
def test_the_reason_is_the_first_overlapping_entry(entries: list[Net], probes: list[Net]) -> None:
    p = Protected(tuple((n, f"r{i}") for i, n in enumerate(entries)))
    for q in probes:
        want = next((f"r{i}" for i, n in enumerate(entries) if n.overlaps(q)), None)
        assert p.reason_for(q) == want
        assert p.reason_for(q, remember=False) == want
        assert p.reason_for(q) == want  # remembered


def test_defaults_protect_what_they_should() -> None:
    p = Protected.build(allowlist=[Net.of(4, 198 << 24 | 51 << 16 | 100 << 8, 24)])
    cases = {
        "127.0.0.1": "protected:loopback",
        "10.1.2.3": "protected:private",
        "192.168.0.0/16": "protected:private",
        "198.51.100.7": "protected:allowlist",
        "203.0.113.9": None,
        "0.0.0.0/0": "protected:loopback",
        "::1": "protected:loopback",
        "2001:db8::1": None,
    }
    from shieldwall.model import parse_scope

    for text, why in cases.items():
        assert p.reason_for(parse_scope(text)) == why, text
