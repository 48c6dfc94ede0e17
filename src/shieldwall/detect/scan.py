"""Block scanning: find every hit of a rule in a whole block of lines with one regex pass.

Per-line matching costs a Python call per line. :class:`BlockScanner` instead runs the
rule's combined regex over a block of lines joined by newlines, so lines that do not match
cost only the regex engine's time, in C. The regex is prefixed with a literal ``\\n`` (the
block is given a leading newline), which lets the engine jump from line start to line start
instead of trying every position.

The block path gives exactly the per-line result or is not used:

* it is only offered for blocks of valid UTF-8 without NUL or CR characters and without
  lines longer than ``max_line`` (the detector checks; other blocks go line by line);
* a match that would run past the end of its line (``\\s`` and negated classes can cross a
  newline) is discarded and that line is matched on its own;
* after a hit the scan resumes at the next line, so a line is never counted twice;
* rules whose patterns use ``\\A``, ``\\Z`` or a DOTALL flag are never scanned by block.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from shieldwall.detect import native as c_path
from shieldwall.detect.native import Unsupported, pcre2_pattern
from shieldwall.detect.rule import Rule

__all__ = ["BlockScanner", "StampCache", "block_scanner"]

_UNSAFE: Final = re.compile(r"\\[AZz]|\(\?[a-zA-Z]*s[a-zA-Z]*[:)]")


class BlockScanner:
    """One rule's combined regex, rewritten to run over a block (``"\\n"`` + lines joined by
    ``"\\n"``): ``regex.search(block, pos)`` finds the next hit at or after ``pos``, its match
    starting at the newline before the line; ``slots`` maps ``lastindex`` to
    ``(pattern index, host group)``. The detector's loop is in ``Detector._scan_block``."""

    __slots__ = ("_native", "literal", "regex", "rule", "slots")

    def __init__(self, rule: Rule) -> None:
        compiled = rule.compiled
        source = compiled.combined.pattern
        flags = compiled.combined.flags | re.MULTILINE
        if compiled.anchored:
            self.regex = re.compile(f"\n(?:{source})", flags)
        else:
            self.regex = re.compile(f"\n[^\n]*?(?:{source})", flags)
        # group numbers shift by nothing: the wrapper adds no capturing group
        self.slots = compiled.slots
        self.rule = rule
        self.literal = rule.prefilter[0] if len(rule.prefilter) == 1 else None
        self._native: Any = False  # not made yet

    @property
    def native(self) -> Any:
        """The C scanner of the block regex (``_native.Scanner``), or None when the extension
        is not built or the regex has no exact PCRE2 rewrite (:mod:`shieldwall.detect.native`).
        Made on first use (compiling costs about a millisecond) and shared by rules with the
        same regex."""
        if c_path.NATIVE is None:
            return None
        if self._native is False:
            slots = tuple((g, index, host) for g, (index, host) in sorted(self.slots.items()))
            literals = tuple(literal.encode("utf-8") for literal in self.rule.prefilter)
            self._native = _native_scanner(self.regex.pattern, self.regex.flags, slots, literals)
        return self._native


@functools.lru_cache(maxsize=256)
def _native_scanner(
    pattern: str, flags: int, slots: tuple[tuple[int, int, int], ...], literals: tuple[bytes, ...]
) -> Any:
    module = c_path.NATIVE
    if module is None:
        return None
    try:
        return module.Scanner(pcre2_pattern(pattern, flags), slots, literals)
    except (Unsupported, ValueError):
        return None


def block_scanner(rule: Rule) -> BlockScanner | None:
    """A scanner for ``rule``, or None when its patterns cannot be scanned by block."""
    compiled = rule.compiled
    texts = [compiled.combined.pattern, *(p.pattern for p in compiled.ignores)]
    if any(_UNSAFE.search(t) for t in texts):
        return None
    if compiled.combined.flags & re.DOTALL:
        return None
    return BlockScanner(rule)


_MONTHS: Final = frozenset(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
_SYSLOG_START: Final = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")


class StampCache:
    """A line's time, remembering the last line's when both start with the same syslog stamp.

    Consecutive log lines mostly share their second; for a line that starts with a syslog
    stamp (``Mar  1 00:00:05 ``) the result depends only on those 16 characters and ``now``,
    so the last result is reused. Anything else is parsed in full. ``key``, ``now`` and
    ``epoch_value`` are public so the detector's hot loop can test the cache inline.
    """

    __slots__ = ("_parse", "at", "cacheable", "epoch_value", "key", "now")

    def __init__(self, parse: Callable[[str, datetime], datetime | None], datepattern: str) -> None:
        self._parse = parse
        self.cacheable = datepattern in ("syslog", "auto")
        self.key = ""
        self.now: datetime | None = None
        self.at: datetime | None = None
        self.epoch_value: float | None = None

    def epoch(self, line: str, now: datetime) -> float | None:
        """Like :meth:`get`, as epoch seconds."""
        if line[:16] == self.key and now is self.now:
            return self.epoch_value
        at = self.get(line, now)
        return None if at is None else at.timestamp()

    def get(self, line: str, now: datetime) -> datetime | None:
        key = line[:16]
        if key == self.key and now is self.now:
            return self.at
        at = self._parse(line, now)
        if at is not None and self._syslog_key(key):
            self.key, self.now, self.at, self.epoch_value = key, now, at, at.timestamp()
        return at

    def _syslog_key(self, key: str) -> bool:
        """Whether the line's first 16 characters are a syslog stamp this cache may key on."""
        return self.cacheable and key[:3] in _MONTHS and _SYSLOG_START.fullmatch(key) is not None

    def minute_base(self, line: str, now: datetime) -> float | None:
        """The time of second 00 of the minute of the line's syslog stamp, if second ``ss`` of
        that minute is that time plus ``ss`` for every ``ss`` from 00 to 59 (no change of year
        or UTC offset within it); else None. The C scan keeps it for the minute."""
        key = line[:16]
        if not self._syslog_key(key):
            return None
        first = self._parse(key[:13] + "00 ", now)
        last = self._parse(key[:13] + "59 ", now)
        if first is None or last is None:
            return None
        base = first.timestamp()
        return base if last.timestamp() - base == 59 else None
