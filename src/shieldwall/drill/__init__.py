"""The drill: replay members' attack events by event time through every strategy at once and
measure what the alliance saves compared with defending alone. See ``docs/drill.md``.

``run(events, config)`` is the whole drill as one pure call over an iterable of
:class:`~shieldwall.drill.io.DrillEvent` (in time order, or put in order by
:func:`~shieldwall.drill.replay.reorder`); ``replay_files(readers, config)`` is the same for
files, on the fast path (plain row tuples, no event objects).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess

from shieldwall.drill.io import DrillEvent, Reader, Row, read_events, row_of
from shieldwall.drill.replay import Reorder, merge, merge_rows, reorder
from shieldwall.drill.score import Score, Scoreboard
from shieldwall.drill.strategies import (
    STRATEGIES,
    Alliance,
    Alone,
    DrillConfig,
    Outcome,
    Poll,
    Strategy,
    Sync,
    build,
)

__all__ = [
    "STRATEGIES",
    "DrillConfig",
    "DrillEvent",
    "Reader",
    "Scoreboard",
    "Strategy",
    "build",
    "jobs_default",
    "merge",
    "read_events",
    "reorder",
    "replay_files",
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


def _rows(readers: Sequence[Iterable[DrillEvent]], slack: float) -> Iterator[Row]:
    """Every reader's rows put in order within ``slack``, several files merged by time
    (a :class:`Reader` on its fast path, any other one through its events)."""
    streams = [
        Reorder(slack).rows(r.tuples() if isinstance(r, Reader) else map(row_of, r))
        for r in readers
    ]
    return streams[0] if len(streams) == 1 else merge_rows(*streams)


def jobs_default(strategies: int) -> int:
    """One process per CPU this process may use, at most one per strategy."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, strategies))


_WEIGHT = {Alliance: 3.5, Alone: 1.0, Sync: 1.0, Poll: 0.9}
"""Relative replay cost of each strategy (on the 10M-event generated campaign of
``docs/drill.md``)."""


def _groups(strategies: Sequence[Strategy], jobs: int) -> list[list[int]]:
    """The strategies' indexes in ``jobs`` groups of about equal cost (each group also
    reads the input): the costliest first, each to the group with the least so far."""
    groups: list[list[int]] = [[] for _ in range(min(jobs, len(strategies)))]
    load = [0.0] * len(groups)
    by_cost = sorted(
        range(len(strategies)), key=lambda i: (-_WEIGHT.get(type(strategies[i]), 1.0), i)
    )
    for i in by_cost:
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += _WEIGHT.get(type(strategies[i]), 1.0)
    return [sorted(g) for g in groups if g]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while (as it was afterwards). A replay makes
    next to no reference cycles, but the collector would go through its millions of
    short-lived rows and its growing state again and again: about a third of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _replay_group(
    readers: Sequence[Iterable[DrillEvent]],
    strategies: list[Strategy],
    slack: float,
    progress: Callable[[int], None] | None = None,
) -> Scoreboard:
    board = Scoreboard(strategies)
    with _gc_paused():
        board.feed_rows(_rows(readers, slack), progress)
        board.finish()
    return board


def _child(
    out: Connection,
    readers: Sequence[Iterable[DrillEvent]],
    strategies: list[Strategy],
    slack: float,
) -> None:
    """A worker process: replay ``strategies`` over the input, read here too; send back
    their outcomes, scores and the number of events (or the error)."""
    try:
        board = _replay_group(readers, strategies, slack)
        outcomes = [Outcome(s) for s in board.strategies]
        out.send(("ok", (outcomes, board.scores, board.events)))
    except BaseException as exc:  # the parent raises it
        try:
            out.send(("error", exc))
        except Exception:  # an error that does not pickle
            out.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        out.close()


def replay_files(
    readers: Sequence[Iterable[DrillEvent]],
    config: DrillConfig | None = None,
    strategies: Sequence[str] = STRATEGIES,
    variants: Mapping[str, DrillConfig] | None = None,
    *,
    slack: float = 3600.0,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Scoreboard:
    """:func:`run` over the events of ``readers``, each put in order within ``slack`` (as
    :func:`reorder` does) and merged by time (as :func:`merge`): the same result as
    ``run(merge(*(reorder(r, slack) for r in readers)), …)``. ``progress`` is told how many
    events were replayed, now and then.

    With ``jobs`` > 1 (and :class:`Reader` inputs), the strategies are split into that many
    groups: this process replays the first group, a worker process each other one, each
    reading the input itself; the scoreboard holds this process's strategies and the
    others' :class:`~shieldwall.drill.strategies.Outcome` (what scoring needs)."""
    built = build(config or DrillConfig(), strategies, variants)
    groups = _groups(built, jobs)
    if len(groups) < 2 or not all(isinstance(r, Reader) for r in readers):
        return _replay_group(readers, built, slack, progress)
    fresh = [Reader(r.path, r.port, r.rule) for r in readers if isinstance(r, Reader)]
    # fork: nothing to import or pickle on the way in (spawn re-imports __main__)
    ctx: ForkContext | SpawnContext
    if "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
    else:  # pragma: no cover - not POSIX
        ctx = multiprocessing.get_context("spawn")
    sys.stdout.flush()  # a forked child must not write out what this process buffered
    sys.stderr.flush()
    children: list[tuple[list[int], Connection, BaseProcess]] = []
    done = False
    try:
        for group in groups[1:]:
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(
                target=_child,
                args=(send, fresh, [built[i] for i in group], slack),
                name=f"shieldwall-drill-{len(children) + 1}",
                daemon=True,
            )
            child.start()
            send.close()
            children.append((group, receive, child))
        own = groups[0]
        board = _replay_group(readers, [built[i] for i in own], slack, progress)
        final: list[Strategy] = list(built)
        scores: list[Score | None] = [None] * len(built)
        for i, strategy, score in zip(own, board.strategies, board.scores, strict=True):
            final[i], scores[i] = strategy, score
        for group, receive, proc in children:
            try:
                status, payload = receive.recv()
            except EOFError:
                raise RuntimeError(
                    f"drill worker {proc.name} died (exit {proc.exitcode})"
                ) from None
            if status != "ok":
                raise payload
            outcomes, their_scores, events = payload
            if events != board.events:  # pragma: no cover - the same input, read twice
                raise RuntimeError(
                    f"drill worker read {events} events, this process {board.events}"
                )
            for i, strategy, score in zip(group, outcomes, their_scores, strict=True):
                final[i], scores[i] = strategy, score
        done = True
    finally:
        for _, receive, proc in children:
            receive.close()
            if not done and proc.is_alive():
                proc.terminate()
            proc.join()
    board.strategies = final
    board.scores = [s for s in scores if s is not None]
    return board
