"""Storage faults at a real council: a full disk (a small tmpfs) is a 503 with a reason and a
health check that says so, never a bare 500, and it recovers without a restart when space
returns; a damaged or lost database is refused at start in one line."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shieldwall.loopback.alliance import LocalAlliance
from tests.conftest import skip_or_fail
from tests.integration.cli import one_line_error, shieldwall

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_disk(where: Path, size: str = "6m") -> Iterator[Path]:
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root")
    where.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 16))
            f.flush()
    return filler


def test_a_full_disk_is_a_503_and_the_council_recovers_when_space_returns(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        alliance = LocalAlliance(n_members=0, root=disk / "a")
        with alliance:
            assert alliance.operator("GET", "/v1/health").status_code == 200
            filler = _fill(disk)
            answers = []
            for i in range(40):  # until SQLite cannot write its WAL any more
                r = alliance.operator(
                    "POST", "/v1/decisions", {"scope": f"198.51.100.{i}", "reason": "x" * 400}
                )
                answers.append(r.status_code)
                if r.status_code == 503:
                    break
            assert 503 in answers, answers
            assert 500 not in answers
            assert r.json()["error"] == "storage"
            health = alliance.operator("GET", "/v1/health")
            assert health.status_code == 503
            assert health.json()["status"] == "storage"
            filler.unlink()  # space comes back: no restart
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if alliance.operator("GET", "/v1/health").status_code == 200:
                    break
                time.sleep(0.2)
            assert alliance.operator("GET", "/v1/health").status_code == 200
            r = alliance.operator("POST", "/v1/decisions", {"scope": "198.51.100.99"})
            assert r.status_code == 201, r.text
            listed = {d["scope"] for d in alliance.active()["decisions"]}
            assert "198.51.100.99" in listed
            # nothing the council refused to keep is listed as active
            refused = [i for i, code in enumerate(answers) if code == 503]
            assert all(f"198.51.100.{i}" not in listed for i in refused)
            assert alliance.council_proc.poll() is None  # type: ignore[union-attr]


def test_a_lost_or_damaged_database_is_refused_at_start(tmp_path: Path) -> None:
    with LocalAlliance(n_members=0, root=tmp_path / "a") as alliance:
        assert alliance.operator("GET", "/v1/health").status_code == 200
    config = tmp_path / "a" / "council" / "council.toml"
    db = tmp_path / "a" / "council" / "data" / "council.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # everything into council.db
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    good = db.read_bytes()
    assert len(good) > 3 * 4096
    db.write_bytes(b"")  # emptied (a failed restore, a mistaken truncate)
    line = one_line_error(shieldwall("council", "--config", str(config), timeout=20))
    assert "empty" in line
    assert "council.key" in line
    db.unlink()
    assert "missing" in one_line_error(shieldwall("council", "--config", str(config), timeout=20))
    damaged = bytearray(good)
    for at in range(4096, len(damaged), 4096):  # every page's b-tree header but the first's
        damaged[at : at + 12] = b"\xff" * 12
    db.write_bytes(bytes(damaged))
    line = one_line_error(shieldwall("council", "--config", str(config), timeout=20))
    assert "council.db" in line
    assert "damaged" in line or "malformed" in line
    db.write_bytes(b"not a database at all" + good[21:])
    line = one_line_error(shieldwall("council", "--config", str(config), timeout=20))
    assert "council.db" in line
    assert "not a database" in line


def test_health_is_ok_on_a_healthy_council(tmp_path: Path) -> None:
    with LocalAlliance(n_members=0, root=tmp_path / "a") as alliance:
        health = httpx.get(f"{alliance.url}/v1/health", timeout=5)
        assert health.json()["status"] == "ok"
