"""From a fail2ban filter file to a shieldwall Rule, a Jail, and a native rule file."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shieldwall.detect import Detector, load_rule, parse_rule
from shieldwall.detect.fail2ban import Jail, f2b_duration, load_fail2ban_rule
from shieldwall.detect.fail2ban.export import rule_toml
from shieldwall.errors import RuleError
from shieldwall.model import parse_scope

NOW = datetime(2005, 8, 14, 10, 0, 0, tzinfo=UTC)
FILTER = """
[INCLUDES]
before = common.conf

[Definition]
_daemon = demo
mode = normal
failregex = ^%(__prefix_line)sauth failure for '[^']*' from <HOST>$
            <mdre-<mode>>
mdre-normal =
mdre-aggressive = ^%(__prefix_line)sprobe from <HOST>$
ignoreregex = ^%(__prefix_line)sauth failure for 'monitor'
journalmatch = _SYSTEMD_UNIT=demo.service
"""
COMMON = """
[DEFAULT]
__prefix_line = \\s*\\S+ <_daemon>\\[\\d+\\]:\\s+
datepattern = {^LN-BEG}
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    (tmp_path / "common.conf").write_text(COMMON)
    path = tmp_path / "demo.conf"
    path.write_text(FILTER)
    return path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600.0),
        ("10m", 600.0),
        ("1h 30m", 5400.0),
        ("1d12h", 129600.0),
        ("2w", 1209600.0),
        ("1mo", 365.25 * 86400 / 12),
        ("-1", -1.0),
    ],
)
def test_fail2ban_durations(text: str, seconds: float) -> None:
    assert f2b_duration(text) == seconds


def test_bad_durations() -> None:
    for text in ("", "10 parsecs", "1h+__import__('os')"):
        with pytest.raises(RuleError):
            f2b_duration(text)


def test_jail_options() -> None:
    jail = Jail.from_options(
        "sshd",
        {
            "maxretry": "3",
            "findtime": "1h",
            "bantime": "-1",
            "bantime.increment": "true",
            "bantime.factor": "2",
            "bantime.multipliers": "1 2 4 8",
            "bantime.maxtime": "5w",
            "ignoreip": "127.0.0.1/8 ::1, 192.0.2.7 trusted.example",
            "port": "ssh",
            "mode": "aggressive",
        },
    )
    assert (jail.maxretry, jail.findtime, jail.bantime) == (3, 3600.0, None)
    assert jail.bantime_increment is True
    assert jail.bantime_factor == 2.0
    assert jail.bantime_multipliers == (1.0, 2.0, 4.0, 8.0)
    assert jail.bantime_maxtime == 5 * 7 * 86400
    assert jail.ignoreip == (
        parse_scope("127.0.0.0/8"),
        parse_scope("::1/128"),
        parse_scope("192.0.2.7/32"),
    )
    assert jail.ignore_names == ("trusted.example",)
    assert jail.other == {"port": "ssh", "mode": "aggressive"}
    with pytest.raises(RuleError, match="maxretry: not an integer"):
        Jail.from_options("x", {"maxretry": "many"})


def test_a_filter_becomes_a_rule_that_detects(demo: Path) -> None:
    rule, definition, jail = load_fail2ban_rule(demo, {"maxretry": "2", "bantime": "1h"})
    assert rule.dialect == "fail2ban"
    assert rule.name == "demo"
    assert (rule.maxretry, rule.findtime, rule.bantime) == (2, 600.0, 3600.0)
    assert rule.journalmatch == ("_SYSTEMD_UNIT=demo.service",)
    assert definition.failregex == rule.failregex
    assert jail.maxretry == 2
    det = Detector([rule])
    lines = [
        b"Jul 19 18:11:50 srv demo[1]: auth failure for 'bob' from 192.0.2.1",
        b"Jul 19 18:11:51 srv demo[1]: auth failure for 'monitor' from 192.0.2.1",
        b"Jul 19 18:11:52 srv demo[1]: probe from 192.0.2.1",
        b"Jul 19 18:11:53 srv demo[1]: auth failure for 'eve' from 192.0.2.1",
    ]
    found = det.feed_many(lines, NOW)
    assert [h.line[16:20] for h in found.hits] == ["srv ", "srv "]
    assert [(str(a.source), a.count) for a in found.alerts] == [("192.0.2.1", 2)]
    assert det.counters.get("ignored") == 1
    aggressive, _, _ = load_fail2ban_rule(demo, {"mode": "aggressive"}, name="Demo Aggressive")
    assert aggressive.name == "demo-aggressive"
    assert len(Detector([aggressive]).feed_many(lines, NOW).hits) == 3


def test_journal_lines_have_no_date(demo: Path) -> None:
    rule, _, _ = load_fail2ban_rule(demo, journal=True)
    assert rule.datepattern == "{NONE}"
    hits = Detector([rule]).feed(b"srv demo[1]: auth failure for 'x' from 192.0.2.1", NOW).hits
    assert [h.at for h in hits] == [NOW]


def test_usedns_no_turns_host_into_addr(tmp_path: Path) -> None:
    path = tmp_path / "f.conf"
    path.write_text("[Definition]\nusedns = no\nfailregex = ^from <HOST>$\n")
    rule, _, _ = load_fail2ban_rule(path)
    assert rule.failregex == ("^from <ADDR>$",)


def test_jail_limits_outside_the_rule_model_are_errors(demo: Path) -> None:
    with pytest.raises(RuleError, match="findtime"):
        load_fail2ban_rule(demo, {"findtime": "1y"})


def test_native_rule_file_round_trip(demo: Path, tmp_path: Path) -> None:
    rule, definition, jail = load_fail2ban_rule(
        demo, {"mode": "aggressive", "bantime.increment": "true", "ignoreip": "10.0.0.0/8"}
    )
    text, notes = rule_toml(rule, definition, jail)
    assert any("host names" in n for n in notes)
    assert any("bantime.increment" in n for n in notes)
    assert any("ignoreip (10.0.0.0/8)" in n for n in notes)
    again = parse_rule(tomllib.loads(text), "x", "x.toml")
    for key in ("name", "dialect", "failregex", "ignoreregex", "datepattern", "journalmatch"):
        assert getattr(again, key) == getattr(rule, key), key
    out = tmp_path / "demo.toml"
    out.write_text(text)
    loaded = load_rule(out)
    line = b"Jul 19 18:11:52 srv demo[1]: probe from 192.0.2.1"
    assert [h.source for h in Detector([loaded]).feed(line, NOW).hits] == [
        h.source for h in Detector([rule]).feed(line, NOW).hits
    ]


def test_toml_strings_survive_quotes_and_backslashes(tmp_path: Path) -> None:
    path = tmp_path / "q.conf"
    path.write_text(
        "[Definition]\nfailregex = ^user '(?P<u>[^']*)' said \"\\S+\" from <HOST>$\n"
        "datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S\n             {^LN-BEG}\n"
    )
    rule, definition, jail = load_fail2ban_rule(path)
    text, _ = rule_toml(rule, definition, jail)
    assert parse_rule(tomllib.loads(text), "q", "q").failregex == rule.failregex
    assert parse_rule(tomllib.loads(text), "q", "q").datepattern == "^%Y-%m-%d %H:%M:%S\n{^LN-BEG}"
