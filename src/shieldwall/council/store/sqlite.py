"""SQLite store: the embedded default. One file in WAL mode, nothing else to run.

``sqlite:///var/lib/shieldwall/council/council.db`` (or ``sqlite://:memory:``). Calls are short
local statements executed inline on the event loop's thread (a few tens of microseconds each
with ``synchronous=NORMAL``); one connection serialises them, and a call never suspends — so a
:meth:`SqliteStore.transaction` whose body awaits only the store cannot interleave with
another coroutine's writes. A batch of log changes is a handful of ``executemany`` statements
whatever its size.

Schema versions: 1 (decision log, members, refusals, nonces, counters); 2 adds the treaty's
tables (``evidence``, ``audit``, ``flags``, ``treaty_state``); 3 indexes the active decisions
by id; 4 keeps a decision's row lean — id, scope, expiry, state and its ``info`` (action,
origin, reason, creation, member, rule: one row shared by every decision of a bulk
import) — so a decision costs two short rows (measured here: 7 µs a decision, against 16 with
the wide row). An older database is migrated in place when opened, one version per
transaction (4 rewrites the decisions table once).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from shieldwall.council.store.base import (
    Change,
    EvidenceRecord,
    FlagRecord,
    MemberRecord,
    Plain,
)
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

SCHEMA_VERSION = 4

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
    4: """
CREATE TABLE infos (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    member TEXT,
    rule TEXT
);
INSERT INTO infos (id, action, origin, reason, created, member, rule)
    SELECT rowid, action, origin, reason, created, member, rule FROM decisions;
CREATE TABLE decisions4 (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    expires REAL NOT NULL,
    state INTEGER NOT NULL,  -- 0 active, 1 revoked, 2 expired
    info INTEGER NOT NULL REFERENCES infos(id)
);
INSERT INTO decisions4 (rowid, id, scope, expires, state, info)
    SELECT rowid, id, scope, expires,
           CASE state WHEN 'active' THEN 0 WHEN 'revoked' THEN 1 ELSE 2 END, rowid
    FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions4 RENAME TO decisions;
CREATE INDEX decisions_live ON decisions (state, expires);
""",
}
"""Version → what upgrades the previous version to it (run in one transaction)."""

_DECISION_COLS = (
    "d.id, d.scope, i.action, i.origin, i.reason, i.created, d.expires, i.member, i.rule"
)
_DECISIONS = "decisions d JOIN infos i ON i.id = d.info"
ACTIVE, REVOKED, EXPIRED = 0, 1, 2
_JSON = sqlite3.sqlite_version_info >= (3, 38)
"""``json_each`` and ``->>``: a batch is inserted from one JSON text, not bound row by row."""
_STATES = {ACTIVE: "active", REVOKED: "revoked", EXPIRED: "expired"}


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
        created=_dt(float(str(created))),
        expires=_dt(float(str(expires))),
        member=None if member is None else str(member),
        rule=None if rule is None else str(rule),
    )


class _Db:
    """The connection, and the transaction the current call runs in (nested ones join it)."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.depth = 0

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        if self.depth:
            self.depth += 1
            try:
                yield self.conn
            finally:
                self.depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.name}: {exc}") from exc
        self.depth = 1
        try:
            yield self.conn
        except BaseException as exc:
            self.depth = 0
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.name}: {exc}") from exc
            raise
        self.depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"{self.name}: {exc}") from exc

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already (a full disk makes it roll
        back on its own; a ROLLBACK then fails, and must not hide the first error)."""
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.name}: {exc}") from exc


def _json_text(value: object) -> str:
    """JSON as text, by msgspec (a 10,000-decision batch: ten times faster than json)."""
    return msgspec.json.encode(value).decode()


class _Log:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def append(
        self,
        changes: Sequence[Change],
        at: datetime,
        evidence: Sequence[Plain | None] = (),
    ) -> list[DecisionEvent]:
        if not changes:
            return []
        if evidence and len(evidence) != len(changes):
            raise ValueError("append: one evidence entry (or None) per change")
        when = _ts(at)
        # each decision's row as the batch leaves it (its last add, its last state): one
        # statement per table, whatever the order of the changes within the batch
        final: dict[str, tuple[Decision | None, int]] = {}
        chains: dict[str, str] = {}
        whys: dict[str, str] = {}
        for i, (kind, d) in enumerate(changes):
            why = evidence[i] if evidence else None
            if kind is EventKind.ADD:
                final[d.id] = (d, ACTIVE)
                if why is not None:
                    chains[d.id] = _json_text(why)
            else:
                added = final.get(d.id, (None, 0))[0]
                final[d.id] = (added, REVOKED if kind is EventKind.REVOKE else EXPIRED)
                if why is not None:
                    whys[d.id] = _json_text(why)
        with self._db.tx() as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            first = (int(row[0]) if row else 0) + 1
            info_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM infos").fetchone()[0])
            infos: dict[tuple[str, str, str, datetime, str | None, str | None], int] = {}
            rows: list[tuple[object, ...]] = []
            ends: list[tuple[int, str]] = []
            for decision_id, (added, state) in final.items():
                if added is None:
                    ends.append((state, decision_id))
                    continue
                d = added
                # StrEnum members are str: given to SQLite as they are
                info = (d.action, d.origin, d.reason, d.created, d.member, d.rule)
                n = infos.get(info)
                if n is None:
                    info_id += 1
                    n = infos[info] = info_id
                rows.append((decision_id, d.scope.text(), _ts(d.expires), state, n))
            if infos:
                db.executemany(
                    "INSERT INTO infos VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(n, a, o, r, _ts(c), m, ru) for (a, o, r, c, m, ru), n in infos.items()],
                )
            if rows and _JSON:  # one statement: SQLite reads the rows from one JSON text
                db.execute(
                    "INSERT INTO decisions (id, scope, expires, state, info) SELECT value->>0, "
                    "value->>1, value->>2, value->>3, value->>4 FROM json_each(?) WHERE true "
                    "ON CONFLICT(id) DO UPDATE SET expires = excluded.expires, "
                    "state = excluded.state, info = excluded.info",
                    (msgspec.json.encode(rows),),
                )
            elif rows:
                db.executemany(
                    "INSERT INTO decisions (id, scope, expires, state, info) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "expires = excluded.expires, state = excluded.state, info = excluded.info",
                    rows,
                )
            if ends:
                db.executemany("UPDATE decisions SET state = ? WHERE id = ?", ends)
            if chains:
                db.executemany(
                    "INSERT INTO evidence (decision_id, data) VALUES (?, ?) "
                    "ON CONFLICT(decision_id) DO UPDATE SET data = excluded.data",
                    list(chains.items()),
                )
            if whys:
                db.executemany(
                    "INSERT INTO evidence (decision_id, revoked) VALUES (?, ?) "
                    "ON CONFLICT(decision_id) DO UPDATE SET revoked = excluded.revoked",
                    list(whys.items()),
                )
            if _JSON:
                db.execute(
                    "INSERT INTO events (seq, kind, decision_id, at) "
                    "SELECT ? + key, value->>0, value->>1, ? FROM json_each(?)",
                    (first, when, msgspec.json.encode([(kind, d.id) for kind, d in changes])),
                )
            else:
                db.executemany(
                    "INSERT INTO events (seq, kind, decision_id, at) VALUES (?, ?, ?, ?)",
                    [(first + i, kind, d.id, when) for i, (kind, d) in enumerate(changes)],
                )
        make = DecisionEvent._make
        return [make((first + i, kind, d, at)) for i, (kind, d) in enumerate(changes)]

    async def since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        rows = self._db.read(
            f"SELECT e.seq, e.kind, e.at, {_DECISION_COLS} "  # noqa: S608
            "FROM events e JOIN decisions d ON d.id = e.decision_id JOIN infos i ON i.id = d.info "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (seq, limit),
        )
        return [
            DecisionEvent(seq=r[0], kind=EventKind(r[1]), at=_dt(r[2]), decision=_decision(r[3:]))
            for r in rows
        ]

    async def last_seq(self) -> int:
        row = self._db.read("SELECT MAX(seq) FROM events")
        return int(row[0][0] or 0)

    async def active(self, now: datetime) -> tuple[int, list[Decision]]:
        with self._db.tx():  # one read of both (a writer waits)
            seq = await self.last_seq()
            rows = self._db.read(
                f"SELECT {_DECISION_COLS} FROM {_DECISIONS} "  # noqa: S608
                "WHERE d.state = 0 AND d.expires > ? ORDER BY i.created, d.id",
                (_ts(now),),
            )
        return seq, [_decision(r) for r in rows]

    async def active_page(
        self, now: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Decision], str | None]:
        # by (expiry, rowid): the order of the live index, so a page reads only itself
        expires, key = (float("-inf"), 0) if not cursor else _cursor(cursor)
        rows = self._db.read(
            f"SELECT {_DECISION_COLS}, d.rowid FROM {_DECISIONS} "  # noqa: S608
            "WHERE d.state = 0 AND d.expires > ? AND (d.expires > ? OR "
            "(d.expires = ? AND d.rowid > ?)) ORDER BY d.expires, d.rowid LIMIT ?",
            (_ts(now), expires, expires, key, limit),
        )
        page = [_decision(r) for r in rows]
        if len(rows) < limit:
            return page, None
        return page, f"{float(rows[-1][6])!r}:{int(rows[-1][9])}"

    async def get(self, decision_id: str) -> Decision | None:
        rows = self._db.read(
            f"SELECT {_DECISION_COLS} FROM {_DECISIONS} WHERE d.id = ?",  # noqa: S608
            (decision_id,),
        )
        return _decision(rows[0]) if rows else None

    async def state(self, decision_id: str) -> str | None:
        rows = self._db.read("SELECT state FROM decisions WHERE id = ?", (decision_id,))
        return _STATES[int(rows[0][0])] if rows else None

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[Decision]:
        rows = self._db.read(
            f"SELECT {_DECISION_COLS} FROM {_DECISIONS} "  # noqa: S608
            "WHERE d.state = 0 AND d.expires <= ? ORDER BY d.expires LIMIT ?",
            (_ts(now), limit),
        )
        return [_decision(r) for r in rows]

    async def set_evidence(self, items: Sequence[tuple[str, Plain]]) -> None:
        with self._db.tx() as db:
            db.executemany(
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
            rows = self._db.read(
                f"SELECT decision_id, data FROM evidence "  # noqa: S608
                f"WHERE data IS NOT NULL AND decision_id IN ({marks})",
                chunk,
            )
            out.update({str(r[0]): dict(json.loads(r[1])) for r in rows})
        return out

    async def get_evidence(self, decision_id: str) -> EvidenceRecord | None:
        rows = self._db.read(
            "SELECT data, revoked FROM evidence WHERE decision_id = ?", (decision_id,)
        )
        if not rows:
            return None
        data, revoked = rows[0]
        return EvidenceRecord(
            decision_id,
            None if data is None else dict(json.loads(data)),
            None if revoked is None else dict(json.loads(revoked)),
        )


def _cursor(text: str) -> tuple[float, int]:
    expires, _, key = text.rpartition(":")
    try:
        return float(expires), int(key)
    except ValueError as exc:
        raise StoreError(f"not a page cursor: {text[:60]!r}") from exc


class _Members:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(self, member: MemberRecord) -> None:
        try:
            with self._db.tx() as db:
                db.execute(
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
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise StoreError(f"member {member.name!r} or its key is already enrolled") from exc
            raise

    async def get(self, name: str) -> MemberRecord | None:
        rows = self._db.read("SELECT * FROM members WHERE name = ?", (name,))
        return self._member(rows[0]) if rows else None

    async def list(self) -> list[MemberRecord]:
        return [self._member(r) for r in self._db.read("SELECT * FROM members ORDER BY name")]

    async def revoke(self, name: str, at: datetime) -> bool:
        with self._db.tx() as db:
            cur = db.execute(
                "UPDATE members SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (_ts(at), name),
            )
        return cur.rowcount == 1

    async def replace(self, member: MemberRecord) -> None:
        try:
            with self._db.tx() as db:
                cur = db.execute(
                    "UPDATE members SET public_key = ?, addresses = ?, trust = ?, created = ?, "
                    "revoked_at = ? WHERE name = ?",
                    (
                        member.public_key,
                        json.dumps([scope_str(a) for a in member.addresses]),
                        member.trust,
                        _ts(member.created),
                        None if member.revoked_at is None else _ts(member.revoked_at),
                        member.name,
                    ),
                )
                if cur.rowcount != 1:
                    raise StoreError(f"no member {member.name!r}")
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise StoreError(f"that key is already another member's: {exc}") from exc
            raise

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


class _Nonces:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def remember(self, member: str, nonce: str, at: datetime) -> bool:
        with self._db.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (member, nonce, _ts(at))
            )
        return cur.rowcount == 1

    async def seen(self, member: str, nonce: str) -> bool:
        rows = self._db.read("SELECT 1 FROM nonces WHERE member = ? AND nonce = ?", (member, nonce))
        return bool(rows)

    async def forget(self, before: datetime) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM nonces WHERE seen_at < ?", (_ts(before),))


class _Records:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add_refusals(self, refusals: Sequence[Refusal]) -> None:
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO refusals (at, member, scope, rule, reason) VALUES (?, ?, ?, ?, ?)",
                [(_ts(r.at), r.member, scope_str(r.scope), r.rule, r.reason) for r in refusals],
            )

    async def refusals(self, limit: int = 100) -> list[Refusal]:
        rows = self._db.read(
            "SELECT at, member, scope, rule, reason FROM refusals ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            Refusal(scope=parse_scope(r[2]), reason=r[4], member=r[1], at=_dt(r[0]), rule=r[3])
            for r in rows
        ]

    async def add_flags(self, flags: Sequence[FlagRecord]) -> None:
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO flags (at, member, clause, reason) VALUES (?, ?, ?, ?)",
                [(_ts(f.at), f.member, f.clause, f.reason) for f in flags],
            )

    async def flags(self, limit: int = 100) -> list[FlagRecord]:
        rows = self._db.read(
            "SELECT at, member, clause, reason FROM flags ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [FlagRecord(str(r[1]), str(r[2]), _dt(float(r[0])), str(r[3])) for r in rows]

    async def add_audit(self, records: Sequence[Plain]) -> None:
        with self._db.tx() as db:
            db.executemany(
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
        rows = self._db.read("SELECT data FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(json.loads(r[0])) for r in rows]


class _TreatyStates:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def save(self, state: Plain, at: datetime) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO treaty_state (id, data, saved_at) VALUES (1, ?, ?) ON CONFLICT(id) "
                "DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at",
                (json.dumps(state, separators=(",", ":")), _ts(at)),
            )

    async def load(self) -> dict[str, Any] | None:
        rows = self._db.read("SELECT data FROM treaty_state WHERE id = 1")
        return dict(json.loads(rows[0][0])) if rows else None


class _Counters:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def bump(self, counters: Mapping[str, int]) -> None:
        items = [(name, n) for name, n in counters.items() if n]
        if not items:
            return
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO counters VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                items,
            )

    async def all(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._db.read("SELECT name, value FROM counters")}


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StoreError(
                    f"{path}: the database is damaged (quick_check: {check and check[0]}): "
                    "restore it from a backup"
                )
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (1)")
                version = 1
            else:
                version = int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: schema version {version} is newer than this shieldwall "
                    f"({SCHEMA_VERSION})"
                )
            _migrate(conn, version)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from exc
        self._db = _Db(conn, path)
        self.log = _Log(self._db)
        self.members = _Members(self._db)
        self.nonces = _Nonces(self._db)
        self.records = _Records(self._db)
        self.treaty = _TreatyStates(self._db)
        self.counters = _Counters(self._db)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """``sqlite:///absolute/path.db``, ``sqlite://relative.db`` or ``sqlite://:memory:``."""
        return cls(url.removeprefix("sqlite://"))

    @property
    def schema_version(self) -> int:
        return int(self._db.read("SELECT version FROM schema_version")[0][0])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with self._db.tx():
            yield

    async def close(self) -> None:
        self._db.conn.close()


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """Upgrade in place, one version per transaction (DDL is transactional in SQLite)."""
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
