"""The ``log`` enforcer: a dry run that records what it would block, one JSON line per change.

Used by tests, the demo and the propagation benchmark (each line carries the wall-clock time
at which the change was applied).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from shieldwall.model import Add, Change, Scope, scope_str

log = logging.getLogger("shieldwall.enforce.log")


class LogEnforcer:
    name = "log"

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self.blocked: dict[Scope, datetime] = {}

    def _write(self, record: dict[str, object]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        if self._file is not None:
            self._file.write(line + "\n")
        else:
            log.info("enforce %s", line)

    async def apply(self, changes: Sequence[Change], now: datetime) -> None:
        for c in changes:
            if isinstance(c, Add):
                prev = self.blocked.get(c.scope)
                if prev is not None and prev >= c.expires:
                    continue
                self.blocked[c.scope] = c.expires
                self._write(
                    {
                        "at": now.timestamp(),
                        "op": "add",
                        "scope": scope_str(c.scope),
                        "expires": c.expires.timestamp(),
                    }
                )
            else:
                if self.blocked.pop(c.scope, None) is not None:
                    self._write(
                        {"at": now.timestamp(), "op": "remove", "scope": scope_str(c.scope)}
                    )

    async def sync(self, active: Mapping[Scope, datetime], now: datetime) -> None:
        self.blocked = {s: e for s, e in active.items() if e > now}
        self._write(
            {
                "at": now.timestamp(),
                "op": "sync",
                "scopes": sorted(scope_str(s) for s in self.blocked),
            }
        )

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
