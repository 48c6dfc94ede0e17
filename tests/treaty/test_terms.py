"""The treaty's terms: defaults, parsing of the ``[treaty]`` table, errors naming the key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shieldwall.model import parse_scope
from shieldwall.treaty import SanctionTerms, Threshold, TreatyConfig, TreatyTerms


def test_defaults() -> None:
    t = TreatyTerms()

    assert t.ban_duration == 4 * 3600
    assert t.alliance.window == 3600
    assert t.alliance.threshold == Threshold(members=5, attempts=20, per_member=1)
    assert t.friendly_fire.enabled
    assert t.quorum.levels == ("probation",)
    assert t.quorum.members == 2
    assert (t.blast_radius.trusted, t.blast_radius.member, t.blast_radius.probation) == (
        1000,
        100,
        10,
    )
    assert t.sanctions.factor == 2
    assert t.sanctions.max_bantime == 7 * 86400
    assert (t.sanctions.ipv4_prefix, t.sanctions.ipv6_prefix) == (24, 64)
    assert t.consult.members == 2
    assert t.consult.timeout == 600
    assert TreatyTerms.from_mapping({}) == t
    assert t.config() == TreatyConfig()


def test_a_full_table_parses() -> None:
    data: dict[str, Any] = {
        "ban-duration": "2h",
        "max-duration": "3d",
        "honour-rule-bantime": False,
        "protect-private": False,
        "allowlist": ["198.51.100.0/24"],
        "alliance": {
            "window": "30m",
            "granularity": "1m",
            "members": 4,
            "attempts": 12,
            "per-member": 2,
            "max-sources": 500,
            "rules": {"ssh-slow-bf_user-enum": {"members": 20, "per-member": 3}},
        },
        "friendly-fire": {"enabled": False, "successes": 2},
        "quorum": {"levels": ["probation", "member"], "members": 3, "window": "2h"},
        "blast-radius": {"window": "1d", "trusted": 50, "member": 20, "probation": 5},
        "sanctions": {
            "increment": True,
            "multipliers": [1, 2, 5],
            "max-bantime": "30d",
            "memory": "60d",
            "range": False,
            "ipv4-prefix": 16,
            "ipv6-prefix": 48,
            "range-sources": 10,
            "range-members": 4,
            "range-bantime": "2d",
        },
        "consult": {"members": 3, "timeout": "5m", "lookback": "1d", "max-open-per-member": 5},
    }

    t = TreatyTerms.from_mapping(data)

    assert t.ban_duration == 7200
    assert t.allowlist == (parse_scope("198.51.100.0/24"),)
    assert t.alliance.window == 1800
    assert t.alliance.granularity == 60
    assert t.alliance.threshold == Threshold(members=4, attempts=12, per_member=2)
    # a rule inherits the table's threshold for what it does not set
    assert t.alliance.threshold_for("ssh-slow-bf_user-enum") == Threshold(20, 12, 3)
    assert t.alliance.threshold_for("other") == t.alliance.threshold
    assert not t.friendly_fire.enabled
    assert t.quorum.levels == ("probation", "member")
    assert t.blast_radius.limit_for("member") == 20
    assert t.sanctions.multipliers == (1, 2, 5)
    assert t.sanctions.max_bantime == 30 * 86400
    assert not t.sanctions.range
    assert t.consult.lookback == 86400


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"ban-duration": "4x"}, "treaty.ban-duration"),
        ({"ban-duration": 0}, "treaty.ban-duration"),
        ({"max-duration": "400d"}, "treaty.max-duration"),
        ({"allowlist": ["nope"]}, "treaty.allowlist[0]"),
        ({"bogus": 1}, "treaty.bogus"),
        ({"alliance": {"members": 1}}, "treaty.alliance.members"),
        ({"alliance": {"members": "5"}}, "treaty.alliance.members"),
        ({"alliance": {"granularity": "2h"}}, "treaty.alliance.granularity"),
        ({"alliance": {"rules": {"sshd": {"attempts": 0}}}}, "treaty.alliance.rules.sshd.attempts"),
        ({"alliance": {"rules": {"sshd": {"bogus": 1}}}}, "treaty.alliance.rules.sshd.bogus"),
        ({"alliance": []}, "treaty.alliance"),
        ({"friendly-fire": {"successes": 0}}, "treaty.friendly-fire.successes"),
        ({"quorum": {"members": 1}}, "treaty.quorum.members"),
        ({"quorum": {"levels": ["root"]}}, "treaty.quorum.levels"),
        ({"blast-radius": {"member": 0}}, "treaty.blast-radius.member"),
        ({"sanctions": {"factor": 0.5}}, "treaty.sanctions.factor"),
        ({"sanctions": {"multipliers": [1, True]}}, "treaty.sanctions.multipliers"),
        ({"sanctions": {"ipv4-prefix": 4}}, "treaty.sanctions.ipv4-prefix"),
        ({"sanctions": {"range-members": 1}}, "treaty.sanctions.range-members"),
        ({"sanctions": {"range": "yes"}}, "treaty.sanctions.range"),
        ({"consult": {"members": 1}}, "treaty.consult.members"),
        ({"consult": {"timeout": True}}, "treaty.consult.timeout"),
    ],
)
def test_bad_values_name_their_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(key)}: "):
        TreatyTerms.from_mapping(data)


def test_escalation() -> None:
    s = SanctionTerms()

    assert [s.escalate(3600, n) / 3600 for n in range(9)] == [1, 2, 4, 8, 16, 32, 64, 128, 168]
    assert SanctionTerms(increment=False).escalate(3600, 5) == 3600
    m = SanctionTerms(multipliers=(1, 5, 30))
    assert [m.escalate(60, n) for n in range(5)] == [60, 300, 1800, 1800, 1800]
    assert s.escalate(30 * 86400, 3) == 30 * 86400  # never shorter than the base
