"""Detector: lines in, hits and alerts out; bad input is skipped or repaired and counted."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.detect import Detector, builtin_rule, parse_rule
from shieldwall.errors import RuleError
from shieldwall.model import parse_address

NOW = datetime(2024, 12, 31, tzinfo=UTC)
SSHD = builtin_rule("sshd")


def failed(second: int, ip: str = "192.0.2.1", user: str = "root") -> bytes:
    return (
        f"Mar  1 10:00:{second:02d} web1 sshd[1]: Failed password for {user} from {ip} "
        f"port 2222 ssh2"
    ).encode()


class TestFeed:
    def test_hit_carries_the_line_time(self) -> None:
        """A hit has rule, source, pattern, line, and the line's own time."""
        detection = Detector([SSHD]).feed(failed(7), NOW)

        (hit,) = detection.hits
        assert ("sshd", parse_address("192.0.2.1"), 0) == (hit.rule, hit.source, hit.pattern)
        assert datetime(2024, 3, 1, 10, 0, 7, tzinfo=UTC) == hit.at
        assert failed(7).decode() == hit.line
        assert detection.alerts == []

    def test_alert_on_maxretry(self) -> None:
        """The maxretry-th hit within findtime raises one alert with the rule's bantime."""
        detector = Detector([SSHD])
        alerts = [alert for s in range(5) for alert in detector.feed(failed(s), NOW).alerts]

        (alert,) = alerts
        assert alert.count == 5
        assert SSHD.bantime == alert.bantime
        assert detector.counters.values == {"lines": 5, "hits": 5, "alerts": 1}

    def test_feed_many_equals_feed(self) -> None:
        """feed_many gives the same hits and alerts as feeding line by line."""
        lines = [failed(s, ip=f"192.0.2.{s % 3 + 1}") for s in range(20)] + [b"noise"]
        one, many = Detector([SSHD]), Detector([SSHD])
        hits, alerts = [], []
        for line in lines:
            detection = one.feed(line, NOW)
            hits += detection.hits
            alerts += detection.alerts

        detection = many.feed_many(lines, NOW)

        assert hits == detection.hits
        assert alerts == detection.alerts
        assert one.counters == many.counters

    def test_several_rules(self) -> None:
        """Each rule matches its own lines."""
        detector = Detector([SSHD, builtin_rule("nginx-botsearch")])
        web = b'203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /.env HTTP/1.1" 404 1 "-" "-"'

        detection = detector.feed_many([failed(1), web], NOW)

        assert [hit.rule for hit in detection.hits] == ["sshd", "nginx-botsearch"]

    def test_trailing_newline_and_cr(self) -> None:
        """A stray CRLF is removed before matching."""
        detection = Detector([SSHD]).feed(failed(1) + b"\r\n", NOW)

        assert len(detection.hits) == 1
        assert not detection.hits[0].line.endswith(("\r", "\n"))

    def test_timezone_for_zoneless_stamps(self) -> None:
        """tz tells how to read syslog stamps; results are UTC."""
        detector = Detector([SSHD], tz=timezone(timedelta(hours=2)))

        (hit,) = detector.feed(failed(0), NOW).hits

        assert datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC) == hit.at

    def test_duplicate_rule_names(self) -> None:
        """Two rules with one name are refused."""
        with pytest.raises(RuleError, match="also defined"):
            Detector([SSHD, SSHD])

    def test_naive_now_is_refused(self) -> None:
        """``now`` must be aware: a naive datetime is a programming error."""
        with pytest.raises(ValueError, match="timezone-aware"):
            Detector([SSHD]).feed(failed(0), datetime(2024, 1, 1))


class TestBadInput:
    def test_too_long(self) -> None:
        """Lines over max_line bytes are skipped and counted."""
        detector = Detector([SSHD], max_line=64)

        assert detector.feed(failed(0), NOW).hits == []
        assert detector.counters.get("line_too_long") == 1

    def test_invalid_utf8_is_still_detected(self) -> None:
        """A bad byte in the user name does not hide the attack."""
        detector = Detector([SSHD])

        (hit,) = detector.feed(failed(0, user="ro\xffot").replace(b"\xc3\xbf", b"\xff"), NOW).hits

        assert parse_address("192.0.2.1") == hit.source
        assert "\ufffd" in hit.line
        assert detector.counters.get("invalid_utf8") == 1

    def test_nul_bytes(self) -> None:
        """NUL is replaced, counted, and the line still matched."""
        detector = Detector([SSHD])

        (hit,) = detector.feed(failed(0, user="a\x00b"), NOW).hits

        assert "\x00" not in hit.line
        assert detector.counters.get("nul_byte") == 1

    def test_no_timestamp_uses_now(self) -> None:
        """A hit without a readable stamp is dated now, and counted."""
        rule = parse_rule({"failregex": [r"^bad <HOST>$"]}, "bare", "bare.toml")
        detector = Detector([rule])

        (hit,) = detector.feed(b"bad 192.0.2.1", NOW).hits

        assert hit.at == NOW
        assert detector.counters.get("no_timestamp") == 1

    def test_invalid_host_counted(self) -> None:
        """A host that is no IP address is skipped and counted."""
        detector = Detector([SSHD])

        assert detector.feed(failed(0, ip="999.0.0.1"), NOW).hits == []
        assert detector.counters.get("invalid_host") == 1


class TestExplain:
    def test_hit(self) -> None:
        """explain() names rule, pattern, source and time."""
        (why,) = Detector([SSHD]).explain(failed(3), NOW)

        assert why.matched
        assert ("sshd", 0, parse_address("192.0.2.1")) == (why.rule, why.pattern, why.source)
        assert datetime(2024, 3, 1, 10, 0, 3, tzinfo=UTC) == why.at
        assert why.timestamp_found

    def test_reasons_per_rule(self) -> None:
        """One explanation per rule, each with its own reason."""
        detector = Detector([SSHD, builtin_rule("nginx-botsearch")])

        reasons = [why.reason for why in detector.explain("hello", NOW)]

        assert reasons == ["prefilter", "prefilter"]

    def test_too_long(self) -> None:
        """Lines over max_line are explained as such."""
        (why,) = Detector([SSHD], max_line=10).explain(failed(0), NOW)

        assert why.reason == "too-long"

    def test_touches_nothing(self) -> None:
        """explain() changes neither buckets nor counters."""
        detector = Detector([SSHD])
        for _ in range(10):
            detector.explain(failed(0), NOW)

        assert detector.counters.values == {}
        assert len(detector.buckets("sshd")) == 0


class TestPersistence:
    def test_round_trip_through_rows(self) -> None:
        """Buckets exported by one detector continue in a new one (restart)."""
        first = Detector([SSHD])
        first.feed_many([failed(s) for s in range(4)], NOW)
        rows = first.export(first.touched())

        second = Detector([SSHD])
        second.restore(rows)

        assert len(second.feed(failed(10), NOW).alerts) == 1

    def test_unknown_rule_rows_are_skipped(self) -> None:
        """Rows for rules no longer configured are counted and ignored."""
        first = Detector([SSHD])
        first.feed(failed(0), NOW)
        rows = first.export(first.touched())
        second = Detector([builtin_rule("nginx-botsearch")])

        second.restore(rows)

        assert second.counters.get("bucket_unknown_rule") == 1

    def test_prune(self) -> None:
        """prune() drops buckets idle for longer than findtime."""
        detector = Detector([SSHD])
        detector.feed(failed(0), NOW)

        assert detector.prune(NOW) == 1


@settings(max_examples=200)
@given(raw=st.binary(max_size=300))
def test_feed_never_raises_on_any_bytes(raw: bytes) -> None:
    """Arbitrary bytes are processed or skipped, never fatal."""
    detector = Detector(
        [SSHD, builtin_rule("nginx-http-auth"), builtin_rule("nginx-botsearch")], max_line=200
    )
    detector.feed(raw, NOW)
    detector.explain(raw, NOW)

    assert detector.counters.get("lines") == 1


@given(prefix=st.binary(max_size=40), junk=st.binary(max_size=40))
def test_feed_never_raises_on_mangled_sshd_lines(prefix: bytes, junk: bytes) -> None:
    """Random bytes spliced into a real line never crash and never invent a source."""
    raw = failed(0)[:20] + prefix + failed(0)[20:60] + junk
    detection = Detector([SSHD]).feed(raw, NOW)

    for hit in detection.hits:
        assert hit.source.compressed in raw.decode("utf-8", errors="replace")


PATHOLOGICAL = {
    "sshd-from": b"Jan  2 03:04:05 h sshd[1]: Failed password for "
    + b" from 1.2.3.4 port 1" * 3200,
    "sshd-close": b"Jan  2 03:04:05 h sshd[1]: Connection closed by invalid user "
    + b"1.2.3.4 port 1 " * 4300,
    "auth-quotes": b'2024/01/02 03:04:05 [error] 1#1: *1 user "' + b'" was not found in "' * 3200,
    "bot-probes": b'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET '
    + b"/wp-login.php" * 5000
    + b'" 404 ',
    "bot-slashes": b'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET '
    + b"/a" * 32000
    + b' HTTP/1.1" 404 ',
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_no_quadratic_blowup_on_long_lines(name: str) -> None:
    """A crafted 64 KiB line costs milliseconds, not seconds (no catastrophic backtracking).

    Generous bound for noisy machines: a quadratic pattern took over a second here.
    """
    detector = Detector(
        [builtin_rule(rule) for rule in ("sshd", "nginx-http-auth", "nginx-botsearch")]
    )
    raw = PATHOLOGICAL[name][:65536]
    start = time.perf_counter()
    detector.feed(raw, NOW)

    assert time.perf_counter() - start < 0.3


def test_success_rules_count_hits_but_never_alert() -> None:
    """``kind = "success"`` rules (sshd-success) run in the same detector as failure rules:
    their hits are counted (tally) for the agent's sightings; they have no bucket."""
    ok = "Mar  1 00:00:0{} h sshd[1]: Accepted password for alice from 198.51.100.4 port 2 ssh2"
    bad = "Mar  1 00:00:0{} h sshd[1]: Failed password for root from 203.0.113.7 port 2 ssh2"
    batch = [line.format(i).encode() for i in range(8) for line in (ok, bad)]
    det = Detector([builtin_rule("sshd"), builtin_rule("sshd-success")])
    found = det.feed_many(batch, NOW, hits=False, tally=True)
    assert [(a.rule, str(a.source)) for a in found.alerts] == [("sshd", "203.0.113.7")]
    assert found.tally is not None
    counts = {(t.rule, str(t.source)): t.count for t in found.tally.values()}
    assert counts == {("sshd", "203.0.113.7"): 8, ("sshd-success", "198.51.100.4"): 8}
    touched = det.touched()
    assert touched
    assert all(key[0] == "sshd" for key in touched)  # nothing bucketed for sshd-success
    one = Detector([builtin_rule("sshd-success")])
    assert all(not one.feed(ok.format(i).encode(), NOW).alerts for i in range(8))
