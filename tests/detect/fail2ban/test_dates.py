"""fail2ban datepatterns: directives, anchors, the default list, conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shieldwall.detect.fail2ban.dates import DateFinder, compile_datepattern, pattern_regex
from shieldwall.detect.fail2ban.posixtz import PosixTimezone
from shieldwall.errors import RuleError

CET = PosixTimezone("CET-01CEST-02,M3.5.0,M10.5.0")
NOW = datetime(2005, 8, 14, 10, 0, 0, tzinfo=UTC)


def _when(datepattern: str | None, line: str, now: datetime = NOW) -> tuple[str, datetime | None]:
    """(the line with its date cut out, the date in UTC)."""
    templates = compile_datepattern(datepattern)
    assert templates is not None
    finder = DateFinder(templates)
    found = finder.find(line)
    assert found is not None, line
    return line[: found.start] + line[found.end :], DateFinder.convert(found, now, CET)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "rest", "when"),
    [
        # syslog: no year → 2005 (summer: CEST = UTC+2)
        ("Jul 19 18:11:50 srv sshd[1]: x", " srv sshd[1]: x", _utc(2005, 7, 19, 16, 11, 50)),
        # in the future by more than a day → the previous year (winter: CET)
        ("Dec 24 10:00:00 srv x", " srv x", _utc(2004, 12, 24, 9, 0, 0)),
        ("2013-07-11 01:21:41 x", " x", _utc(2013, 7, 10, 23, 21, 41)),
        ("2016-02-24T15:26:18.237955 6 x", " 6 x", _utc(2016, 2, 24, 14, 26, 18)),
        ("2016-02-24T15:26:18+0000 x", " x", _utc(2016, 2, 24, 15, 26, 18)),
        ("[Thu Jul 11 01:21:41 2013] [error]", "[] [error]", _utc(2013, 7, 10, 23, 21, 41)),
        ('1.2.3.4 - - [20/Jan/2015:01:17:07 +0100] "GET', '1.2.3.4 - - [] "GET', None),
        ("1124013540 rest", " rest", _utc(2005, 8, 14, 9, 59, 0)),
        ("@400000004c91b044077a9e94 dovecot", " dovecot", _utc(2010, 9, 16, 5, 51, 0)),
        ("130322 11:46:11 [Warning] x", " [Warning] x", _utc(2013, 3, 22, 10, 46, 11)),
    ],
)
def test_default_templates(line: str, rest: str, when: datetime | None) -> None:
    cut, got = _when(None, line)
    assert cut == rest
    if when is None:
        when = _utc(2015, 1, 20, 0, 17, 7)
    assert got == when


def test_line_begin_restricts_to_dates_at_the_start() -> None:
    templates = compile_datepattern("{^LN-BEG}")
    assert templates is not None
    finder = DateFinder(templates)
    assert finder.find("text then Jul 19 18:11:50 later") is None
    assert finder.find("[Jul 19 18:11:50] x") is not None  # up to two non-word characters


def test_custom_patterns_zones_and_case() -> None:
    assert _when("^%Y-%m-%d %H:%M:%S", "2020-01-02 03:04:05 x") == (
        " x",
        _utc(2020, 1, 2, 2, 4, 5),
    )
    cut, got = _when("%d/%b/%Y:%H:%M:%S %z", "[01/jan/2020:10:00:00 -0500] x")
    assert cut == "[] x"
    assert got == _utc(2020, 1, 1, 15, 0, 0)
    _, got = _when("(?:%Z )?%b %d %H:%M:%S", "PDT Apr 16 21:05:29 x")
    assert got == datetime(2005, 4, 16, 21, 5, 29, tzinfo=timezone(timedelta(hours=-7)))


def test_empty_date_templates_and_none() -> None:
    templates = compile_datepattern("^WARNING:()**")
    assert templates is not None
    found = DateFinder(templates).find("WARNING: x")
    assert found is not None
    assert found.start == found.end == len("WARNING:")
    assert compile_datepattern("{NONE}") is None


def test_date_inside_a_prematch() -> None:
    cut, got = _when(r"^[^\[]*\[({DATE})", "host [2020-01-02 03:04:05] x")
    assert cut == "host [] x"
    assert got == _utc(2020, 1, 2, 2, 4, 5)


def test_time_only_is_today_or_yesterday() -> None:
    _, got = _when("{^LN-BEG}%H:%M:%S", "11:00:00 x")  # 09:00 UTC, before now (10:00 UTC)
    assert got == _utc(2005, 8, 14, 9, 0, 0)
    _, got = _when("{^LN-BEG}%H:%M:%S", "13:00:00 x")  # later than now → yesterday
    assert got == _utc(2005, 8, 13, 11, 0, 0)


def test_impossible_dates_are_none() -> None:
    _, got = _when("^%Y-%m-%d %H:%M:%S", "2005-02-30 10:00:00 x")
    assert got is None


@pytest.mark.parametrize("pattern", ["%Q", "100%", "%Y-%"])
def test_unknown_directives_are_refused(pattern: str) -> None:
    with pytest.raises(RuleError, match="unknown directive"):
        pattern_regex(pattern)


def test_ex_directives_are_exact() -> None:
    templates = compile_datepattern("^%ExY%Exm%Exd")
    assert templates is not None
    finder = DateFinder(templates)
    assert finder.find("20050814 x") is not None
    assert finder.find("20051314 x") is None  # month 13
