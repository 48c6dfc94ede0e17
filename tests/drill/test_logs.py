"""The drill on members' log files: every line goes through the real detector."""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from shieldwall.cli.main import cli
from shieldwall.detect import builtin_rule
from shieldwall.drill import DrillConfig, merge, run
from shieldwall.drill.io import FAIL, SUCCESS
from shieldwall.drill.logs import LogReader, parse_log_spec

ATTACKER = "203.0.113.7"
USER = "198.51.100.20"
# the newest line is on Mar 1 2026; the file's mtime sets the year of year-less stamps
MTIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def _line(sec: int, msg: str) -> str:
    return f"Mar  1 10:{sec // 60:02d}:{sec % 60:02d} web sshd[42]: {msg}\n"


def _fail(sec: int, ip: str = ATTACKER, user: str = "root") -> str:
    return _line(sec, f"Failed password for {user} from {ip} port 4242 ssh2")


def _ok(sec: int, ip: str = USER) -> str:
    return _line(sec, f"Accepted password for alice from {ip} port 5151 ssh2")


def _write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = "".join(lines).encode()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path


@pytest.fixture
def logs(tmp_path: Path) -> tuple[Path, Path]:
    # web1: 5 failures (t 0..4) from the attacker; a user with one typo then a login;
    # a user name that holds an address (attacker-controlled text) — never a source.
    web1 = _write(
        tmp_path / "web1.log",
        [
            *(_fail(t) for t in range(5)),
            _fail(10, USER),
            _ok(11),
            _line(12, "Connection closed by 192.0.2.1 port 22 [preauth]"),
            _fail(13, ATTACKER, user="198.51.100.99"),
        ],
    )
    # web2: the attacker comes 60 s later (3 attempts), gzip-compressed
    web2 = _write(tmp_path / "web2.log.gz", [*(_fail(t) for t in range(60, 63))], gz=True)
    return web1, web2


def test_log_reader_turns_hits_into_events(logs: tuple[Path, Path]) -> None:
    web1, _ = logs
    reader = LogReader(web1, "web1", [builtin_rule("sshd"), builtin_rule("sshd-success")])
    events = list(reader)
    sources = [(str(e.source), e.kind) for e in events]
    assert sources == [
        *[(ATTACKER, FAIL)] * 5,
        (USER, FAIL),
        (USER, SUCCESS),
        (ATTACKER, FAIL),  # the user name 198.51.100.99 is not the source
    ]
    assert {e.member for e in events} == {"web1"}
    assert events[0].time == datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp()
    assert events[-1].time - events[0].time == 13
    assert reader.rows == 8
    assert reader.lines == 9
    assert reader.skipped == 0


def test_alliance_stops_the_second_member_alone_does_not(logs: tuple[Path, Path]) -> None:
    rules = [builtin_rule("sshd"), builtin_rule("sshd-success")]
    streams = [LogReader(p, m, rules) for p, m in zip(logs, ("web1", "web2"), strict=True)]
    config = DrillConfig(maxretry=5, findtime=600, bantime=3600)
    r = run(merge(*streams), config).result()["strategies"]
    # 10 failures in all: attacker 5 + 1 (t 13) at web1, 3 at web2; the user's one typo.
    # alone: web1 bans the attacker at its 5th failure (t 4), so t 13 is stopped; web2 never
    # reaches 5 → 1 stopped. alliance: web1's alert protects web2 too → 1 + 3 stopped.
    assert (r["alone"]["attempts"], r["alone"]["stopped"]) == (10, 1)
    assert (r["alliance"]["attempts"], r["alliance"]["stopped"]) == (10, 4)
    assert r["alliance"]["sources_decided"] == 1


def test_cli_drill_reads_member_logs(logs: tuple[Path, Path]) -> None:
    web1, web2 = logs
    args = ["drill", "--log", str(web1), "--log", f"edge={web2}", "--maxretry", "5", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["members"] == 2
    assert out["strategies"]["alliance"]["stopped"] == 4
    assert [i["format"] for i in out["inputs"]] == ["log", "log"]


def test_cli_drill_log_errors_are_clear(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["drill", "--log", f"a={tmp_path / 'nope.log'}"])
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    nothing = CliRunner().invoke(cli, ["drill", "run"])
    assert nothing.exit_code == 2
    assert "--log MEMBER=PATH" in nothing.output
    bad = CliRunner().invoke(cli, ["drill", "--log", "x.log", "--rule", "no-such-rule"])
    assert bad.exit_code == 2


def test_log_spec_names_members() -> None:
    assert parse_log_spec("web1=/var/log/auth.log") == ("web1", Path("/var/log/auth.log"))
    assert parse_log_spec("/logs/web7/auth.log") == ("web7", Path("/logs/web7/auth.log"))
    assert parse_log_spec("db3.log.gz") == ("db3", Path("db3.log.gz"))
    with pytest.raises(ValueError, match="MEMBER=PATH"):
        parse_log_spec("=x.log")


def test_real_sshd_log_replays(tmp_path: Path) -> None:
    """loghub's real sshd brute force (2,000 lines of one host) read as one member."""
    from tests.conftest import corpora_dir, skip_or_fail

    src = corpora_dir() / "loghub" / "OpenSSH" / "OpenSSH_2k.log"
    if not src.is_file():
        skip_or_fail(f"{src} missing: set SHIELDWALL_CORPORA to ../shared/corpora")
    reader = LogReader(src, "labsz", [builtin_rule("sshd")], now=datetime(2026, 1, 1, tzinfo=UTC))
    events = list(reader)
    assert reader.lines == 2000
    assert len(events) > 500
    assert all(isinstance(e.source, ipaddress.IPv4Address) for e in events)
    assert max(e.time for e in events) <= datetime(2026, 1, 1, tzinfo=UTC).timestamp()
