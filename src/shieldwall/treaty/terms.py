"""The terms of the treaty: every clause's knobs, with defaults. Pure, frozen values.

``TreatyTerms.from_mapping`` takes the decoded ``[treaty]`` table of ``council.toml``
(kebab-case keys, sub-tables ``alliance``, ``friendly-fire``, ``quorum``, ``blast-radius``,
``sanctions``, ``consult``) and raises :class:`ValueError` naming the key on any unknown key
or bad value. Durations are seconds or text like ``30s``, ``10m``, ``4h``, ``1d``, ``1w``.
Direct construction validates too (``__post_init__``), with the same key names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shieldwall.model import Scope, parse_scope
from shieldwall.treaty.policy import MAX_DURATION, TreatyConfig

TRUST_LEVELS = ("trusted", "member", "probation")
"""Member trust levels, most trusted first."""

_T = TypeVar("_T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def _check(ok: bool, key: str, why: str) -> None:
    if not ok:
        raise ValueError(f"treaty.{key}: {why}")


def _positive(value: float, key: str) -> None:
    _check(math.isfinite(value) and value > 0, key, "a duration must be positive")


@dataclass(frozen=True, slots=True)
class Threshold:
    """Alliance-wide threshold for one rule within the window.

    Decided when at least ``members`` distinct members each saw at least ``per_member``
    failures, and all members together saw at least ``attempts`` failures.
    "3 attempts at each of 20 members" is ``Threshold(members=20, per_member=3, attempts=60)``.
    """

    members: int = 5
    attempts: int = 20
    per_member: int = 1

    def check(self, key: str) -> None:
        _check(
            self.members >= 2, f"{key}.members", "must be at least 2 (one member never suffices)"
        )
        _check(self.attempts >= 1, f"{key}.attempts", "must be at least 1")
        _check(self.per_member >= 1, f"{key}.per-member", "must be at least 1")


@dataclass(frozen=True, slots=True)
class AllianceTerms:
    """Clause ``alliance.threshold``: alliance-wide buckets of members' sightings."""

    enabled: bool = True
    window: float = 3600.0
    granularity: float = 300.0
    """Width of one bucket slot: the sliding window moves by this step."""
    threshold: Threshold = Threshold()
    rules: Mapping[str, Threshold] = field(default_factory=dict)
    """Per-rule thresholds overriding ``threshold``."""
    max_sources: int = 100_000
    """Sources tracked at once; the least recently seen is evicted (and counted) beyond it."""

    def __post_init__(self) -> None:
        _positive(self.window, "alliance.window")
        _positive(self.granularity, "alliance.granularity")
        _check(
            self.granularity <= self.window, "alliance.granularity", "must not exceed the window"
        )
        _check(self.max_sources >= 1, "alliance.max-sources", "must be at least 1")
        self.threshold.check("alliance")
        for rule, t in self.rules.items():
            t.check(f"alliance.rules.{rule}")

    def threshold_for(self, rule: str) -> Threshold:
        return self.rules.get(rule, self.threshold)


@dataclass(frozen=True, slots=True)
class FriendlyFireTerms:
    """Clause ``friendly-fire``: successful logins veto decisions on sums alone."""

    enabled: bool = True
    successes: int = 1
    """Successes within the alliance window (at any members) that veto."""

    def __post_init__(self) -> None:
        _check(self.successes >= 1, "friendly-fire.successes", "must be at least 1")


@dataclass(frozen=True, slots=True)
class QuorumTerms:
    """Clause ``quorum``: low-trust members' alerts need k distinct members."""

    levels: tuple[str, ...] = ("probation",)
    """Trust levels whose alerts need a quorum."""
    members: int = 2
    """k: distinct members (the requester included) needed."""
    window: float = 3600.0
    """How long a request waits for corroboration before it is refused."""
    max_pending: int = 10_000

    def __post_init__(self) -> None:
        for level in self.levels:
            _check(
                level in TRUST_LEVELS,
                "quorum.levels",
                f"{level!r} is not one of {', '.join(TRUST_LEVELS)}",
            )
        _check(self.members >= 2, "quorum.members", "must be at least 2")
        _positive(self.window, "quorum.window")
        _check(self.max_pending >= 1, "quorum.max-pending", "must be at least 1")


@dataclass(frozen=True, slots=True)
class BlastRadiusTerms:
    """Clause ``blast-radius``: decisions one member may cause per window, by trust level."""

    window: float = 3600.0
    trusted: int = 1000
    member: int = 100
    probation: int = 10

    def __post_init__(self) -> None:
        _positive(self.window, "blast-radius.window")
        for level in TRUST_LEVELS:
            _check(self.limit_for(level) >= 1, f"blast-radius.{level}", "must be at least 1")

    def limit_for(self, trust: str) -> int:
        if trust == "trusted":
            return self.trusted
        if trust == "member":
            return self.member
        return self.probation


@dataclass(frozen=True, slots=True)
class SanctionTerms:
    """Clauses ``sanction.repeat`` and ``sanction.range``."""

    increment: bool = True
    """Repeat offenders get ``bantime * factor ** n`` (n: earlier decisions remembered)."""
    factor: float = 2.0
    multipliers: tuple[float, ...] = ()
    """When set, ``bantime * multipliers[min(n, len - 1)]`` instead of the factor."""
    max_bantime: float = 7 * 86400.0
    memory: float = 30 * 86400.0
    """How long an offence is remembered."""
    max_offenders: int = 100_000
    range: bool = True
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    range_sources: int = 5
    """Distinct attackers with active decisions in one range…"""
    range_members: int = 3
    """…decided on the evidence of at least this many distinct members."""
    range_bantime: float = 86400.0

    def __post_init__(self) -> None:
        _check(math.isfinite(self.factor) and self.factor >= 1, "sanctions.factor", "must be ≥ 1")
        for m in self.multipliers:
            _check(math.isfinite(m) and m > 0, "sanctions.multipliers", "must be positive numbers")
        _positive(self.max_bantime, "sanctions.max-bantime")
        _check(self.max_bantime <= MAX_DURATION, "sanctions.max-bantime", "must be at most 366d")
        _positive(self.memory, "sanctions.memory")
        _check(self.max_offenders >= 1, "sanctions.max-offenders", "must be at least 1")
        _check(8 <= self.ipv4_prefix <= 31, "sanctions.ipv4-prefix", "must be within 8..31")
        _check(16 <= self.ipv6_prefix <= 127, "sanctions.ipv6-prefix", "must be within 16..127")
        _check(self.range_sources >= 2, "sanctions.range-sources", "must be at least 2")
        _check(self.range_members >= 2, "sanctions.range-members", "must be at least 2")
        _positive(self.range_bantime, "sanctions.range-bantime")

    def escalate(self, bantime: float, offences: int) -> float:
        """The ban duration for an offender with ``offences`` earlier decisions."""
        if not self.increment or offences <= 0:
            return bantime
        if self.multipliers:
            factor = self.multipliers[min(offences, len(self.multipliers) - 1)]
        else:
            factor = self.factor ** min(offences, 64)
        return max(bantime, min(bantime * factor, self.max_bantime))


@dataclass(frozen=True, slots=True)
class ConsultTerms:
    """Clause ``article4.corroborated``: consultations on a concern."""

    members: int = 2
    """k: distinct members with failures (and none with successes) that turn it into a decision."""
    timeout: float = 600.0
    lookback: float = 3600.0
    """How far back members search their logs when asked."""
    max_open: int = 10_000
    max_open_per_member: int = 50

    def __post_init__(self) -> None:
        _check(self.members >= 2, "consult.members", "must be at least 2")
        _positive(self.timeout, "consult.timeout")
        _positive(self.lookback, "consult.lookback")
        _check(self.max_open >= 1, "consult.max-open", "must be at least 1")
        _check(self.max_open_per_member >= 1, "consult.max-open-per-member", "must be at least 1")


@dataclass(frozen=True, slots=True)
class TreatyTerms:
    """Everything the treaty can be told. The defaults are documented in ``docs/treaty.md``."""

    ban_duration: float = 4 * 3600.0
    max_duration: float = 7 * 86400.0
    honour_rule_bantime: bool = True
    protect_private: bool = True
    allowlist: tuple[Scope, ...] = ()
    alliance: AllianceTerms = AllianceTerms()
    friendly_fire: FriendlyFireTerms = FriendlyFireTerms()
    quorum: QuorumTerms = QuorumTerms()
    blast_radius: BlastRadiusTerms = BlastRadiusTerms()
    sanctions: SanctionTerms = SanctionTerms()
    consult: ConsultTerms = ConsultTerms()

    def __post_init__(self) -> None:
        _positive(self.ban_duration, "ban-duration")
        _positive(self.max_duration, "max-duration")
        _check(self.max_duration <= MAX_DURATION, "max-duration", "must be at most 366d")
        _check(self.ban_duration <= MAX_DURATION, "ban-duration", "must be at most 366d")

    def config(self) -> TreatyConfig:
        """The treaty v1 config (:func:`~shieldwall.treaty.policy.judge_alert`)."""
        return TreatyConfig(
            ban_duration=self.ban_duration,
            honour_rule_bantime=self.honour_rule_bantime,
            max_duration=self.max_duration,
            protect_private=self.protect_private,
            allowlist=self.allowlist,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TreatyTerms:
        """Parse the ``[treaty]`` table. Raises ValueError naming the key."""
        t = _Table(data, "")
        d = cls()
        terms = cls(
            ban_duration=t.duration("ban-duration", d.ban_duration),
            max_duration=t.duration("max-duration", d.max_duration),
            honour_rule_bantime=t.boolean("honour-rule-bantime", d.honour_rule_bantime),
            protect_private=t.boolean("protect-private", d.protect_private),
            allowlist=t.scopes("allowlist"),
            alliance=t.table("alliance", _alliance, AllianceTerms()),
            friendly_fire=t.table("friendly-fire", _friendly_fire, FriendlyFireTerms()),
            quorum=t.table("quorum", _quorum, QuorumTerms()),
            blast_radius=t.table("blast-radius", _blast_radius, BlastRadiusTerms()),
            sanctions=t.table("sanctions", _sanctions, SanctionTerms()),
            consult=t.table("consult", _consult, ConsultTerms()),
        )
        t.done()
        return terms


# -- parsing ---------------------------------------------------------------------------------


class _Table:
    """Reads one TOML table, remembering which keys were used; ``done`` refuses the rest."""

    def __init__(self, data: Any, path: str, *, names: bool = False) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"treaty.{path}: must be a table" if path else "treaty: not a table")
        # keys are kebab-case (snake_case accepted); a table of rule ``names`` is kept verbatim
        self.data: Mapping[str, Any] = {
            str(k) if names else str(k).replace("_", "-"): v for k, v in data.items()
        }
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def done(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise ValueError(f"treaty.{self.key(name)}: unknown key")

    def integer(self, name: str, default: int) -> int:
        v = self._get(name)
        if v is None:
            return default
        _check(isinstance(v, int) and not isinstance(v, bool), self.key(name), "must be an integer")
        return int(v)

    def number(self, name: str, default: float) -> float:
        v = self._get(name)
        if v is None:
            return default
        _check(
            isinstance(v, int | float) and not isinstance(v, bool), self.key(name), "not a number"
        )
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        v = self._get(name)
        if v is None:
            return default
        _check(isinstance(v, bool), self.key(name), "must be true or false")
        return bool(v)

    def duration(self, name: str, default: float) -> float:
        v = self._get(name)
        if v is None:
            return default
        return parse_duration(v, self.key(name))

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        v = self._get(name)
        if v is None:
            return default
        _check(
            isinstance(v, list | tuple) and all(isinstance(x, str) for x in v),
            self.key(name),
            "must be a list of strings",
        )
        return tuple(str(x) for x in v)

    def numbers(self, name: str) -> tuple[float, ...]:
        v = self._get(name)
        if v is None:
            return ()
        ok = isinstance(v, list | tuple) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in v
        )
        _check(ok, self.key(name), "must be a list of numbers")
        return tuple(float(x) for x in v)

    def scopes(self, name: str) -> tuple[Scope, ...]:
        out: list[Scope] = []
        for i, text in enumerate(self.strings(name, ())):
            try:
                out.append(parse_scope(text))
            except ValueError as exc:
                raise ValueError(f"treaty.{self.key(name)}[{i}]: {exc}") from exc
        return tuple(out)

    def table(self, name: str, parse: Callable[[_Table], _T], default: _T) -> _T:
        v = self._get(name)
        if v is None:
            return default
        sub = _Table(v, self.key(name))
        out = parse(sub)
        sub.done()
        return out


def parse_duration(value: Any, key: str = "") -> float:
    """``30``, ``"30s"``, ``"10m"``, ``"4h"``, ``"1d"``, ``"1w"`` → seconds (> 0)."""
    if isinstance(value, bool):
        raise ValueError(f"treaty.{key}: a duration is a number of seconds or text like '4h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)) is not None:
        seconds = float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1.0)
    else:
        raise ValueError(f"treaty.{key}: {value!r} is not a duration (like 30s, 10m, 4h, 1d)")
    _positive(seconds, key)
    return seconds


def _threshold(t: _Table, default: Threshold) -> Threshold:
    return Threshold(
        members=t.integer("members", default.members),
        attempts=t.integer("attempts", default.attempts),
        per_member=t.integer("per-member", default.per_member),
    )


def _alliance(t: _Table) -> AllianceTerms:
    d = AllianceTerms()
    threshold = _threshold(t, d.threshold)
    rules: dict[str, Threshold] = {}
    raw = t._get("rules")
    if raw is not None:
        table = _Table(raw, t.key("rules"), names=True)
        for rule in table.data:
            sub = _Table(table.data[rule], table.key(rule))
            rules[rule] = _threshold(sub, threshold)
            sub.done()
    return AllianceTerms(
        enabled=t.boolean("enabled", d.enabled),
        window=t.duration("window", d.window),
        granularity=t.duration("granularity", d.granularity),
        threshold=threshold,
        rules=rules,
        max_sources=t.integer("max-sources", d.max_sources),
    )


def _friendly_fire(t: _Table) -> FriendlyFireTerms:
    d = FriendlyFireTerms()
    return FriendlyFireTerms(
        enabled=t.boolean("enabled", d.enabled), successes=t.integer("successes", d.successes)
    )


def _quorum(t: _Table) -> QuorumTerms:
    d = QuorumTerms()
    return QuorumTerms(
        levels=t.strings("levels", d.levels),
        members=t.integer("members", d.members),
        window=t.duration("window", d.window),
        max_pending=t.integer("max-pending", d.max_pending),
    )


def _blast_radius(t: _Table) -> BlastRadiusTerms:
    d = BlastRadiusTerms()
    return BlastRadiusTerms(
        window=t.duration("window", d.window),
        trusted=t.integer("trusted", d.trusted),
        member=t.integer("member", d.member),
        probation=t.integer("probation", d.probation),
    )


def _sanctions(t: _Table) -> SanctionTerms:
    d = SanctionTerms()
    return SanctionTerms(
        increment=t.boolean("increment", d.increment),
        factor=t.number("factor", d.factor),
        multipliers=t.numbers("multipliers"),
        max_bantime=t.duration("max-bantime", d.max_bantime),
        memory=t.duration("memory", d.memory),
        max_offenders=t.integer("max-offenders", d.max_offenders),
        range=t.boolean("range", d.range),
        ipv4_prefix=t.integer("ipv4-prefix", d.ipv4_prefix),
        ipv6_prefix=t.integer("ipv6-prefix", d.ipv6_prefix),
        range_sources=t.integer("range-sources", d.range_sources),
        range_members=t.integer("range-members", d.range_members),
        range_bantime=t.duration("range-bantime", d.range_bantime),
    )


def _consult(t: _Table) -> ConsultTerms:
    d = ConsultTerms()
    return ConsultTerms(
        members=t.integer("members", d.members),
        timeout=t.duration("timeout", d.timeout),
        lookback=t.duration("lookback", d.lookback),
        max_open=t.integer("max-open", d.max_open),
        max_open_per_member=t.integer("max-open-per-member", d.max_open_per_member),
    )
