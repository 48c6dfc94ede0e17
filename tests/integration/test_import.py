"""``shieldwall decisions import`` against a real council process: every format as a user
runs it, and a council killed (``kill -9``) mid-import leaves whole chunks only; the same
import run again finishes it without duplicating anything."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shieldwall.loopback.alliance import LocalAlliance

pytestmark = pytest.mark.slow


@pytest.fixture
def council(tmp_path: Path) -> Iterator[LocalAlliance]:
    alliance = LocalAlliance(n_members=0, root=tmp_path)
    alliance.start_council()
    try:
        yield alliance
    finally:
        alliance.stop()


def cli(
    alliance: LocalAlliance, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    config = str(alliance.root / "council" / "council.toml")  # type: ignore[operator]
    return subprocess.run(
        [sys.executable, "-m", "shieldwall", *args, "--config", config],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_format_imports_and_the_summary_counts_what_happened(
    council: LocalAlliance, tmp_path: Path
) -> None:
    plain = tmp_path / "drop.txt"
    plain.write_text(
        "; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n10.0.0.0/8\n# comment\n"
        "not-an-ip\n203.0.113.7\n203.0.113.7\n"
    )
    out = cli(council, "decisions", "import", str(plain), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary | {"seconds": 0} == {
        "file": str(plain),
        "read": 5,
        "added": 2,
        "extended": 0,
        "unchanged": 1,
        "refused": {"protected:private": 1},
        "malformed": 1,
        "chunks": 1,
        "seq": 2,
        "seconds": 0,
    }
    assert f"{plain}:5: 'not-an-ip' is not an IP address" in out.stderr
    assert f"{plain}:3: 10.0.0.0/8 refused (protected:private)" in out.stderr

    cscli = tmp_path / "cscli.csv"
    cscli.write_text("duration,scope,value\n24h,ip,198.18.0.1\n1h30m,range,198.18.1.0/24\n")
    out = cli(council, "decisions", "import", str(cscli), "--format", "crowdsec")
    assert out.returncode == 0, out.stderr
    assert "2 added" in out.stdout

    out = cli(council, "decisions", "import", "-", "--format", "plain", stdin=b"198.18.2.2\n")
    assert out.returncode == 0, out.stderr
    active = council.active()["decisions"]
    assert {d["scope"] for d in active} == {
        "1.10.16.0/20", "203.0.113.7", "198.18.0.1", "198.18.1.0/24", "198.18.2.2",
    }  # fmt: skip
    by_scope = {d["scope"]: d for d in active}
    assert by_scope["198.18.1.0/24"]["reason"] == "import cscli.csv"

    exported = cli(council, "decisions", "export", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    assert {d["value"] for d in json.loads(exported.stdout)} == set(by_scope)

    listed = tmp_path / "unban.txt"
    listed.write_text("203.0.113.7\n198.18.2.2\n192.0.2.99\n")
    out = cli(council, "unban", "--file", str(listed), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["revoked"] == 2
    assert json.loads(out.stdout)["without_decision"] == 1
    assert len(council.active()["decisions"]) == 3


def test_a_file_that_cannot_be_read_is_one_clear_line(
    council: LocalAlliance, tmp_path: Path
) -> None:
    out = cli(council, "decisions", "import", str(tmp_path / "nope.txt"))
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: {tmp_path / 'nope.txt'}: cannot read")
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("ip,duration\n1.2.3.4,1h\n")
    out = cli(council, "decisions", "import", str(bad))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "names no 'value' column" in out.stderr


def _chunks_in(db: Path) -> tuple[int, int, int]:
    """(add events, distinct decisions, highest seq) in the council's database."""
    conn = sqlite3.connect(db)
    try:
        adds = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'add'").fetchone()[0]
        scopes = conn.execute("SELECT COUNT(DISTINCT scope) FROM decisions").fetchone()[0]
        top = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
    finally:
        conn.close()
    return int(adds), int(scopes), int(top)


def test_kill_9_mid_import_leaves_whole_chunks_and_the_same_import_finishes_it(
    council: LocalAlliance, tmp_path: Path
) -> None:
    n, chunk = 40_000, 1000
    listing = tmp_path / "big.txt"
    listing.write_text("".join(f"198.18.{i >> 8 & 255}.{i & 255}\n" for i in range(n)))
    config = str(council.root / "council" / "council.toml")  # type: ignore[operator]
    cmd = [sys.executable, "-m", "shieldwall", "decisions", "import", str(listing)]
    cmd += ["--chunk", str(chunk), "--config", config]
    importer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            seq = httpx.get(f"{council.url}/v1/health", timeout=1).json()["seq"]
        except httpx.HTTPError:
            seq = 0
        if seq >= 5 * chunk:
            break
        time.sleep(0.005)
    council.stop_council(kill=True)  # kill -9, chunks in flight
    _, err = importer.communicate(timeout=60)
    assert importer.returncode == 1
    assert "run the same command again" in err
    db = council.root / "council" / "data" / "council.db"  # type: ignore[operator]
    adds, scopes, top = _chunks_in(db)
    assert 0 < adds < n
    assert adds % chunk == 0, f"{adds} decisions: a chunk was torn"
    assert (scopes, top) == (adds, adds)  # gap-free, one decision per scope

    council.start_council()
    out = cli(council, "decisions", "import", str(listing), "--chunk", str(chunk), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["added"] == n - adds
    assert summary["extended"] + summary["unchanged"] == adds
    assert len(council.active()["decisions"]) == n
    adds_after, scopes_after, _ = _chunks_in(db)
    assert scopes_after == n  # nothing duplicated
    assert adds_after == n + summary["extended"]  # an extension is an add of the same id
