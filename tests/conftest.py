from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shieldwall.clock import ManualClock

IN_CI = os.environ.get("CI") == "true"


def corpora_dir() -> Path:
    """The shared corpora (never copied into the repo); SHIELDWALL_CORPORA overrides."""
    env = os.environ.get("SHIELDWALL_CORPORA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "corpora"


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing prerequisite skips with its reason; under CI=true it fails."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC))


@pytest.fixture(params=["c", "python"])
def detector_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both detector paths: the C extension (``shieldwall.detect._native``,
    required under CI) and the pure-Python one (the extension switched off)."""
    from shieldwall.detect import native

    if request.param == "python":
        monkeypatch.setattr(native, "NATIVE", None)
    elif native.NATIVE is None:
        skip_or_fail("the C extension is not built (apt-get install gcc libpcre2-dev; reinstall)")
    return str(request.param)
