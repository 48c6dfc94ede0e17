"""The detector's C path: when it is built, and what it may run.

``shieldwall.detect._native`` (``_native.c``, built by ``setup.py`` when a C compiler and
PCRE2's headers are present: Debian ``libpcre2-dev``) runs a rule's block regex with PCRE2's
JIT and does the per-hit work in C: source address, time, count per source, window bucket.
It also runs fail2ban filters with ``maxlines = 1`` (:func:`fail2ban_filter`: the dialect
engine's evaluation of each line, in C). Without it the pure-Python detector runs, with the
same results; the test suite holds the two to the same answers
(``tests/detect/test_native.py``, ``tests/detect/test_native_fail2ban.py``).

The C path is exact or not taken:

* only blocks of ASCII lines reach it (no NUL, CR or over-long line: see ``scan.py``);
* a rule's regex is rewritten from Python's parse tree into PCRE2 syntax with Python's
  meaning for ASCII text (``\\s`` also matches ``\\x1c``-``\\x1f``, as in ``re``, but not for a
  fail2ban regex, compiled by the ``regex`` module; ``\\d`` and ``\\w`` are ASCII); a construct
  without an exact rewrite (a non-ASCII literal, a negated class inside a set, a locale
  flag…) keeps the rule on the Python path;
* what C cannot decide exactly (a match that runs past its line, a host that is not a plain
  dotted quad, a stamp not yet cached) is asked of Python, line by line.

``SHIELDWALL_NATIVE=0`` turns the C path off; ``SHIELDWALL_NATIVE=require`` makes a missing
extension an error at import (the test suite runs so under CI).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import regex as _regex

from shieldwall.detect.fail2ban.tags import ADDRESS_GROUPS, RE_PARSER, ExpandedRegex

if TYPE_CHECKING:
    from shieldwall.detect.fail2ban.engine import CompiledFilter

__all__ = [
    "NATIVE",
    "NativeFilter",
    "Unsupported",
    "fail2ban_filter",
    "native_module",
    "pcre2_pattern",
]

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
_REGEX_SPACE: Final = r"\x{09}-\x{0d}\x{20}"  # the regex module's (VERSION0): not \x1c-\x1f
_DIGIT: Final = "0-9"
_WORD: Final = "0-9A-Za-z_"


def _categories(space: str) -> dict[Any, tuple[str, bool]]:
    return {
        _CONSTANTS.CATEGORY_DIGIT: (_DIGIT, False),
        _CONSTANTS.CATEGORY_NOT_DIGIT: (_DIGIT, True),
        _CONSTANTS.CATEGORY_SPACE: (space, False),
        _CONSTANTS.CATEGORY_NOT_SPACE: (space, True),
        _CONSTANTS.CATEGORY_WORD: (_WORD, False),
        _CONSTANTS.CATEGORY_NOT_WORD: (_WORD, True),
    }


_CATEGORIES: Final = _categories(_SPACE)
_REGEX_CATEGORIES: Final = _categories(_REGEX_SPACE)
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
_ONE_CHAR: Final = frozenset(
    (_CONSTANTS.LITERAL, _CONSTANTS.NOT_LITERAL, _CONSTANTS.ANY, _CONSTANTS.IN)
)


def pcre2_pattern(pattern: str, flags: int = 0, *, regex_module: bool = False) -> str:
    """``pattern`` (Python ``re`` syntax, with ``flags``) in PCRE2 syntax, with the same
    matches and the same group numbers on ASCII text. Raises :class:`Unsupported`.

    ``regex_module=True``: with the meaning the ``regex`` module (``VERSION0``, what
    fail2ban filters are compiled with) gives the pattern; on ASCII text it differs from
    ``re`` in one place, ``\\s``, which does not match ``\\x1c``-``\\x1f`` there."""
    tree = _parse(pattern, flags)
    cats = _REGEX_CATEGORIES if regex_module else _CATEGORIES
    return _flag_prefix(tree.state.flags) + _seq(tree.data, cats)


def _parse(pattern: str, flags: int) -> Any:
    """Python's parse tree of ``pattern``; raises :class:`Unsupported` for a pattern that is
    no regex or that Python warns about."""
    try:
        with warnings.catch_warnings():
            # "possible nested set" and the like: a construct that the regex module may
            # read otherwise (a POSIX class) has no single meaning to rewrite
            warnings.simplefilter("error")
            return RE_PARSER.parse(pattern, flags)
    except (re.error, Warning) as exc:
        raise Unsupported(f"not a Python regex: {exc}") from exc


def content_head(pattern: str, flags: int, content: int) -> str | None:
    """For a prefregex that ends ``…(.+)$`` with ``(.+)`` its ``content`` group (fail2ban's
    ``<F-CONTENT>.+</F-CONTENT>$``, most filters' prefregex): the regex without that end, in
    PCRE2 syntax (as :func:`pcre2_pattern`'s ``regex_module=True``), else None.

    On one line with its newline, the whole regex matches exactly when this head matches and
    leaves at least one byte before the newline: the content is then the rest of the line,
    and the head's groups are the whole regex's (the head's first match is the one the whole
    regex takes, as ``.+$`` cannot fail after it). Scanning the content for ``.+$`` is half
    the cost of a prefregex in PCRE2; when the head leaves nothing the whole regex decides.
    """
    c = _CONSTANTS
    try:
        tree = _parse(pattern, flags)
    except Unsupported:
        return None
    data = list(tree.data)
    if len(data) < 3 or tree.state.groups - 1 != content or tree.state.flags & c.SRE_FLAG_DOTALL:
        return None
    if data[-1] != (c.AT, c.AT_END):
        return None
    op, av = data[-2]
    if op is not c.SUBPATTERN or av[0] != content or av[1] or av[2]:
        return None
    body = list(av[3])
    if len(body) != 1 or body[0][0] is not c.MAX_REPEAT:
        return None
    low, high, inner = body[0][1]
    if low != 1 or high is not c.MAXREPEAT or list(inner) != [(c.ANY, None)]:
        return None
    if _refers(data):
        return None  # a backreference or condition: the head alone might read otherwise
    try:
        return _flag_prefix(tree.state.flags) + _seq(data[:-2], _REGEX_CATEGORIES)
    except Unsupported:
        return None


def _refers(node: Any) -> bool:
    """Whether a parse tree (or any part of one) holds a backreference or group condition."""
    c = _CONSTANTS
    if isinstance(node, RE_PARSER.SubPattern):
        node = node.data
    if isinstance(node, tuple) and node and (node[0] is c.GROUPREF or node[0] is c.GROUPREF_EXISTS):
        return True
    return isinstance(node, (list, tuple)) and any(_refers(part) for part in node)


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


def _seq(items: Any, cats: dict[Any, tuple[str, bool]]) -> str:
    return "".join(_item(op, av, cats) for op, av in items)


def _item(op: Any, av: Any, cats: dict[Any, tuple[str, bool]]) -> str:
    c = _CONSTANTS
    if op is c.LITERAL:
        return _char(av)
    if op is c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is c.ANY:
        return "."
    if op is c.IN:
        return _set(av, cats)
    if op is c.BRANCH:
        return "(?:" + "|".join(_seq(alt, cats) for alt in av[1]) + ")"
    if op is c.SUBPATTERN:
        group, add, remove, body = av
        inner = _seq(body, cats)
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
        inner = _seq(body, cats)
        if len(body) == 1 and body[0][0] in _ONE_CHAR:
            # a repeated character or class is written bare: PCRE2 then repeats it as one
            # item (and can make it possessive), where a group repeat backtracks group-wise
            return f"{inner}{count}{mode}"
        return f"(?:{inner}){count}{mode}"
    if op is c.AT:
        if av not in _AT:
            raise Unsupported(f"assertion {av}")
        return _AT[av]
    if op in (c.ASSERT, c.ASSERT_NOT):
        direction, body = av
        ahead = op is c.ASSERT
        kind = ("=" if ahead else "!") if direction > 0 else ("<=" if ahead else "<!")
        return f"(?{kind}{_seq(body, cats)})"
    if op is c.GROUPREF:
        return f"(?:\\g{{{av}}})"
    if op is c.GROUPREF_EXISTS:
        group, yes, no = av
        return f"(?({group}){_seq(yes, cats)}" + (f"|{_seq(no, cats)}" if no else "") + ")"
    if op is getattr(c, "ATOMIC_GROUP", None):
        return f"(?>{_seq(av, cats)})"
    raise Unsupported(f"opcode {op}")


def _set(items: Any, cats: dict[Any, tuple[str, bool]]) -> str:
    c = _CONSTANTS
    negate = bool(items) and items[0][0] is c.NEGATE
    body = items[1:] if negate else items
    if len(body) == 1 and body[0][0] is c.CATEGORY:
        chars, inverted = cats.get(body[0][1], (None, False))
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
            chars, inverted = cats.get(av, (None, True))
            if chars is None or inverted:
                raise Unsupported("a negated class inside a set")
            parts.append(chars)
        else:
            raise Unsupported(f"set item {op}")
    if not parts:
        raise Unsupported("an empty set")
    return f"[{'^' if negate else ''}{''.join(parts)}]"


# ------------------------------------------------------------------ fail2ban filters

_REGEX_FLAGS: Final = (
    (_regex.IGNORECASE, re.IGNORECASE),
    (_regex.MULTILINE, re.MULTILINE),
    (_regex.DOTALL, re.DOTALL),
    (_regex.VERBOSE, re.VERBOSE),
    (_regex.UNICODE, re.UNICODE),
    (_regex.ASCII, re.ASCII),
)
_SPECIAL_GROUPS: Final = (
    *ADDRESS_GROUPS,
    "dns",
    "fid",
    "mlfid",
    "nofail",
    "mlfgained",
    "mlfforget",
    "user",
)


def _re_flags(flags: int) -> int:
    """The ``regex`` module's flags of a fail2ban regex as ``re`` flags (``VERSION0`` is
    ``re``'s own behaviour); others (``VERSION1``, ``FULLCASE``…) are Unsupported."""
    out = 0
    for theirs, ours in _REGEX_FLAGS:
        if flags & theirs:
            out |= ours
            flags &= ~theirs
    flags &= ~_regex.VERSION0
    if flags:
        raise Unsupported(f"regex module flags {flags:#x}")
    return out


def first_bytes(pattern: str, flags: int = 0) -> bytes | None:
    """A 256-bit map of the bytes every match of ``pattern`` (Python ``re`` syntax) starts
    with, when the pattern is anchored at the text's start (a leading ``^``, no MULTILINE) and
    cannot match the empty string; else None. A superset: lookarounds count as empty. The C
    filter skips a failregex whose map does not hold the text's first byte (a PCRE2 call costs
    about 20 ns even when it fails at once)."""
    try:
        tree = RE_PARSER.parse(pattern, flags)
    except Exception:
        return None
    top = tree.state.flags
    data = list(tree.data)
    if (
        top & (re.MULTILINE | re.VERBOSE)
        or not data
        or data[0] != (RE_PARSER.AT, RE_PARSER.AT_BEGINNING)
    ):
        return None
    found, nullable = _first_of(data[1:], bool(top & re.IGNORECASE))
    if found is None or nullable:
        return None
    bitmap = bytearray(32)
    for byte in found:
        bitmap[byte >> 3] |= 1 << (byte & 7)
    return bytes(bitmap)


def _first_of(items: Any, caseless: bool) -> tuple[set[int] | None, bool]:
    """(the bytes a match of ``items`` may start with — None: any —, whether it may be empty)"""
    out: set[int] = set()
    for op, av in items:
        found, nullable = _first_item(op, av, caseless)
        if found is None:
            return None, False
        out |= found
        if not nullable:
            return out, False
    return out, True


def _cased(code: int, caseless: bool) -> set[int]:
    char = chr(code)
    if not (caseless and char.isalpha()):
        return {code}
    # and any non-ASCII character: Unicode case folding pairs "k" with KELVIN SIGN
    return {ord(char.lower()), ord(char.upper()), *_NON_ASCII}


_NON_ASCII: Final = frozenset(range(128, 256))  # any byte of a non-ASCII character
_CATEGORY_BYTES: Final = {
    _CONSTANTS.CATEGORY_DIGIT: frozenset(b"0123456789") | _NON_ASCII,
    _CONSTANTS.CATEGORY_WORD: frozenset(re.sub(rb"[^0-9A-Za-z_]", b"", bytes(range(128))))
    | _NON_ASCII,
    _CONSTANTS.CATEGORY_SPACE: frozenset(b"\t\n\v\f\r\x1c\x1d\x1e\x1f ") | _NON_ASCII,
}
_CATEGORY_BYTES.update(
    {
        _CONSTANTS.CATEGORY_NOT_DIGIT: frozenset(range(256)) - frozenset(b"0123456789"),
        _CONSTANTS.CATEGORY_NOT_WORD: frozenset(range(256))
        - (_CATEGORY_BYTES[_CONSTANTS.CATEGORY_WORD] - _NON_ASCII),
        _CONSTANTS.CATEGORY_NOT_SPACE: frozenset(range(256)) - frozenset(b"\t\n\v\f\r "),
    }
)


def _set_bytes(items: Any, caseless: bool) -> set[int]:
    """The bytes that may start a character of set ``items`` (a superset)."""
    c = _CONSTANTS
    out: set[int] = set()
    negate = False
    for kind, value in items:
        if kind is c.NEGATE:
            negate = True
        elif kind is c.LITERAL:
            out |= _cased(value, caseless) if value <= 127 else set(_NON_ASCII)
        elif kind is c.RANGE:
            for code in range(value[0], min(value[1], 127) + 1):
                out |= _cased(code, caseless)
            if value[1] > 127:
                out |= _NON_ASCII
        elif kind is c.CATEGORY and value in _CATEGORY_BYTES:
            out |= _CATEGORY_BYTES[value]
        else:
            return set(range(256))
    if negate:  # the complement, any non-ASCII character, and \x1c-\x1f (\s differs)
        return (set(range(128)) - out) | set(_NON_ASCII) | set(range(0x1C, 0x20))
    return out


def _first_item(op: Any, av: Any, caseless: bool) -> tuple[set[int] | None, bool]:
    c = _CONSTANTS
    if op is c.LITERAL:
        return (_cased(av, caseless) if av <= 127 else set(_NON_ASCII)), False
    if op is c.IN:
        return _set_bytes(av, caseless), False
    if op is c.NOT_LITERAL:
        if av > 127:
            return set(range(256)), False
        return (set(range(128)) - _cased(av, caseless)) | set(_NON_ASCII), False
    if op is c.SUBPATTERN:
        _, add, remove, body = av
        return _first_of(
            body, (caseless or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
        )
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _first_of(av, caseless)
    if op is c.BRANCH:
        return _union([_first_of(branch, caseless) for branch in av[1]])
    if op is c.GROUPREF_EXISTS:
        _, yes, no = av
        return _union([_first_of(yes, caseless), _first_of(no or [], caseless)])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        low, _, body = av
        found, nullable = _first_of(body, caseless)
        return found, nullable or low == 0
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return set(), True  # zero-width: what follows starts the match (a superset)
    return None, False


def _union(parts: list[tuple[set[int] | None, bool]]) -> tuple[set[int] | None, bool]:
    out: set[int] = set()
    for found, _ in parts:
        if found is None:
            return None, False
        out |= found
    return out, any(nullable for _, nullable in parts)


@dataclass(frozen=True, slots=True)
class NativeFilter:
    """A fail2ban filter compiled for the C path: ``filter`` is the ``_native.Filter``;
    ``names`` the group names its failure cache (``_native.FailureCache``) is keyed by."""

    filter: Any
    names: tuple[str, ...]

    def cache(self) -> Any:
        """A new, empty failure cache for this filter (the engine's multi-line state)."""
        if NATIVE is None:
            raise RuntimeError("the C extension is not loaded")
        return NATIVE.FailureCache(self.names)


def fail2ban_filter(compiled: CompiledFilter) -> NativeFilter | None:
    """``compiled`` for the C path (``_native.Filter``: engine.py's evaluation in C), or None
    when it must stay in Python: the extension is not built, ``maxlines`` > 1, a
    ``distinct`` field, or a regex without an exact PCRE2 rewrite. Shared by detectors."""
    if NATIVE is None or compiled.maxlines != 1 or compiled.distinct is not None:
        return None
    return _fail2ban_filter(compiled)


@functools.lru_cache(maxsize=256)
def _fail2ban_filter(compiled: CompiledFilter) -> NativeFilter | None:
    module = NATIVE
    if module is None:
        return None
    from shieldwall.detect.fail2ban.engine import _V4, _V6

    regexes = [f.expanded for f in compiled.failregex]
    if compiled.prefregex is not None:
        regexes.append(compiled.prefregex)
    found = {name for r in regexes for name in r.regex.groupindex}
    found |= {b for f in compiled.failregex for _, b in f.expanded.alternates}
    names = tuple(sorted(found | set(_SPECIAL_GROUPS)))
    slot = {name: i for i, name in enumerate(names)}

    def spec(expanded: ExpandedRegex) -> tuple[Any, ...]:
        regex = expanded.regex
        index = regex.groupindex
        flags = _re_flags(regex.flags)
        return (
            pcre2_pattern(regex.pattern, flags, regex_module=True),
            tuple((number, slot[name]) for name, number in index.items() if name in slot),
            index.get("ip4", 0),
            index.get("ip6", 0),
            tuple((slot[a], slot[b]) for a, b in expanded.alternates),
            first_bytes(regex.pattern, flags),
        )

    try:
        templates = tuple(
            (
                pcre2_pattern(t.regex.pattern, t.regex.flags),
                t.group,
                t.regex.groupindex.get("S", 0) if t.kind == "pattern" else 0,
                t.anchored,
                first_bytes(t.regex.pattern, t.regex.flags),
            )
            for t in compiled.dates or ()
        )
        ignores = tuple(
            (
                pcre2_pattern(r.regex.pattern, _re_flags(r.regex.flags), regex_module=True),
                (),
                0,
                0,
                (),
                None,
            )
            for r in compiled.ignoreregex
        )
        pref = compiled.prefregex
        fails = tuple(spec(f.expanded) for f in compiled.failregex)
        union = None
        # the failregex in turn, each skipped unless the text starts with one of its first
        # bytes, beat the union (one long alternation) when every failregex has such a map
        if compiled.union is not None and any(f[-1] is None for f in fails):
            markers = tuple(
                compiled.union.groupindex[f"_{k}"] for k in range(len(compiled.failregex))
            )
            union = (
                pcre2_pattern(
                    compiled.union.pattern, _re_flags(compiled.union.flags), regex_module=True
                ),
                markers,
            )
        built = module.Filter(
            names,
            templates,
            ignores,
            bool(compiled.ignoreregex) and len(compiled.ignoreregex) < len(compiled.failregex) - 2,
            None if pref is None else spec(pref),
            0 if pref is None else pref.regex.groupindex.get("content", 0),
            union,
            fails,
            pcre2_pattern(_V4.pattern, _V4.flags),
            pcre2_pattern(_V6.pattern, _V6.flags),
            None
            if pref is None or "content" not in pref.regex.groupindex
            else content_head(
                pref.regex.pattern,
                _re_flags(pref.regex.flags),
                pref.regex.groupindex["content"],
            ),
        )
    except (Unsupported, ValueError, KeyError):
        return None
    return NativeFilter(built, names)
