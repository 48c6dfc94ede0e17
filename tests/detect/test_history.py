"""History is not news: a live detector (the agent's) counts hits older than their rule's
findtime at ``now`` as ``stale`` and never buckets them, on the C and the Python paths, for
native rules and fail2ban's own filters; a replaying one (``rules test``) keeps them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shieldwall.detect import Detector, builtin_rule
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from shieldwall.detect.rule import Rule
from shieldwall.loopback.alliance import failed_password
from tests.conftest import corpora_dir, skip_or_fail

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def _rules(kind: str) -> list[Rule]:
    if kind == "native":
        return [builtin_rule("sshd")]
    path = corpora_dir() / "fail2ban" / "filter.d" / "sshd.conf"
    if not path.is_file():
        skip_or_fail(f"no fail2ban corpus at {path.parent.parent} (set SHIELDWALL_CORPORA)")
    return [load_fail2ban_rule(path, {"maxretry": "5", "findtime": "10m"})[0]]


def _log(start: datetime, source: str, n: int) -> list[bytes]:
    return [
        failed_password(start + timedelta(seconds=i), "web1", source, port=40000 + i)
        .rstrip("\n")
        .encode()
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", ["native", "fail2ban"])
def test_failures_of_two_days_ago_are_counted_never_alerted(kind: str, detector_path: str) -> None:
    old = _log(NOW - timedelta(days=2), "203.0.113.5", 20)
    fresh = _log(NOW - timedelta(seconds=30), "203.0.113.6", 5)
    live = Detector(_rules(kind), live=True)
    got = live.feed_many(old + fresh, NOW)
    assert [str(a.source) for a in got.alerts] == ["203.0.113.6"]
    assert live.counters.get("stale") == 20
    assert live.counters.get("hits") == 25  # history is still counted as read and matched
    # the same lines replayed as of their own time (rules test, the drill) alert as before
    replay = Detector(_rules(kind))
    assert {str(a.source) for a in replay.feed_many(old + fresh, NOW).alerts} == {
        "203.0.113.5",
        "203.0.113.6",
    }
    assert replay.counters.get("stale") == 0


def test_a_hit_just_inside_findtime_still_counts(detector_path: str) -> None:
    rule = builtin_rule("sshd")
    findtime = timedelta(seconds=rule.findtime)
    lines = _log(NOW - findtime + timedelta(seconds=1), "203.0.113.7", 5)
    live = Detector([rule], live=True)
    assert [str(a.source) for a in live.feed_many(lines, NOW).alerts] == ["203.0.113.7"]
    assert live.counters.get("stale") == 0
