"""Lines handed to the detector as one block (``LineBlock``) give exactly what the same lines
give as a list: the detector scans the block as it is, and splits it only for the paths that
need the lines (an over-long, NUL, CR, invalid UTF-8 or non-ASCII line)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shieldwall.detect import Detector, Rule, builtin_rule
from shieldwall.detect.detector import tally_of
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from shieldwall.lines import LineBlock, short_lines
from tests.conftest import corpora_dir, skip_or_fail
from tests.detect.test_scan import LOOSE, PICKY
from tests.detect.test_scan import lines as scan_lines

NOW = datetime(2026, 3, 20, tzinfo=UTC)
MAX_LINE = 120  # its aligned windows are 60 bytes: lines of 60..120 fit but cost a split

# -- short_lines: never passes a too-long line ---------------------------------------------


@pytest.mark.parametrize("max_line", [*range(1, 41), 127, 128, 65535, 65536])
def test_short_lines_sees_every_too_long_line_wherever_it_starts(max_line: int) -> None:
    width = (max_line + 1) // 2
    for start in range(2 * width + 2):
        for before, after in ((b"\n" * start, b""), (b"\n" * start, b"\nx"), (b"", b"\n")):
            block = before[:start] + b"x" * (max_line + 1) + after
            assert not short_lines(block, max_line), (start, before, after)


@given(
    lengths=st.lists(st.integers(0, 80), max_size=40),
    max_line=st.integers(1, 70),
)
@example(lengths=[5, 6], max_line=5)
@example(lengths=[6], max_line=5)
def test_short_lines_is_safe_and_usually_decides(lengths: list[int], max_line: int) -> None:
    block = b"\n".join(b"y" * n for n in lengths)
    longest = max(lengths, default=0)
    if short_lines(block, max_line):
        assert longest <= max_line  # never a too-long line let through
    if longest < (max_line + 1) // 2:
        assert short_lines(block, max_line)  # short lines need no split to tell


# -- LineBlock: a list or a block, the same lines --------------------------------------------

line_lists = st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=8)


@given(lines=line_lists)
def test_both_forms_hold_the_same_lines(lines: list[bytes]) -> None:
    joined = LineBlock.joined(b"\n".join(lines), len(lines))
    listed = LineBlock(list(lines))
    assert joined == listed
    assert listed == joined
    assert len(joined) == len(listed) == joined.count == len(lines)
    assert joined.block == listed.block == b"\n".join(lines)
    assert list(joined) == joined.lines == lines
    assert joined.lines == listed.lines
    assert repr(joined) == repr(listed) == f"LineBlock({lines!r})"
    assert pickle.loads(pickle.dumps(joined)) == listed  # noqa: S301 - our own bytes
    for max_line in (1, 3, 6):
        want = all(len(line) <= max_line for line in lines)
        assert LineBlock.joined(b"\n".join(lines), len(lines)).fits(max_line) is want
        assert LineBlock(list(lines)).fits(max_line) is want


def test_count_tells_no_line_from_an_empty_line() -> None:
    assert LineBlock.joined(b"", 0).lines == []
    assert LineBlock.joined(b"", 1).lines == [b""]
    assert LineBlock.joined(b"", 0) != LineBlock.joined(b"", 1)
    assert LineBlock() == LineBlock([]) == LineBlock.joined(b"", 0)
    assert LineBlock([b"a"]) != LineBlock([b"b"])
    assert LineBlock([b"a", b""]) != LineBlock.joined(b"a", 1)
    assert LineBlock([b"a"]) != [b"a"]  # a LineBlock is no list
    with pytest.raises(ValueError, match="0 lines"):
        LineBlock.joined(b"x", 0)
    with pytest.raises(ValueError, match="-1 lines"):
        LineBlock.joined(b"", -1)
    with pytest.raises(TypeError, match="unhashable"):
        hash(LineBlock())


@given(
    parts=st.lists(st.tuples(line_lists, st.booleans()), max_size=5),
)
@example(parts=[([b""], True), ([], True), ([b""], False)])
def test_concat_keeps_every_line_in_order(parts: list[tuple[list[bytes], bool]]) -> None:
    blocks = [
        LineBlock.joined(b"\n".join(lines), len(lines)) if joined else LineBlock(list(lines))
        for lines, joined in parts
    ]
    flat = [line for lines, _ in parts for line in lines]
    got = LineBlock.concat(blocks)
    assert got.count == len(flat)
    assert got.block == b"\n".join(flat)
    assert got.lines == flat


def test_a_long_but_fitting_line_costs_a_split_and_is_kept() -> None:
    block = LineBlock.joined(b"a" * 100 + b"\nb", 2)
    assert block.fits(100)
    assert block._lines == [b"a" * 100, b"b"]  # split to tell, and kept
    assert not LineBlock.joined(b"a" * 101 + b"\nb", 2).fits(100)
    short = LineBlock.joined(b"a" * 40 + b"\nb", 2)
    assert short.fits(100)
    assert short._lines is None  # told without a split


# -- Detector.feed_many: the block gives what the list gives --------------------------------

SSHD_FAIL = "Mar  1 00:00:0{} h sshd[1]: Failed password for {} from 203.0.113.{} port 22 ssh2"

special = st.sampled_from(
    [
        b"x" * 59,
        b"x" * 60,
        b"x" * 61,
        b"x" * (MAX_LINE - 1),
        b"x" * MAX_LINE,
        b"x" * (MAX_LINE + 1),
        b"x" * 300,
        SSHD_FAIL.format(1, "root", 7).encode().ljust(MAX_LINE, b" "),
        SSHD_FAIL.format(1, "root", 7).encode().ljust(MAX_LINE + 1, b" "),
        SSHD_FAIL.format(2, "jos\u00e9", 7).encode(),  # non-ASCII: its own run
        SSHD_FAIL.format(3, "root\xff", 8).encode("latin-1"),  # invalid UTF-8
        SSHD_FAIL.format(4, "r\x00t", 9).encode(),
        SSHD_FAIL.format(5, "root", 9).encode() + b"\r",
        b"",
    ]
)
any_line = st.one_of(scan_lines(), special, scan_lines())
batches = st.lists(st.lists(any_line, max_size=30), max_size=5)


def _fail2ban_sshd() -> Rule:
    path = corpora_dir() / "fail2ban" / "filter.d" / "sshd.conf"
    if not path.is_file():
        skip_or_fail(f"no fail2ban corpus at {path.parent.parent} (set SHIELDWALL_CORPORA)")
    return load_fail2ban_rule(path, {"maxretry": "3"})[0]


@pytest.fixture(params=["native", "fail2ban"])
def rules(request: pytest.FixtureRequest, detector_path: str) -> list[Rule]:
    """The agent's rule kinds: native rules (a success rule among them), fail2ban's own
    filter; on the C and the Python detector path (``detector_path``)."""
    if request.param == "fail2ban":
        return [_fail2ban_sshd(), builtin_rule("sshd-success")]
    return [builtin_rule("sshd"), builtin_rule("sshd-success"), LOOSE, PICKY]


def _summary(rules: list[Rule], batches: Sequence[list[bytes]], *, block: bool, hits: bool) -> Any:
    det = Detector(rules, max_line=MAX_LINE)
    out = []
    for batch in batches:
        lines: Any = LineBlock.joined(b"\n".join(batch), len(batch)) if block else list(batch)
        d = det.feed_many(lines, NOW, hits=hits, tally=True)
        assert d.tally is not None
        tally = {(t.rule, t.source): (t.count, t.first, t.last) for t in d.tally.values()}
        out.append((d.hits, [repr(a) for a in d.alerts], tally))
    rows = sorted(repr(row) for row in det.export(det.touched()))
    return out, dict(det.counters.values), rows


COUNTED = ("lines", "hits", "alerts", "line_too_long", "invalid_host", "no_timestamp")
"""Counters that the line-by-line path counts as the block paths do (invalid UTF-8 and NUL
bytes are counted only by the former: a block never holds them)."""


def _line_by_line(rules: list[Rule], batches: Sequence[list[bytes]]) -> Any:
    """The reference outside ``feed_many``: ``feed`` line by line, hits counted per batch."""
    det = Detector(rules, max_line=MAX_LINE)
    out = []
    for batch in batches:
        hits, alerts = [], []
        for raw in batch:
            d = det.feed(raw, NOW)
            hits += d.hits
            alerts += d.alerts
        tally = {(t.rule, t.source): (t.count, t.first, t.last) for t in tally_of(hits).values()}
        out.append((sorted(map(repr, alerts)), tally))
    return out, {k: det.counters.get(k) for k in COUNTED}


@settings(
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
)  # the fixtures only choose the rules and the path: the same for every example
@given(batches=batches, hits=st.booleans())
def test_feed_many_block_equals_list(
    rules: list[Rule], batches: list[list[bytes]], hits: bool
) -> None:
    """Hits, alerts, tallies, counters and bucket rows, batch by batch; and what ``feed``
    gives line by line."""
    got = _summary(rules, batches, block=True, hits=hits)
    assert got == _summary(rules, batches, block=False, hits=hits)
    per_batch, counters = _line_by_line(rules, batches)
    assert [(sorted(alerts), tally) for _, alerts, tally in got[0]] == per_batch
    assert {k: got[1].get(k, 0) for k in COUNTED} == counters


def test_a_clean_block_is_scanned_without_a_split(rules: list[Rule]) -> None:
    batch = [SSHD_FAIL.format(i, "root", 7).encode() for i in range(8)]
    det = Detector(rules)  # max_line 65536: its windows hold newlines, no split to tell
    block = LineBlock.joined(b"\n".join(batch), len(batch))
    found = det.feed_many(block, NOW, hits=False, tally=True)
    assert block._lines is None  # never split: the block itself was scanned
    assert found.tally is not None
    assert [(t.rule, str(t.source), t.count) for t in found.tally.values()] == [
        (rules[0].name, "203.0.113.7", 8)
    ]
    assert found.alerts
    assert det.counters.get("lines") == 8
    assert det.counters.get("hits") == 8
    listed = Detector(rules).feed_many(batch, NOW, hits=False, tally=True)
    assert list(map(repr, found.alerts)) == list(map(repr, listed.alerts))


@pytest.mark.parametrize(
    "odd",
    [
        b"x" * (MAX_LINE + 1),  # too long
        SSHD_FAIL.format(9, "root", 7).encode().ljust(MAX_LINE + 1, b" "),  # too long, a hit else
        b"a\x00b",
        b"a\rb",
        b"\xff",
        "caf\u00e9".encode(),
    ],
)
def test_an_odd_line_takes_the_paths_of_the_list(rules: list[Rule], odd: bytes) -> None:
    batch = [SSHD_FAIL.format(i, "root", 7).encode() for i in range(3)]
    batch.insert(1, odd)
    want = _summary(rules, [batch], block=False, hits=True)
    got = _summary(rules, [batch], block=True, hits=True)
    assert got == want
    assert got[1]["hits"] == 3
    assert {k: got[1].get(k, 0) for k in COUNTED} == _line_by_line(rules, [batch])[1]
