"""Logging setup. Called by entrypoints only; modules just use ``logging.getLogger``."""

from __future__ import annotations

import gc
import logging
import sys


def setup_logging(level: str = "info", *, stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


GC_THRESHOLDS = (50_000, 20, 100)
"""Young-generation collections every 50,000 allocations instead of 700: a council or an
agent holding a million decisions spent a third of its CPU in the collector, rescanning live
objects (measured with py-spy; the cycles it frees are rare — the code keeps few)."""


def tune_gc() -> None:
    """For long-running processes (council, agent): what was built at start goes to the
    permanent generation (``gc.freeze``), and the young generations are collected less often.
    Called by entrypoints only."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
