"""The command line: every command has --help; every listing command has --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shieldwall.cli.main import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command, the lazily loaded ones included (``list_commands``/``get_command``)."""
    out: list[tuple[str, ...]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        path = (*prefix, name)
        out.append(path)
        if isinstance(cmd, click.Group):
            out += _commands(cmd, path)
    return out


ALL = _commands(cli)
LISTINGS = [
    p
    for p in ALL
    if p[-1] in ("list", "refused", "stats", "status", "flags", "audit", "explain", "consult")
]


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize("path", LISTINGS, ids=" ".join)
def test_every_listing_command_has_json(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert "--json" in result.output


def test_the_listings_found_are_the_expected_ones() -> None:
    assert {" ".join(p) for p in LISTINGS} >= {
        "members list",
        "allowlist list",
        "decisions list",
        "decisions refused",
        "rules list",
        "stats",
        "status",
        "members flags",
        "audit",
        "decisions explain",
        "consult",
    }


def test_keygen_writes_a_private_key_with_mode_0600(tmp_path: Path) -> None:
    out = tmp_path / "k"
    result = CliRunner().invoke(cli, ["keygen", "--out", str(out), "--json"])
    assert result.exit_code == 0
    assert "public_key" in json.loads(result.output)
    assert (out.stat().st_mode & 0o777) == 0o600
    again = CliRunner().invoke(cli, ["keygen", "--out", str(out)])
    assert again.exit_code != 0  # never overwrites a key


def test_rules_list_json_names_the_shipped_rules() -> None:
    result = CliRunner().invoke(cli, ["rules", "list", "--json"])
    names = {r["name"] for r in json.loads(result.output)}
    assert {"sshd", "nginx-http-auth", "nginx-botsearch"} <= names


def test_rules_test_reports_hits_with_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 23 10:00:01 h sshd[1]: Accepted publickey for bob from 203.0.113.1 port 1 ssh2\n"
        "Nov 23 10:00:02 h sshd[1]: Failed password for root from 203.0.113.2 port 2 ssh2\n"
        "\xff\xfe garbage\n"
    )
    result = CliRunner().invoke(cli, ["rules", "test", "sshd", str(log), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["lines"] == 3
    assert [(h["line"], h["source"], h["rule"]) for h in data["hits"]] == [
        (2, "203.0.113.2", "sshd")
    ]


FILTER = """
[Definition]
failregex = ^ \\S+ demo\\[\\d+\\]: auth failure for \\S+ from <HOST>$
            ^ \\S+ demo\\[\\d+\\]: probe from <HOST>$
datepattern = {^LN-BEG}
"""


def _fail2ban_files(tmp_path: Path) -> tuple[Path, Path]:
    conf = tmp_path / "demo.conf"
    conf.write_text(FILTER)
    log = tmp_path / "demo.log"
    log.write_bytes(
        b"Jul 19 18:11:50 srv demo[1]: auth failure for bob from 192.0.2.1\n"
        b"Jul 19 18:11:51 srv demo[1]: auth failure for bob from host.example\n"
        b"\n"
        b"Jul 19 18:11:52 srv demo[1]: probe from 2001:db8::2\n"
        b"Jul 19 18:11:53 srv demo[1]: accepted bob\n"
    )
    return conf, log


def test_rules_test_runs_a_fail2ban_filter_as_json(tmp_path: Path) -> None:
    conf, log = _fail2ban_files(tmp_path)
    args = ["rules", "test", str(conf), str(log), "--json", "--timezone", "+02:00"]
    result = CliRunner().invoke(cli, [*args, "--now", "2005-08-14T12:00:00+02:00"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"lines", "skipped", "hits"}
    assert (data["lines"], data["skipped"]) == (5, 1)  # the host name is skipped, not resolved
    assert data["hits"] == [
        {
            "line": 1,
            "source": "192.0.2.1",
            "time": "2005-07-19T16:11:50+00:00",
            "rule": "demo",
            "pattern": 0,
        },
        {
            "line": 4,
            "source": "2001:db8::2",
            "time": "2005-07-19T16:11:52+00:00",
            "rule": "demo",
            "pattern": 1,
        },
    ]


def test_rules_test_text_counts_matched_and_missed(tmp_path: Path) -> None:
    conf, log = _fail2ban_files(tmp_path)
    result = CliRunner().invoke(cli, ["rules", "test", str(conf), str(log), "--missed"])
    assert result.exit_code == 0, result.output
    assert "5 lines, 2 matched, 1 missed, 0 ignored, 1 skipped (dns_host 1)" in result.output
    assert "missed line 5: Jul 19 18:11:53 srv demo[1]: accepted bob" in result.output
    assert "#1     1  ^ \\S+ demo" in result.output


def test_rules_test_options_only_for_fail2ban_filters(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("x\n")
    result = CliRunner().invoke(cli, ["rules", "test", "sshd", str(log), "--option", "mode=x"])
    assert result.exit_code != 0
    assert "apply to fail2ban filters" in result.output
    conf, _ = _fail2ban_files(tmp_path)
    bad = CliRunner().invoke(cli, ["rules", "test", str(conf), str(log), "--option", "mode"])
    assert bad.exit_code != 0
    assert "is not KEY=VALUE" in bad.output
    zone = CliRunner().invoke(cli, ["rules", "test", str(conf), str(log), "--timezone", "Mars/X"])
    assert zone.exit_code != 0
    assert "unknown time zone" in zone.output


def test_rules_import_writes_a_native_rule_that_loads(tmp_path: Path) -> None:
    from shieldwall.detect import load_rule

    conf, _ = _fail2ban_files(tmp_path)
    out = tmp_path / "demo.toml"
    args = ["rules", "import", str(conf), "--option", "maxretry=3", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--option", "ignoreip=10.0.0.0/8"])
    assert result.exit_code == 0, result.output
    assert "note: ignoreip (10.0.0.0/8)" in result.stderr
    rule = load_rule(out)
    assert (rule.name, rule.dialect, rule.maxretry) == ("demo", "fail2ban", 3)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0
    assert "exists" in again.output
    to_stdout = CliRunner().invoke(cli, ["rules", "import", str(conf)])
    assert 'dialect = "fail2ban"' in to_stdout.stdout


def test_operator_command_without_a_council_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        cli, ["decisions", "list", "--council", "http://127.0.0.1:9", "--token", "x"]
    )
    assert result.exit_code != 0
    assert "unreachable" in result.output


def test_bad_agent_config_names_file_key_and_why(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        'member = "m"\nkey-file = "k"\ncouncil = "http://x"\nstate-dir = "s"\n'
        'poll-interval = "fast"\n'
    )
    result = CliRunner().invoke(cli, ["agent", "--config", str(cfg)])
    assert result.exit_code != 0
    assert f"{cfg}: poll-interval: 'fast' is not a duration" in result.output


@pytest.mark.slow
def test_demo_json_summary() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "shieldwall", "demo", "--members", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["members"] == 3
    assert summary["source"] == "203.0.113.77"
    assert summary["blocked_everywhere"] is True
    assert 0 < summary["propagation_ms"]["p50"] <= summary["propagation_ms"]["max"]
