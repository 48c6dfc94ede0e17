"""Run a fail2ban filter on log lines: fail2ban's matching semantics, shieldwall's safety.

:class:`CompiledFilter` is the immutable, compiled form of a ``dialect = "fail2ban"`` rule
(built once, in :class:`~shieldwall.detect.rule.Rule`). :class:`Fail2banEngine` is its
per-detector state (date fallback, multi-line buffer and failure cache); the
:class:`~shieldwall.detect.detector.Detector` uses it instead of the native
:class:`~shieldwall.detect.matcher.Matcher` and ``TimeParser`` (same ``match``/``explain``
and ``parse`` methods).

For each line, as fail2ban does:

1. find the date (:mod:`.dates`) and cut it out of the line;
2. a line matching any ``ignoreregex`` is ignored (counter ``ignored``);
3. the line joins the ``maxlines`` buffer; ``prefregex``, if any, must match (searched), and
   its ``<F-CONTENT>`` becomes the text the failregex see;
4. the ``failregex`` are searched in order, the first that matches wins (``pattern`` is its
   index); its lines are checked against ``ignoreregex`` again;
5. the groups of ``prefregex`` and of the failregex are merged; with ``<F-MLFID>`` they are
   merged into the multi-line failure (:mod:`.multiline`); ``<F-NOFAIL>`` lines are helpers;
6. the source is the ``ip4``/``ip6`` group, validated as an IP address.

Differences, all on the safe side:

* a host name (``dns`` group) is never resolved: the line is skipped (``dns_host``);
* a failure id that is not an address (``<F-ID>``) cannot be a source: skipped
  (``no_address``);
* **attribution must be unambiguous.** After a match, every other address of the text is
  in turn *marked*, and a variant of the same regex whose address groups only match marked
  text is searched: a match means the regex also reads the line with that other address as
  the source, and an attacker who writes part of the line (a user name, a URL) may be the
  one choosing which reading wins. The line then gives no address (counter
  ``ambiguous_host``; with ``<F-MLFID>``, an address an earlier line of the same connection
  gave unambiguously is still used). A text holding more than 16 other addresses is not
  examined and is ambiguous. For a regex that is not anchored at the end (``$``), an
  address that follows the captured one after the same literal text (``from `` in
  ``… from <HOST>``) is ambiguous too: the captured address may be attacker text placed in
  front of the real one. fail2ban attributes these lines; shieldwall prefers to miss them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Final

import regex as _regex

from shieldwall.detect.fail2ban.dates import DateFinder, DateMatch, DateTemplate
from shieldwall.detect.fail2ban.multiline import FailureCache, Groups, LineBuffer, matched_lines
from shieldwall.detect.fail2ban.tags import (
    ADDRESS_GROUPS,
    MARK_END,
    MARK_START,
    RE_PARSER,
    ExpandedRegex,
    compile_regex,
)
from shieldwall.detect.matcher import MatchExplanation, MatchResult, cached_address
from shieldwall.errors import RuleError
from shieldwall.model import Address, Counters

if TYPE_CHECKING:
    from shieldwall.detect.native import NativeFilter

__all__ = ["MAX_OTHER_ADDRESSES", "REGEX_TIMEOUT", "CompiledFilter", "Fail2banEngine", "Outcome"]

_AT, _AT_BEGINNING = RE_PARSER.AT, RE_PARSER.AT_BEGINNING

_V4: Final = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d)")
_V6: Final = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:.])")
_ADDRESS_TAG: Final = re.compile(r"<(?:HOST|ADDR|IP4|IP6|SUBNET|F-(?:ADDR|IP4|IP6|SUBNET)/)>")
_LITERAL: Final = frozenset(" =:,\"'@-_/#")
_MIN_CONTEXT: Final = 3
MAX_OTHER_ADDRESSES: Final = 16
REGEX_TIMEOUT: Final = 0.1
"""Seconds one search of a filter regex may take; a line that needs more is skipped and
counted (``regex_timeout``): backtracking regexes can be made to run for minutes. Searches
are timed when the regex may backtrack exponentially (``tags.backtracks``) or the text is
longer than :data:`LONG_TEXT` (polynomial backtracking, ``.*x.*y``, needs length); a timed
search costs about 1.5 µs more."""
LONG_TEXT: Final = 1024


def _limit(risky: bool, text: str) -> float | None:
    return REGEX_TIMEOUT if risky or len(text) > LONG_TEXT else None


"""Other addresses examined per match; a text with more is ambiguous (bounded work)."""


def _context(source: str) -> str:
    """The literal text right before the first address tag of ``source`` (``"from "``)."""
    found = _ADDRESS_TAG.search(source)
    if found is None:
        return ""
    prefix = source[: found.start()]
    out: list[str] = []
    i = len(prefix)
    while i > 0:
        char = prefix[i - 1]
        escaped = i >= 2 and prefix[i - 2] == "\\" and not (i >= 3 and prefix[i - 3] == "\\")
        if escaped:
            if char.isalnum():
                break  # \d, \s, \S…: a class, not a literal
            out.append(char)
            i -= 2
            continue
        if char.isalnum() or char in _LITERAL:
            out.append(char)
            i -= 1
            continue
        break
    context = "".join(reversed(out))
    return context if len(context.strip()) >= _MIN_CONTEXT else ""


def _end_anchored(source: str) -> bool:
    text = source.rstrip()
    while text.endswith(")") and not text.endswith("\\)"):
        text = text[:-1].rstrip()
    if not text.endswith("$"):
        return False
    backslashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    return backslashes % 2 == 0


@dataclass(frozen=True, slots=True)
class _Failregex:
    expanded: ExpandedRegex
    end_anchored: bool
    context: str

    @property
    def regex(self) -> _regex.Pattern[str]:
        return self.expanded.regex


_GROUP_NAME: Final = re.compile(r"\(\?P(?:<|=)(\w+)[>)]|\(\?\((\w+)\)")
_NUMBERED_REF: Final = re.compile(r"\\[1-9]|\(\?\(\d")


def _starts_anchored(regex: _regex.Pattern[str]) -> bool:
    """Whether every match of ``regex`` starts at position 0 of the searched text (a leading
    ``^`` that covers the whole pattern, without MULTILINE)."""
    if regex.flags & (_regex.MULTILINE | _regex.VERBOSE):
        return False
    try:
        parsed = RE_PARSER.parse(regex.pattern, 0)
    except Exception:  # any doubt: not anchored
        return False
    return len(parsed) > 0 and parsed[0] == (_AT, _AT_BEGINNING)


def _renamed(source: str, prefix: str) -> str:
    """``source`` with its named groups, references and conditionals renamed ``prefix+name``."""

    def rename(found: re.Match[str]) -> str:
        text = found.group(0)
        name = found.group(1) or found.group(2)
        return text.replace(name, prefix + name, 1)

    return _GROUP_NAME.sub(rename, source)


def _union(fails: Sequence[_Failregex]) -> _regex.Pattern[str] | None:
    """One regex joining the failregex, one marker group ``_k`` per failregex, when every
    failregex is anchored at the start: at that single position alternation order is
    failregex order, so ``union.match(text).lastgroup`` names the first failregex that
    matches — what searching them in turn finds — and no match means none does. ``None``
    when the patterns cannot be joined that way (one not anchored, numbered
    back-references, differing flags, too many). A union of unanchored patterns would be
    searched at every position with every alternative: slower than trying them in turn."""
    if len(fails) < 2 or len(fails) > 90 or not all(_starts_anchored(f.regex) for f in fails):
        return None
    flags = {f.regex.flags for f in fails}
    if len(flags) != 1:
        return None
    parts = []
    for k, fail in enumerate(fails):
        source = fail.regex.pattern
        if _NUMBERED_REF.search(source):
            return None
        parts.append(f"(?P<_{k}>{_renamed(source, f'_{k}_')})")
    try:
        union = _regex.compile("|".join(parts), flags.pop())
    except _regex.error:
        return None
    return union


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A fail2ban filter compiled (immutable; share it between detectors).

    ``union`` joins the failregex into one regex (see :func:`_union`): a line none of them
    matches costs one match instead of one search per failregex, and the first failregex
    that matches is known at once.
    """

    origin: str
    failregex: tuple[_Failregex, ...]
    prefregex: ExpandedRegex | None
    ignoreregex: tuple[ExpandedRegex, ...]
    dates: tuple[DateTemplate, ...] | None
    maxlines: int
    distinct: str | None = None
    union: _regex.Pattern[str] | None = None
    union_risky: bool = False

    @classmethod
    def build(
        cls,
        origin: str,
        failregex: Sequence[str],
        *,
        prefregex: str | None = None,
        ignoreregex: Sequence[str] = (),
        dates: Sequence[DateTemplate] | None = (),
        maxlines: int = 1,
        use_dns: bool = True,
        distinct: str | None = None,
    ) -> CompiledFilter:
        """Compile; raises RuleError naming ``origin`` and the regex at fault."""
        multiline = maxlines > 1
        pref = None
        if prefregex:
            pref = compile_regex(
                prefregex, origin, "prefregex", use_dns=use_dns, multiline=multiline
            )
        fails = []
        for i, source in enumerate(failregex):
            expanded = compile_regex(
                source, origin, f"failregex[{i}]", use_dns=use_dns, multiline=multiline
            )
            if not expanded.has_id() and not (pref is not None and pref.has_id()):
                raise RuleError(
                    f"{origin}: failregex[{i}]: no <HOST>, <ADDR>, <F-ID> or <F-MLFID> "
                    f"(neither here nor in prefregex): {source!r}"
                )
            fails.append(_Failregex(expanded, _end_anchored(source), _context(source)))
        if not fails:
            raise RuleError(f"{origin}: failregex: at least one pattern is required")
        ignores = tuple(
            compile_regex(source, origin, f"ignoreregex[{i}]", use_dns=use_dns)
            for i, source in enumerate(ignoreregex)
        )
        if distinct is not None and not any(
            distinct in r.regex.groupindex
            for r in (*(f.expanded for f in fails), *((pref,) if pref else ()))
        ):
            raise RuleError(f"{origin}: distinct: no regex captures <F-{distinct.upper()}>")
        union = _union(fails)
        return cls(
            origin=origin,
            failregex=tuple(fails),
            prefregex=pref,
            ignoreregex=ignores,
            dates=None if dates is None else tuple(dates),
            maxlines=maxlines,
            distinct=distinct,
            union=union,
            union_risky=any(f.expanded.risky for f in fails),
        )

    def engine(
        self, tz: tzinfo, counters: Counters | None = None, *, native: bool = False
    ) -> Fail2banEngine:
        """Per-detector state; ``native=True`` compiles the filter for the C path too when it
        can run there (:func:`~shieldwall.detect.native.fail2ban_filter`)."""
        return Fail2banEngine(self, tz, counters, native)


@dataclass(slots=True)
class Outcome:
    """What one line did (``reason`` as in :class:`MatchExplanation`, plus ``dns-host``,
    ``ambiguous-host``, ``no-address``, ``nofail``, ``pending``, ``regex-timeout``)."""

    reason: str
    detail: str
    pattern: int | None = None
    host: str | None = None
    source: Address | None = None
    ignore: int | None = None
    fields: dict[str, object] = field(default_factory=dict)


class _State:
    __slots__ = ("buffer", "cache", "now")

    def __init__(self, maxlines: int, cache: FailureCache | None = None) -> None:
        self.buffer = LineBuffer(maxlines)
        # the C path's cache (_native.FailureCache: same methods) when the filter runs there
        self.cache = cache if cache is not None else FailureCache()
        self.now: float | None = None  # the detector's clock, for the cache's expiry


class Fail2banEngine:
    """One filter's matching state inside one detector."""

    __slots__ = (
        "_counters",
        "_finder",
        "_found",
        "_last_date",
        "_now",
        "_state",
        "_text",
        "_tz",
        "compiled",
        "last",
        "native",
    )

    def __init__(
        self,
        compiled: CompiledFilter,
        tz: tzinfo,
        counters: Counters | None,
        native: bool = False,
    ) -> None:
        self.compiled = compiled
        self._tz = tz
        self._counters = counters if counters is not None else Counters()
        self._finder = DateFinder(compiled.dates) if compiled.dates is not None else None
        self.native: NativeFilter | None = None
        if native:  # native.py imports this package: imported here
            from shieldwall.detect.native import fail2ban_filter

            self.native = fail2ban_filter(compiled)
        """The filter compiled for the C path (:meth:`scan`), or None."""
        self._state = self._new_state()
        self._text: str | None = None
        self._found: DateMatch | None = None
        self._last_date: DateMatch | None = None
        self._now = datetime.fromtimestamp(0, UTC)  # set by scan() before any hook runs
        self.last: Outcome | None = None

    def _new_state(self) -> _State:
        native = self.native
        return _State(self.compiled.maxlines, None if native is None else native.cache())

    # -- the Matcher/TimeParser interface used by the Detector --------------------------

    def match(self, text: str) -> MatchResult | None:
        """Feed one line (in order); a result when it completes a failure."""
        found = self._finder.find(text) if self._finder is not None else None
        self._text = text
        self._found = found
        if found is not None and found.end > found.start:
            self._last_date = found
        outcome = _evaluate_bounded(self.compiled, text, found, self._state)
        self.last = outcome
        reason = outcome.reason
        if reason == "hit" and outcome.source is not None and outcome.pattern is not None:
            distinct = self.compiled.distinct
            if distinct is None:
                return MatchResult(outcome.source, outcome.pattern)
            value = outcome.fields.get(distinct)
            return MatchResult(outcome.source, outcome.pattern, "" if value is None else str(value))
        if reason in (
            "ignored",
            "dns-host",
            "ambiguous-host",
            "no-address",
            "invalid-host",
            "regex-timeout",
        ):
            self._counters.inc(reason.replace("-", "_"))
        return None

    def parse(self, text: str, now: datetime) -> datetime | None:
        """The time of ``text``: its own date; for a line without one (or whose template
        matched an empty date, such as ``^WARNING:()``), that of the last dated line."""
        if text == self._text:
            found = self._found
            if found is None or found.end == found.start:
                found = self._last_date
        else:
            found = self._finder.find(text) if self._finder is not None else None
        if found is None or found.end == found.start:
            return None
        return DateFinder.convert(found, now, self._tz)

    def explain(self, text: str) -> MatchExplanation:
        """How a lone line is judged (fresh multi-line state; counts nothing)."""
        found = self._finder.find(text) if self._finder is not None else None
        outcome = _evaluate_bounded(self.compiled, text, found, _State(self.compiled.maxlines))
        return MatchExplanation(
            outcome.reason,
            outcome.detail,
            pattern=outcome.pattern,
            host=outcome.host,
            source=outcome.source,
            ignore=outcome.ignore,
        )

    def at(self, now: float) -> None:
        """The clock (epoch seconds) of the lines fed next: multi-line ids expire on it."""
        self._state.now = now

    def reset(self) -> None:
        """Forget the multi-line state and the last date."""
        self._state = self._new_state()
        self._text = self._found = self._last_date = None

    # -- the C path (native.py): a block of ASCII lines, with these hooks for Python's part --

    def scan(
        self,
        block: bytes,
        windows: object,
        rule: str,
        tally: dict[Any, Any] | None,
        tallied: object,
        addresses: dict[str, Address | None],
        resolve: Callable[[str], Address | None],
        now: datetime,
    ) -> tuple[int, int, list[Any]]:
        """Run ``block`` (``"\\n"`` + ASCII lines joined by ``"\\n"``) through the C filter:
        hits are counted into ``tally`` and poured into the C window buckets ``windows``;
        returns (hits, hits without a time, raw alerts). The multi-line state and the last
        date are this engine's, shared with :meth:`match`."""
        native = self.native
        if native is None:
            raise RuntimeError(f"{self.compiled.origin}: not compiled for the C path")
        self._now = now
        state = self._state
        found, ignored, invalid, undated, dns, no_address, alerts, last = native.filter.scan(
            block, windows, rule, tally, tallied, addresses, resolve, now.timestamp(),
            state.cache, state.now, self,
        )  # fmt: skip
        if last is not None:
            self._note_date(last)
        counters = self._counters
        for name, value in (
            ("ignored", ignored),
            ("invalid_host", invalid),
            ("dns_host", dns),
            ("no_address", no_address),
        ):
            if value:
                counters.inc(name, value)
        return found, undated, alerts

    def _note_date(self, text: str) -> None:
        """``text`` (a line with a non-empty date) is the last dated line seen."""
        found = self._finder.find(text) if self._finder is not None else None
        if found is None or found.end == found.start:
            self._mismatch()  # Python's answer stands
        self._last_date = found
        self._text = self._found = None

    def _mismatch(self) -> None:
        """The C date search disagreed with Python's (a bug: counted, never raised on a
        line's content; the test suite holds the two to the same answers)."""
        self._counters.inc("native_mismatch")

    def line(self, text: str, last: str | None) -> tuple[Address, float | None] | None:
        """Hook of the C path: ``text`` decided in Python (:meth:`match`), after ``last``,
        the last dated line before it (None: the one this engine holds)."""
        if last is not None:
            self._note_date(last)
        found = self.match(text)
        if found is None:
            return None
        at = self.parse(text, self._now)
        return found.source, None if at is None else at.timestamp()

    def epoch_of(self, text: str | None) -> float | None:
        """Hook of the C path: the time of ``text`` (a line with a date), or with None of the
        last dated line this engine holds."""
        if text is None:
            found = self._last_date
        else:
            found = self._finder.find(text) if self._finder is not None else None
        if found is None or found.end == found.start:
            return None
        at = DateFinder.convert(found, self._now, self._tz)
        return None if at is None else at.timestamp()

    def minute_base(
        self, text: str, template: int, start: int, end: int, second: int
    ) -> float | None:
        """Hook of the C path: the time of ``text`` with second 00 when every second ``ss``
        of that minute is that time plus ``ss`` (the same template, span and fields with
        ``00`` and ``59``, a minute apart: no change of year or offset inside it); else
        None. ``template``, ``start``, ``end`` are the C search's result, checked here."""
        finder = self._finder
        if finder is None:
            raise RuntimeError("a filter without dates has no minutes")
        chosen = finder.templates[template]
        found = finder.find(text)
        if (
            found is None
            or found.template is not chosen
            or (found.start, found.end) != (start, end)
        ):
            self._mismatch()
            return None
        fields = dict(found.match.groupdict(), S=None)
        bounds = []
        for digits in ("00", "59"):
            variant = text[:second] + digits + text[second + 2 :]
            other = finder.find(variant)
            if (
                other is None
                or other.template is not chosen
                or (other.start, other.end) != (start, end)
                or dict(other.match.groupdict(), S=None) != fields
            ):
                return None
            at = DateFinder.convert(other, self._now, self._tz)
            if at is None:
                return None
            bounds.append(at.timestamp())
        return bounds[0] if bounds[1] - bounds[0] == 59 else None


def _ignored(compiled: CompiledFilter, text: str) -> int | None:
    for i, regex in enumerate(compiled.ignoreregex):
        if regex.regex.search(text, timeout=_limit(regex.risky, text)) is not None:
            return i
    return None


def _merge_alternates(groups: Groups, alternates: Sequence[tuple[str, str]]) -> None:
    for name, target in alternates:
        value = groups.get(name)
        if value and not groups.get(target):
            groups[target] = value


_ADDRESSES: dict[str, Address | None] = {}


def _address(text: str) -> Address | None:
    return cached_address(_ADDRESSES, text, 1 << 16)


def _candidates(text: str, span: tuple[int, int]) -> Iterator[tuple[int, int, Address]]:
    """Addresses in ``text`` outside ``span``."""
    # an IPv4 address has three dots, an IPv6 one at least two colons: a scan that cannot
    # find one outside the span is skipped (most lines hold one address only)
    begin, end_ = span
    patterns = []
    if text.count(".", 0, begin) + text.count(".", end_) >= 3:
        patterns.append(_V4)
    if text.count(":", 0, begin) + text.count(":", end_) >= 2:
        patterns.append(_V6)
    for pattern in patterns:
        for found in pattern.finditer(text):
            start, end = found.span()
            if start < span[1] and end > span[0]:
                continue
            address = _address(found.group(0))
            if address is not None:
                yield start, end, address


def _ambiguous(
    regex: ExpandedRegex,
    text: str,
    span: tuple[int, int],
    chosen: Address,
    anchored: bool,
    context: str,
) -> str | None:
    """Why attributing ``chosen`` (at ``span`` of ``text``) is unsafe, or None.

    Another address of the line is *marked* and the regex variant whose address groups only
    match marked text is searched: a match means the line also reads with that address.
    """
    clean = text.replace(MARK_START, "\ufffd").replace(MARK_END, "\ufffd")
    marked = regex.marked
    examined = 0
    for start, end, address in _candidates(clean, span):
        if address == chosen:
            continue
        examined += 1
        if examined > MAX_OTHER_ADDRESSES:
            return f"the text holds more than {MAX_OTHER_ADDRESSES} other addresses"
        other = clean[start:end]
        if marked is not None:
            probe = clean[:start] + MARK_START + other + MARK_END + clean[end:]
            if marked.search(probe, timeout=_limit(regex.risky, probe)) is not None:
                return f"the regex also reads the line with {other!r} as the address"
        if not anchored and context and start >= span[1]:
            before = clean[:start].rstrip("[(\"'<")
            if before.endswith(context):
                return (
                    f"the regex is not anchored at the end and {context + other!r} follows "
                    "the captured address"
                )
    return None


def _host_span(found: _regex.Match[str]) -> tuple[str, tuple[int, int]] | None:
    for name in ADDRESS_GROUPS:
        if name in found.re.groupindex and found.group(name) is not None:
            return found.group(name), found.span(name)
    return None


def _evaluate_bounded(
    compiled: CompiledFilter, text: str, found: DateMatch | None, state: _State
) -> Outcome:
    """:func:`_evaluate`, or ``regex-timeout`` when a search takes longer than
    :data:`REGEX_TIMEOUT` (the line is given up; multi-line state keeps what it had)."""
    try:
        return _evaluate(compiled, text, found, state)
    except TimeoutError:
        return Outcome(
            "regex-timeout",
            f"a regex took longer than {REGEX_TIMEOUT} s on this line (skipped)",
        )


def _evaluate(
    compiled: CompiledFilter, text: str, found: DateMatch | None, state: _State
) -> Outcome:
    line = text[: found.start] + text[found.end :] if found is not None else text
    lines = state.buffer.push(line)
    buf = "\n".join(lines) + "\n"
    # fail2ban checks ignoreregex on the whole line first only when there are clearly fewer
    # of them than failregex; always on what the failregex matched (below)
    if compiled.ignoreregex and len(compiled.ignoreregex) < len(compiled.failregex) - 2:
        ignore = _ignored(compiled, buf)
        if ignore is not None:
            return Outcome("ignored", f"ignoreregex[{ignore}] matches the line", ignore=ignore)
    original = buf
    pre_groups: Groups = {}
    pref = compiled.prefregex
    pre_match: _regex.Match[str] | None = None
    if pref is not None:
        pre_match = pref.regex.search(buf, timeout=_limit(pref.risky, buf))
        if pre_match is None:
            return Outcome("prefix", "prefregex does not match")
        pre_groups = dict(pre_match.groupdict())
        content = pre_groups.pop("content", None)
        if content:
            buf = str(content) + "\n"
            lines = [str(content)]
            if compiled.maxlines > 1:
                state.buffer.keep(list(lines))
    first = 0
    union = compiled.union
    if union is not None:
        gate = union.match(buf, timeout=_limit(compiled.union_risky, buf))
        if gate is None:
            return Outcome("no-match", "no failregex matches")
        first = int((gate.lastgroup or "_0")[1:])
    for index, fail in enumerate(compiled.failregex[first:], first):
        hit = fail.regex.search(buf, timeout=_limit(fail.expanded.risky, buf))
        if hit is None:
            continue
        skipped: list[str] = []
        for n in range(fail.expanded.skiplines):
            value = hit.group(f"skiplines{n}")
            if value:
                skipped += value.splitlines()
        matched, unmatched = matched_lines(lines, buf, hit.start(), hit.end(), skipped)
        if compiled.maxlines > 1:
            state.buffer.keep(unmatched)
        seen = "\n".join(matched) + "\n" if compiled.maxlines > 1 else buf
        ignore = _ignored(compiled, seen) if compiled.ignoreregex else None
        if ignore is not None:
            return Outcome(
                "ignored",
                f"failregex[{index}] matches but ignoreregex[{ignore}] too",
                pattern=index,
                ignore=ignore,
            )
        groups: Groups = dict(pre_groups)
        # a group the failregex has but did not fill keeps the prefregex value
        groups.update(
            (k, v) for k, v in hit.groupdict().items() if v is not None or k not in groups
        )
        _merge_alternates(groups, fail.expanded.alternates)
        doubt = _doubt(fail, hit, buf, pref, pre_match, original)
        if doubt is not None:
            for name in (*ADDRESS_GROUPS, "dns"):
                groups.pop(name, None)
        mlfid = groups.get("mlfid")
        if mlfid is not None:
            groups = state.cache.merge(str(mlfid), groups, state.now)
        if groups.get("nofail"):
            if doubt is not None:
                return Outcome("ambiguous-host", f"failregex[{index}] matches but {doubt}", index)
            return Outcome(
                "nofail", f"failregex[{index}] matches a helper line (no failure)", index
            )
        outcome = _attribute(index, groups)
        if outcome.reason == "pending":
            if mlfid is not None:
                state.cache.pending(str(mlfid))
            if doubt is not None:
                return Outcome("ambiguous-host", f"failregex[{index}] matches but {doubt}", index)
        return outcome
    return Outcome("no-match", "no failregex matches")


def _doubt(
    fail: _Failregex,
    hit: _regex.Match[str],
    buf: str,
    pref: ExpandedRegex | None,
    pre_match: _regex.Match[str] | None,
    original: str,
) -> str | None:
    """Why the address this line gives may not be the source (see the module doc)."""
    own = _host_span(hit)
    if own is not None:
        regex, text, anchored, context = fail.expanded, buf, fail.end_anchored, fail.context
    elif pref is not None and pre_match is not None:
        own = _host_span(pre_match)
        regex, text, anchored, context = pref, original, True, ""
    if own is None:
        return None
    address = _address(own[0])
    if address is None:
        return None
    return _ambiguous(regex, text, own[1], address, anchored, context)


def _attribute(index: int, groups: Groups) -> Outcome:
    fields = {k: v for k, v in groups.items() if v is not None}
    for name in ADDRESS_GROUPS:
        host = groups.get(name)
        if host is not None:
            address = _address(str(host))
            if address is None:
                return Outcome(
                    "invalid-host",
                    f"failregex[{index}] matches but {host!r} is not a valid IP address",
                    index,
                    str(host),
                )
            return Outcome(
                "hit", f"failregex[{index}] matches", index, str(host), address, fields=fields
            )
    dns = groups.get("dns")
    if dns is not None:
        return Outcome(
            "dns-host",
            f"failregex[{index}] matches but the host {dns!r} is a name (never resolved)",
            index,
            str(dns),
        )
    fid = groups.get("fid")
    if fid is not None:
        address = _address(str(fid))
        if address is not None:
            return Outcome(
                "hit", f"failregex[{index}] matches", index, str(fid), address, fields=fields
            )
        return Outcome(
            "no-address",
            f"failregex[{index}] matches but its failure id {fid!r} is no address",
            index,
            str(fid),
        )
    return Outcome("pending", f"failregex[{index}] matches; the failure has no address yet", index)
