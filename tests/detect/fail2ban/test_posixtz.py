"""POSIX TZ strings (fail2ban's test zone), offsets and IANA names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shieldwall.detect.fail2ban.posixtz import PosixTimezone, parse_timezone

CET = PosixTimezone("CET-01CEST-02,M3.5.0,M10.5.0")


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        (datetime(2005, 8, 14, 10, 0, tzinfo=UTC), datetime(2005, 8, 14, 12, 0)),
        (datetime(2005, 1, 14, 10, 0, tzinfo=UTC), datetime(2005, 1, 14, 11, 0)),
        # spring: last Sunday of March, 02:00 CET → 03:00 CEST
        (datetime(2005, 3, 27, 0, 59, tzinfo=UTC), datetime(2005, 3, 27, 1, 59)),
        (datetime(2005, 3, 27, 1, 0, tzinfo=UTC), datetime(2005, 3, 27, 3, 0)),
        # autumn: last Sunday of October, 02:00 CEST (POSIX: the time is in daylight time);
        # 01:00-02:00 happens twice, the second time with fold=1
        (datetime(2005, 10, 29, 23, 59, tzinfo=UTC), datetime(2005, 10, 30, 1, 59)),
        (datetime(2005, 10, 30, 0, 0, tzinfo=UTC), datetime(2005, 10, 30, 1, 0, fold=1)),
    ],
)
def test_transitions(utc: datetime, local: datetime) -> None:
    assert utc.astimezone(CET).replace(tzinfo=None) == local.replace(fold=0)
    assert local.replace(tzinfo=CET).astimezone(UTC) == utc


def test_names() -> None:
    assert CET.tzname(datetime(2005, 8, 1)) == "CEST"
    assert CET.tzname(datetime(2005, 1, 1)) == "CET"
    assert PosixTimezone("<+05>-5").utcoffset(None) == timedelta(hours=5)


@pytest.mark.parametrize(
    ("text", "offset_in_august"),
    [
        ("UTC", timedelta(0)),
        ("+02:00", timedelta(hours=2)),
        ("-0530", timedelta(hours=-5, minutes=-30)),
        ("CET-1CEST,M3.5.0,M10.5.0/3", timedelta(hours=2)),
        ("Europe/Paris", timedelta(hours=2)),
    ],
)
def test_parse_timezone(text: str, offset_in_august: timedelta) -> None:
    zone = parse_timezone(text)
    assert datetime(2024, 8, 1, 12, tzinfo=zone).utcoffset() == offset_in_august


def test_bad_zones_are_value_errors() -> None:
    for text in ("Nowhere/Land", "+25:00", "CET-01CEST-02,Q3"):
        with pytest.raises(ValueError, match=r"time zone|offset|POSIX"):
            parse_timezone(text)
    assert parse_timezone("+00:00") is UTC
    assert parse_timezone("UTC+1") == timezone(timedelta(hours=1))
