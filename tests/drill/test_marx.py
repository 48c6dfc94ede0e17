"""The drill on the real 9-sensor honeypot data (corpora README §3), read where it lies."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from shieldwall.drill import DrillConfig, read_events, reorder, run
from tests.conftest import corpora_dir, skip_or_fail


@pytest.fixture(scope="module")
def marx() -> Path:
    path = corpora_dir() / "aws-honeypot-marx" / "marx.csv.gz"
    if not path.is_file():
        skip_or_fail(f"marx corpus not found at {path}")
    return path


@pytest.fixture(scope="module")
def ssh_run(marx: Path) -> dict[str, Any]:
    # README §3's local rule: 3 hits within 10 minutes at that member
    result: dict[str, Any] = run(
        reorder(read_events(marx, port=22)), DrillConfig(maxretry=3)
    ).result()
    return result


def test_reader_reads_marx_as_it_is(marx: Path) -> None:
    reader = read_events(marx, port=22)
    events = list(reader)
    assert reader.fmt == "marx"
    assert reader.rows == 451_581
    assert reader.skipped == 0
    assert len(events) == 15_102
    assert len({e.source for e in events}) == 3_021
    assert len({e.member for e in events}) == 9
    first = next(iter(read_events(marx)))
    assert (str(first.source), first.member) == ("61.131.218.218", "groucho-oregon")
    assert first.time == 1362347639.0  # 2013-03-03 21:53:59 UTC


def test_tcp22_alliance_stops_strictly_more_than_alone(ssh_run: dict[str, Any]) -> None:
    s = ssh_run["strategies"]
    assert ssh_run["events"] == 15_102
    assert s["alliance"]["attempts"] == s["alone"]["attempts"] == 15_102
    assert s["alliance"]["stopped"] > s["alone"]["stopped"] > 0
    assert s["alliance"]["stopped"] >= s["poll-10s"]["stopped"] >= s["sync-1h"]["stopped"]


def test_tcp22_is_deterministic(marx: Path, ssh_run: dict[str, Any]) -> None:
    again = run(reorder(read_events(marx, port=22)), DrillConfig(maxretry=3)).result()
    assert again == ssh_run


def test_never_bans_an_address_not_in_the_input(marx: Path) -> None:
    events = list(itertools.islice(reorder(read_events(marx)), 40_000))
    seen = {e.source for e in events}
    board = run(events, DrillConfig(threshold=DrillConfig().threshold))
    s = board.result()["strategies"]
    assert s["alliance"]["stopped"] > s["alone"]["stopped"]
    for strategy in board.strategies:
        assert strategy.decided <= seen, strategy.name
        assert set(strategy.shared) <= seen, strategy.name
