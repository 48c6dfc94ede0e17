"""``shieldwall demo`` and ``drill --live`` leave nothing behind when they are killed; keygen
makes a missing key folder (0700) or says in one line why it cannot."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _alive(root: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", root], capture_output=True, text=True, check=False)
    return out.stdout.split()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_killed_demo_stops_its_council_and_agents_and_removes_its_folder(
    sig: signal.Signals,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shieldwall", "demo", "--members", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    root = None
    deadline = time.monotonic() + 60
    while root is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if m := re.search(r"data in (\S+)", line):
            root = m.group(1)
    assert root is not None, "the demo did not start"
    assert _alive(root), "its processes should be running"
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(root) == []
    assert not Path(root).exists()


def test_keygen_makes_a_missing_folder_private_or_says_why_not(tmp_path: Path) -> None:
    out = tmp_path / "etc" / "shieldwall" / "member.key"
    done = subprocess.run(
        [sys.executable, "-m", "shieldwall", "keygen", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    bad = subprocess.run(
        [sys.executable, "-m", "shieldwall", "keygen", "--out", "/proc/nope/member.key"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    assert "/proc/nope" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert os.path.exists(out)
