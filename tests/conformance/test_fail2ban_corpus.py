"""fail2ban conformance: fail2ban's own filters run unmodified over fail2ban's own samples.

``tools/fail2ban_conformance.py`` does the work (see its docstring for the rules of the
corpus); this test runs it over ``SHIELDWALL_CORPORA`` (default ``<repo>/../shared/corpora``)
and holds the targets: on the filters' default variants no false positive, no wrong source
and at least 95 % of the expected failures found; on every variant no false positive and no
wrong source; on the 184 injection and multi-address lines no wrong source.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conformance import load_tool
from tests.conftest import corpora_dir, skip_or_fail

FILTERS = 99
"""Filters the snapshot tests (97 in filter.d, 2 test-only zzz-*)."""
RECALL = 0.95


tool = load_tool("fail2ban_conformance")


@pytest.fixture(scope="module")
def report() -> Any:
    corpus = corpora_dir() / "fail2ban"
    if not (corpus / "filter.d").is_dir():
        skip_or_fail(f"no fail2ban corpus at {corpus} (set SHIELDWALL_CORPORA)")
    started = time.monotonic()
    result = tool.run(corpus)
    assert time.monotonic() - started < 30, "the conformance run must stay fast"
    return result


def test_every_filter_loads_and_is_replayed(report: Any) -> None:
    assert len(report.filters) == FILTERS
    assert [f.name for f in report.filters if f.error] == []
    assert all(f.variants for f in report.filters)


def test_default_variants_no_false_positive_no_wrong_source(report: Any) -> None:
    bad = [
        f"{v.filter} {v.file}:{v.line} {v.verdict} {v.source}"
        for f in report.filters
        for v in f.verdicts
        if v.default and v.verdict in ("fp", "wrong_source")
    ]
    assert bad == []
    assert report.default.fp == report.default.wrong_source == 0


def test_default_variants_recall(report: Any) -> None:
    tally = report.default
    assert tally.expected > 700  # the corpus was really replayed
    assert tally.tp / tally.expected >= RECALL, tool._tally_line("default", tally)


def test_default_variants_times(report: Any) -> None:
    assert report.default.wrong_time == 0


def test_other_variants_never_attribute_wrongly(report: Any) -> None:
    assert report.other.expected > 500
    assert report.other.fp == report.other.wrong_source == 0


def test_injection_and_multi_address_lines(report: Any) -> None:
    injection = report.injection
    assert injection["present"], "derived/injection-and-multi-ip-cases.jsonl is missing"
    assert injection["cases"] == 184
    assert injection["not_replayed"] == 0
    assert injection["wrong_source"] == 0, injection["wrong"]


def test_every_miss_has_a_cause(report: Any) -> None:
    misses = [v for f in report.filters for v in f.verdicts if v.verdict == "miss"]
    assert all(v.cause for v in misses)
    allowed = {"ambiguous-host", "invalid-host", "dns-host", "no-address"}
    assert {v.cause for v in misses} <= allowed, report.misses_by_cause


def test_the_tool_reports_text_and_json(report: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = tool._text(report)
    assert "DEFAULT variants:" in text
    assert "injection set:" in text
    data = tool._json(report)
    assert data["default"]["fp"] == 0
    assert {"default", "other", "injection", "filters", "misses_by_cause"} <= set(data)


def test_a_single_filter_can_be_run(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = corpora_dir() / "fail2ban"
    if not (corpus / "filter.d").is_dir():
        skip_or_fail(f"no fail2ban corpus at {corpus}")
    assert tool.main([str(corpus), "--filter", "sshd", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"name": "sshd"' in out
