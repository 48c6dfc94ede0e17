"""``shieldwall drill`` and ``shieldwall drill generate`` from the command line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shieldwall.cli.main import cli
from tests.conftest import skip_or_fail

KEYS = {
    "attempts",
    "landed",
    "stopped",
    "stopped_share",
    "sources_decided",
    "time_to_protection_ms",
    "false_bans",
}


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    out = tmp_path / "campaign.csv.gz"
    args = ["drill", "generate", "--members", "20", "--events", "3000", "--seed", "1"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["events"] == 3000
    return out


def test_drill_json_has_exactly_the_keys(campaign: Path) -> None:
    result = CliRunner().invoke(cli, ["drill", str(campaign), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["strategies"]) == {"alone", "alliance", "poll-10s", "sync-1h"}
    for name, s in out["strategies"].items():
        assert set(s) == KEYS, name
        assert set(s["time_to_protection_ms"]) == {"p50", "p99"}
        assert s["attempts"] == s["landed"] + s["stopped"]
    assert out["events"] == 3000


def test_drill_table_and_treaty_variants(campaign: Path) -> None:
    args = [
        "drill",
        "run",
        str(campaign),
        "--strategy",
        "alone",
        "--treaty",
        "strict:threshold=3/6",
    ]
    result = CliRunner().invoke(cli, [*args, "--treaty", "slow:threshold=10/40,duration=1d"])
    assert result.exit_code == 0, result.output
    assert "strategy" in result.output
    assert "strict" in result.output
    assert "slow" in result.output
    bad = CliRunner().invoke(cli, ["drill", str(campaign), "--treaty", "x:nope=1"])
    assert bad.exit_code != 0
    assert "unknown key" in bad.output


def test_drill_generate_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for name in ("a.csv", "b.csv"):
        args = ["drill", "generate", "--members", "5", "--events", "500", "--seed", "4"]
        r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        outs.append((tmp_path / name).read_text())
    assert outs[0] == outs[1]
    assert outs[0].startswith("time,member,source,kind,rule,legit\n")


def test_drill_plot(campaign: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        skip_or_fail("matplotlib not installed (extra 'plots')")
    plots = tmp_path / "plots"
    result = CliRunner().invoke(cli, ["drill", str(campaign), "--plot", str(plots), "--json"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in plots.iterdir()} == {"landed.png", "ttp.png"}


def test_drill_plot_without_matplotlib_is_a_clear_error(
    campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "matplotlib" else real(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(cli, ["drill", str(campaign), "--plot", str(tmp_path / "p")])
    assert result.exit_code != 0
    assert "needs matplotlib" in result.output
    assert "shieldwall[plots]" in result.output
