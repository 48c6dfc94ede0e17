"""Time zones given as text: IANA names, fixed offsets, and POSIX ``TZ`` strings.

fail2ban's test corpus is written in the POSIX zone ``CET-01CEST-02,M3.5.0,M10.5.0`` (which is
not an IANA name), and admins often know their logs' zone as a ``TZ`` value.
:func:`parse_timezone` accepts:

* ``UTC``, ``Z``, ``GMT``;
* a fixed offset: ``+02:00``, ``-0530``, ``UTC+2``;
* an IANA name (``Europe/Paris``), through :mod:`zoneinfo`;
* a POSIX ``TZ`` string: ``STD offset [DST [offset] [,start[/time],end[/time]]]`` with
  ``Mm.w.d``, ``Jn`` and ``n`` rules (POSIX offsets are west-positive: ``CET-01`` is UTC+1;
  the DST offset defaults to one hour more than standard time, transitions to 02:00).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["PosixTimezone", "parse_timezone"]

_NAME: Final = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+\-]+>)"
_OFFSET: Final = r"[+-]?\d{1,2}(?::\d{2}(?::\d{2})?)?"
_RULE: Final = r"(?:M\d{1,2}\.\d\.\d|J\d{1,3}|\d{1,3})(?:/[+-]?\d{1,3}(?::\d{2}(?::\d{2})?)?)?"
_POSIX: Final = re.compile(
    rf"^(?P<std>{_NAME})(?P<stdoff>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dstoff>{_OFFSET})?(?:,(?P<start>{_RULE}),(?P<end>{_RULE}))?)?$"
)
_FIXED: Final = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")
_ZERO: Final = timedelta(0)


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _day(rule: str, year: int) -> date:
    if rule.startswith("M"):
        month, week, weekday = (int(p) for p in rule[1:].split("."))
        first = date(year, month, 1)
        # POSIX weekday: 0 = Sunday; date.weekday(): 0 = Monday
        offset = (weekday - (first.weekday() + 1) % 7) % 7
        day = first + timedelta(days=offset + 7 * (week - 1))
        while day.month != month:
            day -= timedelta(days=7)
        return day
    if rule.startswith("J"):  # 1..365, February 29 never counted
        n = int(rule[1:])
        day = date(year, 1, 1) + timedelta(days=n - 1)
        if _leap(year) and n >= 60:
            day += timedelta(days=1)
        return day
    return date(year, 1, 1) + timedelta(days=int(rule))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class PosixTimezone(tzinfo):
    """A zone from a POSIX ``TZ`` string (the same rule every year)."""

    def __init__(self, spec: str) -> None:
        found = _POSIX.match(spec.strip())
        if found is None:
            raise ValueError(f"not a POSIX TZ string: {spec!r}")
        self.spec = spec.strip()
        self.std_name = found.group("std").strip("<>")
        self.std = timedelta(seconds=-_seconds(found.group("stdoff")))
        dst = found.group("dst")
        self.dst_name = dst.strip("<>") if dst else None
        if dst:
            dstoff = found.group("dstoff")
            self.daylight = (
                timedelta(seconds=-_seconds(dstoff)) if dstoff else self.std + timedelta(hours=1)
            )
            self.start_rule = found.group("start") or "M3.2.0"
            self.end_rule = found.group("end") or "M11.1.0"
        else:
            self.daylight = self.std
            self.start_rule = self.end_rule = ""

    def __repr__(self) -> str:
        return f"PosixTimezone({self.spec!r})"

    def _transitions(self, year: int) -> tuple[datetime, datetime]:
        """Start and end of daylight time in ``year``, as naive UTC."""

        def when(rule: str, offset: timedelta) -> datetime:
            day_rule, _, time_text = rule.partition("/")
            seconds = _seconds(time_text) if time_text else 7200
            local = datetime.combine(_day(day_rule, year), datetime.min.time())
            return local + timedelta(seconds=seconds) - offset

        return when(self.start_rule, self.std), when(self.end_rule, self.daylight)

    def _is_dst_utc(self, utc: datetime) -> bool:
        if self.dst_name is None:
            return False
        start, end = self._transitions(utc.year)
        if start < end:
            return start <= utc < end
        return not end <= utc < start  # southern hemisphere

    def fromutc(self, dt: datetime) -> datetime:
        naive = dt.replace(tzinfo=None)
        offset = self.daylight if self._is_dst_utc(naive) else self.std
        local = (naive + offset).replace(tzinfo=self)
        if self.utcoffset(local) != offset:  # the second reading of a repeated hour
            local = local.replace(fold=1)
        return local

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None or self.dst_name is None:
            return self.std
        naive = dt.replace(tzinfo=None)
        as_daylight = self._is_dst_utc(naive - self.daylight)  # a consistent DST reading
        as_standard = not self._is_dst_utc(naive - self.std)  # a consistent standard reading
        if as_daylight and as_standard:  # the repeated hour of the autumn change
            return self.std if dt.fold else self.daylight
        if as_daylight:
            return self.daylight
        if as_standard:
            return self.std
        return self.daylight if dt.fold else self.std  # the hour skipped in spring

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - self.std

    def tzname(self, dt: datetime | None) -> str:
        if self.dst_name is not None and self.dst(dt):
            return self.dst_name
        return self.std_name


def parse_timezone(text: str) -> tzinfo:
    """A tzinfo for ``text`` (see the module doc); raises ValueError."""
    spec = text.strip()
    if spec.upper() in ("UTC", "Z", "GMT", "UTC0", "GMT0"):
        return UTC
    fixed = _FIXED.match(spec)
    if fixed is not None:
        sign = -1 if fixed.group(1) == "-" else 1
        delta = sign * timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3) or 0))
        if abs(delta) >= timedelta(hours=24):
            raise ValueError(f"offset out of range: {text!r}")
        return UTC if delta == _ZERO else timezone(delta)
    if _POSIX.match(spec):
        return PosixTimezone(spec)
    try:
        return ZoneInfo(spec)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r} (use an IANA name such as Europe/Paris, an offset "
            "such as +02:00, or a POSIX TZ string such as CET-1CEST,M3.5.0,M10.5.0/3)"
        ) from None
