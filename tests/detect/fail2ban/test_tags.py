"""fail2ban tags expand to the groups fail2ban uses."""

from __future__ import annotations

import pytest

from shieldwall.detect.fail2ban.tags import MARK_END, MARK_START, compile_regex, expand
from shieldwall.errors import RuleError


def _groups(source: str, text: str, **kwargs: bool) -> dict[str, str | None]:
    found = compile_regex(source, "t", "failregex[0]", **kwargs).regex.search(text)
    assert found is not None, (source, text)
    return found.groupdict()


@pytest.mark.parametrize(
    ("text", "group", "value"),
    [
        ("from 192.0.2.1 port", "ip4", "192.0.2.1"),
        ("from ::ffff:192.0.2.1 port", "ip4", "192.0.2.1"),
        ("from [2001:db8::1] port", "ip6", "2001:db8::1"),
        ("from example.com port", "dns", "example.com"),
    ],
)
def test_host_matches_addresses_and_names(text: str, group: str, value: str) -> None:
    assert _groups("from <HOST> port", text)[group] == value


def test_usedns_no_and_addr_never_match_names() -> None:
    regex = compile_regex("from <HOST> port", "t", "x", use_dns=False).regex
    assert regex.search("from example.com port") is None
    assert compile_regex("from <ADDR> port", "t", "x").regex.search("from a.b port") is None


def test_field_tags_become_named_groups() -> None:
    groups = _groups(
        "^user <F-USER>\\S+</F-USER> id <F-ID/> port <F-PORT/> <F-ALT_USER1>x</F-ALT_USER1>",
        "user bob id 42 port ssh x",
    )
    assert (groups["user"], groups["fid"], groups["fport"], groups["alt_user1"]) == (
        "bob",
        "42",
        "ssh",
        "x",
    )
    # a closing tag that was never opened stays as text
    assert expand("a</F-USER>b")[0] == "a</F-USER>b"


def test_subnet_cidr_and_skiplines() -> None:
    groups = _groups("net <SUBNET>$", "net 10.0.0.0/8")
    assert (groups["ip4"], groups["cidr"]) == ("10.0.0.0", "8")
    text, skiplines = expand("^a<SKIPLINES>b <HOST>$")
    assert skiplines == 1
    assert "skiplines0" in text


def test_group_local_global_flags_become_scoped() -> None:
    assert expand("((?i)abc) <HOST>")[0].startswith("(?i:abc)")
    assert expand("(?:(?i)abc) <HOST>")[0].startswith("(?i:abc)")


def test_the_marked_variant_only_captures_marked_text() -> None:
    compiled = compile_regex("from <HOST>", "t", "x")
    assert compiled.marked is not None
    assert compiled.marked.search("from 192.0.2.1") is None
    found = compiled.marked.search(f"from {MARK_START}192.0.2.1{MARK_END}")
    assert found is not None
    assert found.group("ip4") == "192.0.2.1"


def test_compile_errors_name_the_key() -> None:
    with pytest.raises(RuleError, match=r"t: failregex\[3\]: does not compile"):
        compile_regex("(<HOST>", "t", "failregex[3]")
    with pytest.raises(RuleError, match="empty regex"):
        compile_regex("  ", "t", "failregex[0]")


@pytest.mark.parametrize(
    ("pattern", "risky"),
    [
        (r"^(?:a|a)*$", True),
        (r"^(\S+=)*x$", True),
        (r'(?: \S+=(?:\S*|"[^"]+"))* remote_addr=', True),  # grafana.conf
        (r"^(?:a{1,2})+$", True),
        (r"^Failed \S+ for (?P<user>.*) from (?P<ip>(?:\d{1,3}\.){3}\d{1,3})$", False),
        (r"^(?:\s+(?:logname|uid)=\S*){0,4}$", False),  # bounded outer repeat
        (r"^a*b*c+$", False),
    ],
)
def test_backtracks_flags_exponential_shapes(pattern: str, risky: bool) -> None:
    from shieldwall.detect.fail2ban.tags import backtracks

    assert backtracks(pattern) is risky
