"""The drill: replay members' attack events by event time through every strategy at once and
measure what the alliance saves compared with defending alone. See ``docs/drill.md``.

``run(events, config)`` is the whole drill as one pure call over an iterable of
:class:`~shieldwall.drill.io.DrillEvent` (in time order, or put in order by
:func:`~shieldwall.drill.replay.reorder`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shieldwall.drill.io import DrillEvent, Reader, read_events
from shieldwall.drill.replay import merge, reorder
from shieldwall.drill.score import Scoreboard
from shieldwall.drill.strategies import STRATEGIES, DrillConfig, Strategy, build

__all__ = [
    "STRATEGIES",
    "DrillConfig",
    "DrillEvent",
    "Reader",
    "Scoreboard",
    "Strategy",
    "build",
    "merge",
    "read_events",
    "reorder",
    "run",
]


def run(
    events: Iterable[DrillEvent],
    config: DrillConfig | None = None,
    strategies: Sequence[str] = STRATEGIES,
    variants: Mapping[str, DrillConfig] | None = None,
) -> Scoreboard:
    """Replay ``events`` (time order) through ``strategies`` (and one ``alliance`` per
    treaty variant); the finished scoreboard."""
    board = Scoreboard(build(config or DrillConfig(), strategies, variants))
    board.feed(events)
    board.finish()
    return board
