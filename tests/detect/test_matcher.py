"""Matcher: the combined regex, <HOST>, prefilter, ignores, and injection resistance."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.detect import Matcher, builtin_rule, parse_rule
from shieldwall.model import Counters, parse_address


def matcher(counters: Counters | None = None, **data: Any) -> Matcher:
    data.setdefault("failregex", [r"^fail from <HOST>$"])
    return Matcher(parse_rule(data, "test", "test.toml"), counters)


class TestHost:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("fail from 192.0.2.1", "192.0.2.1"),
            ("fail from 2001:db8::1", "2001:db8::1"),
            ("fail from 2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("fail from ::1", "::1"),
            ("fail from ::ffff:192.0.2.7", "192.0.2.7"),
            ("fail from aaaa:bbbb:cccc:1234::1:1", "aaaa:bbbb:cccc:1234::1:1"),
            ("fail from 1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ],
    )
    def test_addresses(self, text: str, expected: str) -> None:
        """IPv4, IPv6 and IPv4-mapped IPv6 (reported as IPv4)."""
        found = matcher().match(text)

        assert found is not None
        assert parse_address(expected) == found.source

    @pytest.mark.parametrize(
        "text",
        [
            "fail from example.com",
            "fail from 1.2.3",
            "fail from 1.2.3.4.5",
            "fail from 12345::1::2",
        ],
    )
    def test_not_addresses(self, text: str) -> None:
        """Names and malformed literals never match."""
        assert matcher().match(text) is None

    def test_invalid_octets_are_counted(self) -> None:
        """An address-shaped text that is not an address is skipped and counted."""
        counters = Counters()

        assert matcher(counters).match("fail from 256.1.1.1") is None
        assert counters.get("invalid_host") == 1

    def test_no_partial_address_inside_a_longer_number(self) -> None:
        """Unanchored patterns cannot take 11.2.3.4 out of 211.2.3.4 or 1.2.3.45."""
        m = matcher(failregex=[r"<HOST> - - \["])

        found = m.match("211.2.3.4 - - [x")

        assert found is not None
        assert parse_address("211.2.3.4") == found.source
        assert m.match("a211.2.3.4 - - [") is None
        assert m.match("1.2.3.4567 - - [") is None

    def test_addr_placeholder(self) -> None:
        """<ADDR> is the same as <HOST> in v1."""
        found = matcher(failregex=[r"^x <ADDR>$"]).match("x 192.0.2.9")

        assert found is not None
        assert ipaddress.ip_address("192.0.2.9") == found.source


class TestCombined:
    def test_pattern_index(self) -> None:
        """The index of the failregex that matched is reported."""
        m = matcher(failregex=[r"^a (x)? <HOST>$", r"^b (y)(z)? <HOST>$", r"^c <HOST>$"])

        assert m.match("a x 192.0.2.1").pattern == 0  # type: ignore[union-attr]
        assert m.match("b y 192.0.2.1").pattern == 1  # type: ignore[union-attr]
        assert m.match("c 192.0.2.1").pattern == 2  # type: ignore[union-attr]

    def test_first_pattern_wins(self) -> None:
        """When two patterns match, the first one is reported (alternation order)."""
        m = matcher(failregex=[r"^\w+ <HOST>$", r"^b <HOST>$"])

        assert m.match("b 192.0.2.1").pattern == 0  # type: ignore[union-attr]

    def test_with_prefix_patterns_start_after_it(self) -> None:
        """With a prefix, a failregex is anchored where the prefix ends ('^' allowed)."""
        m = matcher(prefix=r"\S+ app: ", failregex=[r"^bad <HOST>$", r"worse <HOST>$"])

        assert m.match("host app: bad 192.0.2.1").pattern == 0  # type: ignore[union-attr]
        assert m.match("host app: worse 192.0.2.1").pattern == 1  # type: ignore[union-attr]
        assert m.match("host app: x bad 192.0.2.1") is None
        assert m.match("other: host app: bad 192.0.2.1") is None

    def test_without_prefix_patterns_search(self) -> None:
        """Without prefix and without '^', a failregex may match anywhere (fail2ban)."""
        m = matcher(failregex=[r"bad <HOST>$"])

        assert m.match("anything here bad 192.0.2.1") is not None

    def test_prefilter(self) -> None:
        """A line containing none of the literals is skipped before any regex."""
        m = matcher(prefilter=["app[", "other"], failregex=[r"bad <HOST>$"])

        assert m.match("app[1]: bad 192.0.2.1") is not None
        assert m.match("other: bad 192.0.2.1") is not None
        assert m.match("bad 192.0.2.1") is None

    def test_ignoreregex(self) -> None:
        """A hit that also matches an ignoreregex is no hit, and is counted."""
        counters = Counters()
        m = matcher(counters, failregex=[r"bad (\S+) <HOST>$"], ignoreregex=[r"bad monitor "])

        assert m.match("bad alice 192.0.2.1") is not None
        assert m.match("bad monitor 192.0.2.1") is None
        assert counters.get("ignored") == 1


class TestExplain:
    @pytest.mark.parametrize(
        ("line", "reason", "pattern"),
        [
            ("nothing", "prefilter", None),
            ("-- app: bad 192.0.2.1", "prefix", None),
            ("h app: fine 192.0.2.1", "no-match", None),
            ("h app: bad 192.0.2.1 monitor", "ignored", 0),
            ("h app: bad 999.0.2.1", "invalid-host", 0),
            ("h app: bad 192.0.2.1", "hit", 0),
            ("h app: worse 192.0.2.1", "hit", 1),
        ],
    )
    def test_reasons(self, line: str, reason: str, pattern: int | None) -> None:
        """explain() says which step decided."""
        m = matcher(
            prefilter=["app:"],
            prefix=r"\w+ app: ",
            failregex=[r"bad <HOST>(?: \w+)?$", r"worse <HOST>$"],
            ignoreregex=["monitor$"],
        )
        why = m.explain(line)

        assert (reason, pattern) == (why.reason, why.pattern)
        assert why.matched == (reason == "hit")

    def test_explain_counts_nothing(self) -> None:
        """explain() leaves counters alone."""
        counters = Counters()
        matcher(counters).explain("fail from 999.1.1.1")

        assert counters.values == {}


# --- injection properties ------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)
addresses = st.ip_addresses().map(str)
# sshd escapes control characters (strnvis), so attacker text is printable
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
SSHD = Matcher(builtin_rule("sshd"))
HTTP_AUTH = Matcher(builtin_rule("nginx-http-auth"))
BOTSEARCH = Matcher(builtin_rule("nginx-botsearch"))


@given(user=printable, real=addresses, port=st.integers(1, 65535))
def test_sshd_user_name_never_becomes_the_source(user: str, real: str, port: int) -> None:
    """Whatever the user name, 'Failed password' is attributed to the real address."""
    line = (
        f"Jan  2 03:04:05 h sshd[1]: Failed password for invalid user {user} "
        f"from {real} port {port} ssh2"
    )
    found = SSHD.match(line)

    assert found is not None
    assert parse_address(real) == found.source


@given(user=printable, real=addresses, port=st.integers(1, 65535))
def test_sshd_preauth_close_user_name(user: str, real: str, port: int) -> None:
    """Same for 'Connection closed by authenticating user U H port P [preauth]'."""
    line = (
        f"Jan  2 03:04:05 h sshd[1]: Connection closed by authenticating user {user} "
        f"{real} port {port} [preauth]"
    )
    found = SSHD.match(line)

    assert found is not None
    assert parse_address(real) == found.source


one_line = st.text(st.characters(blacklist_characters="\n"), max_size=60)


@given(user=one_line, request=one_line, real=addresses)
def test_nginx_http_auth_never_framed(user: str, request: str, real: str) -> None:
    """Attacker text around the client field: the real client or nothing, never another."""
    line = (
        f'2024/01/02 03:04:05 [error] 1#1: *1 user "{user}": password mismatch, '
        f'client: {real}, server: example.com, request: "{request}", host: "example.com"'
    )
    found = HTTP_AUTH.match(line)

    assert found is None or parse_address(real) == found.source
    if ", client: " not in user + request:
        assert found is not None


@given(user=st.text(max_size=40), agent=st.text(max_size=60), real=addresses)
def test_nginx_botsearch_source_is_the_first_field(user: str, agent: str, real: str) -> None:
    """$remote_user and the user agent never change the source (nginx escapes quotes)."""
    user = user.replace('"', "\\x22") or "-"
    agent = agent.replace('"', "\\x22")
    line = f'{real} - {user} [02/Jan/2024:03:04:05 +0000] "GET /.env HTTP/1.1" 404 1 "-" "{agent}"'
    found = BOTSEARCH.match(line)

    assert found is None or parse_address(real) == found.source
