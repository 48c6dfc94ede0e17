"""The ``log`` enforcer: a dry run that records what it would block, one JSON line per change.

Used by tests, the demo and the benchmarks (each line carries the wall-clock time at which
the change was applied). A diff is written with one call, however many lines it holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from shieldwall.blocklist import Diff
from shieldwall.model import Scope

log = logging.getLogger("shieldwall.enforce.log")


class LogEnforcer:
    name = "log"

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._file: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self.blocked: dict[Scope, float] = {}

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._file is not None:
            self._file.write("".join(lines))
            self._file.flush()
        else:
            for line in lines:
                log.info("enforce %s", line.rstrip("\n"))

    async def apply(self, diff: Diff, now: float) -> None:
        lines: list[str] = []
        blocked = self.blocked
        # scope text is digits, dots, colons and a slash: no JSON escaping needed
        for scope in diff.unblock:
            if blocked.pop(scope, None) is not None:
                lines.append(f'{{"at":{now:.6f},"op":"remove","scope":"{scope.text()}"}}\n')
        for scope, expires in diff.block.items():
            prev = blocked.get(scope)
            if prev is not None and prev >= expires:
                continue
            blocked[scope] = expires
            lines.append(
                f'{{"at":{now:.6f},"op":"add","scope":"{scope.text()}","expires":{expires:.3f}}}\n'
            )
        self._write(lines)

    async def sync(self, active: Mapping[Scope, float], now: float) -> None:
        self.blocked = {s: e for s, e in active.items() if e > now}
        record = {"at": now, "op": "sync", "scopes": sorted(s.text() for s in self.blocked)}
        self._write([json.dumps(record, separators=(",", ":")) + "\n"])

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
