"""The block path of ``Detector.feed_many`` gives exactly the line-by-line result."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.detect import Detector, builtin_rule, parse_rule
from shieldwall.detect.scan import block_scanner
from shieldwall.model import Hit

NOW = datetime(2026, 3, 20, tzinfo=UTC)

# An unanchored rule whose \s and [^x] can run across a newline in a block.
LOOSE = parse_rule(
    {
        "failregex": [
            r"auth fail(?:ed)?\s+from\s+<HOST>\s*(?:\[[^\]]*\])?\s*$",
            r"bad login [^;]*; rhost=<HOST>",
        ],
        "maxretry": 2,
        "findtime": "1h",
    },
    "loose",
    "test",
)

# A prefilter literal that the regex itself does not require.
PICKY = parse_rule(
    {"prefilter": ["app:"], "failregex": [r"denied <HOST>$"], "maxretry": 3}, "picky", "test"
)

ips = st.sampled_from(
    [
        "203.0.113.7",
        "198.51.100.23",
        "2001:db8::5",
        "192.0.2.1",
        "::ffff:203.0.113.9",
        "999.1.1.1",
        "1.2.3",
    ]
)
users = st.text(alphabet="ab \t[]:;=x0.19", max_size=12)
stamps = st.sampled_from(
    [
        "Mar  1 00:00:05",
        "Mar  1 00:00:06",
        "Mar  1 00:00:06",
        "Mar 11 10:20:30",
        "2026-03-01T00:00:07Z",
        "garbage",
    ]
)

pytestmark = pytest.mark.usefixtures("detector_path")  # C and Python paths alike


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    ts, ip, user = draw(stamps), draw(ips), draw(users)
    kind = draw(st.integers(0, 14))
    text = [
        f"{ts} h sshd[1]: Failed password for {user} from {ip} port 22 ssh2",
        f"{ts} h sshd[1]: Invalid user {user} from {ip} port 22",
        f"{ts} h sshd[1]: Accepted password for {user} from {ip} port 22 ssh2",
        f"{ts} h app: auth failed from {ip}",
        f"{ts} h app: auth fail from {ip} [",
        f"] {ip}",
        f"{ts} h app: bad login {user}; rhost={ip} trailing",
        f'{ip} - - [01/Mar/2026:00:00:05 +0000] "GET /wp-login.php HTTP/1.1" 404 5 "-" "{user}"',
        f"{ts} h sshd[1]: Failed password for {user} from {ip} port 22 ssh2 ",
        "",
        f"{ts} h app: auth failed from",  # with the next line, a match across the newline
        f"{ip}",
        "]",
        f"{ts} h app: denied {ip}",
        f"{ts} h web: denied {ip}",  # no prefilter literal: never a hit
    ][kind]
    raw = text.encode()
    if draw(st.integers(0, 200)) == 0:  # rare: such a block goes line by line
        raw += draw(st.sampled_from([b"\xff", b"\x00", b"\r", b"x" * 300]))
    return raw


RULES = [builtin_rule("sshd"), builtin_rule("nginx-botsearch"), LOOSE, PICKY]


def line_by_line(batch: list[bytes]) -> tuple[list[object], list[object], dict[str, int]]:
    det = Detector(RULES, max_line=256)
    hits, alerts = [], []
    for raw in batch:
        d = det.feed(raw, NOW)
        hits += d.hits
        alerts += d.alerts
    return hits, alerts, dict(det.counters.values)


def by_block(batch: list[bytes], size: int) -> tuple[list[object], list[object], dict[str, int]]:
    det = Detector(RULES, max_line=256)
    hits, alerts = [], []
    for i in range(0, len(batch), size):
        d = det.feed_many(batch[i : i + size], NOW)
        hits += d.hits
        alerts += d.alerts
    return hits, alerts, dict(det.counters.values)


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)
@given(batch=st.lists(lines(), max_size=60), size=st.integers(2, 25))
def test_block_path_equals_line_path(batch: list[bytes], size: int) -> None:
    want_hits, want_alerts, want_counters = line_by_line(batch)
    got_hits, got_alerts, got_counters = by_block(batch, size)
    assert got_hits == want_hits
    assert sorted(map(repr, got_alerts)) == sorted(map(repr, want_alerts))
    for name in ("lines", "hits", "alerts", "invalid_host"):
        assert got_counters.get(name, 0) == want_counters.get(name, 0), name


@settings(
    max_examples=200, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)
@given(batch=st.lists(lines(), max_size=60), size=st.integers(2, 25))
def test_tally_counts_the_hits_per_rule_and_source(batch: list[bytes], size: int) -> None:
    """``tally=True`` (what the agent reports) agrees with the hits, block or line path,
    and the buckets see the same hits with or without it."""
    want_hits, want_alerts, _ = line_by_line(batch)
    expected: dict[tuple[str, object], list[float]] = {}
    for h in want_hits:
        assert isinstance(h, Hit)
        e = h.at.timestamp()
        entry = expected.setdefault((h.rule, h.source), [0.0, e, e])
        entry[0] += 1
        entry[1], entry[2] = min(entry[1], e), max(entry[2], e)
    det = Detector(RULES, max_line=256)
    tally: dict[tuple[str, object], list[float]] = {}
    alerts: list[object] = []
    for i in range(0, len(batch), size):
        d = det.feed_many(batch[i : i + size], NOW, hits=False, tally=True)
        assert d.hits == []
        assert d.tally is not None
        alerts += d.alerts
        for t in d.tally.values():
            got = tally.setdefault((t.rule, t.source), [0.0, t.first, t.last])
            got[0] += t.count
            got[1], got[2] = min(got[1], t.first), max(got[2], t.last)
    assert tally == expected
    assert sorted(map(repr, alerts)) == sorted(map(repr, want_alerts))


def test_hits_false_still_counts_and_alerts() -> None:
    line = "Mar  1 00:00:0{} h sshd[1]: Failed password for root from 203.0.113.7 port 2 ssh2"
    batch = [line.format(i).encode() for i in range(6)]
    det = Detector([builtin_rule("sshd")])
    d = det.feed_many(batch, NOW, hits=False)
    assert d.hits == []
    assert len(d.alerts) == 1
    assert det.counters.get("hits") == 6


def test_every_shipped_rule_is_scanned_by_block() -> None:
    from shieldwall.detect import builtin_rule_names

    for name in builtin_rule_names():
        assert block_scanner(builtin_rule(name)) is not None, name


def test_rules_with_whole_string_anchors_go_line_by_line() -> None:
    rule = parse_rule({"failregex": [r"\Afail from <HOST>\Z"]}, "anchors", "test")
    assert block_scanner(rule) is None
    det = Detector([rule])
    d = det.feed_many(
        [b"fail from 203.0.113.1", b"x fail from 203.0.113.2", b"fail from 203.0.113.3"], NOW
    )
    assert [str(h.source) for h in d.hits] == ["203.0.113.1", "203.0.113.3"]
