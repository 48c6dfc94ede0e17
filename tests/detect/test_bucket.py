"""Buckets: overflow at maxretry within findtime, event time, bounds, persistence hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.detect import EVIDENCE_CHARS, BucketRow, BucketSet
from shieldwall.model import Counters, parse_address

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
A = parse_address("192.0.2.1")
B = parse_address("192.0.2.2")

pytestmark = pytest.mark.usefixtures("detector_path")  # C and Python paths alike


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class TestOverflow:
    def test_alert_on_the_maxretry_th_hit(self) -> None:
        """Three hits within the window: the third raises the alert."""
        buckets = BucketSet(3, 60)

        assert buckets.add("sshd", A, at(0), "l0") is None
        assert buckets.add("sshd", A, at(10), "l1") is None
        alert = buckets.add("sshd", A, at(20), "l2")

        assert alert is not None
        assert ("sshd", A, at(0), at(20), 3) == (
            alert.rule,
            alert.source,
            alert.first,
            alert.last,
            alert.count,
        )
        assert alert.evidence == ("l0", "l1", "l2")

    def test_bucket_is_reset_after_an_alert(self) -> None:
        """After an overflow the source starts from zero."""
        buckets = BucketSet(2, 60)
        buckets.add("r", A, at(0), "x")
        buckets.add("r", A, at(1), "x")

        assert buckets.add("r", A, at(2), "x") is None
        assert buckets.add("r", A, at(3), "x") is not None

    def test_old_hits_leak_out(self) -> None:
        """Hits older than findtime before the newest one do not count."""
        buckets = BucketSet(3, 60)
        buckets.add("r", A, at(0), "x")
        buckets.add("r", A, at(30), "x")

        assert buckets.add("r", A, at(61), "x") is None
        assert buckets.add("r", A, at(62), "x") is not None

    def test_window_is_inclusive(self) -> None:
        """A hit exactly findtime before the newest still counts."""
        buckets = BucketSet(2, 60)
        buckets.add("r", A, at(0), "x")

        assert buckets.add("r", A, at(60), "x") is not None

    def test_sources_and_rules_are_separate(self) -> None:
        """Buckets are per (rule, source)."""
        buckets = BucketSet(2, 60)
        buckets.add("r", A, at(0), "x")
        buckets.add("other", A, at(0), "x")

        assert buckets.add("r", B, at(1), "x") is None
        assert buckets.add("r", A, at(1), "x") is not None

    def test_maxretry_one(self) -> None:
        """maxretry=1 alerts on every hit and keeps no state."""
        buckets = BucketSet(1, 60, bantime=3600.0)
        alert = buckets.add("r", A, at(0), "x")

        assert alert is not None
        assert alert.bantime == 3600.0
        assert len(buckets) == 0

    def test_out_of_order_hits(self) -> None:
        """Late lines are slotted in by time; they do not crash or skew the window."""
        buckets = BucketSet(3, 60)
        buckets.add("r", A, at(100), "late")
        buckets.add("r", A, at(50), "early")
        assert buckets.add("r", A, at(10), "too old") is None
        alert = buckets.add("r", A, at(70), "mid")

        assert alert is not None
        assert (at(50), at(100)) == (alert.first, alert.last)
        assert alert.evidence == ("early", "mid", "late")

    def test_evidence_is_truncated(self) -> None:
        """Evidence lines are cut to EVIDENCE_CHARS."""
        buckets = BucketSet(1, 60)
        alert = buckets.add("r", A, at(0), "x" * 5000)

        assert alert is not None
        assert len(alert.evidence[0]) == EVIDENCE_CHARS

    @pytest.mark.parametrize(
        ("maxretry", "findtime", "tracked"), [(0, 60, 1), (1, 0, 1), (1, 60, 0)]
    )
    def test_bad_parameters(self, maxretry: int, findtime: float, tracked: int) -> None:
        """Nonsense settings are refused."""
        with pytest.raises(ValueError, match="must be"):
            BucketSet(maxretry, findtime, tracked)


class TestBounds:
    def test_least_recently_touched_is_evicted(self) -> None:
        """Beyond max_tracked buckets the oldest-touched goes, and is counted."""
        counters = Counters()
        buckets = BucketSet(5, 60, max_tracked=2, counters=counters)
        buckets.add("r", A, at(0), "x")
        buckets.add("r", B, at(1), "x")
        buckets.add("r", A, at(2), "x")  # A is now the most recent
        c = parse_address("192.0.2.3")
        buckets.add("r", c, at(3), "x")

        assert len(buckets) == 2
        assert ("r", B) not in buckets
        assert ("r", A) in buckets
        assert counters.get("bucket_evicted") == 1

    def test_prune(self) -> None:
        """prune(now) drops buckets with nothing in the window."""
        buckets = BucketSet(5, 60)
        buckets.add("r", A, at(0), "x")
        buckets.add("r", B, at(100), "x")

        assert buckets.prune(at(120)) == 1
        assert ("r", A) not in buckets
        assert ("r", B) in buckets


class TestPersistence:
    def test_touched_export_restore(self) -> None:
        """Rows exported from one set rebuild the same buckets in another."""
        first = BucketSet(3, 60)
        first.touched()
        first.add("r", A, at(0), "a0")
        first.add("r", A, at(1), "a1")
        first.add("r", B, at(2), "b0")

        keys = first.touched()
        rows = first.export(keys)
        second = BucketSet(3, 60)
        second.restore(rows)

        assert {("r", A), ("r", B)} == keys
        assert set() == first.touched()
        assert second.add("r", B, at(3), "b1") is None
        alert = second.add("r", A, at(3), "a2")
        assert alert is not None
        assert alert.evidence == ("a0", "a1", "a2")
        assert at(0) == alert.first

    def test_first_touched_returns_every_live_key(self) -> None:
        """Tracking starts at the first call, which reports all buckets."""
        buckets = BucketSet(3, 60)
        buckets.add("r", A, at(0), "x")

        assert {("r", A)} == buckets.touched()

    def test_deleted_bucket_exports_empty_row(self) -> None:
        """An alert empties the bucket: its row has empty lists (delete it from the store)."""
        buckets = BucketSet(2, 60)
        buckets.touched()
        buckets.add("r", A, at(0), "x")
        buckets.add("r", A, at(1), "x")

        rows = buckets.export(buckets.touched())

        assert [BucketRow("r", "192.0.2.1", [], [])] == rows

    def test_evicted_keys_are_touched(self) -> None:
        """Eviction is a change the store must see."""
        buckets = BucketSet(5, 60, max_tracked=1)
        buckets.touched()
        buckets.add("r", A, at(0), "x")
        buckets.add("r", B, at(1), "x")

        assert {("r", A), ("r", B)} == buckets.touched()

    def test_touched_set_is_bounded(self) -> None:
        """If nobody collects, tracking stops instead of growing without bound."""
        counters = Counters()
        buckets = BucketSet(5, 60, max_tracked=2, counters=counters)
        buckets.touched()
        for i in range(20):
            buckets.add("r", parse_address(f"192.0.2.{i + 1}"), at(i), "x")

        assert counters.get("bucket_touched_overflow") == 1
        assert len(buckets.touched()) <= 2

    def test_restore_skips_bad_rows_and_trims(self) -> None:
        """Bad rows are counted; at most maxretry-1 hits are restored (no alert on restore)."""
        counters = Counters()
        buckets = BucketSet(3, 60, counters=counters)
        buckets.restore(
            [
                BucketRow("r", "not-an-ip", [1.0], ["x"]),
                BucketRow("r", "192.0.2.1", [float("nan")], ["x"]),
                BucketRow("r", "192.0.2.2", [at(i).timestamp() for i in range(5)], ["e3", "e4"]),
                BucketRow("r", "192.0.2.3", [], []),
            ]
        )

        assert counters.get("bucket_bad_row") == 2
        assert [
            BucketRow("r", "192.0.2.2", [at(3).timestamp(), at(4).timestamp()], ["e3", "e4"])
        ] == (buckets.export([("r", B)]))
        assert len(buckets) == 1


# --- properties ----------------------------------------------------------------------------

offsets = st.lists(st.floats(0, 10_000, allow_nan=False), max_size=60)


@given(
    times=offsets,
    maxretry=st.integers(1, 6),
    findtime=st.floats(1, 2_000, allow_nan=False),
    sources=st.lists(st.sampled_from([A, B]), min_size=60, max_size=60),
)
def test_never_alerts_below_maxretry_within_findtime(
    times: list[float], maxretry: int, findtime: float, sources: list[object]
) -> None:
    """Every alert stands on exactly maxretry hits of that source spanning at most findtime,
    whatever the order of the event times."""
    buckets = BucketSet(maxretry, findtime)
    seen: dict[object, list[datetime]] = {A: [], B: []}
    for offset, source in zip(times, sources, strict=False):
        when = at(offset)
        seen[source].append(when)
        alert = buckets.add("r", source, when, "x")  # type: ignore[arg-type]
        if alert is None:
            continue

        assert maxretry == alert.count
        assert alert.last - alert.first <= timedelta(seconds=findtime)
        inside = [t for t in seen[source] if alert.first <= t <= alert.last]
        assert len(inside) >= maxretry


@given(
    gaps=st.lists(st.floats(0, 500, allow_nan=False), max_size=60),
    maxretry=st.integers(1, 6),
    findtime=st.floats(1, 2_000, allow_nan=False),
)
def test_in_order_matches_a_simple_model(gaps: list[float], maxretry: int, findtime: float) -> None:
    """For in-order hits the bucket behaves like the obvious sliding-window counter."""
    buckets = BucketSet(maxretry, findtime)
    window: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        when = at(now)
        alert = buckets.add("r", A, when, "x")
        t = when.timestamp()
        window = [w for w in window if w >= t - findtime] + [t]
        expected = len(window) >= maxretry
        if expected:
            window = []

        assert expected == (alert is not None)
