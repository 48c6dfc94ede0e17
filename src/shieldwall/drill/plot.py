"""PNG plots of a drill (needs the optional ``plots`` extra: matplotlib)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from shieldwall.drill.score import Scoreboard
from shieldwall.errors import ShieldwallError

__all__ = ["check_available", "plot"]


def check_available() -> None:
    """Raise a clear error when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ShieldwallError(
            "--plot needs matplotlib: pip install 'shieldwall[plots]' (or pip install matplotlib)"
        )


def plot(board: Scoreboard, out: Path) -> list[Path]:
    """Write ``landed.png`` (cumulative attempts landed over time, per strategy) and
    ``ttp.png`` (distribution of time to protection); return their paths."""
    check_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    start = board.start or 0.0
    fig: Any
    fig, ax = plt.subplots(figsize=(9, 5))
    for sc in board.scores:
        xs = [(t - start) / 86400 for t, _ in sc.timeline]
        ax.plot(xs, [n for _, n in sc.timeline], label=sc.name)
    ax.set_xlabel("days since the first event")
    ax.set_ylabel("attempts landed (cumulative)")
    ax.set_title("Attempts that reached a member not yet protected")
    ax.legend()
    landed = out / "landed.png"
    fig.savefig(landed, dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 5))
    for strategy in board.strategies:
        values = sorted(max(v, 0.001) for v in board.ttp(strategy))
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=f"{strategy.name} ({len(values)})")
    ax.set_xscale("log")
    ax.set_xlabel("seconds from first attempt anywhere to protection at every member")
    ax.set_ylabel("share of sources protected everywhere")
    ax.set_title("Time to protection (CDF)")
    ax.legend()
    ttp = out / "ttp.png"
    fig.savefig(ttp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [landed, ttp]
