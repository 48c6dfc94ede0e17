"""The in-memory store (``memory://``): the fake for unit tests and the drill. Nothing survives
the process. It passes the same contract suite as the SQLite store.

The log is a list (sequence number = position + 1), the decisions' state a dict; the active
set is what the pure :class:`~shieldwall.decision_log.DecisionView` gives. A transaction keeps
an undo list, so a failing one leaves nothing behind.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shieldwall.council.store.base import Change, EvidenceRecord, FlagRecord, MemberRecord, Plain
from shieldwall.decision_log import DecisionView
from shieldwall.errors import StoreError
from shieldwall.model import Decision, DecisionEvent, EventKind, Refusal

Undo = Callable[[], None]
MISSING: Any = object()


class _Tx:
    """The undo list of the open transaction (None: none is open)."""

    def __init__(self) -> None:
        self.undo: list[Undo] | None = None

    def done(self, undo: Undo) -> None:
        if self.undo is not None:
            self.undo.append(undo)


class _Log:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self.events: list[DecisionEvent] = []
        self.view = DecisionView()
        self.states: dict[str, tuple[Decision, str]] = {}
        self.chains: dict[str, dict[str, Any]] = {}
        self.whys: dict[str, dict[str, Any]] = {}

    async def append(
        self,
        changes: Sequence[Change],
        at: datetime,
        evidence: Sequence[Plain | None] = (),
    ) -> list[DecisionEvent]:
        if evidence and len(evidence) != len(changes):
            raise ValueError("append: one evidence entry (or None) per change")
        n0, seq0 = len(self.events), self.view.seq
        # what each touched key held before (MISSING: nothing), for the undo
        saved: list[tuple[dict[str, Any], str, Any]] = []

        def keep(table: dict[str, Any], key: str) -> None:
            if self._tx.undo is not None:
                saved.append((table, key, table.get(key, MISSING)))

        out: list[DecisionEvent] = []
        for i, (kind, d) in enumerate(changes):
            event = DecisionEvent(len(self.events) + 1, kind, d, at)
            self.events.append(event)
            keep(self.view.decisions, d.id)
            keep(self.states, d.id)
            self.view.apply(event)
            why = evidence[i] if evidence else None
            if kind is EventKind.ADD:
                self.states[d.id] = (d, "active")
                if why is not None:
                    keep(self.chains, d.id)
                    self.chains[d.id] = copy.deepcopy(dict(why))
            else:
                held = self.states.get(d.id, (d, "active"))[0]
                self.states[d.id] = (held, "revoked" if kind is EventKind.REVOKE else "expired")
                if why is not None:
                    keep(self.whys, d.id)
                    self.whys[d.id] = copy.deepcopy(dict(why))
            out.append(event)

        def undo() -> None:
            del self.events[n0:]
            self.view.seq = seq0
            for table, key, value in reversed(saved):
                if value is MISSING:
                    table.pop(key, None)
                else:
                    table[key] = value

        self._tx.done(undo)
        return out

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        start = max(0, seq)  # the event of sequence number n is at n - 1
        return self.events[start : start + limit]

    async def last_seq(self) -> int:
        return len(self.events)

    async def active(self, now: datetime) -> tuple[int, list[Decision]]:
        active = sorted(self.view.active(now), key=lambda d: (d.created, d.id))
        return self.view.seq, active

    async def active_page(
        self, now: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Decision], str | None]:
        after = cursor or ""
        ids = sorted(i for i, d in self.view.decisions.items() if i > after and d.active_at(now))
        page = [self.view.decisions[i] for i in ids[:limit]]
        return page, (page[-1].id if len(ids) > limit else None)

    async def get(self, decision_id: str) -> Decision | None:
        held = self.states.get(decision_id)
        return None if held is None else held[0]

    async def state(self, decision_id: str) -> str | None:
        held = self.states.get(decision_id)
        return None if held is None else held[1]

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]:
        due = [d for d in self.view.decisions.values() if not d.active_at(now)]
        return sorted(due, key=lambda d: d.expires)[:limit]

    async def set_evidence(self, items: Sequence[tuple[str, Plain]]) -> None:
        before = {i: self.chains.get(i, MISSING) for i, _ in items}
        for decision_id, data in items:
            self.chains[decision_id] = copy.deepcopy(dict(data))

        def undo() -> None:
            for i, value in before.items():
                if value is MISSING:
                    self.chains.pop(i, None)
                else:
                    self.chains[i] = value

        self._tx.done(undo)

    async def evidence(self, decision_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {i: copy.deepcopy(self.chains[i]) for i in decision_ids if i in self.chains}

    async def get_evidence(self, decision_id: str) -> EvidenceRecord | None:
        if decision_id not in self.chains and decision_id not in self.whys:
            return None
        return EvidenceRecord(
            decision_id,
            copy.deepcopy(self.chains.get(decision_id)),
            copy.deepcopy(self.whys.get(decision_id)),
        )


class _Members:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self.by_name: dict[str, MemberRecord] = {}

    async def add(self, member: MemberRecord) -> None:
        if member.name in self.by_name or any(
            m.public_key == member.public_key for m in self.by_name.values()
        ):
            raise StoreError(f"member {member.name!r} or its key is already enrolled")
        self.by_name[member.name] = member

        def undo() -> None:
            del self.by_name[member.name]

        self._tx.done(undo)

    async def get(self, name: str) -> MemberRecord | None:
        return self.by_name.get(name)

    async def list(self) -> list[MemberRecord]:
        return [self.by_name[n] for n in sorted(self.by_name)]

    async def revoke(self, name: str, at: datetime) -> bool:
        m = self.by_name.get(name)
        if m is None or m.revoked:
            return False
        self.by_name[name] = MemberRecord(m.name, m.public_key, m.addresses, m.trust, m.created, at)

        def undo() -> None:
            self.by_name[name] = m

        self._tx.done(undo)
        return True

    async def replace(self, member: MemberRecord) -> None:
        old = self.by_name.get(member.name)
        if old is None:
            raise StoreError(f"no member {member.name!r}")
        if any(m.public_key == member.public_key and m.name != member.name
               for m in self.by_name.values()):  # fmt: skip
            raise StoreError("that key is already another member's")
        self.by_name[member.name] = member

        def undo() -> None:
            self.by_name[member.name] = old

        self._tx.done(undo)


class _Nonces:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self._seen: dict[tuple[str, str], datetime] = {}

    async def remember(self, member: str, nonce: str, at: datetime) -> bool:
        key = (member, nonce)
        if key in self._seen:
            return False
        self._seen[key] = at

        def undo() -> None:
            del self._seen[key]

        self._tx.done(undo)
        return True

    async def seen(self, member: str, nonce: str) -> bool:
        return (member, nonce) in self._seen

    async def forget(self, before: datetime) -> None:
        gone = {k: t for k, t in self._seen.items() if t < before}
        for k in gone:
            del self._seen[k]
        self._tx.done(lambda: self._seen.update(gone))


class _Records:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self._refusals: list[Refusal] = []
        self._flags: list[FlagRecord] = []
        self._audit: list[dict[str, Any]] = []

    def _extend(self, target: list[Any], items: Sequence[Any]) -> None:
        n = len(target)
        target.extend(items)
        self._tx.done(lambda: target.__delitem__(slice(n, None)))

    async def add_refusals(self, refusals: Sequence[Refusal]) -> None:
        self._extend(self._refusals, refusals)

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        return self._refusals[::-1][:limit]

    async def add_flags(self, flags: Sequence[FlagRecord]) -> None:
        self._extend(self._flags, flags)

    async def flags(self, limit: int = 100) -> list[FlagRecord]:
        return self._flags[::-1][:limit]

    async def add_audit(self, records: Sequence[Plain]) -> None:
        self._extend(self._audit, [copy.deepcopy(dict(r)) for r in records])

    async def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return copy.deepcopy(self._audit[::-1][:limit])


class _TreatyStates:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self.blob: dict[str, Any] | None = None

    async def save(self, state: Plain, at: datetime) -> None:
        before = self.blob
        self.blob = copy.deepcopy(dict(state))

        def undo() -> None:
            self.blob = before

        self._tx.done(undo)

    async def load(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.blob)


class _Counters:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self.values: dict[str, int] = {}

    async def bump(self, counters: Mapping[str, int]) -> None:
        added = {name: n for name, n in counters.items() if n}
        for name, n in added.items():
            self.values[name] = self.values.get(name, 0) + n

        def undo() -> None:
            for name, n in added.items():
                self.values[name] -= n
                if not self.values[name]:
                    del self.values[name]

        self._tx.done(undo)

    async def all(self) -> dict[str, int]:
        return dict(self.values)


class MemoryStore:
    def __init__(self) -> None:
        self._tx = _Tx()
        self.log = _Log(self._tx)
        self.members = _Members(self._tx)
        self.nonces = _Nonces(self._tx)
        self.records = _Records(self._tx)
        self.treaty = _TreatyStates(self._tx)
        self.counters = _Counters(self._tx)

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """``memory://`` (anything after the scheme is ignored)."""
        return cls()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._tx.undo is not None:  # nested: joins the open one
            yield
            return
        self._tx.undo = []
        try:
            yield
        except BaseException:
            for undo in reversed(self._tx.undo):
                undo()
            raise
        finally:
            self._tx.undo = None

    async def close(self) -> None:
        return None
