"""Detection rules: the native TOML format, validation, and the compiled form.

A :class:`Rule` is valid by construction: ``Rule(...)`` checks every value and compiles the
patterns, raising :class:`~shieldwall.errors.RuleError` that names the origin, the key and why.
``parse_rule`` turns a decoded TOML mapping into a ``Rule`` (pure). ``load_rule`` and
``builtin_rule`` are the only functions that read files (through ``_load``).

The format is documented in ``docs/rules.md``.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from shieldwall.detect.timestamps import DATE_PATTERNS
from shieldwall.errors import RuleError

__all__ = [
    "HOST_PATTERN",
    "CompiledRule",
    "Rule",
    "builtin_rule",
    "builtin_rule_names",
    "load_rule",
    "parse_duration",
    "parse_rule",
]

_IPV4: Final = r"(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"
HOST_PATTERN: Final = (
    r"(?<![0-9A-Za-z.])(?:" + _IPV4 + r"|(?<!:)(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:" + _IPV4 + r"|[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f]))?)"
)
"""What ``<HOST>``/``<ADDR>`` match: an IPv4 or IPv6 literal (``::ffff:1.2.3.4`` included).

No DNS names. The text is then validated with :func:`shieldwall.model.parse_address`; the
look-arounds refuse to take part of a longer token (``1.2.3.4567``, ``11.2.3.4`` inside
``211.2.3.4``) as an address.
"""

_PLACEHOLDER: Final = re.compile(r"<(?:HOST|ADDR)>")
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DURATION: Final = re.compile(r"(\d+)\s*([smhdw]?)")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LEADING_FLAGS: Final = re.compile(r"\(\?([aiLmsux]+)\)")

MAX_RETRY: Final = 1000
MAX_FINDTIME: Final = 30 * 86400.0
MAX_PATTERNS: Final = 100

_KEYS: Final = frozenset(
    {
        "name",
        "description",
        "prefilter",
        "prefix",
        "failregex",
        "ignoreregex",
        "datepattern",
        "maxretry",
        "findtime",
        "bantime",
    }
)


def _error(origin: str, key: str, why: str) -> RuleError:
    return RuleError(f"{origin}: {key}: {why}")


def parse_duration(value: object, origin: str, key: str) -> float:
    """``30`` (seconds), ``"30s"``, ``"10m"``, ``"4h"``, ``"1d"``, ``"1w"`` → seconds (> 0)."""
    if isinstance(value, bool):
        raise _error(origin, key, f"expected a duration, got {value!r}")
    if isinstance(value, int):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise _error(origin, key, f'bad duration {value!r} (use seconds or "30s", "10m", "4h")')
        seconds = float(int(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise _error(origin, key, f"expected a duration, got {type(value).__name__}")
    if seconds <= 0:
        raise _error(origin, key, "must be greater than zero")
    return seconds


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """The regexes of a rule, ready for :class:`~shieldwall.detect.matcher.Matcher`.

    ``combined`` holds every failregex as one alternation; ``slots`` maps the
    ``lastindex`` of a match to ``(pattern index, host group index)``.
    """

    combined: re.Pattern[str]
    anchored: bool  # True: use .match() at the line start; False: .search()
    slots: Mapping[int, tuple[int, int]]
    prefix: re.Pattern[str] | None
    patterns: tuple[re.Pattern[str], ...]  # each failregex alone, after the prefix (tools)
    ignore: re.Pattern[str] | None
    ignores: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection definition (fail2ban ``failregex`` semantics) plus its bucket.

    ``maxretry`` hits from one source within ``findtime`` seconds raise an alert.
    """

    name: str
    failregex: tuple[str, ...]
    maxretry: int = 5
    findtime: float = 600.0
    description: str = ""
    prefilter: tuple[str, ...] = ()
    prefix: str | None = None
    ignoreregex: tuple[str, ...] = ()
    datepattern: str = "auto"
    bantime: float | None = None
    origin: str = "<rule>"
    compiled: CompiledRule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = self.origin
        if not _NAME.fullmatch(self.name):
            raise _error(
                origin, "name", f"{self.name!r} is not a rule name (lowercase, digits, . _ -)"
            )
        if isinstance(self.maxretry, bool) or not isinstance(self.maxretry, int):
            raise _error(origin, "maxretry", "must be an integer")
        if not 1 <= self.maxretry <= MAX_RETRY:
            raise _error(origin, "maxretry", f"must be between 1 and {MAX_RETRY}")
        if not 0 < self.findtime <= MAX_FINDTIME:
            raise _error(origin, "findtime", f"must be between 0 and {MAX_FINDTIME:.0f} seconds")
        if self.bantime is not None and not self.bantime > 0:
            raise _error(origin, "bantime", "must be greater than zero")
        if self.datepattern not in DATE_PATTERNS:
            raise _error(
                origin,
                "datepattern",
                f"unknown {self.datepattern!r} (one of {', '.join(DATE_PATTERNS)})",
            )
        for i, literal in enumerate(self.prefilter):
            if not literal:
                raise _error(origin, f"prefilter[{i}]", "must not be empty")
        object.__setattr__(self, "compiled", _compile(self))


def _outside_classes(source: str) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(index, char, escaped)`` for every regex token outside ``[...]`` classes."""
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "\\":
            yield i, source[i + 1 : i + 2], True
            i += 2
        elif char == "[":
            j = i + 1
            if source.startswith("^", j):
                j += 1
            if source.startswith("]", j):  # a leading ] is a literal
                j += 1
            while j < n and source[j] != "]":
                j += 2 if source[j] == "\\" else 1
            i = j + 1
        else:
            yield i, char, False
            i += 1


def _check_groups(source: str, origin: str, key: str) -> None:
    """Refuse what would break once patterns are joined: named groups and back-references."""
    for i, char, escaped in _outside_classes(source):
        if escaped and char in "123456789":
            raise _error(origin, key, "numbered back-references (\\1…) are not supported")
        if escaped or char != "(":
            continue
        if source.startswith("(?P", i) or (
            source.startswith("(?<", i) and not source.startswith(("(?<=", "(?<!"), i)
        ):
            raise _error(origin, key, "named groups and (?P=…) are reserved; use plain (…)")


def _catch_all(source: str) -> bool:
    """Does ``source`` contain an unescaped ``.*``, ``.+`` or ``.{`` outside a class?"""
    return any(
        char == "." and not escaped and source[i + 1 : i + 2] in ("*", "+", "{")
        for i, char, escaped in _outside_classes(source)
    )


def _end_anchored(source: str) -> bool:
    stripped = source.rstrip()
    if not stripped.endswith("$"):
        return False
    backslashes = len(stripped[:-1]) - len(stripped[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _split_flags(source: str) -> tuple[str, str]:
    """``(?i)^abc`` → ``("i", "^abc")``: leading global flags, and the rest."""
    match = _LEADING_FLAGS.match(source)
    if match is None:
        return "", source
    return match.group(1), source[match.end() :]


def _scoped(flags: str, body: str) -> str:
    """Global flags are only allowed at the very start of a regex: scope them instead."""
    return f"(?{flags}:{body})" if flags else body


def _regex(source: str, origin: str, key: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except (re.error, OverflowError, RecursionError) as exc:
        raise _error(origin, key, f"does not compile: {exc}") from exc


def _compile(rule: Rule) -> CompiledRule:
    origin = rule.origin
    if not rule.failregex:
        raise _error(origin, "failregex", "at least one pattern is required")
    if len(rule.failregex) > MAX_PATTERNS:
        raise _error(origin, "failregex", f"at most {MAX_PATTERNS} patterns")

    prefix: re.Pattern[str] | None = None
    if rule.prefix is not None:
        if _PLACEHOLDER.search(rule.prefix):
            raise _error(origin, "prefix", "must not contain <HOST> or <ADDR>")
        _check_groups(rule.prefix, origin, "prefix")
        prefix = _regex(rule.prefix, origin, "prefix")

    split: list[tuple[str, str]] = []  # (leading flags, rest of the pattern)
    for i, pattern in enumerate(rule.failregex):
        key = f"failregex[{i}]"
        places = _PLACEHOLDER.findall(pattern)
        if len(places) != 1:
            why = "has no <HOST>" if not places else f"has {len(places)} <HOST>/<ADDR>; need one"
            raise _error(origin, key, why)
        _check_groups(pattern, origin, key)
        # Compile as written first (the placeholder swapped for a group of the same length),
        # so error positions point into the user's own text.
        _regex(_PLACEHOLDER.sub("(?:HH)", pattern), origin, key)
        before = _PLACEHOLDER.split(pattern, maxsplit=1)[0]
        if _catch_all(before) and not _end_anchored(pattern):
            raise _error(
                origin,
                key,
                "a catch-all (.* .+) before <HOST> needs the pattern to end with $, "
                "or attacker text could be taken as the source",
            )
        split.append(_split_flags(pattern))

    # With a prefix, failregex start where it ends ('^' is implied). Without one, patterns
    # are searched, unless every one starts with '^': then the whole regex is a .match().
    anchored = rule.prefix is not None or all(rest.startswith("^") for _, rest in split)
    bodies = [
        _scoped(flags, rest[1:] if anchored and rest.startswith("^") else rest)
        for flags, rest in split
    ]
    start = f"(?:{_scoped(*_split_flags(rule.prefix))})" if rule.prefix is not None else ""

    patterns: list[re.Pattern[str]] = []
    for i, body in enumerate(bodies):
        host = f"(?P<host>{HOST_PATTERN})"
        alone = body.replace("<HOST>", host, 1).replace("<ADDR>", host, 1)
        patterns.append(_regex(f"{start}(?:{alone})", origin, f"failregex[{i}]"))

    parts = []
    for i, body in enumerate(bodies):
        host = f"(?P<host{i}>{HOST_PATTERN})"
        parts.append(f"(?P<p{i}>{body.replace('<HOST>', host, 1).replace('<ADDR>', host, 1)})")
    combined = _regex(f"{start}(?:{'|'.join(parts)})", origin, "failregex")
    slots = {
        combined.groupindex[f"p{i}"]: (i, combined.groupindex[f"host{i}"])
        for i in range(len(bodies))
    }

    ignores: list[re.Pattern[str]] = []
    for i, pattern in enumerate(rule.ignoreregex):
        key = f"ignoreregex[{i}]"
        if _PLACEHOLDER.search(pattern):
            raise _error(origin, key, "must not contain <HOST> or <ADDR>")
        _check_groups(pattern, origin, key)
        ignores.append(_regex(pattern, origin, key))
    ignore = None
    if ignores:
        scoped = (_scoped(*_split_flags(p)) for p in rule.ignoreregex)
        ignore = _regex("|".join(f"(?:{p})" for p in scoped), origin, "ignoreregex")

    return CompiledRule(
        combined=combined,
        anchored=anchored,
        slots=slots,
        prefix=prefix,
        patterns=tuple(patterns),
        ignore=ignore,
        ignores=tuple(ignores),
    )


def _string(value: object, origin: str, key: str) -> str:
    if not isinstance(value, str):
        raise _error(origin, key, f"expected a string, got {type(value).__name__}")
    return value


def _strings(value: object, origin: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise _error(origin, key, f"expected a list of strings, got {type(value).__name__}")
    return tuple(_string(item, origin, f"{key}[{i}]") for i, item in enumerate(value))


def parse_rule(data: Mapping[str, Any], name: str, origin: str) -> Rule:
    """Build a :class:`Rule` from a decoded TOML document (pure).

    ``name`` is the default when the document has no ``name`` (the file stem); ``origin``
    (usually the file path) prefixes every error.
    """
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _error(origin, unknown[0], f"unknown key (allowed: {', '.join(sorted(_KEYS))})")
    if "failregex" not in data:
        raise _error(origin, "failregex", "is required")

    maxretry = data.get("maxretry", 5)
    if isinstance(maxretry, bool) or not isinstance(maxretry, int):
        raise _error(origin, "maxretry", f"expected an integer, got {maxretry!r}")
    prefix = data.get("prefix")
    bantime = data.get("bantime")
    return Rule(
        name=_string(data.get("name", name), origin, "name"),
        description=_string(data.get("description", ""), origin, "description"),
        prefilter=_strings(data.get("prefilter", []), origin, "prefilter"),
        prefix=None if prefix is None else _string(prefix, origin, "prefix"),
        failregex=_strings(data["failregex"], origin, "failregex"),
        ignoreregex=_strings(data.get("ignoreregex", []), origin, "ignoreregex"),
        datepattern=_string(data.get("datepattern", "auto"), origin, "datepattern"),
        maxretry=maxretry,
        findtime=parse_duration(data.get("findtime", 600), origin, "findtime"),
        bantime=None if bantime is None else parse_duration(bantime, origin, "bantime"),
        origin=origin,
    )


class _Readable(Protocol):
    def read_text(self, encoding: str | None = ...) -> str: ...


def _load(source: _Readable, name: str, origin: str) -> Rule:
    """The one place rule files are read."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{origin}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from exc
    return parse_rule(data, name, origin)


def load_rule(path: str | Path) -> Rule:
    """Read and validate one rule file; its name defaults to the file stem."""
    path = Path(path)
    return _load(path, path.stem, str(path))


def builtin_rule_names() -> list[str]:
    """Names of the rules shipped in ``shieldwall/rules/``."""
    folder = importlib.resources.files("shieldwall.rules")
    return sorted(
        item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml")
    )


def builtin_rule(name: str) -> Rule:
    """A shipped rule by name, e.g. ``builtin_rule("sshd")``."""
    names = builtin_rule_names()
    if name not in names:
        raise RuleError(f"no built-in rule {name!r} (available: {', '.join(names)})")
    resource = importlib.resources.files("shieldwall.rules").joinpath(f"{name}.toml")
    return _load(resource, name, f"shieldwall/rules/{name}.toml")
