"""The detector's C path (``shieldwall.detect._native``) gives exactly the Python path's answers.

Three layers, each against its pure-Python twin on random input: the regex rewrite (PCRE2
against Python's ``re``), the window buckets (``_native.Windows`` against ``BucketSet``'s own
implementation, export/restore included) and the whole detector (``feed_many`` with and
without the extension: tally, alerts, counters, persisted rows).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import regex as _regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shieldwall.detect import BucketRow, BucketSet, Detector, builtin_rule, parse_rule
from shieldwall.detect import native as c_path
from shieldwall.detect.bucket import EVIDENCE_CHARS
from shieldwall.detect.native import Unsupported, content_head, first_bytes, pcre2_pattern
from shieldwall.detect.rule import builtin_rule_names as builtin_names
from shieldwall.detect.scan import block_scanner
from shieldwall.model import parse_address
from tests.conftest import IN_CI, corpora_dir, skip_or_fail

NATIVE = c_path.NATIVE


@pytest.fixture(autouse=True)
def _needs_the_extension() -> None:
    if NATIVE is None:
        skip_or_fail("the C extension is not built (apt-get install gcc libpcre2-dev; reinstall)")


def test_the_extension_is_built_under_ci() -> None:
    """CI runs ``scripts/test``, which installs libpcre2-dev: a missing build is a failure."""
    if IN_CI:
        assert NATIVE is not None
    assert NATIVE is not None
    assert NATIVE.PCRE2_VERSION >= "10.3"


def test_every_shipped_rule_that_scans_by_block_runs_in_c() -> None:
    scanned = 0
    for name in builtin_names():
        scanner = block_scanner(builtin_rule(name))
        if scanner is None:
            continue
        assert scanner.native is not None, name
        scanned += 1
    assert scanned >= 15


# ------------------------------------------------------------------ the regex rewrite

TRICKY = [
    r"\s+x",
    r"\S+",
    r"[\s\d]+",
    r"[^\s]+",
    r"[^\d\s]+",
    r"\w+\b",
    r"\W",
    r"(?i)failed\s+(?P<u>[a-z]+)",
    r"(?i:ab)c",
    r"a(?-i:b)c",
    r"^(\d+)\.(\d+)$",
    r"(a|ab)(c|bcd)(d*)",
    r"(?<=x)\d+",
    r"(?<!\d)\d{2,3}(?!\d)",
    r"(a)?b(?(1)c|d)",
    r"(\w)\1",
    r"x*?y",
    r"(?:ab){2,}",
    r"[a-c\-\]]+",
    r".+$",
    r"(?m)^b",
    r"(?s)a.b",
    r"\Aa|b\Z",
    r"[\x1c-\x1f]",
    r"\d{1,3}(?:\.\d{1,3}){3}",
]
SHIPPED = [
    (s.regex.pattern, s.regex.flags)
    for s in (block_scanner(builtin_rule(n)) for n in builtin_names())
    if s is not None
]
ASCII_TEXT = st.lists(
    st.sampled_from(
        [
            *list("abcdxyABCXYZ0123456789 .:-_[]()\\/=;,'\"\t\n\x0b\x0c\x1c\x1d\x1f\x7f"),
            "Failed ",
            "from ",
            "port ",
            "sshd[1]: ",
            "1.2.3.4",
            " ssh2",
            "Mar  1 00:00:05 ",
        ]
    ),
    max_size=60,
).map("".join)


@pytest.mark.parametrize("pattern", TRICKY)
def test_tricky_constructs_rewrite_or_refuse(pattern: str) -> None:
    pcre2_pattern(pattern, 0)  # every construct above has an exact rewrite


@pytest.mark.parametrize(
    "pattern",
    ["é", "[^\\S\\d]", "[\\W_]", "(?L)a" if False else "[\\D]x"],
)
def test_constructs_without_an_exact_rewrite_are_refused(pattern: str) -> None:
    if pattern == "[\\D]x":
        assert pcre2_pattern(pattern) == "(?-ims)[^0-9]x"  # a lone negated class is fine
        return
    with pytest.raises(Unsupported):
        pcre2_pattern(pattern)


def _spans(found: Any) -> tuple[tuple[int, int], ...] | None:
    if found is None:
        return None
    return tuple(found.span(i) for i in range(found.re.groups + 1))


@settings(
    max_examples=400, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    which=st.integers(0, len(TRICKY) + len(SHIPPED) - 1),
    text=ASCII_TEXT,
    pos=st.integers(0, 20),
    module=st.booleans(),
)
@example(which=0, text="\x1cx", pos=0, module=False)  # re's \s matches \x1c-\x1f, PCRE2's not
@example(which=0, text="\x1cx", pos=0, module=True)  # nor does the regex module's
def test_rewritten_regex_matches_what_python_matches(
    which: int, text: str, pos: int, module: bool
) -> None:
    """Against ``re``, and for the patterns without flags also against the ``regex`` module
    (fail2ban filters are compiled with it: ``regex_module=True``)."""
    pattern, flags = (TRICKY[which], 0) if which < len(TRICKY) else SHIPPED[which - len(TRICKY)]
    module = module and which < len(TRICKY)
    python = _regex.compile(pattern, _regex.V0) if module else re.compile(pattern, flags)
    pos = min(pos, len(text))
    assert NATIVE is not None
    rewritten = pcre2_pattern(pattern, flags, regex_module=module)
    got = NATIVE.search(rewritten, text.encode("ascii"), pos)
    want = _spans(python.search(text, pos))
    if want is not None:
        want = tuple((a, b) if a >= 0 else (-1, -1) for a, b in want)
    assert got == want, (pattern, text)


# ------------------------------------------------------------------ first bytes

ANCHORED = [
    r"^ab",
    r"(?i)^ab",
    r"^(?i:a)b",
    r"^[aA]uth",
    r"^(?:x|y)?z",
    r"^\W{0,2}\d",
    r"^\W{0,2}(?i:m)",
    r"^(?:(?P<a>ab)|cd)e",
    r"^(a)?(?(1)b|c)",
    r"^[^a]x",
    r"^[^\d]x",
    r"^\s*x",
    r"^(?=a)\w",
    r"^(?!a)[a-c]",
    r"^(?>a|b)c",
    r"^a*+b",
    r"^[\x1c-\x1f]",
    r"^\S+ ",
    r"^(?:\[\])?\s*(?:<[^.]+>\s+)?x",
    r"^.x",  # no map: any byte
    r"^a?",  # no map: may be empty
    r"(?m)^a",  # no map: MULTILINE
    r"a",  # no map: not anchored
]
MAPPED = ANCHORED[:-4]


def test_first_bytes_map_the_anchored_patterns() -> None:
    for pattern in MAPPED:
        assert first_bytes(pattern) is not None, pattern
    caseless = first_bytes(r"(?i)^a")
    assert caseless is not None
    assert first_bytes(r"^[aA]uth") == caseless[:16] + bytes(16)  # the same ASCII bytes


@pytest.mark.parametrize("pattern", [r"^.x", r"^a?", r"(?m)^a", r"a", r"^\1(a)"])
def test_first_bytes_only_for_anchored_patterns_that_consume(pattern: str) -> None:
    assert first_bytes(pattern) is None


@settings(
    max_examples=600, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(which=st.integers(0, len(ANCHORED) - 1), text=ASCII_TEXT)
@example(which=6, text="Mar")
@example(which=1, text="AB")
@example(which=8, text="c")
def test_first_bytes_hold_the_first_byte_of_every_match(which: int, text: str) -> None:
    """The C filter skips a failregex whose map lacks the text's first byte: the map must
    hold it whenever the regex matches (``re`` and the ``regex`` module alike)."""
    pattern = ANCHORED[which]
    bitmap = first_bytes(pattern)
    if bitmap is None:
        return
    for engine in (re, _regex):
        found = engine.compile(pattern).search(text)
        if found is not None:
            assert text, pattern
            byte = text.encode()[0]
            assert bitmap[byte >> 3] & (1 << (byte & 7)), (pattern, text)


def test_first_bytes_of_non_ascii_cased_letters_allow_any_non_ascii_byte() -> None:
    bitmap = first_bytes(r"(?i)^k")
    assert bitmap is not None
    byte = "\u212a".encode()[0]  # KELVIN SIGN matches "k" case-insensitively
    assert re.match(r"(?i)^k", "\u212a")
    assert bitmap[byte >> 3] & (1 << (byte & 7))


# ------------------------------------------------------------------ window buckets

ADDRESSES = [parse_address(a) for a in ("192.0.2.1", "192.0.2.2", "2001:db8::7", "10.0.0.9")]
op = st.one_of(
    st.tuples(
        st.just("hit"),
        st.sampled_from(["r", "s"]),
        st.integers(0, 3),
        st.integers(0, 400),
        st.text(alphabet="ab\n", max_size=4).map(lambda s: s * (1 + len(s) * 300)),
    ),
    st.tuples(st.just("prune"), st.integers(0, 800)),
    st.tuples(st.just("touched")),
    st.tuples(st.just("take_rows")),
    st.tuples(
        st.just("restore"),
        st.sampled_from(["r", "s"]),
        st.integers(0, 3),
        st.lists(st.integers(0, 400), max_size=6),
    ),
)


def _window_run(buckets: BucketSet, ops: list[tuple[Any, ...]]) -> list[object]:
    out: list[object] = []
    base = datetime(2026, 3, 1, tzinfo=UTC)
    for step in ops:
        if step[0] == "hit":
            _, rule, who, seconds, line = step
            alert = buckets.hit(rule, ADDRESSES[who], base.timestamp() + seconds, line)
            out.append(None if alert is None else repr(alert))
        elif step[0] == "prune":
            out.append(buckets.prune(base + timedelta(seconds=step[1])))
        elif step[0] == "touched":
            keys = buckets.touched()
            out.append(sorted(map(repr, keys)))
            out.append(sorted(map(repr, buckets.export(sorted(keys, key=repr)))))
        elif step[0] == "take_rows":  # one C call on the native path: the same rows
            out.append(sorted(map(repr, buckets.take_rows())))
        else:
            _, rule, who, times = step
            row = BucketRow(
                rule, str(ADDRESSES[who]), [base.timestamp() + t for t in times], ["e"] * len(times)
            )
            buckets.restore([row])
        out.append(len(buckets))
        out.append(sorted(buckets.counters.values.items()))
    every = [(r, a) for r in ("r", "s") for a in ADDRESSES]
    out.append([key in buckets for key in every])
    out.append(sorted(map(repr, buckets.export(every))))
    return out


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    ops=st.lists(op, max_size=40),
    maxretry=st.integers(1, 4),
    findtime=st.sampled_from([1, 30, 600]),
    tracked=st.integers(1, 5),
)
def test_c_window_buckets_answer_as_the_python_ones(
    ops: list[tuple[Any, ...]], maxretry: int, findtime: int, tracked: int
) -> None:
    c = BucketSet(maxretry, findtime, tracked, native=True)
    python = BucketSet(maxretry, findtime, tracked, native=False)
    assert c.native is not None
    assert python.native is None
    assert _window_run(c, ops) == _window_run(python, ops)


def test_c_window_evidence_is_cut_like_pythons() -> None:
    c = BucketSet(2, 60, native=True)
    c.hit("r", ADDRESSES[0], 1.0, "x" * (EVIDENCE_CHARS + 5))
    alert = c.hit("r", ADDRESSES[0], 2.0, "y")
    assert alert is not None
    assert alert.evidence == ("x" * EVIDENCE_CHARS, "y")


# ------------------------------------------------------------------ the whole detector

SAFE = parse_rule(
    {
        "prefilter": ["app:"],
        "failregex": [r"^\S+ \S+ \S+ \S+ app: denied (?:\S+ )?<HOST>\s*$"],
        "ignoreregex": [r"denied admin "],
        "maxretry": 2,
        "findtime": "1m",
    },
    "picky",
    "test",
)
RULES = [builtin_rule("sshd"), builtin_rule("sshd-success"), builtin_rule("nginx-botsearch"), SAFE]

ips = st.sampled_from(
    [
        "203.0.113.7",
        "203.0.113.8",
        "198.51.100.23",
        "2001:db8::5",
        "::ffff:203.0.113.9",
        "0.0.0.0",
        "255.255.255.255",
        "999.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "fe80::1%eth0",
    ]
)
stamps = st.sampled_from(
    [
        "Mar  1 00:00:05",
        "Mar  1 00:00:59",
        "Mar  1 00:01:00",
        "Mar  1 00:00:60",
        "Mar 31 01:59:59",  # Berlin: summer time starts at 02:00 on 29 March 2026
        "Mar 29 02:30:00",  # a local time that does not exist in Berlin
        "Oct 25 02:30:00",  # a local time that comes twice in Berlin
        "Dec 31 23:59:58",  # in the future of 20 March: last year
        "Mar 21 00:00:00",
        "Feb 29 12:00:00",  # no such day in 2026 or 2025: 2024
        "Foo  1 00:00:05",
        "2026-03-01T00:00:07Z",
        "garbage",
    ]
)
users = st.text(alphabet="ab \t:;=x0.19\x1cé", max_size=10)  # é: a non-ASCII run


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    ts, ip, user = draw(stamps), draw(ips), draw(users)
    kind = draw(st.integers(0, 9))
    text = [
        f"{ts} h sshd[1]: Failed password for {user} from {ip} port 22 ssh2",
        f"{ts} h sshd[1]: Invalid user {user} from {ip} port 22",
        f"{ts} h sshd[1]: Accepted password for {user} from {ip} port 22 ssh2",
        f"{ts} h sshd[1]: Connection closed by invalid user {user} {ip} port 2 [preauth]",
        f'{ip} - - [01/Mar/2026:00:00:05 +0000] "GET /wp-login.php HTTP/1.1" 404 5 "-" "{user}"',
        f"{ts} h app: denied {ip}",
        f"{ts} h app: denied admin {ip}",
        f"{ts} h sshd[1]: Failed password for {user} from {ip} port 22 ssh2 " + "z" * 1200,
        f"{ts} h sshd[1]: Invalid user x from {ip}",  # \s*$ then runs into the next line
        "",
    ][kind]
    return text.encode()


def _detect(batches: list[list[bytes]], nows: list[datetime], native: bool) -> list[object]:
    det = Detector(RULES, tz=ZoneInfo("Europe/Berlin"), max_line=4096, max_tracked=3, native=native)
    out: list[object] = [sorted(map(repr, det.touched()))]
    for batch, now in zip(batches, nows, strict=True):
        found = det.feed_many(batch, now, hits=False, tally=True)
        assert found.tally is not None
        out.append([repr(a) for a in found.alerts])
        out.append(sorted(repr(t) for t in found.tally.values()))
        touched = det.touched()
        out.append(sorted(repr(row) for row in det.export(sorted(touched, key=repr))))
    out.append(sorted(det.counters.values.items()))
    return out


@settings(
    max_examples=250, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    batches=st.lists(st.lists(lines(), min_size=2, max_size=40), min_size=1, max_size=4),
    hours=st.lists(st.integers(0, 24 * 40), min_size=4, max_size=4),
)
def test_detector_in_c_answers_as_in_python(batches: list[list[bytes]], hours: list[int]) -> None:
    nows = [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h) for h in hours][: len(batches)]
    assert _detect(batches, nows, native=True) == _detect(batches, nows, native=False)


def test_the_c_scan_is_taken_for_ascii_blocks_and_counts_like_python() -> None:
    line = b"Mar  1 00:00:05 h sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2"
    batch = [line] * 12 + [line.replace(b"203.0.113.7", b"2001:db8::1")] * 5
    now = datetime(2026, 3, 20, tzinfo=UTC)
    results = []
    for native in (True, False):
        det = Detector([builtin_rule("sshd")], native=native)
        found = det.feed_many(batch, now, hits=False, tally=True)
        assert found.tally is not None
        results.append(
            (len(found.alerts), sorted((t.count, str(t.source)) for t in found.tally.values()))
        )
        assert (det.buckets("sshd").native is not None) == native
    assert results[0] == results[1] == (3, [(5, "2001:db8::1"), (12, "203.0.113.7")])


@pytest.mark.parametrize(
    ("now", "stamps"),
    [
        # a day ahead of now is the limit (00:00:15 in Berlin): second 00 of the minute is
        # this year, seconds 30 and 31 last year
        ("2026-03-19T23:00:15+00:00", ["Mar 21 00:00:00", "Mar 21 00:00:30", "Mar 21 00:00:31"]),
        # Berlin's summer time begins at 02:00 local: 01:59 and 03:00 are one minute apart
        ("2026-04-01T00:00:00+00:00", ["Mar 29 01:59:00", "Mar 29 01:59:59", "Mar 29 03:00:00"]),
        ("2026-04-01T00:00:00+00:00", ["Mar 29 02:30:00", "Mar 29 02:30:59", "Mar 29 02:30:01"]),
    ],
)
def test_the_minute_cache_never_spans_a_change_of_year_or_offset(
    now: str, stamps: list[str]
) -> None:
    batch = [
        f"{s} h sshd[1]: Failed password for root from 203.0.113.{i} port 22 ssh2".encode()
        for i, s in enumerate(stamps)
    ]
    when = datetime.fromisoformat(now)
    got = []
    for native in (True, False):
        det = Detector([builtin_rule("sshd")], tz=ZoneInfo("Europe/Berlin"), native=native)
        found = det.feed_many(batch, when, hits=False, tally=True)
        assert found.tally is not None
        got.append(sorted((str(t.source), t.first) for t in found.tally.values()))
    assert got[0] == got[1]
    times = [first for _, first in got[1]]
    assert len(set(times)) == len(stamps)


def test_a_scan_cannot_start_inside_another_on_the_same_rule() -> None:
    """The C scanner keeps per-scan state: a callback that re-enters it gets an error."""
    det = Detector([builtin_rule("sshd")], native=True)
    scanner = det._units[0].c_scanner
    assert scanner is not None
    line = b"Mar  1 00:00:05 h sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2"
    block = b"\n" + b"\n".join([line, line])
    now = datetime(2026, 3, 20, tzinfo=UTC)

    class Stamp:
        def epoch(self, text: str, when: datetime) -> float:
            scanner.scan(block, False, None, "sshd", {}, None, {}, str, self, when, 0.0, None, str)
            return 0.0

        def minute_base(self, text: str, when: datetime) -> None:
            return None

    with pytest.raises(RuntimeError, match="not reentrant"):
        scanner.scan(
            block, False, None, "sshd", {}, None, {}, parse_address, Stamp(), now, 0.0, None, str
        )
    found = det.feed_many([line, line], now, hits=False, tally=True)  # and it is usable again
    assert found.tally is not None
    assert [t.count for t in found.tally.values()] == [2]


def test_a_non_ascii_line_sends_only_itself_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker can put a non-ASCII byte in a user name: the ASCII runs around that line
    still take the C scan, and the result is the Python path's."""
    line = "Mar  1 00:00:05 h sshd[1]: Failed password for {} from 203.0.113.{} port 22 ssh2"
    batch = [line.format("root", i % 3).encode() for i in range(10)]
    batch += [line.format("josé", 1).encode()]
    batch += [line.format("root", i % 3).encode() for i in range(10)]
    now = datetime(2026, 3, 20, tzinfo=UTC)
    c_runs: list[int] = []
    original = Detector._native_block

    def spy(self: Detector, unit: Any, data: bytes, *args: Any) -> int:
        c_runs.append(data.count(b"\n"))
        return original(self, unit, data, *args)

    monkeypatch.setattr(Detector, "_native_block", spy)
    results = []
    for native in (True, False):
        det = Detector([builtin_rule("sshd")], native=native)
        found = det.feed_many(batch, now, hits=False, tally=True)
        assert found.tally is not None
        results.append(([repr(a) for a in found.alerts], sorted(map(repr, found.tally.values()))))
    assert c_runs == [10, 10]  # the two ASCII runs, in C; the line with "é" in Python
    assert results[0] == results[1]
    assert len(results[0][0]) == 3


def _real_logs() -> list[Path]:
    """Logs nobody here wrote (loghub, fail2ban's samples, the CrowdSec hub tests) and the
    rules' own annotated samples."""
    corpora = corpora_dir()
    if not corpora.is_dir():
        skip_or_fail(f"the shared corpora are not at {corpora} (SHIELDWALL_CORPORA)")
    paths = [
        *sorted((corpora / "loghub").glob("*/*_2k.log")),
        *sorted((corpora / "fail2ban" / "fail2ban" / "tests" / "files" / "logs").glob("*")),
        *sorted((corpora / "crowdsec-hub" / ".tests").glob("*/*.log")),
        *sorted((Path(__file__).parents[1] / "rules" / "samples").glob("*.log")),
    ]
    return [p for p in paths if p.is_file()]


def test_real_logs_give_the_same_answers_in_c_and_python() -> None:
    """Every shipped rule over real logs, by batches as the agent reads them: the C path and
    the pure-Python path agree on alerts, counts per source and counters."""
    logs = _real_logs()
    assert len(logs) > 150
    rules = [builtin_rule(name) for name in builtin_names()]
    now = datetime(2026, 12, 31, tzinfo=UTC)
    total_hits = 0
    for path in logs:
        batch = [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n")]
        results = []
        for native in (True, False):
            det = Detector(rules, max_tracked=1000, native=native)
            out: list[object] = []
            for i in range(0, len(batch), 500):
                found = det.feed_many(batch[i : i + 500], now, hits=False, tally=True)
                assert found.tally is not None
                out.append([repr(a) for a in found.alerts])
                out.append(sorted(repr(t) for t in found.tally.values()))
            out.append(sorted(det.counters.values.items()))
            results.append(out)
            total_hits += det.counters.get("hits") if native else 0
        assert results[0] == results[1], path
    assert total_hits > 1000


# a prefregex's head: the regex without its final ``(?P<content>.+)$``
HEADS = [
    r"^(?P<mlfid>(?:\[\])?\s*(?:\S+\s+)?(?:sshd(?:\[\d+\])?:\s+)?)(?:(?:error|fatal): )?",
    r"^(?P<a>x+)?(?P<b>x*?y)?",
    r"^(?:(?P<a>\w+) )?\s*",
    r"^(?P<a>[^:]*):?",
    r"^",
]


@pytest.mark.parametrize("head", HEADS)
def test_content_head_is_the_prefregex_without_its_content(head: str) -> None:
    pattern = head + r"(?P<content>.+)$"
    content = _regex.compile(pattern).groupindex["content"]
    assert content_head(pattern, 0, content) == pcre2_pattern(head, regex_module=True)


@pytest.mark.parametrize(
    ("pattern", "content"),
    [
        (r"^(?P<a>x)?(?P<content>.+)$", 1),  # not the content's group number
        (r"(?s)^(?P<a>x)?(?P<content>.+)$", 2),  # DOTALL: "." takes the newline
        (r"^(?P<a>x)?|(?P<content>.+)$", 2),  # an alternation at the top
        (r"^(?P<a>x)?(?(a)y)(?P<content>.+)$", 2),  # a condition
        (r"^(?P<a>x)?(?P=a)(?P<content>.+)$", 2),  # a backreference
        (r"^(?P<a>x)?(?P<content>.*)$", 2),  # may be empty
        (r"^(?P<a>x)?(?P<content>.+?)$", 2),  # lazy
        (r"^(?P<a>x)?(?P<content>.+)\s*$", 2),  # more after it
        (r"^(?P<a>x)?(?P<content>[^z]+)$", 2),  # not "."
        (r"^(?P<content>.+)(?P<a>x)?$", 1),  # not the last group
    ],
)
def test_content_head_refuses_other_shapes(pattern: str, content: int) -> None:
    assert content_head(pattern, 0, content) is None


@settings(
    max_examples=600, suppress_health_check=[HealthCheck.too_slow], database=None, deadline=None
)
@given(
    which=st.integers(0, len(HEADS) - 1),
    text=st.text(alphabet="xy :[]sshd1error\t\x1c", max_size=24),
)
@example(which=0, text="srv sshd[1]: ")  # the head takes the whole line: no content
@example(which=1, text="xx")
def test_content_head_decides_as_the_whole_prefregex(which: int, text: str) -> None:
    """What the C filter relies on: the whole prefregex matches a line exactly when its head
    does and leaves some of the line; then the groups are the head's and the content is the
    rest. (When the head leaves nothing, the C filter runs the whole prefregex.)"""
    head = _regex.compile(HEADS[which])
    whole = _regex.compile(HEADS[which] + r"(?P<content>.+)$")
    found, start = whole.match(text), head.match(text)
    if start is None:
        assert found is None
        return
    if start.end() == len(text):
        return  # the C filter asks the whole regex
    assert found is not None
    assert found.group("content") == text[start.end() :]
    assert found.groupdict() == {**start.groupdict(), "content": text[start.end() :]}
