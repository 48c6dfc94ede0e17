"""Timestamps: every supported pattern, year inference, zones, and never raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.detect import DATE_PATTERNS, TimeParser, parse_time

NOW = datetime(2024, 12, 31, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


class TestSyslog:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("Jan  2 03:04:05 host sshd[1]: x", utc(2024, 1, 2, 3, 4, 5)),
            ("Jan 12 03:04:05 host sshd[1]: x", utc(2024, 1, 12, 3, 4, 5)),
            ("Jun 7 01:11:58 host sshd[1]: x", utc(2024, 6, 7, 1, 11, 58)),
            ("Dec 31 23:59:59 host x", utc(2024, 12, 31, 23, 59, 59)),
        ],
    )
    def test_parses_in_the_year_of_now(self, line: str, expected: datetime) -> None:
        """Syslog stamps take the year of ``now``."""
        assert expected == parse_time(line, "syslog", NOW, UTC)

    def test_more_than_a_day_ahead_is_last_year(self) -> None:
        """Read on 1 January, a December line belongs to the previous year."""
        now = utc(2025, 1, 1, 0, 10)

        assert utc(2024, 12, 31, 23, 50) == parse_time("Dec 31 23:50:00 h x", "syslog", now, UTC)
        assert utc(2025, 1, 1, 0, 5) == parse_time("Jan  1 00:05:00 h x", "syslog", now, UTC)

    def test_up_to_one_day_ahead_stays(self) -> None:
        """A clock slightly behind the log (up to a day) keeps the current year."""
        now = utc(2024, 6, 1, 12)

        assert utc(2024, 6, 2, 11) == parse_time("Jun  2 11:00:00 h x", "syslog", now, UTC)
        assert utc(2023, 6, 2, 13) == parse_time("Jun  2 13:00:00 h x", "syslog", now, UTC)

    def test_february_29_from_a_non_leap_year(self) -> None:
        """29 February seen in 2025 is the one of 2024."""
        now = utc(2025, 3, 1)

        assert utc(2024, 2, 29, 12) == parse_time("Feb 29 12:00:00 h x", "syslog", now, UTC)

    def test_read_in_the_given_zone(self) -> None:
        """A zoneless stamp is local time of ``tz``, returned in UTC."""
        paris = ZoneInfo("Europe/Paris")

        assert utc(2024, 7, 1, 10) == parse_time("Jul  1 12:00:00 h x", "syslog", NOW, paris)
        assert utc(2024, 1, 1, 11) == parse_time("Jan  1 12:00:00 h x", "syslog", NOW, paris)

    @pytest.mark.parametrize(
        "line",
        [
            "Foo  1 00:00:00 h x",
            "Jan 32 00:00:00 h x",
            "Jan  1 24:00:00 h x",
            "Jan  1 00:60:00 h x",
            "jan  1 00:00:00 h x",
            "Jan  1 00:00 h x",
            " Jan  1 00:00:00 h x",
            "",
        ],
    )
    def test_invalid_is_none(self, line: str) -> None:
        """Impossible or malformed stamps give None, never an exception."""
        assert parse_time(line, "syslog", NOW, UTC) is None


class TestIso8601:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("2024-01-02T03:04:05Z x", utc(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05+00:00 x", utc(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05+02:00 x", utc(2024, 1, 2, 1, 4, 5)),
            ("2024-01-02T03:04:05-0130 x", utc(2024, 1, 2, 4, 34, 5)),
            ("2024-01-02T03:04:05+01 x", utc(2024, 1, 2, 2, 4, 5)),
            ("2024-01-02 03:04:05 x", utc(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05.5Z x", utc(2024, 1, 2, 3, 4, 5, 500000)),
            ("2024-01-02T03:04:05.123456789Z x", utc(2024, 1, 2, 3, 4, 5, 123456)),
            ("2024-01-02 03:04:05,250 x", utc(2024, 1, 2, 3, 4, 5, 250000)),
            ("2024/01/02 03:04:05 [error] 1#1: x", utc(2024, 1, 2, 3, 4, 5)),
        ],
    )
    def test_forms(self, line: str, expected: datetime) -> None:
        """RFC 3339 and the common ISO 8601 variants, incl. the nginx error log."""
        assert expected == parse_time(line, "iso8601", NOW, UTC)

    def test_naive_uses_tz(self) -> None:
        """Without an offset the time is read in ``tz``."""
        tz = timezone(timedelta(hours=-5))

        assert utc(2024, 1, 2, 8) == parse_time("2024-01-02T03:00:00 x", "iso8601", NOW, tz)

    def test_offset_wins_over_tz(self) -> None:
        """An explicit offset is used as written."""
        tz = timezone(timedelta(hours=-5))

        assert utc(2024, 1, 2, 3) == parse_time("2024-01-02T03:00:00Z x", "iso8601", NOW, tz)

    @pytest.mark.parametrize(
        "line",
        [
            "2024-13-02T03:04:05Z",
            "2024-02-30T03:04:05Z",
            "2024-01-02T03:04:05+24:00",
            "2024-01-02T03:04:05+01:75",
            "2024-01/02T03:04:05Z",
            "x 2024-01-02T03:04:05Z",
        ],
    )
    def test_invalid_is_none(self, line: str) -> None:
        """Impossible dates and offsets, mixed separators, or not at the start: None."""
        assert parse_time(line, "iso8601", NOW, UTC) is None


class TestClf:
    def test_access_log(self) -> None:
        """The combined log stamp, with its offset."""
        line = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326'

        assert utc(2000, 10, 10, 20, 55, 36) == parse_time(line, "clf", NOW, UTC)

    def test_remote_user_cannot_shift_the_time(self) -> None:
        """A fake stamp in $remote_user comes before the real one and is ignored."""
        line = '1.2.3.4 - [01/Jan/2000:00:00:00 +0000] [10/Oct/2000:13:55:36 +0000] "GET /" 404 1'

        assert utc(2000, 10, 10, 13, 55, 36) == parse_time(line, "clf", NOW, UTC)

    def test_request_cannot_shift_the_time(self) -> None:
        """Stamps after the first quote (request, agent) are attacker text."""
        line = '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /[01/Jan/1999:00:00:00 +0000]" 404'

        assert utc(2000, 10, 10, 13, 55, 36) == parse_time(line, "clf", NOW, UTC)

    def test_without_quotes_first_stamp(self) -> None:
        """A line without a request falls back to the first stamp."""
        assert utc(2000, 10, 10, 13, 55, 36) == parse_time(
            "x [10/Oct/2000:13:55:36 +0000] y", "clf", NOW, UTC
        )

    @pytest.mark.parametrize(
        "line",
        ["[10/Foo/2000:13:55:36 +0000]", "[32/Oct/2000:13:55:36 +0000]", "[10/Oct/2000:13:55:36]"],
    )
    def test_invalid_is_none(self, line: str) -> None:
        """Bad month, day or a missing offset: None."""
        assert parse_time(line, "clf", NOW, UTC) is None


class TestEpoch:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("1700000000 x", utc(2023, 11, 14, 22, 13, 20)),
            ("1700000000.123 x", utc(2023, 11, 14, 22, 13, 20, 123000)),
            ("1700000000.000001", utc(2023, 11, 14, 22, 13, 20, 1)),
        ],
    )
    def test_seconds(self, line: str, expected: datetime) -> None:
        """Seconds since 1970 at the start of the line, with an optional fraction."""
        assert expected == parse_time(line, "epoch", NOW, UTC)

    @pytest.mark.parametrize("line", ["17000000000000 x", "x 1700000000", "12345 x"])
    def test_invalid_is_none(self, line: str) -> None:
        """Too long, too short, or not at the start: None."""
        assert parse_time(line, "epoch", NOW, UTC) is None


class TestAuto:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("Jan  2 03:04:05 h x", utc(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05Z h x", utc(2024, 1, 2, 3, 4, 5)),
            ("1700000000 h x", utc(2023, 11, 14, 22, 13, 20)),
            ('1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET /"', utc(2024, 1, 2, 3, 4, 5)),
        ],
    )
    def test_tries_every_pattern(self, line: str, expected: datetime) -> None:
        """auto finds any supported stamp."""
        assert expected == parse_time(line, "auto", NOW, UTC)

    def test_line_start_before_clf(self) -> None:
        """A stamp at the start of the line wins over a bracketed one later."""
        line = "1700000000 x [02/Jan/2024:03:04:05 +0000]"

        assert utc(2023, 11, 14, 22, 13, 20) == parse_time(line, "auto", NOW, UTC)

    def test_nothing_is_none(self) -> None:
        """No stamp: None."""
        assert parse_time("hello world", "auto", NOW, UTC) is None


class TestTimeParser:
    def test_unknown_pattern(self) -> None:
        """A wrong pattern name is a programming error."""
        with pytest.raises(ValueError, match="unknown date pattern"):
            TimeParser("rfc822")

    def test_cache_depends_on_now(self) -> None:
        """The same stamp read at another ``now`` can fall in another year."""
        parser = TimeParser("syslog")
        line = "Dec 31 23:50:00 h x"

        assert utc(2024, 12, 31, 23, 50) == parser.parse(line, utc(2024, 12, 31))
        assert utc(2024, 12, 31, 23, 50) == parser.parse(line, utc(2025, 1, 2))
        assert utc(2023, 12, 31, 23, 50) == parser.parse(line, utc(2024, 6, 1))

    def test_results_are_utc(self) -> None:
        """Every result carries the UTC zone."""
        parser = TimeParser("auto", ZoneInfo("America/New_York"))
        at = parser.parse("2024-01-02T03:04:05+05:30 x", NOW)

        assert at is not None
        assert at.tzinfo == UTC


@given(line=st.text(max_size=80), pattern=st.sampled_from(DATE_PATTERNS))
def test_never_raises(line: str, pattern: str) -> None:
    """Any text gives a UTC datetime or None."""
    at = parse_time(line, pattern, NOW, UTC)

    assert at is None or at.tzinfo is UTC


@given(
    when=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_iso_round_trip(when: datetime) -> None:
    """isoformat() output parses back to the same instant."""
    assert when == parse_time(when.isoformat() + " rest", "iso8601", NOW, UTC)


@given(
    when=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31), timezones=st.just(UTC)
    )
)
def test_syslog_round_trip(when: datetime) -> None:
    """A syslog stamp written in 2024 and read at the end of 2024 gives the same second."""
    line = f"{when:%b} {when.day:2d} {when:%H:%M:%S} host prog: x"

    assert when.replace(microsecond=0) == parse_time(line, "syslog", NOW, UTC)


@pytest.mark.parametrize(
    ("line", "iso"),
    [
        (
            "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - msg",
            "2003-10-11T22:14:15.003000+00:00",
        ),
        ("<13>Mar  1 00:00:01 host sshd[1]: x", "2026-03-01T00:00:01+00:00"),
    ],
)
def test_syslog_priority_prefixes_rfc3164_and_rfc5424(line: str, iso: str) -> None:
    from shieldwall.detect.timestamps import parse_time

    now = datetime(2026, 3, 20, tzinfo=UTC)
    got = parse_time(line, "auto", now, UTC)
    assert got is not None
    assert got.isoformat() == iso
