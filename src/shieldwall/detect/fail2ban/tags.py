"""fail2ban's regex tags (``<HOST>``, ``<F-USER>…</F-USER>``…) expanded to Python groups.

Tags, and the named group each one fills:

``<HOST>``
    an IPv4 address (``ip4``; an IPv4-mapped ``::ffff:`` prefix is allowed and not captured),
    an IPv6 address (``ip6``), either optionally in ``[...]``, or else a host name (``dns``).
    With ``usedns = no`` it is ``<ADDR>``. shieldwall never resolves names: a line whose
    host is a name is recognised but skipped and counted (``dns_host``), so it can never be
    attributed to an address found elsewhere in the line.
``<ADDR>``, ``<IP4>``, ``<IP6>``, ``<DNS>``
    the address parts alone (``ip4``/``ip6``), IPv4 alone, IPv6 alone, a name alone.
``<CIDR>``, ``<SUBNET>``
    a prefix length (``cidr``); an address with an optional ``/prefix``.
``<F-ID/>``, ``<F-PORT/>``
    ``\\S+`` as ``fid`` (the failure id when there is no host), ``\\w+`` as ``fport``.
``<F-NAME>…</F-NAME>``
    any upper-case NAME: a group ``name`` (lower case; ``F-ID`` is ``fid``, ``F-PORT`` is
    ``fport``). Special ones: ``F-USER``, ``F-ALT_USER…`` (user names), ``F-CONTENT`` (in
    ``prefregex``: the part the failregex are matched against), ``F-MLFID`` (multi-line
    failure id), ``F-NOFAIL`` (a helper line, not a failure), ``F-MLFFORGET`` (end of a
    multi-line failure), ``F-MLFGAINED`` (the connection succeeded).
``<SKIPLINES>``
    any number of lines of a multi-line buffer (``maxlines``).

Every other ``<…>`` is left as it is. Global flags inside a group, ``((?i)…)`` or
``(?:(?i)…)``, become the scoped ``(?i:…)``, as fail2ban does.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Final

import regex as _regex

from shieldwall.errors import RuleError

__all__ = [
    "ADDRESS_GROUPS",
    "ID_GROUPS",
    "MARK_END",
    "MARK_START",
    "RE_PARSER",
    "ExpandedRegex",
    "backtracks",
    "compile_regex",
    "expand",
]

IP4: Final = r"(?:\d{1,3}\.){3}\d{1,3}"
IP6: Final = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
MARK_START: Final = "\ue000"
MARK_END: Final = "\ue001"
"""Around the one address a *marked* regex may capture (see :func:`expand`)."""


def _tables(marked: bool) -> dict[str, str]:
    begin, end = (MARK_START, MARK_END) if marked else ("", "")
    ip4 = rf"(?:::f{{4,6}}:)?{begin}(?P<ip4>{IP4}){end}"
    ip6 = rf"{begin}(?P<ip6>{IP6}){end}"
    dns = r"(?P<dns>[\w\-.^_]*\w)"
    addr = rf"\[?(?:{ip4}|{ip6})\]?"
    cidr = r"(?P<cidr>\d+)"
    subnet = rf"\[?(?:{ip4}|{ip6})(?:/{cidr})?\]?"
    return {
        "HOST": addr if marked else rf"(?:{addr}|{dns})",
        "ADDR": addr,
        "F-ADDR/": addr,
        "IP4": ip4,
        "F-IP4/": ip4,
        "IP6": ip6,
        "F-IP6/": ip6,
        "CIDR": cidr,
        "F-CIDR/": cidr,
        "SUBNET": subnet,
        "F-SUBNET/": subnet,
        "DNS": dns,
        "F-DNS/": dns,
        "F-ID/": r"(?P<fid>\S+)",
        "F-PORT/": r"(?P<fport>\w+)",
    }


_STATIC: Final = {False: _tables(False), True: _tables(True)}
_RENAME: Final = {"id": "fid", "port": "fport"}
FLAGS: Final = _regex.V0
"""fail2ban's regexes are compiled by the ``regex`` module in its ``re``-compatible mode
(``V0``): same syntax and results as Python's ``re`` (fail2ban's engine), plus a time limit
per search (see ``engine.REGEX_TIMEOUT``) — a crafted line can make a backtracking regex run
for minutes, and an attacker writes the lines."""
_TAG: Final = re.compile(r"</?[\w\-]+/?>")
_CUSTOM: Final = re.compile(r"^(/?)F-([A-Z0-9_\-]+)$")
_LOCAL_FLAGS: Final = re.compile(r"(?<!\\)\((?:\?:)?(\(\?[a-z]+)\)")

ADDRESS_GROUPS: Final = ("ip4", "ip6")
ID_GROUPS: Final = ("fid", "ip4", "ip6", "dns", "mlfid")


@dataclass(frozen=True, slots=True)
class ExpandedRegex:
    """A failregex/prefregex/ignoreregex compiled, with what its groups mean."""

    source: str  # as written in the filter (tags included)
    regex: _regex.Pattern[str]
    skiplines: int
    alternates: tuple[tuple[str, str], ...]  # (alt_x group, field x)
    marked: _regex.Pattern[str] | None = None  # the same regex, addresses only between marks
    risky: bool = False  # may backtrack exponentially (see backtracks()): searches are timed

    def has_id(self) -> bool:
        return any(name in self.regex.groupindex for name in ID_GROUPS)


def expand(source: str, use_dns: bool = True, marked: bool = False) -> tuple[str, int]:
    """``source`` with its tags replaced; also the number of ``<SKIPLINES>``.

    ``marked=True`` gives the variant used to test another reading of a line: the address
    groups only match between :data:`MARK_START` and :data:`MARK_END` (and ``<HOST>`` has no
    host-name alternative).
    """
    opened: set[str] = set()
    skiplines = 0
    table = _STATIC[marked]

    def replace(found: re.Match[str]) -> str:
        nonlocal skiplines
        tag = found.group(0)
        name = tag[1:-1]
        if name == "HOST" and not use_dns:
            return table["ADDR"]
        if name == "SKIPLINES":
            skiplines += 1
            return rf"\n(?P<skiplines{skiplines - 1}>(?:(?:.*\n)*?))"
        static = table.get(name)
        if static is not None:
            return static
        custom = _CUSTOM.match(name)
        if custom is None:
            return tag
        closing, field = custom.group(1), custom.group(2)
        if closing:
            return ")" if field in opened else tag
        opened.add(field)
        group = field.lower()
        return f"(?P<{_RENAME.get(group, group)}>"

    expanded = _TAG.sub(replace, source)
    return _LOCAL_FLAGS.sub(r"\1:", expanded), skiplines


def compile_regex(
    source: str, origin: str, key: str, *, use_dns: bool = True, multiline: bool = False
) -> ExpandedRegex:
    """Expand and compile one fail2ban regex (raises RuleError naming ``origin: key``)."""
    if not source.strip():
        raise RuleError(f"{origin}: {key}: empty regex")
    text, skiplines = expand(source, use_dns)
    flags = FLAGS | (_regex.MULTILINE if multiline else 0)
    try:
        regex = _regex.compile(text, flags)
    except (_regex.error, OverflowError, RecursionError) as exc:
        raise RuleError(f"{origin}: {key}: does not compile: {exc}: {source!r}") from exc
    marked_text, _ = expand(source, use_dns, marked=True)
    try:
        marked = _regex.compile(marked_text, flags)
    except (_regex.error, OverflowError, RecursionError):  # pragma: no cover - same shape
        marked = None
    alternates = []
    for name in regex.groupindex:
        found = re.match(r"^alt_(.*?)(?:_\d+)?$", name)
        if found is not None and len(name) > 4:
            field = _RENAME.get(found.group(1), found.group(1))
            alternates.append((name, field))
    return ExpandedRegex(
        source, regex, skiplines, tuple(sorted(alternates)), marked, backtracks(text)
    )


RE_PARSER: Any = importlib.import_module("re._parser")
"""The stdlib's own regex parser (no stubs: typed Any), to read a pattern's structure."""
_REPEATS: Final = frozenset(
    op
    for op in (
        RE_PARSER.MAX_REPEAT,
        RE_PARSER.MIN_REPEAT,
        getattr(RE_PARSER, "POSSESSIVE_REPEAT", None),
    )
    if op is not None
)


def backtracks(pattern: str) -> bool:
    """Whether ``pattern`` may backtrack exponentially: an unbounded repeat (``*``, ``+``,
    ``{n,}``) around something that can match the same text in several ways — another
    repeat of more than one, or an alternation (``(a|a)*``, ``(\\S+=)*``, grafana's
    ``(?: \\S+=(?:\\S*|"[^"]+"))*``). A pattern that cannot be parsed counts as risky."""

    def walk(sub: Any, under: bool) -> bool:
        for op, av in sub:
            if op in _REPEATS:
                _, high, body = av
                unbounded = high is RE_PARSER.MAXREPEAT
                if under and (unbounded or high > 1):
                    return True
                if walk(body, under or unbounded):
                    return True
            elif op is RE_PARSER.BRANCH:
                if under and len(av[1]) > 1:
                    return True
                if any(walk(branch, under) for branch in av[1]):
                    return True
            elif op is RE_PARSER.SUBPATTERN:
                if walk(av[-1], under):
                    return True
            elif op in (RE_PARSER.ASSERT, RE_PARSER.ASSERT_NOT):
                if walk(av[1], under):
                    return True
            elif op is RE_PARSER.GROUPREF_EXISTS and any(
                b is not None and walk(b, under) for b in av[1:]
            ):
                return True
        return False

    try:
        return walk(RE_PARSER.parse(pattern), False)
    except Exception:  # any doubt: risky
        return True
