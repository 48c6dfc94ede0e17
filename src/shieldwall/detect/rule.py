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
from typing import TYPE_CHECKING, Any, Final, Protocol

from shieldwall.detect.timestamps import DATE_PATTERNS
from shieldwall.errors import RuleError

if TYPE_CHECKING:
    from shieldwall.detect.fail2ban.engine import CompiledFilter

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

BUCKET_KINDS: Final = ("window", "leaky")
"""``window``: fail2ban (``maxretry`` hits within ``findtime``); ``leaky``: CrowdSec
(``capacity``, one hit leaks out every ``leakspeed``)."""

_FIELD_TAG: Final = re.compile(r"<(/?)F-([A-Za-z][A-Za-z0-9_]{0,31})>")
"""fail2ban-style named captures: ``<F-USER>…</F-USER>`` (used by ``distinct``)."""
_FIELD_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")

_MATCH_KEYS: Final = ("prefilter", "prefix", "failregex", "ignoreregex", "datepattern")
"""What ``extends`` takes from the base rule: how lines are matched, not the bucket."""
_WINDOW_KEYS: Final = ("maxretry", "findtime")
_LEAKY_KEYS: Final = ("capacity", "leakspeed")

_KEYS: Final = frozenset(
    {
        "name",
        "description",
        "extends",
        "prefilter",
        "prefix",
        "failregex",
        "ignoreregex",
        "datepattern",
        "bucket",
        "maxretry",
        "findtime",
        "capacity",
        "leakspeed",
        "distinct",
        "blackhole",
        "bantime",
        "dialect",
        "prefregex",
        "maxlines",
        "journalmatch",
        "kind",
    }
)

KINDS: Final = ("failure", "success")
"""``failure``: hostile lines (hits fill the bucket); ``success``: successful logins, counted
as evidence of legitimacy (friendly fire, ``docs/treaty.md``) and never bucketed by the agent."""

DIALECTS: Final = ("native", "fail2ban")
"""``native``: the format above; ``fail2ban``: fail2ban's matching semantics (date cut out
by a fail2ban ``datepattern``, ``prefregex``, tags, ``maxlines``), see ``docs/fail2ban.md``."""


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
    fields: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    """``<F-NAME>`` captures: ``lastindex`` slot → {field name (lowercase) → group index}."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection definition (fail2ban ``failregex`` semantics) plus its bucket.

    ``bucket="window"`` (default, fail2ban): ``maxretry`` hits from one source within
    ``findtime`` seconds raise an alert. ``bucket="leaky"`` (CrowdSec): each hit adds one to
    the source's bucket, which leaks one every ``leakspeed`` seconds; a hit that finds it
    holding ``capacity`` overflows it. ``distinct`` names an ``<F-NAME>`` capture: only hits
    with a value new to the bucket count. After an alert, ``blackhole`` seconds pass before
    the same source can raise another one for this rule.
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
    bucket: str = "window"
    capacity: int | None = None
    leakspeed: float | None = None
    distinct: str | None = None
    blackhole: float | None = None
    extends: str | None = None
    dialect: str = "native"
    prefregex: str | None = None
    maxlines: int = 1
    journalmatch: tuple[str, ...] = ()
    kind: str = "failure"
    compiled: CompiledRule = field(init=False, repr=False, compare=False)
    fail2ban: CompiledFilter | None = field(init=False, repr=False, compare=False, default=None)
    """The compiled filter of a ``dialect = "fail2ban"`` rule (``compiled`` then never
    matches: the detector runs :meth:`CompiledFilter.engine` instead)."""

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
        if self.kind not in KINDS:
            raise _error(origin, "kind", f"unknown {self.kind!r} (one of {', '.join(KINDS)})")
        if self.dialect != "native":
            self._init_dialect()
            return
        if self.prefregex is not None or self.maxlines != 1 or self.journalmatch:
            raise _error(origin, "dialect", 'prefregex, maxlines, journalmatch need "fail2ban"')
        if self.datepattern not in DATE_PATTERNS:
            raise _error(
                origin,
                "datepattern",
                f"unknown {self.datepattern!r} (one of {', '.join(DATE_PATTERNS)})",
            )
        for i, literal in enumerate(self.prefilter):
            if not literal:
                raise _error(origin, f"prefilter[{i}]", "must not be empty")
        self._check_bucket()
        compiled = _compile(self)
        if self.distinct is not None and not any(
            self.distinct in names for names in compiled.fields.values()
        ):
            raise _error(origin, "distinct", f"no failregex captures <F-{self.distinct.upper()}>")
        object.__setattr__(self, "compiled", compiled)

    def _init_dialect(self) -> None:
        if self.dialect not in DIALECTS:
            raise _error(
                self.origin, "dialect", f"unknown {self.dialect!r} (one of {', '.join(DIALECTS)})"
            )
        self._check_bucket()
        from shieldwall.detect.fail2ban.rules import compile_rule

        object.__setattr__(self, "fail2ban", compile_rule(self))
        object.__setattr__(self, "compiled", _never_matches())

    def _check_bucket(self) -> None:
        origin = self.origin
        if self.bucket not in BUCKET_KINDS:
            raise _error(
                origin, "bucket", f"unknown {self.bucket!r} (one of {', '.join(BUCKET_KINDS)})"
            )
        if self.bucket == "leaky":
            capacity = self.capacity
            if isinstance(capacity, bool) or not isinstance(capacity, int):
                raise _error(origin, "capacity", "a leaky bucket needs an integer capacity")
            if not 1 <= capacity <= MAX_RETRY:
                raise _error(origin, "capacity", f"must be between 1 and {MAX_RETRY}")
            if self.leakspeed is None or not 0 < self.leakspeed <= MAX_FINDTIME:
                raise _error(
                    origin,
                    "leakspeed",
                    f"a leaky bucket needs a leakspeed up to {MAX_FINDTIME:.0f} seconds",
                )
        elif self.capacity is not None or self.leakspeed is not None:
            key = "capacity" if self.capacity is not None else "leakspeed"
            raise _error(origin, key, 'only for bucket = "leaky" (use maxretry and findtime)')
        if self.distinct is not None and self.bucket != "leaky":
            raise _error(origin, "distinct", 'only for bucket = "leaky"')
        if self.distinct is not None and not _FIELD_NAME.fullmatch(self.distinct):
            raise _error(
                origin, "distinct", f"{self.distinct!r} is not a field name (e.g. user, path)"
            )
        if self.blackhole is not None and not 0 < self.blackhole <= MAX_FINDTIME:
            raise _error(origin, "blackhole", f"must be between 0 and {MAX_FINDTIME:.0f} seconds")


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


def _expand_fields(source: str, group: str, origin: str, key: str) -> tuple[str, list[str]]:
    """``<F-USER>…</F-USER>`` → ``(?P<{group}user>…)``; also returns the field names."""
    names: list[str] = []
    opened: list[str] = []

    def expand(tag: re.Match[str]) -> str:
        name = tag.group(2).lower()
        if not tag.group(1):
            if name in names:
                raise _error(origin, key, f"<F-{name.upper()}> appears twice")
            names.append(name)
            opened.append(name)
            return f"(?P<{group}{name}>"
        if not opened or opened[-1] != name:
            raise _error(origin, key, f"</F-{name.upper()}> closes no open <F-{name.upper()}>")
        opened.pop()
        return ")"

    expanded = _FIELD_TAG.sub(expand, source)
    if opened:
        raise _error(origin, key, f"<F-{opened[-1].upper()}> is not closed")
    return expanded, names


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
        if _PLACEHOLDER.search(rule.prefix) or _FIELD_TAG.search(rule.prefix):
            raise _error(origin, "prefix", "must not contain <HOST>, <ADDR> or <F-…>")
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
        alone, _ = _expand_fields(body, "f_", origin, f"failregex[{i}]")
        alone = alone.replace("<HOST>", host, 1).replace("<ADDR>", host, 1)
        patterns.append(_regex(f"{start}(?:{alone})", origin, f"failregex[{i}]"))

    parts = []
    names_of: list[list[str]] = []
    for i, body in enumerate(bodies):
        host = f"(?P<host{i}>{HOST_PATTERN})"
        part, names = _expand_fields(body, f"f{i}_", origin, f"failregex[{i}]")
        names_of.append(names)
        parts.append(f"(?P<p{i}>{part.replace('<HOST>', host, 1).replace('<ADDR>', host, 1)})")
    combined = _regex(f"{start}(?:{'|'.join(parts)})", origin, "failregex")
    slots = {
        combined.groupindex[f"p{i}"]: (i, combined.groupindex[f"host{i}"])
        for i in range(len(bodies))
    }
    fields = {
        combined.groupindex[f"p{i}"]: {name: combined.groupindex[f"f{i}_{name}"] for name in names}
        for i, names in enumerate(names_of)
        if names
    }

    ignores: list[re.Pattern[str]] = []
    for i, pattern in enumerate(rule.ignoreregex):
        key = f"ignoreregex[{i}]"
        if _PLACEHOLDER.search(pattern) or _FIELD_TAG.search(pattern):
            raise _error(origin, key, "must not contain <HOST>, <ADDR> or <F-…>")
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
        fields=fields,
    )


def _never_matches() -> CompiledRule:
    """The ``compiled`` of rules run by another engine: a regex that matches nothing."""
    never = re.compile(r"(?P<p0>(?!)(?P<host0>))")
    return CompiledRule(never, True, {1: (0, 2)}, None, (never,), None, ())


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


def parse_rule(
    data: Mapping[str, Any], name: str, origin: str, base: Mapping[str, Any] | None = None
) -> Rule:
    """Build a :class:`Rule` from a decoded TOML document (pure).

    ``name`` is the default when the document has no ``name`` (the file stem); ``origin``
    (usually the file path) prefixes every error. ``base`` is the decoded document of the rule
    named by ``extends`` (``load_rule``/``builtin_rule`` read it): its matching keys
    (prefilter, prefix, failregex, ignoreregex, datepattern) are taken, the bucket is not.
    """
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _error(origin, unknown[0], f"unknown key (allowed: {', '.join(sorted(_KEYS))})")
    extends = data.get("extends")
    if extends is not None:
        extends = _string(extends, origin, "extends")
        data = _extended(data, extends, base, origin)
    if "failregex" not in data:
        raise _error(origin, "failregex", "is required")

    kind = _string(data.get("bucket", "window"), origin, "bucket")
    misplaced, why = (
        (_WINDOW_KEYS, 'not for bucket = "leaky" (use capacity and leakspeed)')
        if kind == "leaky"
        else (_LEAKY_KEYS, 'only for bucket = "leaky"')
    )
    for key in misplaced:
        if key in data:
            raise _error(origin, key, why)
    maxretry = data.get("maxretry", 5)
    if isinstance(maxretry, bool) or not isinstance(maxretry, int):
        raise _error(origin, "maxretry", f"expected an integer, got {maxretry!r}")
    capacity = data.get("capacity")
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int)):
        raise _error(origin, "capacity", f"expected an integer, got {capacity!r}")
    prefix = data.get("prefix")
    bantime = data.get("bantime")
    leakspeed = data.get("leakspeed")
    distinct = data.get("distinct")
    blackhole = data.get("blackhole")
    prefregex = data.get("prefregex")
    maxlines = data.get("maxlines", 1)
    if isinstance(maxlines, bool) or not isinstance(maxlines, int) or maxlines < 1:
        raise _error(origin, "maxlines", f"expected an integer of at least 1, got {maxlines!r}")
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
        bucket=kind,
        capacity=capacity,
        leakspeed=None if leakspeed is None else parse_duration(leakspeed, origin, "leakspeed"),
        distinct=None if distinct is None else _string(distinct, origin, "distinct"),
        blackhole=None if blackhole is None else parse_duration(blackhole, origin, "blackhole"),
        extends=extends,
        dialect=_string(data.get("dialect", "native"), origin, "dialect"),
        prefregex=None if prefregex is None else _string(prefregex, origin, "prefregex"),
        maxlines=maxlines,
        journalmatch=_strings(data.get("journalmatch", []), origin, "journalmatch"),
        kind=_string(data.get("kind", "failure"), origin, "kind"),
    )


def _extended(
    data: Mapping[str, Any], extends: str, base: Mapping[str, Any] | None, origin: str
) -> dict[str, Any]:
    """``data`` with the matching keys of the rule it extends."""
    if base is None:
        raise _error(origin, "extends", f"rule {extends!r} was not given (use load_rule)")
    if "extends" in base:
        raise _error(origin, "extends", f"{extends!r} extends another rule itself")
    for key in _MATCH_KEYS:
        if key in data:
            raise _error(origin, key, f"comes from the extended rule {extends!r}; remove it")
    return {**{key: base[key] for key in _MATCH_KEYS if key in base}, **data}


class _Readable(Protocol):
    def read_text(self, encoding: str | None = ...) -> str: ...


def _read(source: _Readable, origin: str) -> dict[str, Any]:
    """The one place rule files are read."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{origin}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from exc


def _load(source: _Readable, name: str, origin: str) -> Rule:
    data = _read(source, origin)
    extends = data.get("extends")
    base = None
    if isinstance(extends, str):  # the rule it extends is always a shipped one
        if extends not in builtin_rule_names():
            raise _error(origin, "extends", f"no built-in rule {extends!r}")
        resource = importlib.resources.files("shieldwall.rules").joinpath(f"{extends}.toml")
        base = _read(resource, f"shieldwall/rules/{extends}.toml")
    return parse_rule(data, name, origin, base)


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
