"""The drill on small campaigns whose counts are worked out by hand, and its readers."""

from __future__ import annotations

import dataclasses
import gzip
import heapq
import ipaddress
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from shieldwall.detect.bucket import BucketSet
from shieldwall.drill import (
    STRATEGIES,
    DrillConfig,
    DrillEvent,
    merge,
    read_events,
    reorder,
    replay_files,
    run,
)
from shieldwall.drill.generate import Campaign, write_csv
from shieldwall.drill.io import FAIL, SUCCESS, event_of, row_of
from shieldwall.drill.replay import Reorder
from shieldwall.drill.score import percentile
from shieldwall.drill.strategies import Alone
from shieldwall.model import Address
from shieldwall.treaty import Threshold

HOUR = 1_699_999_200.0  # an hour boundary (sync-1h syncs on the hour)
T0 = HOUR + 100
S = ipaddress.IPv4Address("203.0.113.5")
N = ipaddress.IPv4Address("198.51.100.9")
KEYS = {
    "attempts",
    "landed",
    "stopped",
    "stopped_share",
    "sources_decided",
    "time_to_protection_ms",
    "false_bans",
}


def ev(dt: float, member: str, source: ipaddress.IPv4Address = S, **kw: Any) -> DrillEvent:
    return DrillEvent(T0 + dt, member, source, **kw)


def strategies(events: list[DrillEvent], config: DrillConfig) -> dict[str, Any]:
    result: dict[str, Any] = run(events, config).result()["strategies"]
    return result


def test_a_source_sweeping_three_members_counts_by_hand() -> None:
    # 5 attempts at a (t 0..4), then 5 at b (t 5..9), then 5 at c (t 100..104);
    # local rule: 3 hits within 10 minutes ban the source at that member for an hour.
    events = (
        [ev(t, "a") for t in range(5)]
        + [ev(t, "b") for t in range(5, 10)]
        + [ev(t, "c") for t in range(100, 105)]
    )
    config = DrillConfig(maxretry=3, findtime=600, bantime=3600)
    r = strategies(events, config)
    # alone: each member lets 3 in and stops the last 2
    assert r["alone"] | {"time_to_protection_ms": None} == {
        "attempts": 15,
        "landed": 9,
        "stopped": 6,
        "stopped_share": 0.4,
        "sources_decided": 1,
        "time_to_protection_ms": None,
        "false_bans": 0,
    }
    # the alliance decides on a's alert at t=2: a stops 2, b and c stop everything
    assert (r["alliance"]["landed"], r["alliance"]["stopped"]) == (3, 12)
    # poll-10s: b is protected from t=12 only, so b lets 3 in (bans at 7, stops 8, 9)
    assert (r["poll-10s"]["landed"], r["poll-10s"]["stopped"]) == (6, 9)
    # sync-1h: c reports at t=102, the next sync (on the hour) comes after the last event
    assert (r["sync-1h"]["landed"], r["sync-1h"]["stopped"]) == (9, 6)
    # time to protection at every member, from the first attempt (t=0)
    assert r["alliance"]["time_to_protection_ms"] == {"p50": 2000, "p99": 2000}
    assert r["poll-10s"]["time_to_protection_ms"] == {"p50": 12000, "p99": 12000}
    # alone shares nothing: never protected alliance-wide; sync had not synced yet
    assert r["alone"]["time_to_protection_ms"] == {"p50": None, "p99": None}
    assert r["sync-1h"]["time_to_protection_ms"] == {"p50": None, "p99": None}
    for s in r.values():
        assert set(s) == KEYS


def test_sync_shares_at_the_next_hour_once_three_members_reported() -> None:
    events = [
        ev(t, m) for m, base in (("a", 0), ("b", 10), ("c", 20)) for t in range(base, base + 3)
    ] + [ev(3600, "d"), ev(3601, "d")]
    r = strategies(events, DrillConfig(maxretry=3, bantime=7200))
    # the sync at HOUR + 3600 (t=3500) shares the source; d's two attempts come after it
    assert r["sync-1h"]["stopped"] == 2
    assert r["alone"]["stopped"] == 0
    assert r["sync-1h"]["time_to_protection_ms"]["p50"] == 3500 * 1000


def test_low_and_slow_below_every_local_threshold_is_caught_by_alliance_buckets() -> None:
    members = ["a", "b", "c", "d", "e"]
    events = [ev(60 * i, m) for i, m in enumerate(members)] + [
        ev(300 + 60 * i, m) for i, m in enumerate(members)
    ]
    config = DrillConfig(maxretry=3, threshold=Threshold(members=3, attempts=3))
    r = strategies(events, config)
    # no member sees 3 attempts: alone, poll and sync never ban
    for name in ("alone", "poll-10s", "sync-1h"):
        assert (r[name]["stopped"], r[name]["sources_decided"]) == (0, 0)
    # the third member's sighting (t=120) crosses 3 members / 3 attempts: the other 7 stop
    assert (r["alliance"]["landed"], r["alliance"]["stopped"]) == (3, 7)
    assert r["alliance"]["time_to_protection_ms"]["p50"] == 120_000


def _nat_events() -> list[DrillEvent]:
    # users behind one NAT address log in at a, then mistype once at each of 5 members
    out = [ev(0, "a", N, kind=SUCCESS, legit=True)]
    out += [ev(10 * (i + 1), m, N, legit=True) for i, m in enumerate("abcde")]
    out += [ev(100, "b", N, kind=SUCCESS, legit=True)]
    return out


def test_nat_users_with_successful_logins_are_not_banned_friendly_fire() -> None:
    config = DrillConfig(maxretry=3, threshold=Threshold(members=3, attempts=3))
    board = run(_nat_events(), config)
    r = board.result()
    assert r["legit_sources"] == 1
    for name, s in r["strategies"].items():
        assert s["false_bans"] == 0, name
        assert s["stopped"] == 0, name
    assert r["details"]["alliance"]["counters"]["refused.friendly-fire"] == 1
    # without the friendly-fire clause the same sums would ban them
    off = run(
        _nat_events(), DrillConfig(maxretry=3, threshold=Threshold(3, 3), friendly_fire=False)
    )
    assert off.result()["strategies"]["alliance"]["false_bans"] == 1
    assert off.result()["details"]["alliance"]["logins_blocked"] == 1


def test_generated_campaign_alliance_beats_alone_with_no_false_bans() -> None:
    campaign = Campaign(members=30, events=20_000, seed=3)
    events = list(campaign)
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))
    assert any(e.legit and e.kind == SUCCESS for e in events)
    assert any(e.legit and e.kind != SUCCESS for e in events)
    r = run(events).result()
    s = r["strategies"]
    assert s["alliance"]["stopped"] > s["poll-10s"]["stopped"] > s["alone"]["stopped"]
    assert s["alliance"]["false_bans"] == 0
    assert s["alone"]["false_bans"] == 0
    assert r["legit_sources"] > 0


def test_campaign_and_drill_are_deterministic() -> None:
    a = list(Campaign(members=20, events=5_000, seed=7))
    b = list(Campaign(members=20, events=5_000, seed=7))
    assert a == b
    assert a != list(Campaign(members=20, events=5_000, seed=8))
    assert run(a).result() == run(b).result()


def test_reorder_and_merge_put_events_in_time_order() -> None:
    events = [ev(t, "a") for t in (5, 1, 3, 2, 10, 7)]
    assert [e.time - T0 for e in reorder(events, slack=10)] == [1, 2, 3, 5, 7, 10]
    # an event later than the slack is replayed at the time already reached, never earlier
    late = list(reorder([ev(0, "a"), ev(100, "a"), ev(200, "a"), ev(50, "b")], slack=60))
    assert [(e.time - T0, e.member) for e in late] == [(0, "a"), (100, "a"), (100, "b"), (200, "a")]
    one, two = [ev(t, "a") for t in (1, 4)], [ev(t, "b") for t in (2, 3)]
    assert [e.member for e in merge(one, two)] == ["a", "b", "b", "a"]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(map(float, range(1, 101))), 0.99) == 99.0


def test_event_csv_reader(tmp_path: Path) -> None:
    text = (
        "time,member,source,kind,rule,legit\n"
        "2026-11-23T12:00:00Z,a,203.0.113.5,fail,ssh,0\n"
        "1795435201.5,b,198.51.100.9,success,,1\n"
        "2026-11-23 12:00:02,c,::ffff:203.0.113.5,,,\n"
        "garbage,c,203.0.113.5\n"
        "2026-11-23T12:00:03,c,not-an-ip\n"
        "2026-11-23T12:00:04,c,203.0.113.5,maybe\n"
    )
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    reader = read_events(path)
    got = list(reader)
    assert reader.fmt == "events"
    assert reader.skipped == 3
    assert [(e.member, str(e.source), e.kind, e.rule, e.legit) for e in got] == [
        ("a", "203.0.113.5", "fail", "ssh", False),
        ("b", "198.51.100.9", "success", "drill", True),
        ("c", "203.0.113.5", "fail", "drill", False),
    ]
    assert got[0].time == 1795435200.0
    assert got[1].time == 1795435201.5
    assert got[2].time == 1795435202.0


def test_unknown_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown header"):
        list(read_events(path))


# -- the fast path gives the same results ---------------------------------------------------


def _heap_reorder(
    events: list[DrillEvent], slack: float, max_buffer: int
) -> tuple[list[DrillEvent], int]:
    """The reorder as first written: one heap holding every buffered event."""
    heap: list[tuple[float, int, DrillEvent]] = []
    out: list[DrillEvent] = []
    out_time = newest = float("-inf")
    late = 0
    for seq, event in enumerate(events):
        e, t = event, event.time
        if t < out_time:
            late += 1
            e, t = dataclasses.replace(e, time=out_time), out_time
        newest = max(newest, t)
        heapq.heappush(heap, (t, seq, e))
        while heap and (heap[0][0] < newest - slack or len(heap) > max_buffer):
            out_time, _, first = heapq.heappop(heap)
            out.append(first)
    out += [heapq.heappop(heap)[2] for _ in range(len(heap))]
    return out, late


def test_reorder_gives_the_order_of_one_heap() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        t, events = 0.0, []
        jitter = rng.random() < 0.7
        for i in range(rng.randint(0, 40)):
            t += rng.choice([0, 0, 1, 2, 5])
            late = rng.choice([0, 0, 0, -3, -10, -50, 4]) if jitter else 0
            events.append(ev(t + late, f"m{i}"))
        slack, max_buffer = rng.choice([0, 1, 5, 20, 100]), rng.choice([1, 2, 3, 10, 1000])
        want, late_count = _heap_reorder(events, slack, max_buffer)
        r = Reorder(slack, max_buffer)
        assert list(r(events)) == want
        assert r.late == late_count
        rows = Reorder(slack, max_buffer)
        assert [event_of(x) for x in rows.rows([row_of(e) for e in events])] == want
        assert rows.late == late_count


def test_local_rule_is_bucketsets_window_bucket() -> None:
    # the strategies' inlined local rule against BucketSet itself: hits out of order, two
    # rules, IPv4 and IPv6 sources, maxretry 1..4 (within an hour: no pruning in between)
    rng = random.Random(11)
    sources: list[Address] = [S, N, ipaddress.IPv6Address("2001:db8::7")]
    for maxretry in (1, 2, 3, 4):
        config = DrillConfig(maxretry=maxretry, findtime=60, bantime=90)
        alone = Alone(config)
        buckets: dict[str, BucketSet] = {}
        bans: dict[tuple[str, Any], float] = {}
        for _ in range(3000):
            e = DrillEvent(
                T0 + rng.uniform(0, 3000),
                rng.choice("ab"),
                rng.choice(sources),
                rng.choice([FAIL, FAIL, FAIL, SUCCESS]),
                rng.choice(["r1", "r2"]),
            )
            banned = bans.get((e.member, e.source), float("-inf")) > e.time
            if not banned and e.kind == FAIL:
                bs = buckets.setdefault(e.member, BucketSet(maxretry, 60, 1_000_000))
                if bs.hit(e.rule, e.source, e.time, "") is not None:
                    key = (e.member, e.source)
                    bans[key] = max(bans.get(key, e.time), e.time + 90)
            assert alone.step(e) == banned
        assert alone.decided == {s for _, s in bans}


def _campaign_file(tmp_path: Path) -> Path:
    path = tmp_path / "campaign.csv.gz"
    write_csv(Campaign(members=25, events=8_000, seed=5), path)
    return path


def test_replay_files_equals_the_event_path_and_parallel_equals_serial(tmp_path: Path) -> None:
    path = _campaign_file(tmp_path)
    config = DrillConfig(maxretry=3)
    variants = {"strict": DrillConfig(maxretry=3, threshold=Threshold(2, 2))}
    events = run(reorder(read_events(path)), config, variants=variants)
    serial = replay_files([read_events(path)], config, variants=variants, jobs=1)
    parallel = replay_files([read_events(path)], config, variants=variants, jobs=2)
    want = events.result()
    assert want["strategies"]["alliance"]["stopped"] > want["strategies"]["alone"]["stopped"]
    assert serial.result() == want
    assert parallel.result() == want
    assert [s.name for s in parallel.strategies] == [*STRATEGIES, "strict"]
    for a, b, c in zip(events.strategies, serial.strategies, parallel.strategies, strict=True):
        assert a.decided == b.decided == c.decided
        assert a.protected_all == b.protected_all == c.protected_all
    assert [s.timeline for s in parallel.scores] == [s.timeline for s in events.scores]
    # three processes for five strategies, and two files merged by time
    three = replay_files([read_events(path)], config, variants=variants, jobs=3)
    assert three.result() == want
    twice = replay_files([read_events(path), read_events(path)], config, jobs=2)
    assert (
        twice.result()
        == run(merge(reorder(read_events(path)), reorder(read_events(path))), config).result()
    )


def test_a_worker_error_is_raised_by_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown header"):
        replay_files([read_events(path)], jobs=2)
