"""The agent's durable state: one SQLite file in the state directory.

Everything that must survive ``kill -9`` is written here, and what belongs together is
written in one transaction: a batch's read position, its bucket changes, its counters, its
local bans and its outgoing report commit together or not at all (guarantee 2: no line lost
or counted twice). The outbox keeps reports until the council has them (guarantee 3).

A batch costs what it changed, not what is held: the buckets it touched and its sightings
are each written as **one row** (a journal entry, encoded with msgspec), over a snapshot of
everything held; once a journal outgrows its snapshot the two are folded into a new snapshot
(amortised O(1) a change). Loading replays the journal over the snapshot. (Measured with
py-spy on an sshd flood of 20,000 sources: a row per bucket and per sighting was 80 % of the
agent's CPU.)

Sightings (per (source, rule, kind) counts, even below a rule's threshold) are committed with
their batch, and merged per key in memory. A batch that raised alerts takes the pending
sightings into its report; otherwise :meth:`AgentState.flush_sightings` turns them into a
report of their own once the oldest has waited ``delay`` seconds, so a burst of lines read in
several batches still makes one report. Everything is bounded: at most ``MAX_PENDING``
pending keys, ``MAX_REPORT_SIGHTINGS`` sightings per report, and ``MAX_SIGHTING_REPORTS``
undelivered reports without alerts (the oldest is dropped and counted in
``sightings.dropped``: stale sightings are worth little, alerts are never dropped).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from shieldwall.blocklist import Claim
from shieldwall.model import LogEvent, Scope, parse_scope, scope_str
from shieldwall.wire.messages import (
    WireAlert,
    WireAnswer,
    WireBatch,
    WireDecision,
    WireSighting,
    decision_from_wire,
    decode_batch,
    encode,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (path TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    alerts BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS local_bans (scope TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS view_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS view_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS view_journal (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY, entries INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    entries INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_name ON journal (name, id);
CREATE TABLE IF NOT EXISTS health (key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL NOT NULL);
"""
BUCKETS, SIGHTINGS = "buckets", "sightings"
COMPACT_MIN = 200_000
COMPACT_FACTOR = 4
"""A journal is folded into a new snapshot once it holds more than ``COMPACT_MIN`` entries and
``COMPACT_FACTOR`` times the snapshot's: a change is rewritten at most about once more, and a
start replays at most that much."""

_OUTBOX_COLUMNS = {
    "sightings": "ALTER TABLE outbox ADD COLUMN sightings BLOB NOT NULL DEFAULT '[]'",
    "answers": "ALTER TABLE outbox ADD COLUMN answers BLOB NOT NULL DEFAULT '[]'",
}
"""Columns added to an older agent.db's outbox when it is opened."""

MAX_PENDING = 10_000
"""Distinct (source, rule, kind) sightings waiting for a report; more are dropped and counted."""
MAX_REPORT_SIGHTINGS = 5_000
"""Sightings per report (the council accepts up to 10,000)."""
MAX_SIGHTING_REPORTS = 200
"""Undelivered reports holding sightings only; beyond it the oldest is dropped."""

_alerts_decoder = msgspec.json.Decoder(list[WireAlert])
_sightings_decoder = msgspec.json.Decoder(list[WireSighting])
_answers_decoder = msgspec.json.Decoder(list[WireAnswer])
_decision_decoder = msgspec.json.Decoder(WireDecision)
_entries_decoder = msgspec.json.Decoder(list[list[Any]])


class SightingRow(NamedTuple):
    """A batch's count for one (source, rule, kind): what becomes a report's sighting
    (times in epoch seconds)."""

    source: str
    rule: str
    kind: str
    hits: int
    first: float
    last: float


Pending = dict[tuple[str, str, str], list[Any]]
"""(source, rule, kind) → [count, first, last, added] (times in epoch seconds)."""
_claims_decoder = msgspec.json.Decoder(list[tuple[str, str, float]])


def batch_of(events: Sequence[LogEvent]) -> WireBatch:
    return WireBatch(
        events=[(e.seq, e.kind.value, e.decision_id, e.scope.text(), e.expires) for e in events]
    )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    report_id: str
    alerts: list[WireAlert]
    attempts: int
    sightings: list[WireSighting] = field(default_factory=list)
    answers: list[WireAnswer] = field(default_factory=list)


class AgentState:
    def __init__(self, state_dir: str) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.path = str(Path(state_dir) / "agent.db")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: in WAL mode a commit survives the process's death (kill -9: guarantee 2);
        # only a power loss may roll back the last ones (the lines are then read again). FULL
        # fsyncs every batch: a fifth of the agent's CPU under a flood.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        for name, ddl in _OUTBOX_COLUMNS.items():
            if name not in columns:
                self._db.execute(ddl)
        self._sizes: dict[str, list[int]] = {}
        """name → [entries in its snapshot, entries in its journal]: when to compact, known
        without counting the journal at every batch."""
        self._migrate_view()
        self._migrate_rows()
        self._reload_sizes()
        self._pending: Pending = {}
        self._undo: list[tuple[tuple[str, str, str], list[Any] | None]] = []
        """What the batch being committed merged into ``_pending``, to undo on a rollback."""
        for source, rule, kind, count, first, last, added in self._load(SIGHTINGS):
            self._merge(self._pending, (source, rule, kind), count, first, last, added)

    def _migrate_rows(self) -> None:
        """An older agent.db kept a row per bucket and per pending sighting: snapshots."""
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "buckets" not in tables and "sightings_pending" not in tables:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if "buckets" in tables:
                rows = [[r, s, json.loads(d)] for r, s, d in db.execute("SELECT * FROM buckets")]
                self._write_snapshot_of(BUCKETS, rows)
                db.execute("DROP TABLE buckets")
            if "sightings_pending" in tables:
                rows = [list(r) for r in db.execute("SELECT * FROM sightings_pending")]
                self._write_snapshot_of(SIGHTINGS, rows)
                db.execute("DROP TABLE sightings_pending")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _migrate_view(self) -> None:
        """An older agent.db kept the view one JSON decision per row: make it a snapshot."""
        db = self._db
        old = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'view_decisions'"
        ).fetchone()
        if old is None:
            return
        claims = []
        for (data,) in db.execute("SELECT data FROM view_decisions"):
            d = decision_from_wire(_decision_decoder.decode(data))
            claims.append((d.id, d.scope, d.expires.timestamp()))
        row = db.execute("SELECT value FROM view_meta WHERE key = 'seq'").fetchone()
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write_snapshot(int(row[0]) if row else 0, claims)
            db.execute("DROP TABLE view_decisions")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    # -- read positions and buckets ------------------------------------------------

    def position(self, path: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT position FROM positions WHERE path = ?", (path,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def buckets(self) -> list[tuple[str, str, Any]]:
        """Every bucket held (rule, source, its data): the snapshot with the journal over it."""
        return [(rule, source, data) for rule, source, data in self._load(BUCKETS)]

    # -- snapshots and journals (buckets, pending sightings) -------------------------

    def _load(self, name: str) -> list[list[Any]]:
        """The entries of ``name`` as of now. Buckets: [rule, source, data] (a null data in
        the journal deletes); sightings: [source, rule, kind, count, first, last, added]
        (merged per key by the caller)."""
        db = self._db
        row = db.execute("SELECT data FROM snapshots WHERE name = ?", (name,)).fetchone()
        entries = [] if row is None else _entries_decoder.decode(row[0])
        journal = [
            _entries_decoder.decode(data)
            for (data,) in db.execute(
                "SELECT data FROM journal WHERE name = ? ORDER BY id", (name,)
            )
        ]
        if name != BUCKETS:
            return entries + [e for part in journal for e in part]
        held = {(r, s): d for r, s, d in entries}
        for part in journal:
            for r, s, d in part:
                if d is None:
                    held.pop((r, s), None)
                else:
                    held[(r, s)] = d
        return [[r, s, d] for (r, s), d in held.items()]

    def _reload_sizes(self) -> None:
        """Read the sizes again (at start, and after a rollback undid what they counted)."""
        db = self._db
        self._sizes = {name: [0, 0] for name in (BUCKETS, SIGHTINGS)}
        for name, n in db.execute("SELECT name, entries FROM snapshots"):
            self._sizes.setdefault(name, [0, 0])[0] = int(n)
        for name, n in db.execute("SELECT name, SUM(entries) FROM journal GROUP BY name"):
            self._sizes.setdefault(name, [0, 0])[1] = int(n)

    def _write_snapshot_of(self, name: str, entries: list[list[Any]]) -> None:
        """Replace ``name``'s snapshot and clear its journal (inside the caller's
        transaction)."""
        db = self._db
        db.execute(
            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
            (name, len(entries), msgspec.json.encode(entries)),
        )
        db.execute("DELETE FROM journal WHERE name = ?", (name,))
        self._sizes[name] = [len(entries), 0]

    def _append(self, name: str, entries: list[list[Any]]) -> None:
        """One journal row for ``entries``; folded into a new snapshot once the journal
        outgrows it (inside the caller's transaction)."""
        if not entries:
            return
        db = self._db
        db.execute(
            "INSERT INTO journal (name, entries, data) VALUES (?, ?, ?)",
            (name, len(entries), msgspec.json.encode(entries)),
        )
        size = self._sizes.setdefault(name, [0, 0])
        size[1] += len(entries)
        if size[1] > max(COMPACT_MIN, COMPACT_FACTOR * size[0]):
            self._write_snapshot_of(name, self._load(name))

    @staticmethod
    def _merge(
        pending: Pending,
        key: tuple[str, str, str],
        count: int,
        first: float,
        last: float,
        added: float,
    ) -> None:
        held = pending.get(key)
        if held is None:
            pending[key] = [count, first, last, added]
        else:
            held[0] += count
            held[1] = min(held[1], first)
            held[2] = max(held[2], last)

    def commit_batch(
        self,
        *,
        path: str,
        position: Mapping[str, Any],
        buckets: Iterable[Sequence[Any]],
        counters: Mapping[str, int],
        local_bans: Mapping[Scope, datetime],
        report_id: str | None,
        alerts: list[WireAlert],
        now: datetime,
        sightings: Iterable[SightingRow] = (),
    ) -> None:
        """One transaction: a batch's position, bucket rows (``[rule, source, data]``; a
        None data deletes), counters, bans,
        its sightings (pending), and its report if it raised alerts (with the pending
        sightings)."""
        db = self._db
        self._undo = []
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR REPLACE INTO positions VALUES (?, ?)", (path, json.dumps(position))
            )
            self._append(BUCKETS, [list(row) for row in buckets])
            dropped = self._add_pending(sightings, now)
            self._bump({**counters, "sightings.dropped": dropped})
            db.executemany(
                "INSERT INTO local_bans VALUES (?, ?) ON CONFLICT(scope) DO UPDATE "
                "SET expires = MAX(expires, excluded.expires)",
                [(scope_str(scope), expires.timestamp()) for scope, expires in local_bans.items()],
            )
            if report_id is not None and alerts:
                db.execute(
                    "INSERT INTO outbox (report_id, alerts, sightings, created) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        report_id,
                        msgspec.json.encode(alerts),
                        msgspec.json.encode(self._take_pending()),
                        now.timestamp(),
                    ),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._reload_sizes()
            for key, held in reversed(self._undo):  # what this batch merged in memory goes
                if held is None:
                    self._pending.pop(key, None)
                else:
                    self._pending[key] = held
            raise

    # -- sightings -----------------------------------------------------------------

    def _add_pending(self, sightings: Iterable[SightingRow], now: datetime) -> int:
        """Merge sightings into the pending ones (and journal them: one row); returns how
        many new keys did not fit."""
        pending = self._pending
        undo = self._undo
        dropped = 0
        taken: list[list[Any]] = []
        at = now.timestamp()
        for source, rule, kind, count, first, last in sightings:
            key = (source, rule, kind)
            held = pending.get(key)
            if held is None:
                if len(pending) >= MAX_PENDING:
                    dropped += 1
                    continue
                undo.append((key, None))
                pending[key] = [count, first, last, at]
            else:
                undo.append((key, list(held)))
                held[0] += count
                if first < held[1]:
                    held[1] = first
                if last > held[2]:
                    held[2] = last
            taken.append([source, rule, kind, count, first, last, at])
        self._append(SIGHTINGS, taken)
        return dropped

    def _take_pending(self) -> list[WireSighting]:
        """Remove and return up to MAX_REPORT_SIGHTINGS pending sightings, most counted first
        (inside the caller's transaction: what is left becomes the sightings' snapshot)."""
        pending = self._pending
        if not pending:
            return []
        order = sorted(pending, key=lambda k: (-pending[k][0], pending[k][3]))
        chosen, rest = order[:MAX_REPORT_SIGHTINGS], order[MAX_REPORT_SIGHTINGS:]
        out = []
        for key in chosen:
            count, first, last, _ = pending.pop(key)
            source, rule, kind = key
            out.append(
                WireSighting(
                    source=source,
                    rule=rule,
                    kind="success" if kind == "success" else "failure",
                    count=int(count),
                    first=datetime.fromtimestamp(first, UTC),
                    last=datetime.fromtimestamp(last, UTC),
                )
            )
        self._write_snapshot_of(SIGHTINGS, [[*k, *pending[k]] for k in rest])
        return out

    def pending_sightings(self) -> int:
        return len(self._pending)

    def flush_sightings(self, report_id: str, now: datetime, delay: float) -> bool:
        """Turn the pending sightings into a report of their own once the oldest has waited
        ``delay`` seconds (a batch with alerts takes them sooner). True if a report was
        made."""
        db = self._db
        pending = self._pending
        if not pending or min(v[3] for v in pending.values()) > now.timestamp() - delay:
            return False
        before = {k: list(v) for k, v in pending.items()}
        db.execute("BEGIN IMMEDIATE")
        try:
            taken = self._take_pending()
            if taken:
                db.execute(
                    "INSERT INTO outbox (report_id, alerts, sightings, created) "
                    "VALUES (?, '[]', ?, ?)",
                    (report_id, msgspec.json.encode(taken), now.timestamp()),
                )
                self._drop_old_sighting_reports()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._reload_sizes()
            self._pending = before
            raise
        return bool(taken)

    def _drop_old_sighting_reports(self) -> None:
        db = self._db
        ids = [
            r[0]
            for r in db.execute(
                "SELECT id FROM outbox WHERE CAST(alerts AS TEXT) = '[]' "
                "AND CAST(answers AS TEXT) = '[]' ORDER BY id"
            )
        ]
        extra = ids[: max(0, len(ids) - MAX_SIGHTING_REPORTS)]
        if extra:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in extra])
            self._bump({"sightings.dropped-reports": len(extra)})

    def queue_answers(self, report_id: str, answers: list[WireAnswer], now: datetime) -> None:
        """A report answering consultations (durable like any other)."""
        self._db.execute(
            "INSERT INTO outbox (report_id, alerts, answers, created) VALUES (?, '[]', ?, ?)",
            (report_id, msgspec.json.encode(answers), now.timestamp()),
        )

    def _bump(self, counters: Mapping[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) "
            "DO UPDATE SET value = value + excluded.value",
            [(name, n) for name, n in counters.items() if n],
        )

    def bump(self, counters: Mapping[str, int]) -> None:
        self._bump(counters)

    def counters(self) -> dict[str, int]:
        return {n: int(v) for n, v in self._db.execute("SELECT name, value FROM counters")}

    # -- health: what `shieldwall status` shows of a running agent -------------------

    def set_health(self, key: str, value: str, now: datetime) -> None:
        """How one part of the agent is (``stream``, ``watch:<path>``), and since when."""
        self._db.execute(
            "INSERT INTO health VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value, at = excluded.at WHERE value != excluded.value",
            (key, value, now.timestamp()),
        )

    def health(self) -> dict[str, tuple[str, datetime]]:
        return {
            k: (v, datetime.fromtimestamp(at, UTC))
            for k, v, at in self._db.execute("SELECT key, value, at FROM health ORDER BY key")
        }

    # -- local bans ----------------------------------------------------------------

    def local_bans(self, now: datetime) -> dict[Scope, datetime]:
        self._db.execute("DELETE FROM local_bans WHERE expires <= ?", (now.timestamp(),))
        return {
            parse_scope(s): datetime.fromtimestamp(e, UTC)
            for s, e in self._db.execute("SELECT scope, expires FROM local_bans")
        }

    def drop_local_ban(self, scope: Scope) -> None:
        self._db.execute("DELETE FROM local_bans WHERE scope = ?", (scope_str(scope),))

    # -- outbox --------------------------------------------------------------------

    def outbox(self, limit: int = 100) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT id, report_id, alerts, attempts, sightings, answers FROM outbox "
            "ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxItem(
                r[0],
                r[1],
                _alerts_decoder.decode(r[2]),
                r[3],
                _sightings_decoder.decode(r[4]),
                _answers_decoder.decode(r[5]),
            )
            for r in rows
        ]

    def outbox_size(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def outbox_done(self, item_id: int, counter: str) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
        self._bump({counter: 1})
        db.execute("COMMIT")

    def outbox_attempted(self, item_id: int) -> None:
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (item_id,))

    # -- the council's decisions, as last seen --------------------------------------
    #
    # A snapshot (every claim as of a seq, one blob) plus a journal (each stream batch as it
    # was applied, one row): a batch costs one row whatever the number of active decisions,
    # and the agent writes a new snapshot once the journal outgrows it (amortised O(1) per
    # event). Loading replays the journal over the snapshot.

    def view(self) -> tuple[int, list[Claim]]:
        """The last sequence number applied and the claims held then."""
        db = self._db
        row = db.execute("SELECT value FROM view_meta WHERE key = 'seq'").fetchone()
        seq = int(row[0]) if row else 0
        held: dict[str, tuple[str, float]] = {}
        snap = db.execute("SELECT seq, data FROM view_snapshot WHERE id = 1").fetchone()
        applied = 0
        if snap is not None:
            applied = int(snap[0])
            held = {i: (scope, exp) for i, scope, exp in _claims_decoder.decode(snap[1])}
        for (data,) in db.execute("SELECT data FROM view_journal ORDER BY seq"):
            for event_seq, kind, decision_id, scope, expires in decode_batch(data).events:
                if event_seq <= applied:  # a batch as received may repeat what came before
                    continue
                applied = event_seq
                if kind == "add":
                    held[decision_id] = (scope, expires)
                else:
                    held.pop(decision_id, None)
        return seq, [(i, parse_scope(scope), exp) for i, (scope, exp) in held.items()]

    def journaled(self) -> int:
        """Events in the journal since the last snapshot."""
        row = self._db.execute("SELECT value FROM view_meta WHERE key = 'journaled'").fetchone()
        return int(row[0]) if row else 0

    def _write_snapshot(self, seq: int, claims: Iterable[Claim]) -> None:
        db = self._db
        data = msgspec.json.encode([(i, scope.text(), exp) for i, scope, exp in claims])
        db.execute("INSERT OR REPLACE INTO view_snapshot VALUES (1, ?, ?)", (seq, data))
        db.execute("DELETE FROM view_journal")
        db.execute("INSERT OR REPLACE INTO view_meta VALUES ('seq', ?)", (seq,))
        db.execute("INSERT OR REPLACE INTO view_meta VALUES ('journaled', 0)")

    def save_snapshot(self, seq: int, claims: Iterable[Claim]) -> None:
        """Every claim held as of ``seq`` (a stream snapshot, or the journal compacted)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write_snapshot(seq, claims)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def journal(self, seq: int, events: Sequence[LogEvent], raw: str | bytes | None = None) -> int:
        """One applied batch of events, up to ``seq``; ``raw``: the batch as the stream
        delivered it (kept as it is: no encoding per event; events at or below the seq
        already applied are skipped when loading). Returns the journal's event count."""
        db = self._db
        if raw is None:
            raw = encode(batch_of(events))
        journaled = self.journaled() + len(events)
        db.execute("BEGIN IMMEDIATE")
        try:
            if events:
                db.execute("INSERT OR REPLACE INTO view_journal VALUES (?, ?)", (seq, raw))
            db.execute("INSERT OR REPLACE INTO view_meta VALUES ('seq', ?)", (seq,))
            db.execute("INSERT OR REPLACE INTO view_meta VALUES ('journaled', ?)", (journaled,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return journaled
