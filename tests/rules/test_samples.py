"""Every shipped rule is checked line by line against its annotated sample log.

``tests/rules/samples/<rule>.log``: each log line is preceded by
``# expect: {"match": true, "source": "1.2.3.4", "time": "2024-01-02T03:04:05+00:00"}`` or
``# expect: {"match": false}``. ``# now: <ISO 8601>`` sets the reading time (default below);
syslog stamps are read in UTC. Other ``#`` lines are comments. A rule that only ``extends``
another (it matches lines the same way, with its own bucket) is checked against the sample
of the rule it extends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shieldwall.detect import Detector, builtin_rule, builtin_rule_names
from shieldwall.model import parse_address

SAMPLES = Path(__file__).parent / "samples"
DEFAULT_NOW = datetime(2024, 12, 31, tzinfo=UTC)
_EXPECT = re.compile(r"^# expect: (.*)$")
_NOW = re.compile(r"^# now: (.*)$")
_KEYS = {"match", "source", "time"}


@dataclass(frozen=True)
class Sample:
    lineno: int
    line: str
    expect: dict[str, Any]


def read_samples(path: Path) -> tuple[datetime, list[Sample]]:
    now = DEFAULT_NOW
    samples: list[Sample] = []
    pending: dict[str, Any] | None = None
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if found := _NOW.match(text):
            now = datetime.fromisoformat(found.group(1))
            continue
        if found := _EXPECT.match(text):
            assert pending is None, f"{path.name}:{lineno}: two expectations in a row"
            pending = json.loads(found.group(1))
            assert isinstance(pending, dict)
            assert set(pending) <= _KEYS, f"{path.name}:{lineno}: unknown keys {pending}"
            assert isinstance(pending.get("match"), bool), f"{path.name}:{lineno}: no match"
            if pending["match"]:
                assert {"source", "time"} <= set(pending), f"{path.name}:{lineno}"
            continue
        if not text.strip() or text.startswith("#"):
            continue
        assert pending is not None, f"{path.name}:{lineno}: log line without '# expect:'"
        samples.append(Sample(lineno, text, pending))
        pending = None
    assert pending is None, f"{path.name}: expectation without a line at the end"
    return now, samples


RULES = builtin_rule_names()


def sample_path(name: str) -> Path:
    """The sample log of a rule: its own, or that of the rule it extends."""
    extends = builtin_rule(name).extends
    return SAMPLES / f"{extends if extends is not None else name}.log"


def test_rules_are_shipped() -> None:
    """The three v1 rules are package data."""
    assert {"sshd", "nginx-http-auth", "nginx-botsearch"} <= set(RULES)


@pytest.mark.parametrize("name", RULES)
def test_every_rule_has_samples(name: str) -> None:
    """No rule ships without an annotated sample log."""
    path = sample_path(name)

    assert path.is_file(), f"no sample log {path}"


@pytest.mark.parametrize("name", RULES)
def test_expectations_hold(name: str) -> None:
    """match, source and time of every sample line, through explain() and through feed()."""
    rule = builtin_rule(name)
    now, samples = read_samples(sample_path(name))
    failures = []
    for sample in samples:
        raw = sample.line.encode("utf-8")
        (why,) = Detector([rule]).explain(raw, now)
        hits = Detector([rule]).feed(raw, now).hits
        where = f"{name}.log:{sample.lineno}"
        if sample.expect["match"]:
            source = parse_address(sample.expect["source"])
            time = datetime.fromisoformat(sample.expect["time"])
            if not why.matched or why.source != source or why.at != time or not why.timestamp_found:
                failures.append(f"{where}: explain gave {why}")
            if len(hits) != 1 or hits[0].source != source or hits[0].at != time:
                failures.append(f"{where}: feed gave {hits}")
        else:
            if why.matched or hits:
                failures.append(f"{where}: expected no match, got {why}")

    assert failures == []


@pytest.mark.parametrize("name", RULES)
def test_every_pattern_is_exercised(name: str) -> None:
    """CI refuses a failregex that no sample hits (fail2ban samplestestcase)."""
    rule = builtin_rule(name)
    now, samples = read_samples(sample_path(name))
    used = set()
    for sample in samples:
        if sample.expect["match"]:
            (why,) = Detector([rule]).explain(sample.line, now)
            used.add(why.pattern)

    assert set(range(len(rule.failregex))) == used


@pytest.mark.parametrize("name", RULES)
def test_samples_have_true_and_false_cases(name: str) -> None:
    """A sample file shows what the rule must catch and what it must leave alone."""
    _, samples = read_samples(sample_path(name))
    kinds = {sample.expect["match"] for sample in samples}

    assert {True, False} == kinds


@pytest.mark.parametrize("name", RULES)
def test_builtin_rule_is_well_formed(name: str) -> None:
    """Shipped rules state their bucket and ban (a success rule bans nothing), and carry a
    description."""
    rule = builtin_rule(name)

    assert rule.name == name
    assert rule.description
    assert rule.bantime is not None or rule.kind == "success"
    assert rule.prefilter
