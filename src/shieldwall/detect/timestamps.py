"""Find and parse the timestamp of a log line (pure: ``now`` and the zone are parameters).

Date patterns (a rule's ``datepattern``):

``syslog``
    ``Mon DD HH:MM:SS`` (also ``Mon  D`` and ``Mon D``) at the start of the line. The year is
    taken from ``now`` in ``tz``; a result more than one day after ``now`` is moved to the
    previous year (a log read on 1 January still holds December lines).
``iso8601``
    RFC 3339 / ISO 8601 at the start of the line: ``2024-01-02T03:04:05``, a space instead of
    ``T``, fractional seconds (``.123456``, ``,5``), an offset (``Z``, ``+01:00``, ``+0100``,
    ``+01``) or none (the time is then read in ``tz``). ``/`` as the date separator is also
    accepted, which covers the nginx error log (``2024/01/02 03:04:05``).
``clf``
    Common/combined log format ``[10/Oct/2000:13:55:36 -0700]`` (nginx and Apache access
    logs). The stamp taken is the last ``[...]`` before the first ``"`` of the line: in the
    combined format everything after the first quote (request, referrer, user agent) is
    attacker-controlled, and so is ``$remote_user`` before the stamp, which can therefore not
    shift the time.
``epoch``
    Seconds since 1970 at the start of the line, with optional fraction: ``1700000000.123``.
``auto``
    Try ``syslog``, ``iso8601``, ``epoch`` (all at the start of the line) then ``clf``.

Every result is an aware datetime in UTC. ``None`` means no timestamp was found or it was not
a valid date; the caller decides what to do (the detector uses ``now`` and counts it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

__all__ = ["DATE_PATTERNS", "TimeParser", "parse_time"]

DATE_PATTERNS: Final = ("syslog", "iso8601", "clf", "epoch", "auto")

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

_SYSLOG = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?![\d:])")
_ISO = re.compile(
    r"(\d{4})([-/])(\d\d)\2(\d\d)[T ](\d\d):(\d\d):(\d\d)"
    r"(?:[.,](\d{1,9}))?(Z|z|[+-]\d\d(?::?\d\d)?)?(?![\d:])"
)
_EPOCH = re.compile(r"(\d{9,10})(?:\.(\d{1,9}))?(?![\d.])")
_CLF = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\]")

_PRIORITY = re.compile(r"<\d{1,3}>(?:\d{1,2} )?")
_ONE_DAY: Final = timedelta(days=1)
_MAX_OFFSET: Final = timedelta(hours=24)


def _micro(fraction: str | None) -> int:
    if not fraction:
        return 0
    return int(fraction[:6].ljust(6, "0"))


def _offset(text: str) -> tzinfo | None:
    """``Z``, ``+01:00``, ``+0100``, ``+01`` → a fixed zone; ``None`` if out of range."""
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    if minutes >= 60:
        return None
    delta = sign * timedelta(hours=hours, minutes=minutes)
    if abs(delta) >= _MAX_OFFSET:
        return None
    return UTC if not delta else timezone(delta)


def _to_utc(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int, tz: tzinfo
) -> datetime:
    """Raises ValueError for an impossible date (the callers turn that into ``None``)."""
    local = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    if tz is UTC:
        return local
    return local.astimezone(UTC)


class TimeParser:
    """Parse timestamps of one ``datepattern`` in one zone, remembering the last result.

    Consecutive log lines usually share their timestamp text; the cache keeps the last
    (text, now) → result per pattern so a burst of lines costs one regex match each.
    """

    __slots__ = ("_cache", "_order", "pattern", "tz")

    def __init__(self, pattern: str, tz: tzinfo = UTC) -> None:
        if pattern not in DATE_PATTERNS:
            raise ValueError(
                f"unknown date pattern {pattern!r} (one of {', '.join(DATE_PATTERNS)})"
            )
        self.pattern = pattern
        self.tz = tz
        self._order: tuple[str, ...] = (
            ("syslog", "iso8601", "epoch", "clf") if pattern == "auto" else (pattern,)
        )
        self._cache: dict[str, tuple[str, datetime, datetime | None]] = {}

    def parse(self, line: str, now: datetime) -> datetime | None:
        """The line's timestamp in UTC, or ``None``. ``now`` must be timezone-aware.

        A syslog priority at the line start (``<34>`` of RFC 3164, ``<34>1 `` of RFC 5424)
        is stepped over: the stamp follows it.
        """
        start = 0
        if line.startswith("<") and (pri := _PRIORITY.match(line)) is not None:
            start = pri.end()
        for kind in self._order:
            if kind == "syslog":
                match = _SYSLOG.match(line, start)
            elif kind == "iso8601":
                match = _ISO.match(line, start)
            elif kind == "epoch":
                match = _EPOCH.match(line, start)
            else:
                match = _clf_search(line)
            if match is None:
                continue
            text = match.group(0)
            cached = self._cache.get(kind)
            if cached is not None and cached[0] == text and cached[1] == now:
                return cached[2]
            result = _convert(kind, match, now, self.tz)
            self._cache[kind] = (text, now, result)
            if result is not None:
                return result
        return None


def parse_time(line: str, pattern: str, now: datetime, tz: tzinfo) -> datetime | None:
    """The timestamp of ``line`` per ``pattern`` (see the module doc), in UTC, or ``None``.

    Raises ValueError for an unknown pattern name. For repeated calls, keep a ``TimeParser``.
    """
    return TimeParser(pattern, tz).parse(line, now)


def _clf_search(line: str) -> re.Match[str] | None:
    quote = line.find('"')
    end = quote if quote >= 0 else len(line)
    start = line.rfind("[", 0, end)
    if start >= 0:
        match = _CLF.match(line, start)
        if match is not None:
            return match
    return _CLF.search(line)


def _convert(kind: str, match: re.Match[str], now: datetime, tz: tzinfo) -> datetime | None:
    try:
        if kind == "syslog":
            return _syslog(match, now, tz)
        if kind == "iso8601":
            return _iso(match, tz)
        if kind == "epoch":
            return _epoch(match)
        return _clf(match)
    except (ValueError, OverflowError):
        return None


def _syslog(match: re.Match[str], now: datetime, tz: tzinfo) -> datetime | None:
    mon, day, hour, minute, second = match.groups()
    month = _MONTHS.get(mon)
    if month is None:
        return None
    year = now.astimezone(tz).year
    limit = now + _ONE_DAY
    # Walk back at most a few years: enough for 29 February seen from a non-leap year.
    for candidate in range(year, year - 8, -1):
        try:
            when = _to_utc(candidate, month, int(day), int(hour), int(minute), int(second), 0, tz)
        except ValueError:
            continue
        if when <= limit:
            return when
    return None


def _iso(match: re.Match[str], tz: tzinfo) -> datetime | None:
    year, _sep, month, day, hour, minute, second, fraction, offset = match.groups()
    zone = tz
    if offset is not None:
        fixed = _offset(offset)
        if fixed is None:
            return None
        zone = fixed
    return _to_utc(
        int(year), int(month), int(day), int(hour), int(minute), int(second), _micro(fraction), zone
    )


def _epoch(match: re.Match[str]) -> datetime:
    seconds, fraction = match.groups()
    return datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=_micro(fraction))


def _clf(match: re.Match[str]) -> datetime | None:
    day, mon, year, hour, minute, second, offset = match.groups()
    month = _MONTHS.get(mon)
    zone = _offset(offset)
    if month is None or zone is None:
        return None
    return _to_utc(int(year), month, int(day), int(hour), int(minute), int(second), 0, zone)
