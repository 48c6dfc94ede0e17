"""The detector's C path: when it is built, and what it may run.

``shieldwall.detect._native`` (``_native.c``, built by ``setup.py`` when a C compiler and
PCRE2's headers are present: Debian ``libpcre2-dev``) runs a rule's block regex with PCRE2's
JIT and does the per-hit work in C: source address, time, count per source, window bucket.
Without it the pure-Python detector runs, with the same results; the test suite holds the two
to the same answers (``tests/detect/test_native.py``).

The C path is exact or not taken:

* only blocks of ASCII lines reach it (no NUL, CR or over-long line: see ``scan.py``);
* a rule's regex is rewritten from Python's parse tree into PCRE2 syntax with Python's
  meaning for ASCII text (``\\s`` also matches ``\\x1c``-``\\x1f``, as in Python; ``\\d`` and
  ``\\w`` are ASCII); a construct without an exact rewrite (a non-ASCII literal, a negated
  class inside a set, a locale flag…) keeps the rule on the Python path;
* what C cannot decide exactly (a match that runs past its line, a host that is not a plain
  dotted quad, a stamp not yet cached) is asked of Python, line by line.

``SHIELDWALL_NATIVE=0`` turns the C path off; ``SHIELDWALL_NATIVE=require`` makes a missing
extension an error at import (the test suite runs so under CI).
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import Any, Final

from shieldwall.detect.fail2ban.tags import RE_PARSER

__all__ = ["NATIVE", "Unsupported", "native_module", "pcre2_pattern"]

_CONSTANTS: Any = importlib.import_module("re._constants")


def native_module() -> ModuleType | None:
    """The C extension, or None (not built, or ``SHIELDWALL_NATIVE=0``)."""
    setting = os.environ.get("SHIELDWALL_NATIVE", "").strip().lower()
    if setting in ("0", "off", "no", "false"):
        return None
    try:
        return importlib.import_module("shieldwall.detect._native")
    except ImportError as exc:
        if setting == "require":
            raise ImportError(
                "SHIELDWALL_NATIVE=require, but shieldwall.detect._native is not built "
                "(install gcc and libpcre2-dev, then reinstall shieldwall)"
            ) from exc
        return None


NATIVE: ModuleType | None = native_module()
"""The C extension when it is built and allowed, else None (tests set it to None to run the
pure-Python path)."""


class Unsupported(ValueError):
    """A regex construct without an exact PCRE2 rewrite."""


_SPACE: Final = r"\x{09}-\x{0d}\x{1c}-\x{20}"  # Python's \s on ASCII: \t\n\v\f\r, \x1c-\x1f, space
_DIGIT: Final = "0-9"
_WORD: Final = "0-9A-Za-z_"
_CATEGORIES: Final = {
    _CONSTANTS.CATEGORY_DIGIT: (_DIGIT, False),
    _CONSTANTS.CATEGORY_NOT_DIGIT: (_DIGIT, True),
    _CONSTANTS.CATEGORY_SPACE: (_SPACE, False),
    _CONSTANTS.CATEGORY_NOT_SPACE: (_SPACE, True),
    _CONSTANTS.CATEGORY_WORD: (_WORD, False),
    _CONSTANTS.CATEGORY_NOT_WORD: (_WORD, True),
}
_AT: Final = {
    _CONSTANTS.AT_BEGINNING: "^",
    _CONSTANTS.AT_END: "$",
    _CONSTANTS.AT_BEGINNING_STRING: r"\A",
    _CONSTANTS.AT_END_STRING: r"\z",
    _CONSTANTS.AT_BOUNDARY: r"\b",
    _CONSTANTS.AT_NON_BOUNDARY: r"\B",
}
_FLAGS: Final = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
_NEUTRAL_FLAGS: Final = re.UNICODE | re.ASCII | re.VERBOSE  # same meaning on ASCII text
_SPELLED: Final = re.IGNORECASE | re.MULTILINE | re.DOTALL  # written into the PCRE2 pattern
_MAX_COUNT: Final = 65535  # PCRE2's largest repeat count


def pcre2_pattern(pattern: str, flags: int = 0) -> str:
    """``pattern`` (Python ``re`` syntax, with ``flags``) in PCRE2 syntax, with the same
    matches and the same group numbers on ASCII text. Raises :class:`Unsupported`."""
    try:
        tree = RE_PARSER.parse(pattern, flags)
    except re.error as exc:
        raise Unsupported(f"not a Python regex: {exc}") from exc
    return _flag_prefix(tree.state.flags) + _seq(tree.data)


def _flag_prefix(flags: int) -> str:
    """The pattern's global flags, every one spelled out (on or off)."""
    return f"(?{_scoped(flags, _SPELLED & ~flags)})"


def _scoped(add: int, remove: int) -> str:
    """``i``/``m``/``s`` letters for flags turned on and off (``im-s``)."""
    for value in (add, remove):
        if value & ~(_NEUTRAL_FLAGS | _SPELLED):
            raise Unsupported(f"flags {re.RegexFlag(value)!r}")
    on = "".join(c for f, c in _FLAGS if add & f)
    off = "".join(c for f, c in _FLAGS if remove & f)
    return on + (f"-{off}" if off else "")


def _char(code: int) -> str:
    if code > 127:
        raise Unsupported("a non-ASCII character (its case folding differs)")
    ch = chr(code)
    return ch if ch.isalnum() else f"\\x{{{code:02x}}}"


def _seq(items: Any) -> str:
    return "".join(_item(op, av) for op, av in items)


def _item(op: Any, av: Any) -> str:
    c = _CONSTANTS
    if op is c.LITERAL:
        return _char(av)
    if op is c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is c.ANY:
        return "."
    if op is c.IN:
        return _set(av)
    if op is c.BRANCH:
        return "(?:" + "|".join(_seq(alt) for alt in av[1]) + ")"
    if op is c.SUBPATTERN:
        group, add, remove, body = av
        inner = _seq(body)
        flags = _scoped(add, remove)
        if flags:
            inner = f"(?{flags}:{inner})"
        return f"({inner})" if group is not None else f"(?:{inner})"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        low, high, body = av
        if low > _MAX_COUNT or (high is not c.MAXREPEAT and high > _MAX_COUNT):
            raise Unsupported("a repeat count above 65535")
        count = f"{{{low},}}" if high is c.MAXREPEAT else f"{{{low},{high}}}"
        mode = "?" if op is c.MIN_REPEAT else "+" if op is not c.MAX_REPEAT else ""
        return f"(?:{_seq(body)}){count}{mode}"
    if op is c.AT:
        if av not in _AT:
            raise Unsupported(f"assertion {av}")
        return _AT[av]
    if op in (c.ASSERT, c.ASSERT_NOT):
        direction, body = av
        ahead = op is c.ASSERT
        kind = ("=" if ahead else "!") if direction > 0 else ("<=" if ahead else "<!")
        return f"(?{kind}{_seq(body)})"
    if op is c.GROUPREF:
        return f"(?:\\g{{{av}}})"
    if op is c.GROUPREF_EXISTS:
        group, yes, no = av
        return f"(?({group}){_seq(yes)}" + (f"|{_seq(no)}" if no else "") + ")"
    if op is getattr(c, "ATOMIC_GROUP", None):
        return f"(?>{_seq(av)})"
    raise Unsupported(f"opcode {op}")


def _set(items: Any) -> str:
    c = _CONSTANTS
    negate = bool(items) and items[0][0] is c.NEGATE
    body = items[1:] if negate else items
    if len(body) == 1 and body[0][0] is c.CATEGORY:
        chars, inverted = _CATEGORIES.get(body[0][1], (None, False))
        if chars is None:
            raise Unsupported(f"category {body[0][1]}")
        return f"[{'^' if inverted != negate else ''}{chars}]"
    parts = []
    for op, av in body:
        if op is c.LITERAL:
            parts.append(_char(av))
        elif op is c.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is c.CATEGORY:
            chars, inverted = _CATEGORIES.get(av, (None, True))
            if chars is None or inverted:
                raise Unsupported("a negated class inside a set")
            parts.append(chars)
        else:
            raise Unsupported(f"set item {op}")
    if not parts:
        raise Unsupported("an empty set")
    return f"[{'^' if negate else ''}{''.join(parts)}]"
