"""Run fail2ban's own filters over fail2ban's own sample logs, through shieldwall.

Usage::

    .venv/bin/python tools/fail2ban_conformance.py CORPUS_DIR [--json] [--filter NAME ...]

``CORPUS_DIR`` is the fail2ban snapshot (``../shared/corpora/fail2ban``, holding
``filter.d/`` and ``fail2ban/tests/files/logs/``) or the corpora folder above it.

Every filter (``filter.d/*.conf`` except the ``*common.conf`` includes, plus the test-only
``zzz-*`` filters) is loaded unmodified with :func:`load_fail2ban_rule` and its sample log is
replayed line by line through a :class:`~shieldwall.detect.Detector`, following the corpus
README (fail2ban's ``samplestestcase``): ``# failJSON:`` expectations for the next line,
``# filterOptions:`` variants (each its own detector, kept for the whole run, as fail2ban
keeps one filter object per option set), ``# fileOptions:``, ``# addFILE:``,
``test.condition``/``constraint`` (only the simple ``name == '…'`` and
``opts.get('…') ==/!= '…'`` forms are understood; nothing is ``eval``-ed), ``logtype:
journal`` (no date in the line: the time is "now", ``test.prefix-line`` is prepended). Lines
are read in the zone ``CET-01CEST-02,M3.5.0,M10.5.0`` with "now" = 2005-08-14 12:00 CEST.

Per line and variant the verdict is one of ``tp`` (expected failure found, right source),
``wrong_source``, ``miss`` (with the engine's reason), ``fp`` (a failure where none is
expected; lines without ``failJSON`` must not match), ``tn``, ``dns_only`` (an expected
failure whose host is not an IP address: shieldwall never resolves names; excluded from the
recall) or ``skipped`` (a constraint shieldwall does not evaluate). A ``tp`` whose time
differs from the expected one is also counted in ``wrong_time``. Totals are given for the
*default* variants (no filter option) and for the others separately, and the 184 lines of
``derived/injection-and-multi-ip-cases.jsonl`` get their own section. Exit status: 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shieldwall.detect import Detector, Rule
from shieldwall.detect.fail2ban.engine import Fail2banEngine
from shieldwall.detect.fail2ban.posixtz import PosixTimezone
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from shieldwall.errors import InvalidScope, ShieldwallError
from shieldwall.model import Address, Counters, parse_address

__all__ = ["TEST_NOW", "TIMEZONE", "Report", "corpus_dir", "main", "run"]

TIMEZONE = PosixTimezone("CET-01CEST-02,M3.5.0,M10.5.0")
TEST_NOW = datetime(2005, 8, 14, 10, 0, 0, tzinfo=UTC)
"""2005-08-14 12:00 CEST (epoch 1124013600), fail2ban's test "now"."""

_ANNOTATION = re.compile(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$")
_CONDITION = re.compile(
    r"""^\s*(?:(?P<name>name)|opts\.get\(\s*['"](?P<key>[\w.\-]+)['"]\s*\))\s*"""
    r"""(?P<op>==|!=)\s*(?P<q>['"])(?P<value>[^'"]*)(?P=q)\s*$"""
)
_ADDRESS_LIKE = re.compile(r"^(?:[\d.]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$")
"""An expected host written as an address, even one shieldwall refuses (``192.030.0.6``)."""
_NOT_FIELDS = frozenset({"time", "match", "desc", "constraint", "host", "filter"})


def corpus_dir(path: str | Path) -> Path:
    """The fail2ban snapshot folder, given it or the corpora folder above it."""
    path = Path(path)
    if (path / "filter.d").is_dir():
        return path
    if (path / "fail2ban" / "filter.d").is_dir():
        return path / "fail2ban"
    raise SystemExit(f"{path}: no fail2ban corpus here (expected filter.d/)")


def _condition(text: str, name: str, opts: dict[str, Any]) -> bool | None:
    """Evaluate the simple test expressions of the corpus; None if not understood."""
    found = _CONDITION.match(text)
    if found is None:
        return None
    left = name if found.group("name") else opts.get(found.group("key"))
    equal = left == found.group("value")
    return equal if found.group("op") == "==" else not equal


@dataclass(slots=True)
class Verdict:
    """One line seen through one filter variant."""

    filter: str
    variant: str
    default: bool
    file: str
    line: int
    text: str
    expected: dict[str, Any]
    verdict: str
    source: str | None = None
    time: str | None = None
    pattern: int | None = None
    cause: str | None = None
    detail: str | None = None
    wrong_time: bool = False
    expected_time: str | None = None
    fields: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Tally:
    expected: int = 0  # expected failures with an IP host (the recall's denominator)
    tp: int = 0
    miss: int = 0
    wrong_source: int = 0
    wrong_time: int = 0
    fp: int = 0
    tn: int = 0
    dns_only: int = 0
    skipped: int = 0
    field_mismatch: int = 0

    def add(self, verdict: Verdict) -> None:
        kind = verdict.verdict
        if kind in ("tp", "miss", "wrong_source"):
            self.expected += 1
        setattr(self, kind, getattr(self, kind) + 1)
        if verdict.wrong_time:
            self.wrong_time += 1
        if verdict.fields:
            self.field_mismatch += 1

    def merge(self, other: Tally) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def recall(self) -> float:
        return self.tp / self.expected if self.expected else 1.0


@dataclass(slots=True)
class FilterReport:
    name: str
    variants: list[str] = field(default_factory=list)
    default: Tally = field(default_factory=Tally)
    other: Tally = field(default_factory=Tally)
    error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    filters: list[FilterReport]
    default: Tally
    other: Tally
    injection: dict[str, Any]
    misses_by_cause: dict[str, int]


class _Variant:
    """One filter option set: its own detector (and a twin engine for the reasons)."""

    def __init__(self, name: str, rule: Rule, journal: bool, default: bool) -> None:
        self.name = name
        self.rule = rule
        self.journal = journal
        self.default = default
        # lines are replayed one by one (Detector.feed): the C path, which takes blocks, is not
        # used, so its filter is not compiled (tests/detect/test_native_fail2ban.py holds the
        # C path to these answers over the same corpus)
        self.detector = Detector([rule], tz=TIMEZONE, native=False)
        assert rule.fail2ban is not None
        self.engine: Fail2banEngine = rule.fail2ban.engine(TIMEZONE, Counters())


def _filter_path(corpus: Path, name: str) -> Path:
    own = corpus / "filter.d" / f"{name}.conf"
    if own.is_file():
        return own
    return corpus / "fail2ban" / "tests" / "config" / "filter.d" / f"{name}.conf"


def root_filters(corpus: Path) -> list[str]:
    """Every filter the corpus tests, by name."""
    names = [
        p.stem for p in (corpus / "filter.d").glob("*.conf") if not p.name.endswith("common.conf")
    ]
    test_dir = corpus / "fail2ban" / "tests" / "config" / "filter.d"
    names += [p.stem for p in test_dir.glob("zzz-*.conf")]
    return sorted(names)


def _address(text: object) -> Address | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_address(text)
    except InvalidScope:
        return None


def _expected_time(text: str) -> datetime:
    try:
        naive = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        naive = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f")
    return naive.replace(tzinfo=TIMEZONE).astimezone(UTC)


class _Runner:
    def __init__(self, corpus: Path, name: str) -> None:
        self.corpus = corpus
        self.name = name
        self.path = _filter_path(corpus, name)
        self.variants: dict[str, _Variant] = {}
        self.report = FilterReport(name)

    def variant(self, options: dict[str, Any]) -> _Variant:
        filter_options = {k: str(v) for k, v in options.items() if not k.startswith("test.")}
        label = options.get("test.filter-name") or (str(filter_options) if filter_options else "")
        key = self.name + label
        found = self.variants.get(key)
        if found is None:
            rule, _, _ = load_fail2ban_rule(
                self.path,
                filter_options,
                search=[self.corpus / "filter.d"],
                journal=filter_options.get("logtype") == "journal",
            )
            found = _Variant(key, rule, filter_options.get("logtype") == "journal", not label)
            self.variants[key] = found
            self.report.variants.append(key)
        return found

    def lines(
        self,
    ) -> Iterator[tuple[str, int, str, dict[str, Any], list[tuple[_Variant, dict[str, Any]]]]]:
        """(file, line number, line, expectation, variants) for every log line to check."""
        files = [self.name]
        common: dict[str, Any] = {}
        tests: list[tuple[_Variant, dict[str, Any]]] = []
        index = 0
        while index < len(files):
            filename = files[index]
            index += 1
            path = self.corpus / "fail2ban" / "tests" / "files" / "logs" / filename
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            ignore_block = False
            number = 0
            while number < len(text):
                line = text[number]
                number += 1
                expected: dict[str, Any] = {}
                found = _ANNOTATION.match(line)
                if found is not None:
                    kind, data = found.group(1), json.loads(found.group(2))
                    if kind == "fileOptions":
                        common = dict(data)
                        continue
                    if kind == "filterOptions":
                        tests = []
                        ignore_block = False
                        for item in data if isinstance(data, list) else [data]:
                            options = {**common, **item}
                            condition = options.get("test.condition")
                            if condition:
                                verdict = _condition(str(condition), self.name, options)
                                if verdict is None:
                                    self.report.error = (
                                        f"test.condition not understood: {condition}"
                                    )
                                ignore_block = not verdict
                            if not ignore_block:
                                tests.append((self.variant(options), options))
                        continue
                    if kind == "addFILE":
                        files.append(str(data))
                        continue
                    expected = dict(data)
                    if number >= len(text):
                        break
                    line = text[number]
                    number += 1
                elif ignore_block or line.startswith("#") or not line.strip():
                    continue
                if ignore_block:
                    continue
                if not tests:
                    tests = [(self.variant({}), {})]
                yield f"logs/{filename}", number, line, expected, tests

    def run(self) -> FilterReport:
        report = self.report
        try:
            for filename, number, line, expected, tests in self.lines():
                for variant, options in tests:
                    self.check(variant, options, filename, number, line, expected)
        except ShieldwallError as exc:
            report.error = str(exc)
        return report

    def check(
        self,
        variant: _Variant,
        options: dict[str, Any],
        filename: str,
        number: int,
        line: str,
        expected: dict[str, Any],
    ) -> None:
        verdict = Verdict(
            self.name, variant.name, variant.default, filename, number, line, expected, ""
        )
        constraint = expected.get("constraint")
        if constraint:
            allowed = _condition(str(constraint), self.name, options)
            if allowed is False:
                return
            if allowed is None:
                verdict.verdict = "skipped"
                verdict.cause = f"constraint not evaluated: {constraint}"
                self.record(verdict)
                return
        text = line
        if variant.journal and options.get("test.prefix-line"):
            text = str(options["test.prefix-line"]) + line
        raw = text.encode("utf-8", errors="surrogateescape")
        detection = variant.detector.feed(raw, TEST_NOW)
        variant.engine.match(text)
        outcome = variant.engine.last
        hits = [hit for hit in detection.hits if hit.rule == variant.rule.name]
        hit = hits[0] if hits else None
        if hit is not None:
            verdict.source = str(hit.source)
            verdict.time = hit.at.isoformat()
            verdict.pattern = hit.pattern
        elif outcome is not None:
            verdict.cause, verdict.detail = outcome.reason, outcome.detail
        want = bool(expected.get("match", False))
        if not want:
            verdict.verdict = "fp" if hit is not None else "tn"
            self.record(verdict)
            return
        host = expected.get("host")
        address = _address(host)
        if host is None:  # the expectation names no host: any source will do
            verdict.verdict = "tp" if hit is not None else "miss"
            if hit is not None:
                address = hit.source
        if host is not None and address is None and not _ADDRESS_LIKE.match(str(host)):
            verdict.verdict = "dns_only" if hit is None else "wrong_source"
            if hit is None:
                verdict.cause = verdict.cause or "no-match"
            self.record(verdict)
            return
        if hit is None:
            verdict.verdict = "miss"
            self.record(verdict)
            return
        if address is None or hit.source != address:
            verdict.verdict = "wrong_source"
            self.record(verdict)
            return
        verdict.verdict = "tp"
        when = expected.get("time")
        if when is not None:
            want_time = _expected_time(str(when))
            verdict.expected_time = want_time.isoformat()
            if abs((hit.at - want_time).total_seconds()) > 1e-6:
                verdict.wrong_time = True
        elif not variant.journal:
            pass
        else:
            if abs((hit.at - TEST_NOW) / timedelta(seconds=1)) > 1e-6:
                verdict.wrong_time = True
        if outcome is not None:
            verdict.fields = _field_mismatches(expected, outcome.fields)
        self.record(verdict)

    def record(self, verdict: Verdict) -> None:
        tally = self.report.default if verdict.default else self.report.other
        tally.add(verdict)
        self.report.verdicts.append(verdict)


def _field_mismatches(expected: dict[str, Any], fields: dict[str, object]) -> list[str]:
    wrong = []
    for key, value in expected.items():
        if key in _NOT_FIELDS:
            continue
        got: object = fields.get(key)
        if key == "attempts":
            continue  # shieldwall counts lines, not merged attempts
        if isinstance(value, list) or isinstance(got, set):
            same = sorted(map(str, value if isinstance(value, list) else [value])) == sorted(
                map(str, got if isinstance(got, (set, list)) else ([] if got is None else [got]))
            )
        else:
            same = got == value
        if not same:
            wrong.append(f"{key}: expected {value!r}, got {got!r}")
    return wrong


def _injection(corpus: Path, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    path = corpus / "derived" / "injection-and-multi-ip-cases.jsonl"
    if not path.is_file():
        return {"present": False}
    by_line: dict[tuple[str, int], list[Verdict]] = {}
    for verdict in verdicts:
        by_line.setdefault((verdict.file, verdict.line), []).append(verdict)
    cases = [json.loads(row) for row in path.read_text(encoding="utf-8").splitlines() if row]
    counts: Counter[str] = Counter()
    wrong: list[dict[str, Any]] = []
    unseen: list[dict[str, Any]] = []
    for case in cases:
        key = ("logs/" + case["file"].rsplit("/logs/", 1)[-1], int(case["log_line_no"]))
        seen = by_line.get(key, [])
        if not seen:
            counts["not_replayed"] += 1
            unseen.append({"file": key[0], "line": key[1], "reason": case.get("reason")})
            continue
        want = case["failJSON"].get("match", False)
        host = _address(case["failJSON"].get("host"))
        bad = [
            v
            for v in seen
            if v.source is not None and (not want or host is None or _address(v.source) != host)
        ]
        if bad:
            counts["wrong_source"] += 1
            wrong += [
                {
                    "file": v.file,
                    "line": v.line,
                    "variant": v.variant,
                    "source": v.source,
                    "expected": case["failJSON"].get("host"),
                    "text": v.text,
                }
                for v in bad
            ]
        elif want and any(v.verdict == "tp" for v in seen):
            counts["found"] += 1
        elif want and any(v.verdict == "dns_only" for v in seen):
            counts["dns_only"] += 1
        elif want:
            counts["missed"] += 1
        else:
            counts["refused"] += 1
    return {
        "present": True,
        "cases": len(cases),
        "wrong_source": counts["wrong_source"],
        "found": counts["found"],
        "missed": counts["missed"],
        "dns_only": counts["dns_only"],
        "refused": counts["refused"],
        "not_replayed": counts["not_replayed"],
        "wrong": wrong,
        "unseen": unseen,
    }


def run(corpus: str | Path, only: Sequence[str] = ()) -> Report:
    """Replay the corpus (or only the filters named in ``only``)."""
    root = corpus_dir(corpus)
    names = [n for n in root_filters(root) if not only or n in only]
    reports = []
    default, other = Tally(), Tally()
    causes: Counter[str] = Counter()
    for name in names:
        report = _Runner(root, name).run()
        reports.append(report)
        default.merge(report.default)
        other.merge(report.other)
        for verdict in report.verdicts:
            if verdict.verdict == "miss":
                causes[f"{'default' if verdict.default else 'other'}:{verdict.cause}"] += 1
    verdicts = [v for r in reports for v in r.verdicts]
    injection = _injection(root, verdicts) if not only else {"present": False}
    return Report(reports, default, other, injection, dict(sorted(causes.items())))


def _tally_line(label: str, tally: Tally) -> str:
    return (
        f"{label}: {tally.tp}/{tally.expected} found ({100 * tally.recall:.1f} %), "
        f"{tally.fp} false positives, {tally.wrong_source} wrong sources, "
        f"{tally.miss} missed, {tally.wrong_time} wrong times, "
        f"{tally.dns_only} DNS/ID-only excluded, {tally.tn} true negatives"
    )


def _text(report: Report) -> str:
    out = []
    for item in report.filters:
        d, o = item.default, item.other
        line = (
            f"{item.name:28} default tp {d.tp:3}/{d.expected:<3} miss {d.miss} fp {d.fp} "
            f"wrong {d.wrong_source} time {d.wrong_time}"
        )
        if o.expected or o.fp or o.tn:
            line += (
                f" | variants tp {o.tp:3}/{o.expected:<3} miss {o.miss} fp {o.fp} "
                f"wrong {o.wrong_source} time {o.wrong_time}"
            )
        if item.error:
            line += f"  ERROR {item.error}"
        out.append(line)
        for v in item.verdicts:
            if v.verdict in ("miss", "fp", "wrong_source") or v.wrong_time:
                what = v.verdict if v.verdict != "tp" else "wrong_time"
                extra = f"source {v.source} at {v.time}" if v.source else f"{v.cause}: {v.detail}"
                if v.wrong_time:
                    extra += f" (expected {v.expected_time})"
                out.append(f"    {what:12} {v.variant} {v.file}:{v.line} {extra}")
    out.append("")
    out.append(_tally_line("DEFAULT variants", report.default))
    out.append(_tally_line("other variants  ", report.other))
    out.append("misses by cause: " + json.dumps(report.misses_by_cause))
    inj = report.injection
    if inj.get("present"):
        out.append(
            f"injection set: {inj['cases']} lines, {inj['wrong_source']} wrong sources, "
            f"{inj['found']} found, {inj['missed']} missed, {inj['dns_only']} DNS-only, "
            f"{inj['refused']} correctly refused, {inj['not_replayed']} not replayed"
        )
        for item in inj["wrong"]:
            out.append(
                f"    WRONG {item['variant']} {item['file']}:{item['line']} {item['source']}"
            )
    return "\n".join(out)


def _json(report: Report) -> dict[str, Any]:
    return {
        "default": asdict(report.default) | {"recall": report.default.recall},
        "other": asdict(report.other) | {"recall": report.other.recall},
        "misses_by_cause": report.misses_by_cause,
        "injection": report.injection,
        "filters": [
            {
                "name": r.name,
                "variants": r.variants,
                "error": r.error,
                "default": asdict(r.default),
                "other": asdict(r.other),
                "problems": [
                    asdict(v)
                    for v in r.verdicts
                    if v.verdict in ("miss", "fp", "wrong_source", "dns_only", "skipped")
                    or v.wrong_time
                    or v.fields
                ],
            }
            for r in report.filters
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="the fail2ban corpus (or the corpora folder above it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--filter", action="append", default=[], help="only this filter")
    args = parser.parse_args(argv)
    report = run(args.corpus, args.filter)
    if args.json:
        print(json.dumps(_json(report), indent=1))
    else:
        print(_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
