"""Treaty v1: alerts become alliance-wide bans unless the target is protected."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.model import Alert, Decision, parse_address, parse_scope
from shieldwall.treaty import (
    Decide,
    Duplicate,
    MemberInfo,
    Protected,
    Refuse,
    TreatyConfig,
    judge_alert,
    judge_manual,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
MEMBER = MemberInfo("web1", "member")


def alert(source: str, bantime: float | None = None) -> Alert:
    return Alert("sshd", parse_address(source), NOW, NOW, 5, ("line",), bantime)


def test_alert_becomes_a_four_hour_ban_by_default() -> None:
    v = judge_alert(alert("203.0.113.9"), MEMBER, Protected.build(), {}, TreatyConfig(), NOW, "d1")
    assert isinstance(v, Decide)
    assert v.decision.scope == parse_scope("203.0.113.9")
    assert v.decision.expires - NOW == timedelta(hours=4)
    assert v.decision.member == "web1"
    assert v.decision.rule == "sshd"


def test_rule_bantime_is_honoured_and_capped() -> None:
    cfg = TreatyConfig(max_duration=3600)
    v = judge_alert(alert("203.0.113.9", bantime=600), MEMBER, Protected.build(), {}, cfg, NOW, "x")
    assert isinstance(v, Decide)
    assert v.decision.expires - NOW == timedelta(seconds=600)
    v = judge_alert(
        alert("203.0.113.9", bantime=86400), MEMBER, Protected.build(), {}, cfg, NOW, "x"
    )
    assert isinstance(v, Decide)
    assert v.decision.expires - NOW == timedelta(hours=1)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("127.0.0.1", "protected:loopback"),
        ("::1", "protected:loopback"),
        ("10.1.2.3", "protected:private"),
        ("192.168.1.1", "protected:private"),
        ("172.20.0.1", "protected:private"),
        ("fd00::1", "protected:private"),
        ("169.254.1.1", "protected:link-local"),
        ("fe80::1", "protected:link-local"),
        ("198.51.100.7", "protected:allowlist"),
        ("192.0.2.1", "protected:member:web2"),
    ],
)
def test_protected_targets_are_refused_with_a_reason(source: str, reason: str) -> None:
    protected = Protected.build(
        allowlist=[parse_scope("198.51.100.0/24")],
        member_addresses=[("web2", parse_scope("192.0.2.1"))],
    )
    v = judge_alert(alert(source), MEMBER, protected, {}, TreatyConfig(), NOW, "x")
    assert isinstance(v, Refuse)
    assert v.refusal.reason == reason
    assert v.refusal.member == "web1"


def test_private_ranges_can_be_allowed_by_config() -> None:
    protected = Protected.build(protect_private=False)
    v = judge_alert(alert("10.1.2.3"), MEMBER, protected, {}, TreatyConfig(), NOW, "x")
    assert isinstance(v, Decide)


def test_revoked_member_is_refused() -> None:
    v = judge_alert(
        alert("203.0.113.9"),
        MemberInfo("bad", "member", revoked=True),
        Protected.build(),
        {},
        TreatyConfig(),
        NOW,
        "x",
    )
    assert isinstance(v, Refuse)
    assert v.refusal.reason == "member-revoked"


def _decision(scope: str, expires: datetime) -> Decision:
    from shieldwall.model import Action, Origin

    return Decision("old", parse_scope(scope), Action.BAN, Origin.ALERT, "r", NOW, expires)


def test_an_active_covering_decision_makes_a_duplicate() -> None:
    d = _decision("203.0.113.0/24", NOW + timedelta(hours=10))
    v = judge_alert(
        alert("203.0.113.9"), MEMBER, Protected.build(), {d.scope: d}, TreatyConfig(), NOW, "x"
    )
    assert isinstance(v, Duplicate)
    assert v.existing is d


def test_a_shorter_existing_decision_is_extended_by_a_new_one() -> None:
    d = _decision("203.0.113.9", NOW + timedelta(minutes=5))
    v = judge_alert(
        alert("203.0.113.9"), MEMBER, Protected.build(), {d.scope: d}, TreatyConfig(), NOW, "x"
    )
    assert isinstance(v, Decide)


def test_manual_ban_of_protected_needs_force() -> None:
    p = Protected.build()
    v = judge_manual(parse_scope("10.0.0.0/8"), 60, "why", p, NOW, "x")
    assert isinstance(v, Refuse)
    assert v.refusal.reason == "protected:private"
    v = judge_manual(parse_scope("10.0.0.0/8"), 60, "why", p, NOW, "x", force=True)
    assert isinstance(v, Decide)


def test_a_wide_cidr_overlapping_a_protected_range_is_refused() -> None:
    v = judge_manual(parse_scope("0.0.0.0/0"), 60, "", Protected.build(), NOW, "x")
    assert isinstance(v, Refuse)


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
)


@given(source=addresses)
def test_no_decision_ever_overlaps_a_protected_target(source: ipaddress._BaseAddress) -> None:
    protected = Protected.build(
        allowlist=[parse_scope("198.51.100.0/24"), parse_scope("2001:db8:1::/48")],
        member_addresses=[("m", parse_scope("192.0.2.0/28"))],
    )
    a = Alert("sshd", source, NOW, NOW, 5)  # type: ignore[arg-type]
    v = judge_alert(a, MEMBER, protected, {}, TreatyConfig(), NOW, "x")
    if isinstance(v, Decide):
        assert all(
            not (net.version == v.decision.scope.version and net.overlaps(v.decision.scope))
            for net, _ in protected.entries
        )
    else:
        assert isinstance(v, Refuse)
