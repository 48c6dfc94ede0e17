"""Net: an IP network in one int, parsed as strictly as ``ipaddress`` and agreeing with it on
every relation the code uses."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.net import from_ipaddress, host, parse_net, parse_v4, summarize

v4 = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6 = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
nets = st.one_of(v4, v6)


@given(nets)
@settings(max_examples=500)
def test_a_net_is_what_ipaddress_says(ref: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    n = parse_net(str(ref))
    assert n == from_ipaddress(ref)
    assert (n.version, n.prefixlen, n.value, n.last) == (
        ref.version,
        ref.prefixlen,
        int(ref.network_address),
        int(ref.broadcast_address),
    )
    assert n.num_addresses == ref.num_addresses
    assert str(n) == str(ref)
    assert n.text() == (str(ref.network_address) if ref.num_addresses == 1 else str(ref))
    assert n.network_address == ref.network_address
    assert parse_net(n.text()) == n
    assert pickle.loads(pickle.dumps(n)) == n  # noqa: S301 - our own bytes
    if ref.prefixlen < ref.max_prefixlen:
        assert [from_ipaddress(s) for s in ref.subnets()] == list(n.subnets())
    if ref.prefixlen:
        assert n.supernet(ref.prefixlen - 1) == from_ipaddress(ref.supernet())


@given(nets, nets)
@settings(max_examples=500)
def test_relations_agree_with_ipaddress(a: object, b: object) -> None:
    assert isinstance(a, ipaddress.IPv4Network | ipaddress.IPv6Network)
    assert isinstance(b, ipaddress.IPv4Network | ipaddress.IPv6Network)
    x, y = from_ipaddress(a), from_ipaddress(b)
    same = a.version == b.version
    assert x.overlaps(y) == (same and a.overlaps(b))
    assert x.subnet_of(y) == (same and a.subnet_of(b))  # type: ignore[arg-type]
    if same:
        assert (x < y) == (
            (int(a.network_address), a.prefixlen) < (int(b.network_address), b.prefixlen)
        )


@given(st.text(max_size=45))
@settings(max_examples=1000)
def test_parsing_is_as_strict_as_ipaddress(text: str) -> None:
    try:
        ref = ipaddress.ip_network(text.strip() if "/" in text else text, strict=True)
    except ValueError:
        ref = None
    try:
        got = parse_net(text)
    except ValueError:
        got = None
    if ref is None:
        assert got is None
    elif "/" not in text and isinstance(ref, ipaddress.IPv6Network):
        mapped = ref.network_address.ipv4_mapped
        assert got == (from_ipaddress(ref) if mapped is None else host(mapped))
    else:
        assert got == from_ipaddress(ref)


@pytest.mark.parametrize(
    "text", ["1.2.3", "01.2.3.4", "256.0.0.0", "1.2.3.4 ", "١.٢.٣.٤", "1.2.3.4/24", "1.2.3.0/33"]
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - what ipaddress raises
        parse_net(text)
    if "/" not in text:
        assert parse_v4(text) is None


def test_a_mapped_ipv6_address_is_its_ipv4_address_and_zero_is_true() -> None:
    assert parse_net("::ffff:203.0.113.9") == parse_net("203.0.113.9")
    assert parse_net("::ffff:203.0.113.0/120").version == 6
    assert bool(parse_net("0.0.0.0/0"))
    assert repr(parse_net("10.0.0.0/8")) == "Net('10.0.0.0/8')"
    assert f"{parse_net('10.0.0.0/8')}" == "10.0.0.0/8"


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**16))
def test_summarize_covers_a_range_exactly(first: int, span: int) -> None:
    last = min(first + span, 2**32 - 1)
    got = summarize(4, first, last)
    want = ipaddress.summarize_address_range(
        ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
    )
    assert got == [from_ipaddress(n) for n in want]
