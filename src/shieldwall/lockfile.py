"""An exclusive lock on a directory a process owns (the council's data-dir, an agent's
state-dir), held for the process's life.

Two councils on one data-dir would each decide, and only one would deliver; two agents on
one state-dir would report the same lines twice. The lock is ``flock`` on a ``.lock`` file
in the directory (released by the kernel when the process dies, even by ``kill -9``); the
file names its holder, so the refusal can say who it is.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import IO

from shieldwall.errors import ConfigError, os_reason

LOCK_FILE = ".lock"


class DirLock:
    """``DirLock(directory, what, origin, key)``: raises ConfigError naming the holder when
    another process has the directory. ``close()`` releases it."""

    def __init__(self, directory: str | Path, what: str, origin: str = "", key: str = "") -> None:
        path = Path(directory) / LOCK_FILE
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle: IO[str] = path.open("a+")
        except OSError as exc:
            raise ConfigError(origin, key, f"cannot use {directory}: {os_reason(exc)}") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                origin,
                key,
                f"{directory} is in use by {holder}: stop it first (one {what} per directory)",
            ) from exc
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
        handle.write(f"{what} pid {os.getpid()} since {started} ({' '.join(sys.argv)[:200]})\n")
        handle.flush()
        self._handle: IO[str] | None = handle

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None


def holder(directory: str | Path) -> str | None:
    """Who holds ``directory`` now (what its lock file says), None when nobody does."""
    path = Path(directory) / LOCK_FILE
    try:
        handle = path.open("r")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
