"""fail2ban's ``datepattern``: find the timestamp of a line, cut it out, convert it.

fail2ban finds the date of a line with a list of *templates*, removes the matched date text
from the line, and only then applies ``prefregex``/``failregex``/``ignoreregex`` (which is
why filters start with ``^%(__prefix_line)s`` rather than with a date). This module
re-implements that behaviour (pure; ``now`` and the zone are parameters):

Pattern syntax (a ``datepattern`` value, several templates one per line)
    A regex with ``strptime``-like directives: ``%Y %y %m %d %H %I %M %S %f %p %j %a %A %b
    %B %z %Z %U %W %w %c %x %X %%``, fail2ban's ``%k``/``%l`` (hour with optional leading
    space) and exact two-digit forms ``%Exd %Exm %ExH %Exk %Exl %ExM %ExS``, ``%ExY``/``%Exy``
    (a year of this century), ``%ExZ``/``%Exz`` (zone abbreviations). Patterns that use
    month/day names or ``%p`` are case-insensitive. In ``.conf`` files ``%`` is written ``%%``.
Anchors
    ``{^LN-BEG}`` in front: the date must start the line (up to two non-word characters such
    as ``[`` may precede it). A leading ``^`` anchors too. Otherwise the date must start at a
    word boundary and (unless the pattern ends with ``$``, ``\\b``, ``\\s`` or ``**``) end at
    one; ``**`` at either end removes that boundary, ``{UNB}`` both.
Special values
    ``EPOCH`` (seconds, optional fraction, at the line start, inside a leading ``[...]``, or in
    ``audit(...)``), ``LEPOCH`` (also milli-/microseconds), ``TAI64N``; ``{EPOCH}``/``{LEPOCH}``
    inside a pattern; ``{^LN-BEG}`` alone (the default templates that are anchored at the line
    start); ``{DEFAULT}`` (all default templates); ``{DATE}`` inside a pattern (each default
    template in its place); ``{NONE}`` (no date: the time the line is read). No datepattern
    means fail2ban's default list.
Conversion
    The year, when absent, is the year of ``now`` in the log's zone; a date more than one day
    after ``now`` is taken from the previous year. A time without a date is today (yesterday
    if that is in the future). ``%z`` offsets (``+0100``, ``Z``, ``UTC``, ``GMT``) and ``%Exz``
    abbreviations (``CET``…) are applied; otherwise the time is read in the log's zone.
    Fractions of seconds are dropped (as fail2ban does), except for EPOCH.

Selection (a deliberate simplification of fail2ban's adaptive search, which reorders
templates by their hits): the first template in order whose match is anchored at the line
start (or end) wins; otherwise the first match that starts at position 0 or 1; otherwise the
match that starts earliest. The choice never depends on earlier lines, so an attacker cannot
train it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Final

from shieldwall.errors import RuleError

__all__ = [
    "DEFAULT_TEMPLATES",
    "DateFinder",
    "DateMatch",
    "DateTemplate",
    "compile_datepattern",
    "pattern_regex",
]

LINE_BEGIN: Final = 8
LINE_END: Final = 4

_MONTHS: Final = [
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
]
_FULL_MONTHS: Final = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_DAYS: Final = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_FULL_DAYS: Final = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _names(names: Sequence[str]) -> str:
    return "|".join(sorted(names, key=lambda n: (-len(n), n)))


_ABBR_RE: Final = r"[A-Z](?:[A-Z]{2,4})?"
_DIRECTIVES: Final[dict[str, str]] = {
    "a": f"(?P<a>{_names(_DAYS)})",
    "A": f"(?P<A>{_names(_FULL_DAYS)})",
    "b": f"(?P<b>{_names(_MONTHS)})",
    "B": f"(?P<B>{_names(_FULL_MONTHS)})",
    "d": r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])",
    "f": r"(?P<f>[0-9]{1,6})",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "I": r"(?P<I>1[0-2]|0[1-9]|[1-9])",
    "j": r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
    "U": r"(?P<U>5[0-3]|[0-4]\d|\d)",
    "W": r"(?P<W>5[0-3]|[0-4]\d|\d)",
    "w": r"(?P<w>[0-6])",
    "u": r"(?P<u>[1-7])",
    "y": r"(?P<y>\d\d)",
    "Y": r"(?P<Y>\d\d\d\d)",
    "G": r"(?P<G>\d\d\d\d)",
    "V": r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)",
    "p": r"(?P<p>am|pm)",
    "z": r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
    "Z": r"(?P<Z>Z|[A-Z]{3,5})",
    "k": r" ?(?P<H>[0-2]?\d)",
    "l": r" ?(?P<I>1?\d)",
    "ExZ": f"(?P<Z>{_ABBR_RE})",
    "Exz": f"(?P<z>(?:{_ABBR_RE})?[+-][01]\\d(?::?\\d{{2}})?|{_ABBR_RE})",
    "Exd": r"(?P<d>3[0-1]|[1-2]\d|0[1-9])",
    "Exm": r"(?P<m>1[0-2]|0[1-9])",
    "ExH": r"(?P<H>2[0-3]|[0-1]\d)",
    "Exk": r" ?(?P<H>2[0-3]|[0-1]\d|\d)",
    "Exl": r" ?(?P<I>1[0-2]|\d)",
    "ExM": r"(?P<M>[0-5]\d)",
    "ExS": r"(?P<S>6[0-1]|[0-5]\d)",
    # fail2ban narrows these to the decades around its clock; a fixed century keeps the
    # result independent of when shieldwall runs.
    "ExY": r"(?P<Y>20\d\d)",
    "Exy": r"(?P<y>\d\d)",
}
# Composite directives of the C locale.
_COMPOSITES: Final = {
    "c": r"%a\s+%b\s+%d\s+%H:%M:%S\s+%Y",
    "x": "%m/%d/%y",
    "X": "%H:%M:%S",
}
_DIRECTIVE: Final = re.compile(
    r"%(%|Ex[ZzdmHklMSYy]|[" + "".join(k for k in _DIRECTIVES if len(k) == 1) + "cxX])"
)
_ALPHA: Final = re.compile(r"(?<!%)%[aAbBpc]")

# Offsets (minutes) of zone abbreviations accepted by %Exz (fixed, no daylight switch).
_ZONE_ABBR: Final[dict[str, int]] = {}
for _hours, _names_list in (
    (-12, "Y"),
    (-11, "X NUT SST"),
    (-10, "W CKT HAST HST TAHT TKT"),
    (-9, "V AKST GAMT GIT HADT HNY"),
    (-8, "U AKDT CIST HAY HNP PST PT"),
    (-7, "T HAP HNR MST PDT"),
    (-6, "S CST EAST GALT HAR HNC MDT"),
    (-5, "R CDT COT EASST ECT EST ET HAC HNE PET"),
    (-4, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
    (-3, "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT"),
    (-2, "O BRST FNT PMDT UYST WGST"),
    (-1, "N AZOT CVT EGT"),
    (0, "Z EGST GMT UTC WET WT"),
    (1, "A CET DFT WAT WEDT WEST"),
    (2, "B CAT CEDT CEST EET SAST WAST"),
    (3, "C EAT EEDT EEST IDT MSK"),
    (4, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
    (5, "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT"),
    (6, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
    (7, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
    (8, "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST"),
    (9, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
    (10, "K AEST ChST PGT VLAT YAKST YAPT"),
    (11, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
    (12, "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT"),
    (13, "FJST NZDT"),
    (11.5, "NFT"),
    (10.5, "ACDT LHST"),
    (9.5, "ACST"),
    (6.5, "CCT MMT"),
    (5.75, "NPT"),
    (5.5, "SLT"),
    (4.5, "AFT IRDT"),
    (3.5, "IRST"),
    (-2.5, "HAT NDT"),
    (-3.5, "HNT NST NT"),
    (-4.5, "HLV VET"),
    (-9.5, "MART MIT"),
):
    for _abbr in _names_list.split():
        _ZONE_ABBR[_abbr] = int(_hours * 60)

_UNB: Final = "{UNB}"
_LN_BEG: Final = "{^LN-BEG}"
_NO_BEGIN_BOUND: Final = re.compile(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)")
_NO_END_BOUND: Final = re.compile(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$")
_GROUPED: Final = re.compile(r"(?<!\(\?)(?<!\\)\((?!\?)")
_WRAP: Final = re.compile(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$", re.DOTALL)
_GLOBAL_FLAGS: Final = re.compile(r"(?:^|(?<!\\))\(\?[a-z]+\)")
_LINE_BEGIN: Final = re.compile(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))")
_LINE_END: Final = re.compile(r"(?<![\\|])(?:\$\)?)$")
_STARS: Final = re.compile(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$")
_EPOCH_IN: Final = re.compile(r"(?<!\\)\{(L?)EPOCH\}", re.IGNORECASE)
_DATE_IN: Final = re.compile(r"(?<!\\)\{DATE\}", re.IGNORECASE)
_WORD_BEGIN: Final = r"(?=^|\b|\W)"
_WORD_END: Final = r"(?=\b|\W|$)"
_LINE_START: Final = r"^(?:\W{0,2})?"
_EPOCH_DIGITS: Final = r"\d{10,11}\b(?:\.\d{3,6})?"
_LEPOCH_DIGITS: Final = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"

DEFAULT_TEMPLATES: Final = (
    # ISO 8601 and simple dates: 2005-01-23T21:59:59.981746, 2005/01/23 21:59:59, 2006.12.21
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    # asctime with optional day name, fraction and year: Sun Jan 23 21:59:59.011 2005
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    # year before the time: Sun Jan 23 2005 21:59:59.011
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    # 23/01/2005 21:59:59, 23/01/05 21:59:59, 17-07-2008 17:23:25
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    # Apache: [31/Oct/2006:09:22:55 -0000], 26-Jul-2007 15:20:52.252 +0200
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    # CPanel: 05/20/2008:01:57:39
    r"%m/%d/%ExY:%H:%M:%S",
    # 01-27-2012 16:22:44.252
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    # time only
    r"{^LN-BEG}%H:%M:%S",
    # <09/16/08@05:03:30>
    r"^<%m/%d/%Exy@%H:%M:%S>",
    # MySQL: 130322 11:46:11
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    # Apache Tomcat: Jan 23, 2005 9:59:59 PM
    r"%b %d, %ExY %I:%M:%S %p",
    # ASSP: Apr-27-13 02:33:06
    r"^%b-%d-%Exy %k:%M:%S",
    # 20050123T215959, 20050123 215959
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    # zone name before the date (monit): PDT Apr 16 21:05:29
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    # offset before the date: +00:00 Jan 23 21:59:59.011 2005
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
)


def pattern_regex(pattern: str) -> str:
    """Directives of ``pattern`` replaced by their regexes (raises RuleError)."""
    out: list[str] = []
    pos = 0
    while True:
        index = pattern.find("%", pos)
        if index < 0:
            out.append(pattern[pos:])
            return "".join(out)
        out.append(pattern[pos:index])
        found = _DIRECTIVE.match(pattern, index)
        if found is None:
            raise RuleError(
                f"datepattern {pattern!r}: unknown directive or unescaped '%' at {index}"
            )
        key = found.group(1)
        if key == "%":
            out.append("%")
        elif key in _COMPOSITES:
            out.append(pattern_regex(_COMPOSITES[key]))
        else:
            out.append(_DIRECTIVES[key])
        pos = found.end()


@dataclass(frozen=True, slots=True)
class DateTemplate:
    """One compiled template. ``group`` holds the date text (cut from the line);
    ``value`` the text converted (they differ only for ``{EPOCH}`` inside a pattern)."""

    name: str
    regex: re.Pattern[str]
    flags: int
    kind: str  # "pattern", "epoch", "tai64n"
    group: int = 1
    value: int = 1
    long: bool = False

    @property
    def anchored(self) -> bool:
        return bool(self.flags & (LINE_BEGIN | LINE_END))


def _bounded(regex: str, begin: bool | str, end: bool) -> tuple[str, int]:
    """Add fail2ban's word/line boundaries and the date group to ``regex``."""
    regex = regex.strip()
    flags_found = _GLOBAL_FLAGS.search(regex)
    global_flags = ""
    if flags_found is not None:
        global_flags = flags_found.group(0)
        regex = regex[: flags_found.start()] + regex[flags_found.end() :]
    bound_begin = bool(begin) and _NO_BEGIN_BOUND.search(regex) is None
    bound_end = end and _NO_END_BOUND.search(regex) is None
    if _GROUPED.search(regex) is None:
        regex = _WRAP.sub(r"\1(\2)\3", regex, count=1)
    flags = 0
    if bound_begin:
        if begin == "start":
            flags |= LINE_BEGIN
            regex = _LINE_START + regex
        else:
            regex = _WORD_BEGIN + regex
    if bound_end:
        regex += _WORD_END
    if _LINE_BEGIN.search(regex):
        flags |= LINE_BEGIN
    if _LINE_END.search(regex):
        flags |= LINE_END
    regex = _STARS.sub(lambda m: m.group(0).replace("**", ""), regex)
    return global_flags + regex, flags


def _compile(name: str, regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except (re.error, OverflowError, RecursionError) as exc:
        raise RuleError(f"datepattern {name!r}: does not compile: {exc}") from exc


def _pattern_template(pattern: str) -> DateTemplate:
    begin: bool | str = True
    end = True
    text = pattern
    if text.startswith(_UNB):
        text = text[len(_UNB) :]
        begin = end = False
    if begin and text.startswith(_LN_BEG):
        text = text[len(_LN_BEG) :]
        begin = "start"
    regex = pattern_regex(text)
    if _ALPHA.search(text):
        regex = "(?iu)" + regex
    regex, flags = _bounded(regex, begin, end)
    return DateTemplate(pattern, _compile(pattern, regex), flags, "pattern")


def _epoch_template(pattern: str, line_begin: bool, long: bool) -> DateTemplate:
    digits = _LEPOCH_DIGITS if long else _EPOCH_DIGITS
    if line_begin:
        regex = rf"(?:(?<=^\[)(?={digits}\])|(?<!^\[))({digits})"
        regex, flags = _bounded(regex, "start", True)
    else:
        regex = rf"(?:^|(?<=^\[)(?={digits}\])|(?<=\baudit\()(?={digits}:\d+\)))({digits})"
        regex, flags = _bounded(regex, False, True)
    return DateTemplate(pattern, _compile(pattern, regex), flags, "epoch", long=long)


def _epoch_pattern_template(pattern: str) -> DateTemplate:
    grouped = _GROUPED.search(pattern) is not None
    regex = _EPOCH_IN.sub(
        lambda m: "(" + (_LEPOCH_DIGITS if m.group(1) else _EPOCH_DIGITS) + ")", pattern
    )
    long = any(m.group(1) for m in _EPOCH_IN.finditer(pattern))
    if not grouped:
        regex = "(" + regex + ")"
    regex, flags = _bounded(regex, True, True)
    return DateTemplate(pattern, _compile(pattern, regex), flags, "epoch", 1, 2, long)


def _tai64n_template(pattern: str, line_begin: bool) -> DateTemplate:
    regex, flags = _bounded("@[0-9a-f]{24}", "start" if line_begin else False, True)
    return DateTemplate(pattern, _compile(pattern, regex), flags, "tai64n")


def _template(pattern: str) -> DateTemplate:
    key = pattern if "%" in pattern else pattern.upper()
    if _EPOCH_IN.search(pattern):
        return _epoch_pattern_template(pattern)
    for word, long in (("EPOCH", False), ("LEPOCH", True)):
        if key == word:
            return _epoch_template(pattern, False, long)
        if key in (_LN_BEG + word, "^" + word):
            return _epoch_template(pattern, True, long)
    if key == "TAI64N":
        return _tai64n_template(pattern, False)
    if key in (_LN_BEG + "TAI64N", "^TAI64N"):
        return _tai64n_template(pattern, True)
    return _pattern_template(pattern)


def _unbound(pattern: str) -> str:
    """A default template's pattern without its own anchors, to sit inside ``{DATE}``."""
    for prefix in (_UNB, _LN_BEG):
        if pattern.startswith(prefix):
            pattern = pattern[len(prefix) :]
    return pattern


_DATE_TEMPLATES: Final = tuple(
    _unbound(p) for p in DEFAULT_TEMPLATES if p not in ("EPOCH", "TAI64N")
)
"""What ``{DATE}`` stands for: each default pattern (EPOCH and TAI64N have none)."""


def _with_date(line: str, pattern: str) -> str:
    out: list[str] = []
    pos = 0
    for found in _DATE_IN.finditer(line):
        out += [line[pos : found.start()], pattern]
        pos = found.end()
    out.append(line[pos:])
    return "".join(out)


def _default_list(line_begin_only: bool) -> list[DateTemplate]:
    anchored: list[DateTemplate] = []
    plain: list[DateTemplate] = []
    for pattern in DEFAULT_TEMPLATES:
        template = _template(pattern)
        if not pattern.startswith((_LN_BEG, "^")):
            anchored.append(_template(_LN_BEG + pattern))
        plain.append(template)
    result = anchored + plain
    if line_begin_only:
        result = [t for t in result if t.flags & LINE_BEGIN]
    return result


_DEFAULT_CACHE: dict[bool, list[DateTemplate]] = {}


def _defaults(line_begin_only: bool) -> list[DateTemplate]:
    cached = _DEFAULT_CACHE.get(line_begin_only)
    if cached is None:
        cached = _DEFAULT_CACHE[line_begin_only] = _default_list(line_begin_only)
    return cached


def compile_datepattern(datepattern: str | None) -> list[DateTemplate] | None:
    """The templates for a ``datepattern`` value; ``None`` means ``{NONE}`` (no date)."""
    if datepattern is None or not datepattern.strip():
        return list(_defaults(False))
    result: list[DateTemplate] = []
    names: set[str] = set()

    def add(templates: Sequence[DateTemplate], ignore_duplicates: bool) -> None:
        for template in templates:
            if template.name in names:
                if ignore_duplicates:
                    continue
                raise RuleError(f"datepattern: {template.name!r} given twice")
            names.add(template.name)
            result.append(template)

    for line in (part.strip() for part in datepattern.split("\n")):
        if not line:
            continue
        key = line if "%" in line else line.upper()
        if key == "{NONE}":
            return None
        if key in (_LN_BEG, "{DEFAULT}"):
            add(_defaults(key == _LN_BEG), bool(result))
        elif _DATE_IN.search(line):
            add([_template(_with_date(line, p)) for p in _DATE_TEMPLATES], bool(result))
        else:
            add([_template(line)], False)
    return result


@dataclass(frozen=True, slots=True)
class DateMatch:
    """Where the date is in a line, and the template that found it."""

    start: int
    end: int
    template: DateTemplate
    match: re.Match[str]


class DateFinder:
    """Finds (stateless) and converts dates for one compiled ``datepattern``."""

    __slots__ = ("templates",)

    def __init__(self, templates: Sequence[DateTemplate]) -> None:
        self.templates = tuple(templates)

    def find(self, line: str) -> DateMatch | None:
        """The date in ``line`` (see the module doc for which template wins)."""
        best: DateMatch | None = None
        for template in self.templates:
            found = template.regex.search(line)
            if found is None:
                continue
            start, end = found.span(template.group)
            if start < 0:
                continue
            candidate = DateMatch(start, end, template, found)
            if template.anchored or found.start() <= 1:
                return candidate
            if best is None or found.start() < best.match.start():
                best = candidate
        return best

    @staticmethod
    def convert(found: DateMatch, now: datetime, tz: tzinfo) -> datetime | None:
        """The matched date as an aware UTC datetime, or None if it is not a valid date."""
        template = found.template
        try:
            if template.kind == "epoch":
                return _from_epoch(found.match.group(template.value), template.long)
            if template.kind == "tai64n":
                seconds = int(found.match.group(template.value)[2:17], 16)
                return datetime.fromtimestamp(seconds, UTC)
            return _from_fields(found.match.groupdict(), now, tz)
        except (ValueError, OverflowError, OSError, KeyError, IndexError):
            return None


def _from_epoch(text: str, long: bool) -> datetime:
    value = float(text)
    if long and len(text) >= 13:
        value = value / 1_000_000 if len(text) >= 16 and "." not in text else value / 1000
    return datetime.fromtimestamp(value, UTC)


def _zone(value: str) -> tzinfo | None:
    """``Z``/``UTC``/``GMT``, an offset, an abbreviation (``CET``), or both (``CET+01``).

    Raises KeyError for an unknown abbreviation (the date is then not used).
    """
    if value in ("Z", "UTC", "GMT"):
        return UTC
    found = re.fullmatch(rf"({_ABBR_RE})?([+-][01]\d(?::?\d{{2}})?)?", value)
    if found is None:
        return None
    abbr, offset = found.groups()
    minutes = _ZONE_ABBR[abbr] if abbr else 0
    if offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        minutes += sign * (int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0))
    return timezone(timedelta(minutes=minutes)) if minutes else UTC


def _from_fields(fields: dict[str, str | None], now: datetime, tz: tzinfo) -> datetime:
    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour = minute = second = 0
    weekday: int | None = None
    julian: int | None = None
    week: int | None = None
    week_starts_monday = True
    zone: tzinfo | None = None
    for key, value in fields.items():
        if value is None:
            continue
        if key == "y":
            year = int(value)
            if year <= 2000:
                year += 2000
        elif key == "Y":
            year = int(value)
        elif key == "m":
            month = int(value)
        elif key == "b":
            month = _MONTHS.index(value.lower()) + 1
        elif key == "B":
            month = _FULL_MONTHS.index(value.lower()) + 1
        elif key == "d":
            day = int(value)
        elif key == "H":
            hour = int(value)
        elif key == "I":
            hour = int(value)
            ampm = (fields.get("p") or "").lower()
            if ampm in ("", "am"):
                if hour == 12:
                    hour = 0
            elif hour != 12:
                hour += 12
        elif key == "M":
            minute = int(value)
        elif key == "S":
            second = int(value)
        elif key == "a":
            weekday = _DAYS.index(value.lower())
        elif key == "A":
            weekday = _FULL_DAYS.index(value.lower())
        elif key == "w":
            weekday = (int(value) - 1) % 7
        elif key == "j":
            julian = int(value)
        elif key in ("U", "W"):
            week = int(value)
            week_starts_monday = key == "W"
        elif key in ("z", "Z"):
            zone = _zone(value)
    local_now = now.astimezone(tz)
    assume_year = year is None
    if year is None:
        year = local_now.year
    if (
        (month is None or day is None)
        and julian is None
        and week is not None
        and weekday is not None
    ):
        julian = _julian_from_week(year, week, weekday, week_starts_monday)
    if (month is None or day is None) and julian is not None:
        found = date.fromordinal(date(year, 1, 1).toordinal() + julian - 1)
        year, month, day = found.year, found.month, found.day
    assume_today = month is None and day is None
    if month is None:
        month = local_now.month
    if day is None:
        day = local_now.day
    naive = datetime(year, month, day, hour, minute, second)
    when = naive.replace(tzinfo=zone) if zone is not None else _localize(naive, tz)
    if assume_today and when > now:
        when -= timedelta(days=1)
    if assume_year and when > now + timedelta(days=1):
        naive = naive.replace(year=year - 1)
        when = naive.replace(tzinfo=zone) if zone is not None else _localize(naive, tz)
    return when.astimezone(UTC)


def _localize(naive: datetime, tz: tzinfo) -> datetime:
    return naive.replace(tzinfo=tz)


def _julian_from_week(year: int, week: int, weekday: int, monday_first: bool) -> int:
    first = date(year, 1, 1).weekday()  # Monday is 0
    if not monday_first:
        first = (first + 1) % 7
        weekday = (weekday + 1) % 7
    week_0_length = (7 - first) % 7
    if week == 0:
        return 1 + weekday - first
    return 1 + week_0_length + 7 * (week - 1) + weekday
