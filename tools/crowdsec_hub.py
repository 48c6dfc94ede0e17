"""Replay CrowdSec hub tests through shieldwall and compare the verdicts.

Usage::

    .venv/bin/python tools/crowdsec_hub.py CORPUS_DIR [--json] [--test NAME ...]

``CORPUS_DIR`` is the hub snapshot (the folder holding ``.tests/``, ``parsers/`` and
``scenarios/``, e.g. ``../shared/corpora/crowdsec-hub``) or the corpora folder above it.

For every ``.tests/<name>/`` (``config.yaml``, one log, ``parser.assert`` and/or
``scenario.assert``) the log is replayed, with ``Detector.feed``, through the shipped
shieldwall rules that express the test's scenarios (:data:`SCENARIOS`), on the lines' own
time. What "pass" means (corpora README §2):

* **scenario tests**: the set of sources shieldwall alerts on equals the set of
  ``GetSources()`` of the results asserted with ``Remediation == true``, and, scenario by
  scenario, shieldwall raises as many alerts as the hub does (so blackholes must agree too).
  A test whose expected bans need a scenario that is not modeled is ``unsupported``.
* **parser tests** (``crowdsecurity/sshd-logs``): every line asserted ``Success == true``
  with a log type that some scenario bans on must be a hit of the matching shieldwall rule
  for the asserted ``source_ip``; a line asserted ``Success == false`` (or parsed as
  something harmless) must be a hit of none of them. ``crowdsecurity/whitelists``
  (``Evt.Whitelisted``) must agree with the treaty's protected ranges.

The assert files are expr-lang; the few expression shapes used here are read with regexes.
Only ``syslog``, ``nginx`` and ``apache2`` logs are replayed; other tests are reported as
``unsupported`` with the reason. Exit status: 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # pyyaml ships no stubs

from shieldwall.detect import Detector, Rule, builtin_rule
from shieldwall.errors import InvalidScope
from shieldwall.model import Address, address_scope, parse_address
from shieldwall.treaty.protect import Protected

__all__ = ["NOT_MODELED", "SCENARIOS", "Outcome", "hub_dir", "main", "run", "run_test"]

NOW = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
"""Reading time. Syslog lines carry no year; the hub's asserts were generated in 2026."""

LOG_TYPES = frozenset({"syslog", "nginx", "apache2"})

SCENARIOS: dict[str, str] = {
    "crowdsecurity/ssh-bf": "ssh-bf",
    "crowdsecurity/ssh-bf_user-enum": "ssh-bf_user-enum",
    "crowdsecurity/ssh-slow-bf": "ssh-slow-bf",
    "crowdsecurity/ssh-slow-bf_user-enum": "ssh-slow-bf_user-enum",
    "lepresidente/ssh-bad-keyexchange-bf": "ssh-bad-keyexchange-bf",
    "crowdsecurity/ssh-cve-2024-6387": "ssh-cve-2024-6387",
    "crowdsecurity/ssh-refused-conn": "ssh-refused-conn",
    "crowdsecurity/http-probing": "http-probing",
    "crowdsecurity/http-generic-bf": "http-generic-bf",
    "LePresidente/http-generic-401-bf": "http-generic-401-bf",
    "LePresidente/http-generic-403-bf": "http-generic-403-bf",
    "crowdsecurity/http-sensitive-files": "http-sensitive-files",
    "crowdsecurity/http-wordpress-scan": "http-wordpress-scan",
    "crowdsecurity/http-bf-wordpress_bf": "http-bf-wordpress_bf",
    "crowdsecurity/http-wordpress_wpconfig": "http-wordpress_wpconfig",
    "crowdsecurity/iptables-scan-multi_ports": "iptables-scan-multi_ports",
    "Guezli/postfix-sasl-bf": "postfix-sasl-bf",
    "melite/dovecot-slow-bf": "dovecot-slow-bf",
    "melite/dovecot-slow-bf_user-enum": "dovecot-slow-bf_user-enum",
    # HTTP denial of service and probing (nginx / Apache access logs)
    "crowdsecurity/http-dos-bypass-cache": "http-dos-bypass-cache",
    "crowdsecurity/http-dos-invalid-http-versions": "http-dos-invalid-http-versions",
    "crowdsecurity/http-dos-random-uri": "http-dos-random-uri",
    "crowdsecurity/http-dos-swithcing-ua": "http-dos-switching-ua",  # sic, the hub's name
    "crowdsecurity/http-wordpress_user-enum": "http-wordpress_user-enum",
    "crowdsecurity/http-cve-2021-41773": "http-cve-2021-41773",
    "crowdsecurity/http-open-proxy": "http-open-proxy",
    "ltsich/http-w00tw00t": "http-w00tw00t",
    "crowdsecurity/nginx-req-limit-exceeded": "nginx-req-limit-exceeded",
    # ssh and telnet honeypots / tarpits
    "crowdsecurity/endlessh-bf": "endlessh-bf",
    "crowdsecurity/telnet-bf": "telnet-bf",
    # mail: postfix, postscreen, dovecot, MailScanner, nginx's mail proxy
    "crowdsecurity/postfix-helo-rejected": "postfix-helo-rejected",
    "crowdsecurity/postfix-relay-denied": "postfix-relay-denied",
    "crowdsecurity/postfix-non-smtp-command": "postfix-non-smtp-command",
    "crowdsecurity/postfix-spam": "postfix-spam",
    "crowdsecurity/postscreen-rbl": "postscreen-rbl",
    "Guezli/postfix-honeypot-users": "postfix-honeypot-users",
    "crowdsecurity/dovecot-spam": "dovecot-spam",
    "cbrandlehner/mailscanner-blacklisted": "mailscanner-blacklisted",
    "cbrandlehner/mailscanner-highscore-spam": "mailscanner-highscore-spam",
    "hitech95/email-generic-bf": "email-generic-bf",
    "hitech95/email-user-bf": "email-user-bf",
}
"""CrowdSec scenario (its ``name``) → the shipped shieldwall rule that expresses it."""

NOTES: dict[str, str] = {
    "crowdsecurity/http-sensitive-files": (
        "the hub's word list (sensitive_data.txt, fetched at run time) is not in the corpus; "
        "shieldwall's rule counts any hidden file or folder (a path segment starting with '.')"
    ),
    "crowdsecurity/ssh-bf": (
        "'Failed publickey' is not counted; user names are not limited to [A-Za-z0-9._-]"
    ),
    "crowdsecurity/endlessh-bf": (
        "the whole endlessh message must match (the hub's pattern is unanchored); endlessh-go "
        "glog stamps (no year or zone) are not read, so a bare glog line is dated when read"
    ),
    "crowdsecurity/telnet-bf": (
        "the match starts right after Cowrie's stamp and [system] tag, so a 'New connection:' "
        "planted in commands or user names is not a hit; bare IPv6 sources are not counted"
    ),
    "crowdsecurity/http-dos-invalid-http-versions": (
        "nginx error-log lines are not read (the access-log line of the same request is); "
        "Apache logs count too (the hub's apache2-logs names the field httpversion)"
    ),
    "crowdsecurity/http-dos-swithcing-ua": (
        "nginx error-log lines (no user agent) and the common format (no user agent) do not count"
    ),
    "crowdsecurity/http-dos-random-uri": (
        "ASCII only (nginx and Apache write non-ASCII bytes as \\xHH)"
    ),
    "crowdsecurity/http-cve-2021-41773": (
        "nginx error-log lines, and Apache error-log lines other than AH00126, are not read"
    ),
    "crowdsecurity/nginx-req-limit-exceeded": (
        "the first ', client:' after the zone is the source (the hub takes the last, which the "
        "request line can forge); a well-formed request and a 'host:' field are not required"
    ),
    "crowdsecurity/http-open-proxy": (
        "a request line with no HTTP version counts (the hub's nginx parser treats it as malformed)"
    ),
    "crowdsecurity/postfix-helo-rejected": (
        "the reason must follow the SMTP code's first '<...>: ' (the hub's grok is unanchored)"
    ),
    "crowdsecurity/postfix-relay-denied": (
        "a '; ' in the sender, recipient or HELO name does not hide the line"
    ),
    "crowdsecurity/postfix-non-smtp-command": (
        "the message must start with 'warning: non-SMTP command from' (the hub's is unanchored)"
    ),
    "crowdsecurity/postfix-spam": (
        "each message must start with one of its three forms; the hub's unanchored groks also "
        "read a 'lost connection ... from x[IP]' planted in a reject's sender, as the source"
    ),
    "crowdsecurity/postscreen-rbl": (
        "the message must start with PREGREET (the hub also reads one planted in client text)"
    ),
    "Guezli/postfix-honeypot-users": (
        "only the SASL failure line itself counts (the hub: any smtpd line with the strings)"
    ),
    "crowdsecurity/dovecot-spam": (
        "auth messages must be one of dovecot's failure texts; a logged password holding '): ' "
        "or a second 'given password: ' is not counted"
    ),
    "cbrandlehner/mailscanner-blacklisted": (
        "anchored at the start of MailScanner's message; the sender must be local@domain"
    ),
    "cbrandlehner/mailscanner-highscore-spam": (
        "anchored at the start of MailScanner's message; '> 20.0' is written as a digit regex"
    ),
    "hitech95/email-generic-bf": (
        "the first ', client:' is the source and a line with two is not counted (the hub takes "
        "the last, which the login can forge)"
    ),
    "hitech95/email-user-bf": "as email-generic-bf; a login holding ', client: ' is not counted",
}
"""Known differences, printed with the tests that use the scenario."""

_DATA = "needs a data file fetched at run time from hub-data.crowdsec.net (not in the corpus)"
NOT_MODELED: dict[str, str] = {
    "crowdsecurity/ssh-time-based-bf": "conditional bucket (median interval between failures)",
    "crowdsecurity/ssh-time-based-bf_user-enum": "conditional bucket (median interval)",
    "crowdsecurity/impossible-travel": "conditional bucket over GeoIP data",
    "crowdsecurity/impossible-travel-user": "conditional bucket over GeoIP data",
    "crowdsecurity/ssh-generic-test": "a hub self-test scenario (no remediation)",
    "crowdsecurity/http-generic-test": "a hub self-test scenario (no remediation)",
    "crowdsecurity/http-admin-interface-probing": _DATA,
    "crowdsecurity/http-backdoors-attempts": _DATA,
    "crowdsecurity/http-bad-user-agent": _DATA,
    "crowdsecurity/http-cve-probing": _DATA,
    "crowdsecurity/http-path-traversal-probing": _DATA,
    "crowdsecurity/http-sqli-probbing-detection": _DATA,
    "crowdsecurity/http-xss-probbing": _DATA,
    "crowdsecurity/http-technology-probing": _DATA,
    "crowdsecurity/apache_log4j2_cve-2021-44228": _DATA,
}
"""Scenarios deliberately not expressed, and why. Anything else unmapped: not written yet."""

PARSER_CLASSES: dict[str, dict[str, str]] = {
    "crowdsecurity/sshd-logs": {
        "ssh_failed-auth": "ssh-bf",
        "ssh_bad_keyexchange": "ssh-bad-keyexchange-bf",
        "ssh_auth_timeout": "ssh-cve-2024-6387",
        "ssh_dispatch_fatal": "ssh-cve-2024-6387",
        "ssh_refused_conn": "ssh-refused-conn",
    },
    "crowdsecurity/sshd-success-logs": {},
}
"""Parser → {log type that a scenario bans on → the shieldwall rule that must hit the line}.

A line the parser does not parse, or parses with another log type, must be a hit of none of
the parser's family of rules (the values of the sshd-logs mapping)."""

_SSH_FAMILY = tuple(sorted(set(PARSER_CLASSES["crowdsecurity/sshd-logs"].values())))
_FAMILIES: dict[str, tuple[str, ...]] = dict.fromkeys(PARSER_CLASSES, _SSH_FAMILY)

_HTTP_FAMILY = tuple(sorted(rule for rule in SCENARIOS.values() if rule.startswith("http-")))
SOURCE_ONLY: dict[str, tuple[str, ...]] = {
    "crowdsecurity/nginx-logs": _HTTP_FAMILY,
    "crowdsecurity/apache2-logs": _HTTP_FAMILY,
    "crowdsecurity/dovecot-logs": ("dovecot-slow-bf", "dovecot-spam"),
    "crowdsecurity/iptables-logs": ("iptables-scan-multi_ports",),
    "crowdsecurity/postfix-logs": (
        "postfix-sasl-bf",
        "postfix-helo-rejected",
        "postfix-relay-denied",
        "postfix-non-smtp-command",
        "postfix-spam",
        "postfix-honeypot-users",
    ),
    "crowdsecurity/postscreen-logs": ("postscreen-rbl",),
    "cbrandlehner/mailscanner-logs": ("mailscanner-blacklisted", "mailscanner-highscore-spam"),
    "hitech95/nginx-mail-logs": ("email-generic-bf",),
}
"""Parsers that parse every line of their log (a 200 OK as well as a probe): they are not
modeled, but every line that one of these rules hits must carry the parser's source_ip, and
a line the parser refuses must be a hit of none of them. Such a check never makes a test
pass (it is ``skip``); a disagreement makes it fail."""

WHITELIST_PARSER = "crowdsecurity/whitelists"

# -- assert files ----------------------------------------------------------------------------

_LEN = re.compile(r"^len\(results\) == (\d+)$")
_SOURCE = re.compile(r'^"([^"]+)" in results\[(\d+)\]\.Overflow\.GetSources\(\)$')
_SCENARIO = re.compile(r'^results\[(\d+)\]\.Overflow\.Alert\.GetScenario\(\) == "([^"]+)"$')
_REMEDIATION = re.compile(r"^results\[(\d+)\]\.Overflow\.Alert\.Remediation == (true|false)$")
_EVENTS = re.compile(r"^results\[(\d+)\]\.Overflow\.Alert\.GetEventsCount\(\) == (\d+)$")
_PARSE = re.compile(r'^results\["s01-parse"\]\["([^"]+)"\]\[(\d+)\]\.(.*)$')
_ENRICH = re.compile(r'^results\["s02-enrich"\]\["([^"]+)"\]\[(\d+)\]\.Evt\.Whitelisted == (\w+)$')
_RAW_LEN = re.compile(r'^len\(results\["s00-raw"\]\["[^"]+"\]\) == (\d+)$')
_SUCCESS = re.compile(r"^Success == (true|false)$")
_META = re.compile(r'^Evt\.Meta\["(log_type|source_ip)"\] == "([^"]*)"$')


@dataclass
class _Expected:
    scenario: str = ""
    sources: set[str] = field(default_factory=set)
    remediation: bool | None = None
    events: int | None = None


def _scenario_results(text: str) -> list[_Expected]:
    results: dict[int, _Expected] = {}
    length = None
    for line in (raw.strip() for raw in text.splitlines()):
        if found := _LEN.match(line):
            length = int(found.group(1))
        elif found := _SOURCE.match(line):
            results.setdefault(int(found.group(2)), _Expected()).sources.add(found.group(1))
        elif found := _SCENARIO.match(line):
            results.setdefault(int(found.group(1)), _Expected()).scenario = found.group(2)
        elif found := _REMEDIATION.match(line):
            results.setdefault(int(found.group(1)), _Expected()).remediation = (
                found.group(2) == "true"
            )
        elif found := _EVENTS.match(line):
            results.setdefault(int(found.group(1)), _Expected()).events = int(found.group(2))
    count = length if length is not None else (max(results) + 1 if results else 0)
    return [results.get(i, _Expected()) for i in range(count)]


@dataclass
class _ParsedLine:
    success: bool | None = None
    log_type: str | None = None
    source_ip: str | None = None


@dataclass
class _ParserAsserts:
    lines: dict[str, dict[int, _ParsedLine]] = field(default_factory=dict)
    whitelisted: dict[int, bool] = field(default_factory=dict)
    raw_count: int | None = None


def _parser_asserts(text: str) -> _ParserAsserts:
    asserts = _ParserAsserts()
    for line in (raw.strip() for raw in text.splitlines()):
        if found := _PARSE.match(line):
            parser, index, rest = found.group(1), int(found.group(2)), found.group(3)
            entry = asserts.lines.setdefault(parser, {}).setdefault(index, _ParsedLine())
            if success := _SUCCESS.match(rest):
                entry.success = success.group(1) == "true"
            elif meta := _META.match(rest):
                setattr(entry, meta.group(1), meta.group(2))
        elif (found := _ENRICH.match(line)) and found.group(1) == WHITELIST_PARSER:
            asserts.whitelisted[int(found.group(2))] = found.group(3) == "true"
        elif found := _RAW_LEN.match(line):
            asserts.raw_count = int(found.group(1))
    return asserts


# -- one test ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The verdict on one hub test: ``pass``, ``fail``, ``unsupported`` or ``n/a``."""

    test: str
    status: str
    log_type: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    got: list[str] = field(default_factory=list)
    lines_checked: int = 0


@cache
def _rule(name: str) -> Rule:
    return builtin_rule(name)


def _scenario_names(hub: Path, entries: Iterable[object]) -> list[str]:
    """The ``name`` of every scenario a test loads (a hub file may hold several)."""
    names: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            continue
        path = hub / entry if entry.endswith((".yaml", ".yml")) else None
        if path is None:
            path = hub / "scenarios" / f"{entry}.yaml"
        if not path.is_file():
            names.append(entry)
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"]:
                names.append(doc["name"])
    return names


def _log_lines(path: Path) -> list[bytes]:
    """The lines CrowdSec's file acquisition reads: empty lines are skipped."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _address(text: str) -> str:
    try:
        return str(parse_address(text))
    except InvalidScope:
        return text


def _describe(scenario: str, sources: Iterable[str]) -> str:
    return f"{scenario}: {', '.join(sorted(sources))}"


def _check_scenarios(
    outcome: Outcome, names: Sequence[str], expected: list[_Expected], lines: list[bytes]
) -> str:
    """Compare alerts with the asserted overflows; returns this part's status."""
    mapped = [name for name in names if name in SCENARIOS]
    for name in names:
        if name in NOTES:
            outcome.notes.append(f"{name}: {NOTES[name]}")
        if name not in SCENARIOS:
            why = NOT_MODELED.get(name, "not expressed as a shieldwall rule yet")
            outcome.notes.append(f"{name} not modeled: {why}")
    outcome.expected = [
        _describe(e.scenario, e.sources) + ("" if e.remediation else " (no remediation)")
        for e in expected
    ]
    missing = sorted(
        {e.scenario for e in expected if e.remediation is not False and e.scenario not in SCENARIOS}
    )
    if not mapped or missing:
        for name in missing or names:
            why = NOT_MODELED.get(name, "not expressed as a shieldwall rule yet")
            outcome.reasons.append(f"{name}: {why}")
        return "unsupported"

    by_rule = {SCENARIOS[name]: name for name in mapped}
    detector = Detector([_rule(rule) for rule in by_rule])
    alerts = [alert for raw in lines for alert in detector.feed(raw, NOW).alerts]
    outcome.got = [_describe(by_rule[a.rule], [str(a.source)]) for a in alerts]

    want_bans = {_address(s) for e in expected if e.remediation is not False for s in e.sources}
    got_bans = {str(a.source) for a in alerts}
    want = Counter(
        (e.scenario, frozenset(_address(s) for s in e.sources))
        for e in expected
        if e.scenario in by_rule.values()
    )
    got = Counter((by_rule[a.rule], frozenset({str(a.source)})) for a in alerts)
    if want_bans != got_bans:
        outcome.reasons.append(
            f"banned sources differ: hub {sorted(want_bans)}, shieldwall {sorted(got_bans)}"
        )
    if want != got:
        for (scenario, sources), n in sorted((want - got).items()):
            outcome.reasons.append(f"missing {n} x {_describe(scenario, sources)}")
        for (scenario, sources), n in sorted((got - want).items()):
            outcome.reasons.append(f"extra {n} x {_describe(scenario, sources)}")
    return "fail" if outcome.reasons else "pass"


def _hits(rules: Sequence[str], line: bytes) -> dict[str, Address]:
    detector = Detector([_rule(rule) for rule in rules])
    return {e.rule: e.source for e in detector.explain(line, NOW) if e.matched and e.source}


def _check_parsers(outcome: Outcome, asserts: _ParserAsserts, lines: list[bytes]) -> str:
    """Per-line classification (s01-parse) and whitelisting (s02-enrich)."""
    if asserts.raw_count is not None and asserts.raw_count != len(lines):
        outcome.reasons.append(f"{asserts.raw_count} events for {len(lines)} lines: no alignment")
        return "unsupported"
    unknown = sorted(set(asserts.lines) - set(PARSER_CLASSES))
    if unknown:
        return _check_sources(outcome, asserts, lines, unknown)
    failures: list[str] = []
    checked = 0
    sources: dict[int, Address] = {}
    for parser, entries in sorted(asserts.lines.items()):
        classes, family = PARSER_CLASSES[parser], _FAMILIES[parser]
        for index, entry in sorted(entries.items()):
            if entry.success is None:
                continue
            if index >= len(lines):
                failures.append(f"{parser}[{index}]: no such line")
                continue
            checked += 1
            hits = _hits(family, lines[index])
            rule = classes.get(entry.log_type or "") if entry.success else None
            where = f"line {index + 1}"
            if rule is None:
                if hits:
                    failures.append(f"{where}: hub does not count it, shieldwall {sorted(hits)}")
                continue
            source = hits.get(rule)
            if source is not None:
                sources[index] = source
            if source is None or str(source) != _address(entry.source_ip or ""):
                failures.append(
                    f"{where}: hub {entry.log_type} {entry.source_ip} -> {rule}, "
                    f"shieldwall {rule} {source}"
                )
    protected = Protected.build()
    for index, whitelisted in sorted(asserts.whitelisted.items()):
        checked += 1
        source = sources.get(index)
        if source is None:
            failures.append(f"whitelist[{index}]: shieldwall has no source for line {index + 1}")
            continue
        reason = protected.reason_for(address_scope(source))
        if (reason is not None) != whitelisted:
            failures.append(
                f"whitelist[{index}]: hub whitelisted={whitelisted}, treaty protects {source}: "
                f"{reason is not None}"
            )
    outcome.lines_checked = checked
    outcome.reasons.extend(failures)
    return "fail" if failures else "pass"


def _check_sources(
    outcome: Outcome, asserts: _ParserAsserts, lines: list[bytes], parsers: list[str]
) -> str:
    """Parsers that are not modeled: only where shieldwall's rules hit, the sources must agree
    (and a line the parser refuses must be a hit of none)."""
    failures: list[str] = []
    agreed = 0
    for parser in parsers:
        family = SOURCE_ONLY.get(parser)
        if family is None:
            outcome.notes.append(f"parser {parser}: not modeled (no shieldwall rule reads its log)")
            continue
        for index, entry in sorted(asserts.lines[parser].items()):
            if entry.success is None or index >= len(lines):
                continue
            hits = _hits(family, lines[index])
            where = f"line {index + 1}"
            if not entry.success:
                if hits:
                    failures.append(f"{where}: {parser} refuses it, shieldwall {sorted(hits)}")
                continue
            wrong = {r: s for r, s in hits.items() if str(s) != _address(entry.source_ip or "")}
            if wrong:
                failures.append(f"{where}: {parser} source {entry.source_ip}, shieldwall {wrong}")
            elif hits:
                agreed += 1
        outcome.notes.append(
            f"parser {parser}: not modeled (it parses every line, harmless or not); "
            f"{agreed} lines hit by shieldwall rules agree on the source"
        )
    outcome.reasons.extend(failures)
    return "fail" if failures else "skip"


def run_test(folder: Path, hub: Path) -> Outcome:
    """Replay one ``.tests/<name>/`` folder and judge it."""
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    log_type = str(config.get("log_type", ""))
    outcome = Outcome(test=folder.name, status="n/a", log_type=log_type)
    if log_type not in LOG_TYPES:
        outcome.status = "unsupported"
        outcome.reasons.append(f"log type {log_type!r} is not replayed (syslog, nginx, apache2)")
        return outcome
    lines = _log_lines(folder / str(config.get("log_file", "")))
    statuses: list[str] = []

    names = _scenario_names(hub, config.get("scenarios") or [])
    scenario_assert = folder / "scenario.assert"
    if names and scenario_assert.is_file():
        expected = _scenario_results(scenario_assert.read_text(encoding="utf-8"))
        if len(set(names)) == 1:  # one scenario loaded: every result is one of its overflows
            for result in expected:
                result.scenario = result.scenario or names[0]
        statuses.append(_check_scenarios(outcome, names, expected, lines))

    parser_assert = folder / "parser.assert"
    if not config.get("ignore_parsers") and parser_assert.is_file():
        asserts = _parser_asserts(parser_assert.read_text(encoding="utf-8"))
        if asserts.lines or asserts.whitelisted:
            statuses.append(_check_parsers(outcome, asserts, lines))

    for status in ("fail", "unsupported", "pass"):
        if status in statuses:
            outcome.status = status
            break
    else:
        if "skip" in statuses:  # only parser asserts of a parser that is not modeled
            outcome.status = "unsupported"
            outcome.reasons.extend(n for n in outcome.notes if n.startswith("parser "))
        else:
            outcome.reasons.append("nothing to check (no scenario, no parser asserts)")
    return outcome


def hub_dir(corpus: Path) -> Path:
    """The hub snapshot: ``corpus`` itself, or ``corpus/crowdsec-hub``."""
    return corpus if (corpus / ".tests").is_dir() else corpus / "crowdsec-hub"


def run(corpus: Path, only: Sequence[str] = ()) -> list[Outcome]:
    """Judge every test of the snapshot (or the ones named in ``only``)."""
    hub = hub_dir(corpus)
    tests = hub / ".tests"
    if not tests.is_dir():
        raise FileNotFoundError(f"no CrowdSec hub tests under {corpus}")
    folders = sorted(p for p in tests.iterdir() if (p / "config.yaml").is_file())
    if only:
        folders = [p for p in folders if p.name in only]
    return [run_test(folder, hub) for folder in folders]


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = Counter(o.status for o in outcomes)
    return {status: counts.get(status, 0) for status in ("pass", "fail", "unsupported", "n/a")}


def _print(outcomes: Sequence[Outcome]) -> None:
    for o in outcomes:
        extra = f" ({o.lines_checked} lines)" if o.lines_checked else ""
        print(f"{o.status:<12} {o.test:<34} {o.log_type}{extra}")
        for reason in o.reasons:
            print(f"{'':13}why: {reason}")
        if o.status in ("pass", "fail"):
            for note in o.notes:
                print(f"{'':13}note: {note}")
    counts = summary(outcomes)
    print(
        f"\n{len(outcomes)} tests: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['unsupported']} unsupported, {counts['n/a']} n/a"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("corpus", type=Path, help="the crowdsec-hub snapshot (or corpora dir)")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument("--test", action="append", default=[], help="only this test (repeat)")
    args = parser.parse_args(argv)
    outcomes = run(args.corpus, args.test)
    if args.json:
        document: dict[str, Any] = {
            "summary": summary(outcomes),
            "tests": [asdict(o) for o in outcomes],
        }
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        _print(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
