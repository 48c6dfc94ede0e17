"""Running ``shieldwall`` as a user does, for the integration tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def shieldwall(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``shieldwall ARGS…`` in a process of its own; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "shieldwall", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The command failed with one line on stderr (never a traceback): that line."""
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]
