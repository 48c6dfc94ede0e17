"""Write an imported fail2ban filter as a native shieldwall rule file (TOML).

The rule keeps fail2ban's semantics (``dialect = "fail2ban"``): every regex is written as
fail2ban resolved it (includes, ``%(…)s`` interpolation, ``<…>`` substitutions and the
chosen ``mode`` are applied; fail2ban's tags such as ``<HOST>`` stay). What a rule file
cannot express is returned as notes (and written as comments at the top of the file).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Final

from shieldwall.detect.fail2ban.config import FilterDefinition
from shieldwall.detect.fail2ban.rules import Jail
from shieldwall.detect.rule import Rule, parse_rule
from shieldwall.errors import RuleError

__all__ = ["limitations", "rule_toml"]

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ID_ONLY: Final = re.compile(r"<F-ID/>|<F-ID>")
_ADDRESS: Final = re.compile(r"<(?:HOST|ADDR|IP4|IP6|SUBNET|F-(?:ADDR|IP4|IP6|SUBNET)/)>")
_AGENT_KEYS: Final = frozenset(
    {"port", "logpath", "action", "backend", "banaction", "protocol", "chain", "logencoding"}
)


def _string(value: str) -> str:
    """A TOML string: a literal ``'…'`` when possible (regexes stay readable)."""
    if "'" not in value and "\n" not in value and not _CONTROL.search(value):
        return f"'{value}'"
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", escaped) + '"'


def _strings(values: Sequence[str]) -> str:
    if not values:
        return "[]"
    return "[\n" + "".join(f"  {_string(v)},\n" for v in values) + "]"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else _string(f"{round(value)}s")


def limitations(definition: FilterDefinition, jail: Jail) -> list[str]:
    """What the rule file cannot express, one sentence each."""
    notes: list[str] = []
    regexes = [*definition.failregex, *([definition.prefregex] if definition.prefregex else [])]
    if definition.usedns != "no" and any("<HOST>" in r for r in regexes):
        notes.append(
            "<HOST> also matches host names (fail2ban usedns=warn/yes resolves them): "
            "shieldwall never resolves names; such lines are skipped and counted (dns_host)"
        )
    if any("<SUBNET>" in r or "<CIDR>" in r for r in regexes):
        notes.append("<SUBNET>/<CIDR>: the prefix length is dropped, the address is the source")
    for i, regex in enumerate(definition.failregex):
        has_address = _ADDRESS.search(regex) or (
            definition.prefregex and _ADDRESS.search(definition.prefregex)
        )
        if _ID_ONLY.search(regex) and not has_address:
            notes.append(
                f"failregex[{i}] identifies failures by <F-ID> only: they have no address "
                "and are skipped (no_address)"
            )
    if jail.bantime is None:
        notes.append("bantime < 0 (ban forever) has no rule form: the rule carries no bantime")
    if (
        jail.bantime_increment
        or jail.bantime_factor is not None
        or jail.bantime_multipliers
        or jail.bantime_maxtime is not None
        or jail.bantime_formula is not None
        or jail.bantime_rndtime is not None
        or jail.bantime_overalljails
    ):
        notes.append(
            "bantime.increment and its factor/multipliers/maxtime/formula are not rule keys "
            "(kept in the Jail object): repeat offenders are escalated by the treaty"
        )
    if jail.ignoreip or jail.ignore_names:
        listed = " ".join([*map(str, jail.ignoreip), *jail.ignore_names])
        notes.append(
            f"ignoreip ({listed}) is not part of a rule: add it to the protected ranges "
            "of the agent/treaty (host names there are never resolved)"
        )
    agent = sorted(k for k in jail.other if k in _AGENT_KEYS)
    if agent:
        notes.append(
            f"jail options {', '.join(agent)} configure the agent (log paths, actions, "
            "backend), not the rule; they are not written"
        )
    missing = [m for m in definition.missing if not m.endswith(".local")]
    if missing:
        notes.append(f"includes not found (skipped, as fail2ban does): {', '.join(missing)}")
    return notes


def rule_toml(rule: Rule, definition: FilterDefinition, jail: Jail) -> tuple[str, list[str]]:
    """The TOML text of ``rule`` and the notes on what it cannot express.

    Raises RuleError if the text does not read back as the same rule (a bug).
    """
    notes = limitations(definition, jail)
    options = " ".join(f"{k}={v}" for k, v in sorted(definition.options.items()))
    lines = [
        "# shieldwall rule imported from a fail2ban filter (shieldwall rules import).",
        f"# filter: {definition.path}" + (f" with {options}" if options else ""),
        "# files read: " + ", ".join(definition.files),
        "# The regexes keep fail2ban's semantics (dialect fail2ban): see docs/fail2ban.md.",
    ]
    lines += [f"# not expressed: {note}" for note in notes]
    lines += [
        "",
        f"name = {_string(rule.name)}",
        f"description = {_string(rule.description)}",
        'dialect = "fail2ban"',
        f"datepattern = {_string(rule.datepattern)}",
    ]
    if rule.prefregex is not None:
        lines.append(f"prefregex = {_string(rule.prefregex)}")
    lines.append(f"failregex = {_strings(rule.failregex)}")
    lines.append(f"ignoreregex = {_strings(rule.ignoreregex)}")
    if rule.maxlines != 1:
        lines.append(f"maxlines = {rule.maxlines}")
    if rule.journalmatch:
        lines.append(f"journalmatch = {_strings(rule.journalmatch)}")
    lines.append(f"maxretry = {rule.maxretry}")
    lines.append(f"findtime = {_seconds(rule.findtime)}")
    if rule.bantime is not None:
        lines.append(f"bantime = {_seconds(rule.bantime)}")
    text = "\n".join(lines) + "\n"
    again = parse_rule(tomllib.loads(text), rule.name, rule.origin)
    for key in ("failregex", "ignoreregex", "prefregex", "datepattern", "maxlines", "maxretry"):
        if getattr(again, key) != getattr(rule, key):
            raise RuleError(f"{rule.origin}: {key}: does not survive the TOML round trip")
    return text, notes
