"""``shieldwall drill run --live``: a council and agents as real processes on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shieldwall.cli.live_drill import render_live
from shieldwall.cli.main import cli
from shieldwall.drill import DrillConfig
from shieldwall.loopback.live_drill import (
    LiveTiming,
    _intervals,
    _protected_everywhere,
    busiest,
)

pytestmark = pytest.mark.slow

T0 = 1_700_000_000
BOT = "203.0.113.66"
NAT = "198.51.100.20"


def campaign(path: Path) -> Path:
    """A bot sweeping members a, b, c (8 attempts 3 s apart at each, 150 s between them); a
    NAT whose users log in at all three and mistype at all three (legit); a single attempt
    at a, and one at a fourth member d (the least busy: left out by --members-limit 3)."""
    rows: list[tuple[int, str, str, str, int]] = []
    for member, start in (("a", 0), ("b", 150), ("c", 300)):
        rows += [(T0 + start + 3 * i, member, BOT, "fail", 0) for i in range(8)]
    rows += [(T0 + t, "abc"[(t // 15) % 3], NAT, "success", 1) for t in range(5, 330, 15)]
    rows += [(T0 + t, m, NAT, "fail", 1) for t, m in ((32, "a"), (47, "b"), (62, "c"))]
    rows += [(T0 + 100, "d", "192.0.2.1", "fail", 0), (T0 + 110, "a", "198.18.0.1", "fail", 0)]
    rows.sort()
    text = "time,member,source,kind,rule,legit\n"
    text += "".join(f"{t},{m},{s},{k},sshd,{legit}\n" for t, m, s, k, legit in rows)
    path.write_text(text)
    return path


def test_live_drill_protects_every_member_and_spares_the_nat(tmp_path: Path) -> None:
    args = ["drill", "run", str(campaign(tmp_path / "c.csv")), "--live", "--json"]
    # 330 s of campaign in 6.6 s; the alliance-wide threshold is low enough that the NAT's
    # three typos at three members reach it: only its successful logins (sshd-success
    # lines, read by the live agents) keep it from being decided
    args += ["--speed", "50", "--members-limit", "3", "--threshold", "3/3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    live = out["live"]
    assert (live["members"], live["members_total"], live["member_names"]) == (3, 4, ["a", "b", "c"])
    assert (live["events_total"], live["events_written"]) == (51, 50)
    assert (live["attempts_written"], live["logins_written"]) == (28, 22)
    assert out["inputs"][0]["rows"] == 51
    # the bot is decided and every member's enforcer applied it, after its first attempt
    assert live["sources_decided"] == live["sources_protected_everywhere"] == 1
    assert live["council_decisions"] == 1
    ttp = live["time_to_protection_ms"]
    assert 0 < ttp["p50"] == ttp["p99"] < 10_000
    # its 5th attempt at a comes 12 s of campaign (240 ms) after the first: not before
    assert ttp["p50"] >= 200
    # b and c are attacked 3 s and 6 s of wall time after the decision: all 16 were stopped
    assert live["landed_after_protection"] >= 16
    # the NAT: refused as friendly fire, never banned, none of its logins blocked
    assert live["false_bans"] == 0
    assert live["logins_blocked"] == 0
    assert live["council_counters"]["treaty.refused.friendly-fire"] >= 1
    # the simulated alliance decides the same source
    assert out["overlap"] == {
        "both": 1,
        "live_only": 0,
        "simulated_only": 0,
        "live_only_sample": [],
        "simulated_only_sample": [],
    }
    assert out["simulated"]["alliance"]["false_bans"] == 0
    assert live["settings"]["notes"] == []  # at 50× nothing hit a floor
    text = render_live(out)
    assert "the 3 busiest of 4 members (--members-limit 3)" in text
    assert "decided: 1 by both, 0 only live, 0 only simulated" in text


def test_timing_compresses_and_says_where_floors_apply() -> None:
    at_50 = LiveTiming.of(DrillConfig(), 50)
    assert (at_50.findtime, at_50.bantime, at_50.window) == (12, 288, 72.0)
    assert at_50.drill_config(DrillConfig()) == DrillConfig()
    fast = LiveTiming.of(DrillConfig(), 10_000)
    assert (fast.findtime, fast.bantime, fast.window) == (1, 1, 5.0)
    effective = fast.drill_config(DrillConfig())
    assert (effective.findtime, effective.bantime, effective.alliance_window) == (
        10_000,
        10_000,
        50_000,
    )
    assert len(fast.settings(DrillConfig())["notes"]) == 3
    with pytest.raises(ValueError, match="speed"):
        LiveTiming.of(DrillConfig(), 0)


def test_enforcer_records_and_protection_everywhere() -> None:
    spans = _intervals(
        [
            {"at": 0.0, "op": "sync", "scopes": []},
            {"at": 1.0, "op": "add", "scope": BOT, "expires": 3.0},
            {"at": 2.0, "op": "add", "scope": BOT, "expires": 5.0},  # extends
            {"at": 4.0, "op": "remove", "scope": BOT},
            {"at": 6.0, "op": "add", "scope": BOT, "expires": 7.0},
        ]
    )
    assert spans == {BOT: [(1.0, 4.0), (6.0, 7.0)]}
    assert _protected_everywhere([[(1.0, 4.0)], [(4.0, 9.0)]]) is None
    assert _protected_everywhere([[(1.0, 4.0), (6.0, 7.0)], [(4.0, 9.0)]]) == 6.0
    assert _protected_everywhere([[(1.0, 4.0)], []]) is None


def test_busiest_members_ties_by_name() -> None:
    from shieldwall.drill.io import DrillEvent
    from shieldwall.model import parse_address

    src = parse_address(BOT)
    events = [DrillEvent(float(i), m, src) for i, m in enumerate("bbaacd")]
    chosen, counts = busiest(events, 3)
    assert chosen == ["a", "b", "c"]
    assert counts["d"] == 1
