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
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from shieldwall.cli.main import cli
from tests.conftest import skip_or_fail

FILTERS = Path("/etc/fail2ban/filter.d")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "detect.py"


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


def _shieldwall_matched(log: Path, filt: Path) -> list[str]:
    args = ["rules", "test", str(filt), str(log), "--json", "--now", "2026-03-20T00:00:00+00:00"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = log.read_text().split("\n")
    return [lines[hit["line"] - 1] for hit in json.loads(result.output)["hits"]]


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
    got = _shieldwall_matched(log, filt)
    assert len(want) >= at_least  # the log does exercise the filter
    assert sorted(got) == sorted(want)
