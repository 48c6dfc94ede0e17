"""Differential test against fail2ban itself: ``fail2ban-regex`` (the Debian package) and
shieldwall run the same fail2ban filter over the same generated log, and must match exactly
the same lines.

The log is ``bench/detect.py``'s seeded generator (sshd: failures, successes, disconnects,
PAM lines and other daemons, with process ids that come back — which exercises the
multi-line ``<F-MLFID>`` cache; nginx: normal traffic and probes). Under ``CI=true``
fail2ban-regex must be installed (``scripts/test`` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from shieldwall.agent.sources.file import FileSource
from shieldwall.cli.main import cli
from shieldwall.detect import Detector
from shieldwall.detect import native as c_path
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from tests.conftest import skip_or_fail

FILTERS = Path("/etc/fail2ban/filter.d")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "detect.py"
NOW = datetime(2026, 3, 20, tzinfo=UTC)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_detect", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fail2ban_matched(log: Path, filt: Path) -> list[str]:
    exe = shutil.which("fail2ban-regex")
    if exe is None or not filt.is_file():
        skip_or_fail("fail2ban-regex and /etc/fail2ban are needed (apt-get install fail2ban)")
    out = subprocess.run(
        [exe, "--print-all-matched", "--print-no-missed", str(log), str(filt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", out)
    assert total is not None, out[-500:]
    section = out.split("|- Matched line(s):", 1)[1].split("`-", 1)[0]
    matched = [line[3:] for line in section.splitlines() if line.startswith("|  ")]
    assert len(matched) == int(total.group(1))
    return matched


def _shieldwall_hits(log: Path, filt: Path) -> list[dict[str, object]]:
    args = ["rules", "test", str(filt), str(log), "--json", "--now", "2026-03-20T00:00:00+00:00"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    hits: list[dict[str, object]] = json.loads(result.output)["hits"]
    return hits


def _agent_path_counts(log: Path, filt: Path) -> Counter[str]:
    """Hits per source as the agent counts them: ``feed_many(hits=False, tally=True)`` in
    1 MiB batches, which takes the C filter path when the extension is built."""
    rule = load_fail2ban_rule(str(filt))[0]
    detector = Detector([rule])
    if c_path.NATIVE is not None:
        assert detector._units[0].c_filter is not None
    source = FileSource(str(log), None)
    counts: Counter[str] = Counter()
    while (batch := source.poll()) is not None:
        found = detector.feed_many(batch.lines, NOW, hits=False, tally=True)
        assert found.tally is not None
        for tallied in found.tally.values():
            counts[str(tallied.source)] += tallied.count
    return counts


@pytest.mark.parametrize(
    ("generator", "filter_name", "at_least"),
    [("gen_sshd", "sshd.conf", 5000), ("gen_nginx", "nginx-botsearch.conf", 300)],
)
def test_the_same_lines_match_as_in_fail2ban(
    tmp_path: Path, generator: str, filter_name: str, at_least: int
) -> None:
    log = tmp_path / "generated.log"
    getattr(_bench(), generator)(log, 20_000, 11)
    filt = FILTERS / filter_name
    want = _fail2ban_matched(log, filt)
    hits = _shieldwall_hits(log, filt)
    lines = log.read_text().split("\n")
    got = [lines[int(str(hit["line"])) - 1] for hit in hits]
    assert len(want) >= at_least  # the log does exercise the filter
    assert sorted(got) == sorted(want)
    # the agent's path (the C filter when built) counts the same hits per source
    assert _agent_path_counts(log, filt) == Counter(str(hit["source"]) for hit in hits)
