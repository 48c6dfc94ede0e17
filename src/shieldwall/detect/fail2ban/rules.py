"""fail2ban filters and jail options → shieldwall :class:`~shieldwall.detect.rule.Rule`.

* :func:`load_fail2ban_rule` reads ``filter.d/NAME.conf`` (:mod:`.config`) and returns a
  ``Rule`` with ``dialect = "fail2ban"``: the filter's regexes exactly as fail2ban resolves
  them (tags kept), its ``datepattern``, ``prefregex``, ``maxlines`` and ``journalmatch``,
  and the bucket of the :class:`Jail` (``maxretry``/``findtime``/``bantime``).
* :func:`compile_rule` is what ``Rule`` calls to compile such a rule
  (:class:`~.engine.CompiledFilter`).
* :class:`Jail` holds fail2ban's jail options, parsed: the bucket, ``bantime.increment`` and
  its parameters (kept as data: escalation is the treaty's job), ``ignoreip``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shieldwall.detect.fail2ban.config import FilterDefinition, read_filter
from shieldwall.detect.fail2ban.dates import compile_datepattern
from shieldwall.detect.fail2ban.engine import CompiledFilter
from shieldwall.errors import InvalidScope, RuleError
from shieldwall.model import Scope, parse_scope

if TYPE_CHECKING:
    from shieldwall.detect.rule import Rule

__all__ = [
    "JAIL_KEYS",
    "Jail",
    "compile_rule",
    "f2b_duration",
    "filter_rule",
    "load_fail2ban_rule",
    "rule_name",
]

JAIL_KEYS: Final = frozenset(
    {
        "maxretry",
        "findtime",
        "bantime",
        "bantime.increment",
        "bantime.factor",
        "bantime.multipliers",
        "bantime.maxtime",
        "bantime.formula",
        "bantime.rndtime",
        "bantime.overalljails",
        "ignoreip",
        "ignoreself",
    }
)
"""Options that describe the jail rather than the filter."""

_UNITS: Final = (
    (re.compile(r"(?i)^(?:years?|yea|yy?)$"), 365.25 * 86400),
    (re.compile(r"(?i)^(?:months?|mon|mo)$"), 365.25 * 86400 / 12),
    (re.compile(r"(?i)^(?:weeks?|wee|ww?)$"), 7 * 86400.0),
    (re.compile(r"(?i)^(?:days?|da|dd?)$"), 86400.0),
    (re.compile(r"(?i)^(?:hours?|hou|hh?)$"), 3600.0),
    (re.compile(r"(?i)^(?:minutes?|min|mi|mm?)$"), 60.0),
    (re.compile(r"(?i)^(?:seconds?|sec|ss?)$"), 1.0),
)
_TOKEN: Final = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})


def f2b_duration(text: str, key: str = "duration") -> float:
    """fail2ban's time syntax: ``600``, ``10m``, ``1h 30m``, ``1d12h``, ``2w``, ``1mo``, ``-1``.

    (fail2ban evaluates the text as arithmetic; only sums of ``NUMBER[unit]`` are accepted.)
    """
    value = text.strip()
    total = 0.0
    pos = 0
    if not value:
        raise RuleError(f"{key}: empty duration")
    while pos < len(value):
        found = _TOKEN.match(value, pos)
        if found is None or found.end() == pos:
            raise RuleError(f"{key}: bad duration {text!r}")
        number, unit = float(found.group(1)), found.group(2)
        factor = 1.0
        if unit:
            for pattern, seconds in _UNITS:
                if pattern.match(unit):
                    factor = seconds
                    break
            else:
                raise RuleError(f"{key}: unknown unit {unit!r} in {text!r}")
        total += number * factor
        pos = found.end()
    return total


def _bool(text: str, key: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RuleError(f"{key}: expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class Jail:
    """fail2ban jail options (defaults are fail2ban's).

    ``bantime`` is ``None`` for a permanent ban (a negative fail2ban bantime).
    ``bantime.*`` values are kept as data: shieldwall's escalation (sanctions) is the
    treaty's. ``ignoreip`` addresses/networks are parsed; host names there (which fail2ban
    would resolve) are kept apart in ``ignore_names`` and never resolved.
    """

    name: str
    maxretry: int = 5
    findtime: float = 600.0
    bantime: float | None = 600.0
    bantime_increment: bool = False
    bantime_factor: float | None = None
    bantime_multipliers: tuple[float, ...] = ()
    bantime_maxtime: float | None = None
    bantime_formula: str | None = None
    bantime_rndtime: float | None = None
    bantime_overalljails: bool = False
    ignoreip: tuple[Scope, ...] = ()
    ignore_names: tuple[str, ...] = ()
    ignoreself: bool = True
    other: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str], origin: str = "jail") -> Jail:
        """Parse the jail keys of ``options`` (others are kept in ``other``)."""
        values = {key.strip().lower(): str(value) for key, value in options.items()}

        def get(key: str) -> str | None:
            return values.get(key)

        def duration(key: str) -> float | None:
            text = get(key)
            return None if text is None else f2b_duration(text, f"{origin}: {key}")

        kwargs: dict[str, object] = {}
        if (text := get("maxretry")) is not None:
            try:
                kwargs["maxretry"] = int(text)
            except ValueError as exc:
                raise RuleError(f"{origin}: maxretry: not an integer: {text!r}") from exc
        if (seconds := duration("findtime")) is not None:
            kwargs["findtime"] = seconds
        if (seconds := duration("bantime")) is not None:
            kwargs["bantime"] = None if seconds < 0 else seconds
        if (text := get("bantime.increment")) is not None:
            kwargs["bantime_increment"] = _bool(text, f"{origin}: bantime.increment")
        if (text := get("bantime.factor")) is not None:
            try:
                kwargs["bantime_factor"] = float(text)
            except ValueError as exc:
                raise RuleError(f"{origin}: bantime.factor: not a number: {text!r}") from exc
        if (text := get("bantime.multipliers")) is not None:
            try:
                kwargs["bantime_multipliers"] = tuple(float(v) for v in text.split())
            except ValueError as exc:
                raise RuleError(f"{origin}: bantime.multipliers: {text!r}") from exc
        if (seconds := duration("bantime.maxtime")) is not None:
            kwargs["bantime_maxtime"] = seconds
        if (seconds := duration("bantime.rndtime")) is not None:
            kwargs["bantime_rndtime"] = seconds
        if (text := get("bantime.formula")) is not None:
            kwargs["bantime_formula"] = text
        if (text := get("bantime.overalljails")) is not None:
            kwargs["bantime_overalljails"] = _bool(text, f"{origin}: bantime.overalljails")
        if (text := get("ignoreself")) is not None:
            kwargs["ignoreself"] = _bool(text, f"{origin}: ignoreself")
        if (text := get("ignoreip")) is not None:
            scopes: list[Scope] = []
            names: list[str] = []
            for item in re.split(r"[\s,]+", text.strip()):
                if not item:
                    continue
                try:
                    scopes.append(parse_scope(item))
                except InvalidScope:
                    try:
                        scopes.append(parse_scope(_strict_network(item)))
                    except (InvalidScope, ValueError):
                        names.append(item)
            kwargs["ignoreip"] = tuple(scopes)
            kwargs["ignore_names"] = tuple(names)
        other = {k: v for k, v in values.items() if k not in JAIL_KEYS}
        return cls(name=name, other=other, **kwargs)  # type: ignore[arg-type]


def _strict_network(text: str) -> str:
    """``10.0.0.1/8`` (host bits set, which fail2ban accepts) → ``10.0.0.0/8``."""
    import ipaddress

    return str(ipaddress.ip_network(text, strict=False))


def rule_name(name: str) -> str:
    """A valid shieldwall rule name from a filter or jail name."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return (cleaned or "fail2ban")[:64]


def compile_rule(rule: Rule) -> CompiledFilter:
    """Compile a ``dialect = "fail2ban"`` rule (called by ``Rule`` itself)."""
    origin = rule.origin
    if rule.prefilter:
        raise RuleError(f"{origin}: prefilter: not for dialect fail2ban")
    if rule.prefix is not None:
        raise RuleError(f"{origin}: prefix: not for dialect fail2ban (use prefregex)")
    if isinstance(rule.maxlines, bool) or not isinstance(rule.maxlines, int):
        raise RuleError(f"{origin}: maxlines: must be an integer")
    if not 1 <= rule.maxlines <= 1000:
        raise RuleError(f"{origin}: maxlines: must be between 1 and 1000")
    datepattern = None if rule.datepattern in ("auto", "") else rule.datepattern
    try:
        dates = compile_datepattern(datepattern)
    except RuleError as exc:
        raise RuleError(f"{origin}: {exc}") from exc
    compiled = CompiledFilter.build(
        origin,
        rule.failregex,
        prefregex=rule.prefregex,
        ignoreregex=rule.ignoreregex,
        dates=dates,
        maxlines=rule.maxlines,
        distinct=rule.distinct,
    )
    return compiled


def filter_rule(
    definition: FilterDefinition,
    *,
    name: str | None = None,
    jail: Jail | None = None,
    journal: bool = False,
) -> Rule:
    """The ``Rule`` for a loaded filter.

    ``jail`` gives the bucket (fail2ban's defaults otherwise: 5 in 10 minutes, ban 10
    minutes). ``journal=True`` reads lines as the systemd journal gives them: no date in the
    line (``datepattern = {NONE}``; the hit is dated when it is read).
    """
    from shieldwall.detect.rule import MAX_FINDTIME, MAX_RETRY, Rule

    jail = jail or Jail(definition.name)
    origin = definition.path
    if not 1 <= jail.maxretry <= MAX_RETRY:
        raise RuleError(f"{origin}: maxretry: {jail.maxretry} is outside 1..{MAX_RETRY}")
    if not 0 < jail.findtime <= MAX_FINDTIME:
        raise RuleError(
            f"{origin}: findtime: {jail.findtime:g}s is outside 0..{MAX_FINDTIME:.0f} seconds"
        )
    use_dns = definition.usedns not in ("no",)

    def host(regex: str) -> str:
        return regex if use_dns else regex.replace("<HOST>", "<ADDR>")

    options = ", ".join(f"{k}={v}" for k, v in sorted(definition.options.items()))
    description = f"fail2ban filter {definition.name}" + (f" ({options})" if options else "")
    datepattern = "{NONE}" if journal else (definition.datepattern or "auto")
    return Rule(
        name=rule_name(name or definition.name),
        description=description,
        failregex=tuple(host(r) for r in definition.failregex),
        ignoreregex=definition.ignoreregex,
        prefregex=None if definition.prefregex is None else host(definition.prefregex),
        datepattern=datepattern,
        maxlines=definition.maxlines,
        journalmatch=definition.journalmatch,
        maxretry=jail.maxretry,
        findtime=jail.findtime,
        bantime=jail.bantime,
        origin=origin,
        dialect="fail2ban",
    )


def load_fail2ban_rule(
    path: str | Path,
    options: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    search: Sequence[str | Path] = (),
    journal: bool = False,
) -> tuple[Rule, FilterDefinition, Jail]:
    """Read a fail2ban filter with ``options`` (filter options such as ``mode``, and jail
    options such as ``maxretry``) into a rule; also returns the definition and the jail."""
    options = dict(options or {})
    definition = read_filter(path, options, search=search)
    jail = Jail.from_options(name or definition.name, options, str(path))
    return filter_rule(definition, name=name, jail=jail, journal=journal), definition, jail
