"""SQLite store: the embedded default. One file in WAL mode, nothing else to run.

Calls are short local transactions executed inline on the event loop's thread (a few tens of
microseconds each with ``synchronous=NORMAL``); one connection serialises them.

Schema versions: 1 (decision log, members, refusals, nonces, counters); 2 adds the treaty's
tables (``evidence``, ``audit``, ``flags``, ``treaty_state``); 3 indexes the active decisions
by id (the stream's snapshot pages). An older database is migrated in place when opened (new
tables and indexes only; nothing is rewritten).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shieldwall.council.store.base import EvidenceRecord, FlagRecord, MemberRecord, Plain
from shieldwall.errors import StoreError
from shieldwall.model import (
    Action,
    Decision,
    DecisionEvent,
    EventKind,
    Origin,
    Refusal,
    parse_scope,
    scope_str,
)

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    addresses TEXT NOT NULL,
    trust TEXT NOT NULL,
    created REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    action TEXT NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    member TEXT,
    rule TEXT,
    state TEXT NOT NULL  -- active | revoked | expired
);
CREATE INDEX IF NOT EXISTS decisions_live ON decisions (state, expires);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions(id),
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    member TEXT,
    scope TEXT NOT NULL,
    rule TEXT,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    member TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (member, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_age ON nonces (seen_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_MIGRATIONS: dict[int, str] = {
    2: """
CREATE TABLE IF NOT EXISTS evidence (
    decision_id TEXT PRIMARY KEY,
    data TEXT,          -- the chain the decision rests on (JSON), replaced by amendments
    revoked TEXT        -- why it was revoked (JSON), if it was
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    member TEXT NOT NULL,
    clause TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flags_member ON flags (member);
CREATE TABLE IF NOT EXISTS treaty_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    data TEXT NOT NULL,
    saved_at REAL NOT NULL
);
""",
    3: """
CREATE INDEX IF NOT EXISTS decisions_active_id ON decisions (id) WHERE state = 'active';
""",
}
"""Version → what upgrades the previous version to it (run in one transaction)."""

_DECISION_COLS = "id, scope, action, origin, reason, created, expires, member, rule"


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(x: float) -> datetime:
    return datetime.fromtimestamp(x, UTC)


def _decision(row: sqlite3.Row | tuple[object, ...]) -> Decision:
    id_, scope, action, origin, reason, created, expires, member, rule = tuple(row)[:9]
    return Decision(
        id=str(id_),
        scope=parse_scope(str(scope)),
        action=Action(str(action)),
        origin=Origin(str(origin)),
        reason=str(reason),
        created=_dt(float(created)),
        expires=_dt(float(expires)),
        member=None if member is None else str(member),
        rule=None if rule is None else str(rule),
    )


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version VALUES (1)")
                version = 1
            else:
                version = int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: schema version {version} is newer than this shieldwall "
                    f"({SCHEMA_VERSION})"
                )
            self._migrate(version)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from exc

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def _migrate(self, version: int) -> None:
        """Upgrade in place, one version per transaction (DDL is transactional in SQLite)."""
        db = self._db
        while version < SCHEMA_VERSION:
            version += 1
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- members -------------------------------------------------------------------

    async def add_member(self, member: MemberRecord) -> None:
        try:
            self._db.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)",
                (
                    member.name,
                    member.public_key,
                    json.dumps([scope_str(a) for a in member.addresses]),
                    member.trust,
                    _ts(member.created),
                    None if member.revoked_at is None else _ts(member.revoked_at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"member {member.name!r} or its key is already enrolled") from exc

    async def get_member(self, name: str) -> MemberRecord | None:
        row = self._db.execute("SELECT * FROM members WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._member(row)

    async def list_members(self) -> list[MemberRecord]:
        return [self._member(r) for r in self._db.execute("SELECT * FROM members ORDER BY name")]

    async def revoke_member(self, name: str, at: datetime) -> bool:
        cur = self._db.execute(
            "UPDATE members SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (_ts(at), name),
        )
        return cur.rowcount == 1

    @staticmethod
    def _member(row: tuple[object, ...]) -> MemberRecord:
        name, key, addresses, trust, created, revoked = row
        return MemberRecord(
            name=str(name),
            public_key=str(key),
            addresses=tuple(parse_scope(a) for a in json.loads(str(addresses))),
            trust=str(trust),
            created=_dt(float(created)),  # type: ignore[arg-type]
            revoked_at=None if revoked is None else _dt(float(revoked)),  # type: ignore[arg-type]
        )

    # -- replay protection ---------------------------------------------------------

    async def remember_nonce(self, member: str, nonce: str, at: datetime) -> bool:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (member, nonce, _ts(at))
        )
        return cur.rowcount == 1

    async def forget_nonces(self, before: datetime) -> None:
        self._db.execute("DELETE FROM nonces WHERE seen_at < ?", (_ts(before),))

    # -- decision log --------------------------------------------------------------

    async def append(
        self,
        changes: Sequence[tuple[EventKind, Decision]],
        at: datetime,
        evidence: Sequence[Plain | None] = (),
    ) -> list[DecisionEvent]:
        if not changes:
            return []
        out: list[DecisionEvent] = []
        db = self._db
        if evidence and len(evidence) != len(changes):
            raise ValueError("append: one evidence entry (or None) per change")
        try:
            db.execute("BEGIN IMMEDIATE")
            for i, (kind, d) in enumerate(changes):
                why = evidence[i] if evidence else None
                if why is not None and kind is EventKind.ADD:
                    db.execute(
                        "INSERT INTO evidence (decision_id, data) VALUES (?, ?) "
                        "ON CONFLICT(decision_id) DO UPDATE SET data = excluded.data",
                        (d.id, json.dumps(why)),
                    )
                elif why is not None:
                    db.execute(
                        "INSERT INTO evidence (decision_id, revoked) VALUES (?, ?) "
                        "ON CONFLICT(decision_id) DO UPDATE SET revoked = excluded.revoked",
                        (d.id, json.dumps(why)),
                    )
                if kind is EventKind.ADD:
                    db.execute(
                        f"INSERT INTO decisions ({_DECISION_COLS}, state) "  # noqa: S608
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
                        (
                            d.id,
                            scope_str(d.scope),
                            d.action.value,
                            d.origin.value,
                            d.reason,
                            _ts(d.created),
                            _ts(d.expires),
                            d.member,
                            d.rule,
                        ),
                    )
                else:
                    state = "revoked" if kind is EventKind.REVOKE else "expired"
                    db.execute("UPDATE decisions SET state = ? WHERE id = ?", (state, d.id))
                cur = db.execute(
                    "INSERT INTO events (kind, decision_id, at) VALUES (?, ?, ?)",
                    (kind.value, d.id, _ts(at)),
                )
                seq = cur.lastrowid
                if seq is None:  # pragma: no cover - sqlite always sets it
                    raise StoreError("append: no sequence number")
                out.append(DecisionEvent(seq=seq, kind=kind, decision=d, at=at))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"append failed: {exc}") from exc
        return out

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        rows = self._db.execute(
            f"SELECT e.seq, e.kind, e.at, {', '.join('d.' + c for c in _DECISION_COLS.split(', '))} "  # noqa: S608, E501
            "FROM events e JOIN decisions d ON d.id = e.decision_id "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [
            DecisionEvent(seq=r[0], kind=EventKind(r[1]), at=_dt(r[2]), decision=_decision(r[3:]))
            for r in rows
        ]

    async def last_seq(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    async def active(self, now: datetime) -> tuple[int, list[Decision]]:
        db = self._db
        db.execute("BEGIN")
        try:
            seq = await self.last_seq()
            rows = db.execute(
                f"SELECT {_DECISION_COLS} FROM decisions "  # noqa: S608
                "WHERE state = 'active' AND expires > ? ORDER BY created",
                (_ts(now),),
            ).fetchall()
        finally:
            db.execute("COMMIT")
        return seq, [_decision(r) for r in rows]

    async def active_page(self, now: datetime, after: str, limit: int) -> list[Decision]:
        rows = self._db.execute(
            f"SELECT {_DECISION_COLS} FROM decisions "  # noqa: S608
            "WHERE state = 'active' AND id > ? AND expires > ? ORDER BY id LIMIT ?",
            (after, _ts(now), limit),
        ).fetchall()
        return [_decision(r) for r in rows]

    async def get_decision(self, decision_id: str) -> Decision | None:
        row = self._db.execute(
            f"SELECT {_DECISION_COLS} FROM decisions WHERE id = ?",  # noqa: S608
            (decision_id,),
        ).fetchone()
        return None if row is None else _decision(row)

    async def decision_state(self, decision_id: str) -> str | None:
        row = self._db.execute(
            "SELECT state FROM decisions WHERE id = ?", (decision_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]:
        rows = self._db.execute(
            f"SELECT {_DECISION_COLS} FROM decisions "  # noqa: S608
            "WHERE state = 'active' AND expires <= ? ORDER BY expires LIMIT ?",
            (_ts(now), limit),
        ).fetchall()
        return [_decision(r) for r in rows]

    # -- refusals and counters -----------------------------------------------------

    async def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        self._db.executemany(
            "INSERT INTO refusals (at, member, scope, rule, reason) VALUES (?, ?, ?, ?, ?)",
            [(_ts(r.at), r.member, scope_str(r.scope), r.rule, r.reason) for r in refusals],
        )

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        rows = self._db.execute(
            "SELECT at, member, scope, rule, reason FROM refusals ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Refusal(scope=parse_scope(r[2]), reason=r[4], member=r[1], at=_dt(r[0]), rule=r[3])
            for r in rows
        ]

    # -- the treaty: evidence, flags, audit, state ---------------------------------

    async def set_evidence(self, items: Sequence[tuple[str, Plain]]) -> None:
        self._db.executemany(
            "INSERT INTO evidence (decision_id, data) VALUES (?, ?) "
            "ON CONFLICT(decision_id) DO UPDATE SET data = excluded.data",
            [(decision_id, json.dumps(data)) for decision_id, data in items],
        )

    async def evidence(self, decision_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        ids = list(decision_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT decision_id, data FROM evidence "  # noqa: S608
                f"WHERE data IS NOT NULL AND decision_id IN ({marks})",
                chunk,
            )
            out.update({str(r[0]): dict(json.loads(r[1])) for r in rows})
        return out

    async def get_evidence(self, decision_id: str) -> EvidenceRecord | None:
        row = self._db.execute(
            "SELECT data, revoked FROM evidence WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        if row is None:
            return None
        return EvidenceRecord(
            decision_id,
            None if row[0] is None else dict(json.loads(row[0])),
            None if row[1] is None else dict(json.loads(row[1])),
        )

    async def record_flags(self, flags: Sequence[FlagRecord]) -> None:
        self._db.executemany(
            "INSERT INTO flags (at, member, clause, reason) VALUES (?, ?, ?, ?)",
            [(_ts(f.at), f.member, f.clause, f.reason) for f in flags],
        )

    async def flags(self, limit: int = 100) -> list[FlagRecord]:
        rows = self._db.execute(
            "SELECT at, member, clause, reason FROM flags ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [FlagRecord(str(r[1]), str(r[2]), _dt(float(r[0])), str(r[3])) for r in rows]

    async def record_audit(self, records: Sequence[Plain]) -> None:
        self._db.executemany(
            "INSERT INTO audit (at, actor, action, outcome, data) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    float(r["at"]),
                    str(r["actor"]),
                    str(r["action"]),
                    str(r["outcome"]),
                    json.dumps(dict(r)),
                )
                for r in records
            ],
        )

    async def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT data FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    async def save_treaty_state(self, state: Plain, at: datetime) -> None:
        self._db.execute(
            "INSERT INTO treaty_state (id, data, saved_at) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at",
            (json.dumps(state, separators=(",", ":")), _ts(at)),
        )

    async def load_treaty_state(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT data FROM treaty_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def bump(self, counter: str, n: int = 1) -> None:
        self._db.execute(
            "INSERT INTO counters VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (counter, n),
        )

    async def counters(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._db.execute("SELECT name, value FROM counters")}

    async def close(self) -> None:
        self._db.close()
