"""The C engine for fail2ban filters gives exactly the pure-Python engine's answers.

fail2ban filters with ``maxlines = 1`` run in C (``_native.c``) when the detector scans an
ASCII block with ``feed_many(hits=False)`` and ``native=True``; everything else (and every
detector built with ``native=False``) runs :mod:`shieldwall.detect.fail2ban.engine`. Four
layers, each against its Python twin:

* the ``F-MLFID`` failure cache (``_native.FailureCache`` against
  :class:`~shieldwall.detect.fail2ban.multiline.FailureCache`) on random operations;
* the whole detector over every filter of fail2ban's corpus, with the option variants the
  conformance tool replays, over their sample logs (and loghub's sshd log);
* the whole detector over generated sshd lines through ``sshd.conf`` in each mode (connections
  linked by pid, odd addresses, planted addresses, year and DST changes, non-ASCII lines
  splitting blocks, ASCII control characters, a clock that moves between batches);
* the C path is really taken for ``sshd.conf``.

The detector results compared are the tally (count, first and last time per rule and source),
the alerts, the counters and the persisted bucket rows.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shieldwall.detect import Detector, Rule
from shieldwall.detect import native as c_path
from shieldwall.detect.fail2ban import engine as f2b_engine
from shieldwall.detect.fail2ban.dates import compile_datepattern
from shieldwall.detect.fail2ban.engine import CompiledFilter, Fail2banEngine
from shieldwall.detect.fail2ban.multiline import FailureCache
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from tests.conformance import load_tool
from tests.conftest import corpora_dir, skip_or_fail

NATIVE = c_path.NATIVE

MIN_FILTERS_IN_C: Final = 90
"""Corpus filters (default variants: 97, two filters have none) that must get a C engine (91
do)."""
PYTHON_ONLY: Final = {
    "ejabberd-auth": "maxlines = 2",
    "guacamole": "maxlines = 2",
    "mongodb-auth": "maxlines = 10",
    "zzz-sshd-obsolete-multiline": "maxlines = 10",
    "named-refused": "a negated class inside a set",
    "pure-ftpd": "a non-ASCII literal",
}
"""The corpus filters that may stay in Python (in any variant), and why; every variant of
any other filter must run in C."""

TEST_NOW: Final = datetime(2005, 8, 14, 10, 0, 0, tzinfo=UTC)  # the conformance tool's "now"
NOW: Final = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _needs_the_extension() -> None:
    if NATIVE is None:
        skip_or_fail("the C extension is not built (apt-get install gcc libpcre2-dev; reinstall)")


def _corpus() -> Path:
    root = corpora_dir() / "fail2ban"
    if not (root / "filter.d").is_dir():
        skip_or_fail(f"no fail2ban corpus at {root} (set SHIELDWALL_CORPORA)")
    return root


# ------------------------------------------------------------------ the F-MLFID cache

NAMES: Final = (
    "user",
    "ip4",
    "ip6",
    "dns",
    "nofail",
    "mlfforget",
    "mlfgained",
    "mlfid",
    "alt_user",
)
VALUES: Final = [None, "", "root", "admin", "é", "x y", "192.0.2.1", "0"]
IDS: Final = ["1", "2", "3", "4", "5", "h sshd[6]:"]
CLOCK: Final = [0.0, 0.1, 299.9, 300.0, 300.1, 600.0, 1000.0, 1299.999, 1300.0, 1300.0001, -5.0]

cache_op = st.one_of(
    st.tuples(
        st.just("merge"),
        st.sampled_from(IDS),
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=5),
        st.one_of(st.none(), st.sampled_from(CLOCK)),
    ),
    st.tuples(st.just("pending"), st.sampled_from(IDS)),
    st.tuples(st.just("clear")),
)


def _seen(groups: dict[str, Any]) -> dict[str, object]:
    """The groups as compared: None values dropped (the C cache may omit them), sets as
    their type name and sorted members (``users`` must be a ``set``)."""
    out: dict[str, object] = {}
    for key, value in groups.items():
        if value is None:
            continue
        if isinstance(value, (set, frozenset, list, tuple)):
            value = (type(value).__name__, sorted(value))
        out[key] = value
    return out


def _cache_run(cache: Any, ops: Sequence[tuple[Any, ...]]) -> list[object]:
    out: list[object] = []
    for step in ops:
        if step[0] == "merge":
            _, mlfid, groups, now = step
            out.append(_seen(cache.merge(mlfid, dict(groups), now)))  # merge may change groups
        elif step[0] == "pending":
            out.append(cache.pending(step[1]))
        else:
            out.append(cache.clear())
        out.append(len(cache))
    return out


def _m(key: str, now: float | None = None, /, **groups: str | None) -> tuple[Any, ...]:
    return ("merge", key, groups, now)


@settings(
    max_examples=400, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    ops=st.lists(cache_op, max_size=40),
    size=st.integers(1, 4),
    max_age=st.sampled_from([300.0, 300.0, 0.0, 0.5]),
)
# an id expires exactly max_age after it was first cached (merging does not refresh it)
@example(
    ops=[
        _m("1", 1000.0, ip4="192.0.2.1", user="u"),
        _m("1", 1299.999),
        _m("1", 1300.0),
        _m("1", 1300.0),
        _m("2", 0.1, ip4="192.0.2.2"),
        _m("2", 300.1),
    ],
    size=3,
    max_age=300.0,
)
# a full cache drops ids from the front: the expired ones and one more
@example(
    ops=[_m("x", 0.0), _m("y", 200.0), _m("z", 350.0), _m("y", 351.0), _m("x", 352.0)],
    size=2,
    max_age=300.0,
)
@example(
    ops=[_m("x", 0.0), _m("y", 10.0), _m("z", 400.0), _m("y", None), _m("w", None), _m("z")],
    size=2,
    max_age=300.0,
)
@example(  # an id cached without a clock never expires, and counts as live when evicting
    ops=[_m("x"), _m("y", 5.0), _m("z", 1e9), _m("x", 1e9), _m("y", 1e9)],
    size=2,
    max_age=300.0,
)
# F-MLFFORGET ends an existing entry (the merged groups are still returned); on an unknown id
# it caches nothing
@example(
    ops=[
        _m("1", 5.0, user="root", ip4="192.0.2.1", nofail="x"),
        _m("1", 6.0, mlfforget="closed", mlfid="1"),
        _m("1", 7.0),
        _m("2", 7.0, mlfforget="closed", user="a"),
        _m("2", 8.0),
    ],
    size=3,
    max_age=300.0,
)
# a success (F-MLFGAINED) resets a pending failure; a helper after a pending failure is one
@example(
    ops=[
        _m("1", 1.0, user="root"),
        ("pending", "1"),
        _m("1", 2.0, user="root", mlfgained="Accepted", mlfforget="Accepted"),
        _m("2", 1.0, user="root"),
        ("pending", "2"),
        _m("2", 2.0, nofail="helper", ip4="192.0.2.9"),
        _m("2", 3.0, nofail="helper"),
        ("pending", "3"),
        _m("3", 3.0, nofail="x"),
    ],
    size=4,
    max_age=300.0,
)
# two user names make a success a failure; an empty user name is no user name
@example(
    ops=[
        _m("1", user="root", nofail="Failed"),
        _m("1", user="admin", mlfgained="Accepted", mlfforget="x"),
        _m("2", user="", nofail="Failed"),
        _m("2", user="é", mlfgained="Accepted"),
        _m("2", user="root", mlfgained=""),
        ("clear",),
        _m("2", user="é", mlfgained="Accepted"),
    ],
    size=3,
    max_age=300.0,
)
def test_c_failure_cache_answers_as_the_python_one(
    ops: list[tuple[Any, ...]], size: int, max_age: float
) -> None:
    assert NATIVE is not None
    c = NATIVE.FailureCache(NAMES, size, max_age)
    python = FailureCache(size, max_age)
    assert _cache_run(c, ops) == _cache_run(python, ops)


def test_c_failure_cache_defaults_are_fail2bans() -> None:
    """100 ids, five minutes: as ``FailureCache()`` (and fail2ban's ``Utils.Cache``)."""
    assert NATIVE is not None
    c = NATIVE.FailureCache(NAMES)
    python = FailureCache()
    ops = [_m(str(i), float(i), user=f"u{i}", ip4="192.0.2.1") for i in range(101)]
    ops += [_m("0", 101.0), _m("1", 301.0), _m("2", 302.0), _m("100", 399.0), _m("100", 400.5)]
    got = _cache_run(c, ops)
    assert got == _cache_run(python, ops)
    assert got[201] == 100  # the 101st id pushed the first one out


# ------------------------------------------------------------------ the whole detector

Batches = list[list[bytes]]


def _replay(
    rules: Sequence[Rule],
    tz: tzinfo,
    batches: Batches,
    nows: Sequence[datetime],
    *,
    native: bool,
    hits: bool = False,
    max_line: int = 65536,
) -> tuple[list[object], Detector]:
    """Everything the detector tells, batch by batch, and the detector."""
    det = Detector(rules, tz=tz, max_line=max_line, native=native)
    out: list[object] = []
    for batch, now in zip(batches, nows, strict=True):
        found = det.feed_many(batch, now, hits=hits, tally=True)
        assert found.tally is not None
        if hits:  # the per-line path: one Hit per counted hit
            assert len(found.hits) == sum(t.count for t in found.tally.values())
        out.append([repr(a) for a in found.alerts])
        out.append(sorted((repr(k), repr(t)) for k, t in found.tally.items()))
        out.append(sorted(repr(row) for row in det.export(det.touched())))
    out.append(sorted(det.counters.values.items()))
    return out, det


def _batches(lines: list[bytes], size: int) -> Batches:
    return [lines[i : i + size] for i in range(0, len(lines), size)] or [[]]


def _in_c(det: Detector) -> list[bool]:
    """Per rule: whether its fail2ban engine runs in C."""
    out = []
    for unit in det._units:
        assert isinstance(unit.matcher, Fail2banEngine)
        out.append(unit.matcher.native is not None)
    return out


Case = tuple[str, Rule, list[bytes]]


@functools.cache
def _corpus_cases() -> tuple[Case, ...]:
    """(label, rule, lines) for every filter variant the conformance tool replays, with the
    lines it feeds that variant (journal variants get their ``test.prefix-line``); each
    filter's default variant also gets its whole sample file, comments included."""
    root = _corpus()
    tool = load_tool("fail2ban_conformance")
    cases: list[Case] = []
    for name in tool.root_filters(root):
        runner = tool._Runner(root, name)
        fed: dict[str, list[bytes]] = {}
        for _file, _number, line, _expected, tests in runner.lines():
            for variant, options in tests:
                text = line
                if variant.journal and options.get("test.prefix-line"):
                    text = str(options["test.prefix-line"]) + line
                fed.setdefault(variant.name, []).append(
                    text.encode("utf-8", errors="surrogateescape")
                )
        for key, variant in runner.variants.items():
            cases.append((key, variant.rule, fed.get(key, [])))
        sample = root / "fail2ban" / "tests" / "files" / "logs" / name
        if sample.is_file():
            raw = [line.rstrip(b"\r") for line in sample.read_bytes().split(b"\n")]
            default = runner.variants.get(name) or runner.variant({})
            cases.append((f"{name} (whole file)", default.rule, raw))
    return tuple(cases)


def _sshd(options: dict[str, str] | None = None, name: str = "sshd", journal: bool = False) -> Rule:
    root = _corpus()
    rule, _, _ = load_fail2ban_rule(
        root / "filter.d" / "sshd.conf",
        options or {},
        name=name,
        search=[root / "filter.d"],
        journal=journal,
    )
    return rule


def _loghub(name: str) -> list[bytes]:
    path = corpora_dir() / "loghub" / name.split("_")[0] / f"{name}.log"
    if not path.is_file():
        skip_or_fail(f"no loghub log at {path} (set SHIELDWALL_CORPORA)")
    return [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n")]


RUNS: Final = [
    # (now, seconds the clock moves per batch, lines per batch: 0 = one batch)
    (TEST_NOW, 0, 64),
    (TEST_NOW, 0, 0),
    (NOW, 0, 64),
    (NOW, 150, 16),  # the failure cache's ids expire between batches
]


def _compare(label: str, rules: Sequence[Rule], lines: list[bytes], tz: tzinfo) -> Detector:
    """Every run of ``RUNS``, C against Python; returns the last C detector."""
    det: Detector | None = None
    for start, step, size in RUNS:
        batches = _batches(lines, size or max(len(lines), 1))
        nows = [start + timedelta(seconds=step * i) for i in range(len(batches))]
        c, det = _replay(rules, tz, batches, nows, native=True)
        python, _ = _replay(rules, tz, batches, nows, native=False)
        assert c == python, (label, start, step, size)
    assert det is not None
    return det


def test_every_corpus_filter_answers_in_c_as_in_python() -> None:
    """Every filter of fail2ban's corpus, each variant the conformance tool uses, over its
    sample lines: by batches of 64 and in one batch, at the tool's "now" and at another,
    with a clock that stands still and one that moves between batches."""
    tool = load_tool("fail2ban_conformance")
    cases = _corpus_cases()
    assert len({label.split("{")[0].split(" ")[0] for label, _, _ in cases}) == 99
    lines = 0
    for label, rule, fed in cases:
        _compare(label, [rule], fed, tool.TIMEZONE)
        lines += len(fed)
    assert lines > 3000


def test_loghub_sshd_log_answers_in_c_as_in_python() -> None:
    """Real sshd brute force (loghub OpenSSH_2k, and the sshd lines of Linux_2k) through
    sshd.conf in modes normal, aggressive and ddos, all in one detector."""
    rules = [
        _sshd({}, "sshd"),
        _sshd({"mode": "aggressive"}, "sshd-aggressive"),
        _sshd({"mode": "ddos"}, "sshd-ddos"),
    ]
    dets = [_compare(name, rules, _loghub(name), UTC) for name in ("OpenSSH_2k", "Linux_2k")]
    det = Detector(rules[:1], native=True)
    found = det.feed_many(_loghub("OpenSSH_2k"), NOW, hits=False, tally=True)
    assert found.tally is not None
    assert sum(t.count for t in found.tally.values()) > 500
    assert found.alerts
    assert [_in_c(d) for d in dets] == [[True, True, True]] * 2


def test_most_corpus_filters_run_in_c() -> None:
    """The C engine is what ``native.fail2ban_filter`` builds, for every filter it can run:
    sshd.conf and at least ``MIN_FILTERS_IN_C`` of the corpus, every one but those of
    ``PYTHON_ONLY`` (in any variant); never one with ``maxlines > 1``."""
    in_c: set[str] = set()
    in_python: set[str] = set()
    for label, rule, _ in _corpus_cases():
        compiled = rule.fail2ban
        assert compiled is not None
        built = c_path.fail2ban_filter(compiled)
        det = Detector([rule], native=True)
        assert _in_c(det) == [built is not None], label
        assert _in_c(Detector([rule], native=False)) == [False]
        if compiled.maxlines > 1:
            assert built is None, label
        if built is None:
            in_python.add(label.split("{")[0].split(" ")[0])
        elif "{" not in label and "(" not in label:
            in_c.add(label)
    assert "sshd" in in_c
    assert in_python <= set(PYTHON_ONLY), sorted(in_python - set(PYTHON_ONLY))
    assert len(in_c) >= MIN_FILTERS_IN_C, sorted(in_python)


def test_filters_c_cannot_run_stay_in_python() -> None:
    """``fail2ban_filter`` refuses a multi-line filter, a ``distinct`` field and a regex
    without an exact PCRE2 rewrite (a non-ASCII literal)."""
    dates = compile_datepattern(None)
    plain = r"^\S+ \S+ \S+ \S+ app: bad login for <F-USER>\S+</F-USER> from <HOST>$"
    ok = CompiledFilter.build("t", [plain], dates=dates)
    assert c_path.fail2ban_filter(ok) is not None
    refused = [
        CompiledFilter.build("t", [plain], dates=dates, maxlines=2),
        CompiledFilter.build("t", [plain], dates=dates, distinct="user"),
        CompiledFilter.build("t", [plain.replace("bad", "mauvais é")], dates=dates),
    ]
    for compiled in refused:
        assert c_path.fail2ban_filter(compiled) is None


# ------------------------------------------------------------------ generated sshd lines

PIDS: Final = ["1", "2", "3", "4242"]
ADDRS: Final = [
    "203.0.113.7",
    "203.0.113.7",
    "203.0.113.7",
    "198.51.100.23",
    "198.51.100.23",
    "2001:db8::5",
    "192.0.2.1",
    "300.1.1.1",
    "01.2.3.4",
    "010.000.000.001",
    "1.2.3",
    "::ffff:203.0.113.9",
    "fe80::1%eth0",
    "host.example.org",
    "localhost",
]
USERS = st.one_of(
    st.sampled_from(
        [
            "root",
            "admin",
            "",
            "x y",
            "1.2.3.4",  # a second address in the user name
            "x from 5.6.7.8 port 22",
            "from",
            "invalid user z",
            "é",
            "josé",
            ":",
            "(a)",
        ]
    ),
    st.text(alphabet="ab .:-19[]\t\x1c\x1f", max_size=6),
)
MESSAGES: Final = [
    "Failed password for {user} from {addr} port {port} ssh2",
    "Failed password for invalid user {user} from {addr} port {port} ssh2",
    "Failed publickey for {user} from {addr} port {port} ssh2: RSA SHA256:abc",
    "Failed publickey for invalid user {user} from {addr} port {port} ssh2: RSA SHA256:abc",
    "Failed none for invalid user {user} from {addr} port {port} ssh2",
    "Failed keyboard-interactive/pam for {user} from {addr} port {port} ssh2",
    "error: PAM: Authentication failure for {user} from {addr}",
    "Invalid user {user} from {addr} port {port}",
    "Invalid user {user} from {addr}",
    "Accepted publickey for {user} from {addr} port {port} ssh2: ED25519 SHA256:xyz",
    "Accepted password for {user} from {addr} port {port} ssh2",
    "Connection closed by {addr} port {port} [preauth]",
    "Connection closed by {addr} port {port}",
    "Connection closed by invalid user {user} {addr} port {port} [preauth]",
    "Connection closed by authenticating user {user} {addr} port {port} [preauth]",
    "Connection reset by {addr} port {port}",
    "Disconnected from {addr} port {port}",
    "Disconnected from invalid user {user} {addr} port {port} [preauth]",
    "Disconnected from authenticating user {user} {addr} port {port} [preauth]",
    "Received disconnect from {addr} port {port}:11: Bye Bye [preauth]",
    "Received disconnect from {addr} port {port}:11: disconnected by user",
    "Received disconnect from {addr} port {port}:3: com.jcraft.jsch.JSchException: Auth fail",
    "Received disconnect from {addr}: 14: No supported authentication methods available",
    # colon-separated text after the address: only some of it reads as an IPv6 address
    "Received disconnect from {addr} port {port}:11:22:33:44:55:66: Bye",
    "Received disconnect from {addr} port {port}:1:2:3:4:5:6:7: x",
    "Received disconnect from {addr} port {port}:11: Bye 2001:db8::1",
    "Received disconnect from {addr} port {port}:11: ::1 says bye",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost={addr}  user={user}",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost={addr}",
    "pam_unix(sshd:auth): check pass; user unknown",
    "Disconnecting: Too many authentication failures [preauth]",
    "Disconnecting: Too many authentication failures for {user} [preauth]",
    "error: maximum authentication attempts exceeded for {user} from {addr} port {port} ssh2 "
    "[preauth]",
    "error: maximum authentication attempts exceeded for invalid user {user} from {addr} port "
    "{port} ssh2 [preauth]",
    "Disconnecting authenticating user {user} {addr} port {port}: Change of username or "
    "service not allowed: (a,ssh-connection) -> (b,ssh-connection) [preauth]",
    "User {user} from {addr} not allowed because not listed in AllowUsers",
    "User {user} not allowed because account is locked",
    "ROOT LOGIN REFUSED FROM {addr}",
    "refused connect from {user} ({addr})",
    "Did not receive identification string from {addr}",
    "Timeout before authentication for connection from {addr} to 10.0.0.1, pid = 1",
    "Bad protocol version identification 'GET / HTTP/1.1' from {addr} port {port}",
    "kex_exchange_identification: Connection closed by remote host",
    "Unable to negotiate with {addr} port {port}: no matching key exchange method found. "
    "Their offer: diffie-hellman-group1-sha1 [preauth]",
    "SSH: Server;Ltype: Version;Remote: {addr}-{port};Protocol: 2.0;Client: libssh2_1.4.3",
    "Read from socket failed: Connection reset by peer [preauth]",
    "Connection from {addr} port {port} on 10.0.0.1 port 22",
    "Postponed keyboard-interactive for invalid user {user} from {addr} port {port} ssh2",
    "reverse mapping checking getaddrinfo for {user} [{addr}] failed - POSSIBLE BREAK-IN ATTEMPT!",
]
SCENARIOS: Final = [
    # (now, syslog stamps around it)
    (
        datetime(2026, 3, 20, 9, 0, 30, tzinfo=UTC),
        ["Mar 20 09:59:59", "Mar 20 10:00:00", "Mar 20 10:00:59", "Mar 20 10:01:00"],
    ),
    (  # a change of year (Dec 31 is last year's), in UTC and in Berlin
        datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC),
        ["Dec 31 23:59:58", "Dec 31 23:59:59", "Jan  1 00:00:00", "Jan  1 01:00:05"],
    ),
    (  # Berlin's summer time begins at 02:00 local on 29 March 2026
        datetime(2026, 3, 29, 2, 0, 0, tzinfo=UTC),
        ["Mar 29 01:59:59", "Mar 29 02:30:00", "Mar 29 03:00:00", "Mar 29 03:00:01"],
    ),
    (  # ... and ends at 03:00 local on 25 October (02:00-03:00 comes twice)
        datetime(2026, 10, 25, 3, 0, 0, tzinfo=UTC),
        ["Oct 25 01:59:59", "Oct 25 02:00:00", "Oct 25 02:30:00", "Oct 25 03:00:00"],
    ),
]
OTHER_STAMPS: Final = [
    "",  # no date: the last dated line's
    "2026-03-20T10:00:00.250+01:00",
    "2026-03-20 10:00:00",
    "Foo  1 00:00:05",
]
SUFFIXES: Final = ["", "", "", "", "", " ", "\t", "\x1c", " [preauth]", " " + "z" * 1100]
MAX_LINE: Final = 4096


@st.composite
def sshd_lines(draw: st.DrawFn, stamps: list[str]) -> bytes:
    stamp = draw(st.sampled_from(stamps + OTHER_STAMPS))
    host = draw(st.sampled_from(["srv", "srv", "h.example.org", ""]))
    daemon = draw(
        st.sampled_from(["sshd[{pid}]", "sshd[{pid}]", "sshd-session[{pid}]", "sshd"])
    ).format(pid=draw(st.sampled_from(PIDS)))
    message = draw(st.sampled_from(MESSAGES)).format(
        user=draw(USERS), addr=draw(st.sampled_from(ADDRS)), port=draw(st.sampled_from(["22", "0"]))
    )
    prefix = " ".join(part for part in (stamp, host, daemon + ":") if part)
    if draw(st.integers(0, 9)) == 0:  # sometimes the journal's form: no date, no host
        prefix = daemon + ":"
    suffix = draw(st.sampled_from(SUFFIXES))
    if draw(st.integers(0, 59)) == 0:  # rarely, longer than max_line: the batch goes by line
        suffix = " " + "y" * MAX_LINE
    return f"{prefix} {message}{suffix}".encode()


@st.composite
def sshd_runs(draw: st.DrawFn) -> tuple[int, list[bytes]]:
    scenario = draw(st.integers(0, len(SCENARIOS) - 1))
    lines = draw(st.lists(sshd_lines(SCENARIOS[scenario][1]), min_size=2, max_size=40))
    times = draw(st.integers(1, 3))  # the same connections again, interleaved
    if times > 1:
        lines = draw(st.permutations(lines * times))
    if draw(st.booleans()):  # all ASCII: whole blocks for the C engine
        lines = [line for line in lines if line.isascii()]
    return scenario, lines


@functools.cache
def _sshd_rules() -> tuple[Rule, ...]:
    return (
        _sshd({"maxretry": "3"}, "sshd"),
        _sshd({"mode": "aggressive", "maxretry": "2"}, "sshd-aggressive"),
        _sshd({"mode": "ddos"}, "sshd-ddos"),
        _sshd({"mode": "extra", "maxretry": "2", "findtime": "30"}, "sshd-extra"),
        _sshd({"logtype": "journal", "maxretry": "2"}, "sshd-journal", journal=True),
    )


PLANTED = [
    b"Mar 20 10:00:00 srv sshd[1]: Failed password for invalid user 1.2.3.4 from 5.6.7.8 "
    b"port 22 ssh2",
    b"Mar 20 10:00:00 srv sshd[1]: Failed password for x from 1.2.3.4 from 5.6.7.8 port 22 ssh2",
    b"Mar 20 10:00:01 srv sshd[1]: Disconnecting: Too many authentication failures [preauth]",
    b"Mar 20 10:00:01 srv sshd[2]: Invalid user x from 198.51.100.23 from 203.0.113.7",
]
LINKED = [  # one connection, its lines split between C (ASCII) and Python (the one with é)
    b"Mar 20 10:00:00 srv sshd[3]: Failed password for root from 203.0.113.7 port 22 ssh2",
    "Mar 20 10:00:00 srv sshd[3]: Failed password for josé from 203.0.113.7 port 22 ssh2".encode(),
    b"Mar 20 10:00:01 srv sshd[3]: Accepted password for root from 203.0.113.7 port 22 ssh2",
    b"Mar 20 10:00:02 srv sshd[2]: Disconnecting: Too many authentication failures [preauth]",
    b"Mar 20 10:00:02 srv sshd[2]: Connection closed by 198.51.100.23 port 22 [preauth]",
    b"Mar 20 10:00:03 srv sshd[2]: Failed password for root from 198.51.100.23 port 22 ssh2",
    b"Mar 20 10:00:03 srv sshd[4]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
    b"euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
    b"Mar 20 10:00:04 srv sshd[4]: Disconnecting: Too many authentication failures [preauth]",
]
YEAR = [
    b"Dec 31 23:59:59 srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    b"srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    b"Jan  1 00:00:00 srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    b"Jan  1 01:00:05 srv sshd[2]: Failed password for root from 203.0.113.7 port 22 ssh2",
] * 3


@settings(
    max_examples=200, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    run=sshd_runs(),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    steps=st.lists(st.sampled_from([0, 0, 1, 59, 299, 300, 301, 3600]), min_size=5, max_size=5),
    berlin=st.booleans(),
)
@example(run=(0, PLANTED * 3), cuts=[5], steps=[0] * 5, berlin=False)
@example(run=(0, LINKED * 2), cuts=[3, 8], steps=[0, 0, 1, 0, 0], berlin=True)
@example(run=(0, LINKED), cuts=[2], steps=[0, 300, 0, 0, 0], berlin=False)
@example(run=(1, YEAR), cuts=[6], steps=[0, 299, 0, 0, 0], berlin=True)
@example(run=(1, YEAR), cuts=[], steps=[0] * 5, berlin=False)
def test_generated_sshd_lines_answer_in_c_as_in_python(
    run: tuple[int, list[bytes]], cuts: list[int], steps: list[int], berlin: bool
) -> None:
    """sshd.conf in each mode over lines of a few connections, split into batches at random
    points, the clock moving between batches: the C engine, the Python engine and the
    per-line path (``hits=True``) tell the same."""
    scenario, lines = run
    start, _ = SCENARIOS[scenario]
    edges = [0, *sorted({min(c, len(lines)) for c in cuts}), len(lines)]
    batches = [lines[a:b] for a, b in itertools.pairwise(edges)]
    nows = [start]
    for step in steps[: len(batches) - 1]:
        nows.append(nows[-1] + timedelta(seconds=step))
    tz = ZoneInfo("Europe/Berlin") if berlin else UTC
    rules = _sshd_rules()
    c, det = _replay(rules, tz, batches, nows, native=True, max_line=MAX_LINE)
    python, _ = _replay(rules, tz, batches, nows, native=False, max_line=MAX_LINE)
    assert c == python
    per_line, _ = _replay(rules, tz, batches, nows, native=True, hits=True, max_line=MAX_LINE)
    assert per_line == c
    assert _in_c(det) == [True] * len(rules)


CONTROLS: Final = ["\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"{ord(c):#04x}" for c in CONTROLS])
def test_ascii_control_characters_answer_in_c_as_in_python(char: str) -> None:
    """An attacker can put any ASCII byte but NUL and CR in a line (a user name): the C
    engine's whitespace, word and line-end classes are the Python engine's on them."""
    template = [
        "Mar 20 10:00:00 srv sshd[1]: Invalid user bob from 203.0.113.7{c}",
        "Mar 20 10:00:01 srv sshd[1]: Invalid user bob from 203.0.113.8 port 22{c}",
        "Mar 20 10:00:02 srv sshd[2]: Failed password for x{c}from from 203.0.113.9 port 22 ssh2",
        "Mar 20 10:00:03 srv sshd[3]: pam_unix(sshd:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=ssh ruser={c}rhost=203.0.113.10",
        "Mar 20 10:00:04 srv sshd[4]: Connection closed by{c}203.0.113.11 port 22 [preauth]",
        "Mar 20 10:00:05 srv sshd[4]: Disconnecting: Too many authentication failures{c}",
        "Mar 20 10:00:06{c}srv sshd[5]: Failed password for root from 203.0.113.12 port 22 ssh2",
    ]
    batch = [line.format(c=char).encode() for line in template]
    rules = list(_sshd_rules())
    c, det = _replay(rules, UTC, [batch, batch], [NOW, NOW], native=True)
    python, _ = _replay(rules, UTC, [batch, batch], [NOW, NOW], native=False)
    assert c == python
    assert _in_c(det) == [True] * len(rules)


# ------------------------------------------------------------------ the date memo

# Dates that are prefixes of one another, and what may follow them: the rest of a line can
# make another template match, or the same one end later (a year, a fraction, a zone), so a
# remembered date is only reused for a line that agrees on every byte the templates read.
MEMO_STAMPS: Final = [
    "Mar 20 10:00:00",
    "Mar 20 10:00:0",
    "Mar 20 10:00:00.25",
    "Mar 20 10:00:00 2026",
    "Mar 20 2026 10:00:00",
    "Fri Mar 20 10:00:00",
    "Mar 20, 2026 10:00:00 am",
    "2026-03-20 10:00:00",
    "2026-03-20T10:00:00",
    "2026-03-20 10:00:00.5",
    "20/03/2026 10:00:00",
    "20-Mar-2026 10:00:00",
    "10:00:00",
    "1774000800",
    "1774000800.123",
    "[1774000800]",
    "@40000000696d3b1a00000000",
    "",
]
MEMO_JOINS: Final = [
    "",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    ".",
    ",",
    ":",
    "Z",
    " Z",
    "+01:00",
    " +0100",
    "0",
]
MEMO_RESTS: Final = [
    "srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    "2026 srv sshd[1]: Invalid user bob from 203.0.113.8",
    "5 srv sshd[2]: Failed password for root from 203.0.113.9 port 22 ssh2",
    "am srv sshd[3]: Invalid user x from 203.0.113.10",
    "UTC srv sshd[1]: Invalid user y from 203.0.113.11",
    "sshd[4]: Failed password for root from 203.0.113.12 port 22 ssh2",
    "",
]


@st.composite
def memo_lines(draw: st.DrawFn) -> list[bytes]:
    """Runs of lines that share a date and differ after it."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        stamp = draw(st.sampled_from(MEMO_STAMPS))
        for _ in range(draw(st.integers(1, 6))):
            line = stamp + draw(st.sampled_from(MEMO_JOINS)) + draw(st.sampled_from(MEMO_RESTS))
            lines.append(line.encode())
    return lines


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(lines=memo_lines(), size=st.sampled_from([2, 3, 7, 64]))
@example(
    lines=[
        b"Mar 20 10:00:00 srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
        b"Mar 20 10:00:00 srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
        b"Mar 20 10:00:00 2026 srv sshd[1]: Invalid user bob from 203.0.113.8",
        b"Mar 20 10:00:00.25 srv sshd[1]: Invalid user bob from 203.0.113.8",
        b"Mar 20 10:00:00 sshd[4]: Failed password for root from 203.0.113.12 port 22 ssh2",
        b"Mar 20 10:00:00 srv sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
    ],
    size=64,
)
def test_remembered_dates_answer_as_python(lines: list[bytes], size: int) -> None:
    """The C engine remembers the last line's date for the lines that start with the same
    bytes, up to the last byte its templates read: the answers (times included) stay the
    Python engine's whatever follows the date."""
    rules = [_sshd({"maxretry": "2"})]
    batches = _batches(lines, size)
    nows = [NOW] * len(batches)
    c, det = _replay(rules, UTC, batches, nows, native=True)
    python, _ = _replay(rules, UTC, batches, nows, native=False)
    assert c == python
    assert _in_c(det) == [True]


def test_the_date_memo_serves_lines_of_one_second() -> None:
    """Lines of one second take their date from the memo (the probe found how many bytes
    the templates read), a new second or another shape of line does not."""
    c_path._fail2ban_filter.cache_clear()  # a filter of its own: no memo, no probe pending
    line = "Mar 20 10:00:{:02} srv sshd[{}]: Failed password for root from 203.0.113.9 port 22 ssh2"
    det = Detector([_sshd()], native=True)
    engine = det._units[0].c_filter
    assert engine is not None
    assert engine.native is not None
    native_filter = engine.native.filter
    before = native_filter.date_memo_hits
    det.feed_many([line.format(s // 10, s).encode() for s in range(100)], NOW, hits=False)
    # ten seconds of ten lines: the first line of each second probes, the nine others reuse
    assert native_filter.date_memo_hits - before == 90


# ------------------------------------------------------------------ the C path is taken


def test_sshd_runs_in_c_and_finds_its_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd.conf gets a C engine, and a block of plain failures is matched there: the Python
    engine's ``_evaluate`` sees none of its lines."""
    rule = _sshd()
    line = (
        "Mar 20 10:00:{:02} srv sshd[{}]: Failed password for root from 203.0.113.{} port 22 ssh2"
    )
    batch = [line.format(i % 60, i % 7, i % 3).encode() for i in range(120)]
    calls: list[int] = []
    original = f2b_engine._evaluate

    def spy(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(f2b_engine, "_evaluate", spy)
    results = []
    for native in (True, False):
        calls.clear()
        det = Detector([rule], native=native)
        assert _in_c(det) == [native]
        found = det.feed_many(batch, NOW, hits=False, tally=True)
        assert found.tally is not None
        results.append(
            (
                sorted((str(t.source), t.count, t.first, t.last) for t in found.tally.values()),
                [repr(a) for a in found.alerts],
                det.counters.get("hits"),
            )
        )
        if native:
            assert calls == [], "plain failure lines went through the Python engine"
        else:
            assert len(calls) == len(batch)  # the spy sees the Python engine's lines
    assert results[0] == results[1]
    assert [count for _, count, _, _ in results[0][0]] == [40, 40, 40]
    assert results[0][2] == 120
    assert len(results[0][1]) == 24  # 5 in 10 minutes, 40 hits per source: 8 alerts each


@pytest.mark.parametrize("journal", [False, True], ids=["file", "journal"])
@pytest.mark.parametrize("mode", ["normal", "aggressive", "ddos", "extra"])
def test_every_sshd_mode_runs_in_c(mode: str, journal: bool) -> None:
    """sshd.conf runs in C in every mode (aggressive is a common jail), not only in the
    default one."""
    options = {"mode": mode} | ({"logtype": "journal"} if journal else {})
    rule = _sshd(options, journal=journal)
    assert rule.fail2ban is not None
    assert c_path.fail2ban_filter(rule.fail2ban) is not None, options
    assert _in_c(Detector([rule], native=True)) == [True]
