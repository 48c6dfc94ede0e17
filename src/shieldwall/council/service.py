"""The council's shell: read state, call the pure treaty, write the log, fan out.

No treaty logic lives here: every "should this be decided?" answer comes from
:class:`shieldwall.treaty.Treaty`. The service turns verified reports, operator commands,
membership changes and the passing of time into treaty events, and carries out the effects
in order (``docs/treaty.md``, "Calling the treaty"):

========  =========================================================================
effect    what the service does
========  =========================================================================
Decide    an ``add`` event in the decision log, with its evidence chain
Revoke    a ``revoke`` event, with why it was revoked
Refuse    the refusals table, counter ``refusals.<clause>``
Amend     replaces the decision's stored evidence
Flag      the flags table, counter ``flags.<clause>``, a warning in the log
Consult   a consultation on every live stream (SSE ``event: consult``; not in the log)
Close     counter ``concerns.<outcome>``
Audit     the audit table
Hold      counter ``quorum.held``
========  =========================================================================

Everything one request (or one group of reports) changes is written in **one store
transaction** — log events, evidence, refusals, flags, audit, nonces, counters — and published
to the fan-out as **one batch** after the commit. Reports that arrive within
``group_window`` seconds of each other are verified and committed together (group commit):
under load, hundreds of reports cost one transaction and one stream message.

One lock serialises the treaty and the log writes, so the log's order is the treaty's order.
The treaty's state is persisted by :meth:`CouncilService.tick` every ``state_interval``
seconds and by :meth:`CouncilService.stop`, never per report: a crash loses the state's
changes since the last save (buckets of sightings, open concerns, quorum requests, blast
radius counts); decisions and their evidence are in the store and are adopted again by
``Treaty.sync`` at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from nacl.signing import VerifyKey

from shieldwall.clock import Clock
from shieldwall.config.schema import check_member_name
from shieldwall.council import stream
from shieldwall.council.fanout import Batch, Fanout, InProcessFanout, Notice
from shieldwall.council.store.base import (
    EvidenceRecord,
    FlagRecord,
    MemberRecord,
    Plain,
    Store,
)
from shieldwall.errors import ConfigError, SignatureError, StoreError, WireError
from shieldwall.model import (
    Address,
    Decision,
    DecisionEvent,
    EventKind,
    Refusal,
    Scope,
    scope_str,
)
from shieldwall.treaty import (
    TRUST_LEVELS,
    Alerted,
    AllowlistAdd,
    AllowlistRemove,
    Amend,
    Answered,
    Audit,
    AuditRecord,
    BanItem,
    Close,
    Concern,
    Consult,
    Decide,
    Effect,
    Enroll,
    Event,
    Evidence,
    Flag,
    Hold,
    ManualBan,
    ManualBans,
    ManualUnban,
    ManualUnbans,
    MemberInfo,
    RaiseConcern,
    Refuse,
    Revoke,
    RevokeMember,
    Sighted,
    Sighting,
    Tick,
    Treaty,
    TreatyState,
    TreatyTerms,
    forward_order,
)
from shieldwall.wire import signing
from shieldwall.wire.messages import (
    Report,
    WireConsult,
    WireLift,
    WireProtect,
    alert_from_wire,
    check_answer,
    concern_source,
    decode_concern,
    decode_report,
    encode,
    sighting_from_wire,
)
from shieldwall.wire.stream import Signer

log = logging.getLogger("shieldwall.council")

OPERATOR = "operator"
MAX_CONSULTED = 20_000
"""Concern ids remembered so that each is put to the members once."""
MAX_GROUP = 500
"""Reports committed together at most (group commit)."""
MEMBER_WIDEST = {4: 16, 6: 32}
"""The widest network a member may be enrolled with, by IP version: its own hosts (an
enrollment with 0.0.0.0/0 would protect everything, and revoke every decision at once)."""
WRITE_CHUNK = 500
"""Effects written per transaction when a group of reports holds more (about 8 ms of
SQLite): the event loop gets a turn between them."""
YIELD_EVERY = 50
"""Alerts judged between two returns to the event loop (about 3 ms of treaty work)."""
THREADED_CHECKS = 8
"""A group with at least this many signatures has them checked in a worker thread (fewer:
the hop would cost more than it frees)."""
EXPIRE_CHUNK = 10_000
"""Decisions expired per transaction and stream message."""
LOG_EACH = 20
"""A commit of at most this many log events is logged event by event; larger ones in one
line."""


@dataclass(slots=True)
class ReportOutcome:
    """What the treaty made of one request (a report, a command, a membership change)."""

    decided: list[Decision] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    revoked: list[Decision] = field(default_factory=list)
    duplicates: int = 0
    malformed: int = 0
    held: list[Hold] = field(default_factory=list)
    amended: int = 0
    extended: int = 0
    """Of ``decided``, how many extend an active decision (same id, later expiry)."""
    sightings: int = 0
    answers: int = 0
    concerns: list[Concern] = field(default_factory=list)
    """Concerns put to the members (``Consult``), including one raised again."""
    consulted: list[Concern] = field(default_factory=list)
    """Of those, the ones published now (each concern id is published once)."""
    closed: list[Close] = field(default_factory=list)
    flagged: list[FlagRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BanOutcome:
    """An operator ban: ``added``, ``extended`` or ``unchanged`` (an operator decision on the
    scope already lasts as long: ``decision`` is that one), or ``refused``."""

    outcome: str
    decision: Decision | None = None
    refusal: Refusal | None = None


@dataclass(slots=True)
class BulkOutcome:
    """A chunk of an import (or of a bulk unban)."""

    added: int = 0
    extended: int = 0
    unchanged: int = 0
    revoked: int = 0
    missing: int = 0
    """Unbans of a scope no decision was on."""
    refused: list[tuple[int, Refusal]] = field(default_factory=list)
    """(item index, refusal)."""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Explanation:
    """``GET /v1/decisions/{id}/explain``: a decision, its state and its evidence chain."""

    decision: Decision
    state: str
    evidence: dict[str, Any] | None
    revoked: dict[str, Any] | None


def id_maker() -> Iterator[str]:
    """Decision and concern ids: a random 64-bit prefix per process, then a counter (unique
    across restarts and replicas without a 5 µs ``uuid4`` per decision)."""
    prefix = secrets.token_hex(8)
    return (f"{prefix}{n:06x}" for n in count(1))


def member_info(m: MemberRecord) -> MemberInfo:
    return MemberInfo(m.name, m.trust, m.revoked, m.addresses)


@dataclass(slots=True)
class _Pending:
    """A report waiting for its group's commit."""

    report: Report
    body: bytes
    signature: str | None
    future: asyncio.Future[ReportOutcome]


@dataclass(slots=True)
class _Commit:
    """What a transaction wrote, to announce once it committed."""

    events: list[DecisionEvent] = field(default_factory=list)
    chains: dict[str, Evidence] = field(default_factory=dict)
    consulted: list[Concern] = field(default_factory=list)
    outcomes: list[ReportOutcome] = field(default_factory=list)


def _slices(groups: Sequence[Sequence[Effect]], size: int) -> list[list[list[Effect]]]:
    """``groups`` cut into parts of about ``size`` effects, each part one list per group
    (in order), so that each part's outcomes line up with the groups."""
    total = sum(len(g) for g in groups)
    if total <= size:
        return [[list(g) for g in groups]]
    parts: list[list[list[Effect]]] = []
    part: list[list[Effect]] = [[] for _ in groups]
    filled = 0
    for i, effects in enumerate(groups):
        for e in effects:
            part[i].append(e)
            filled += 1
            if filled >= size:
                parts.append(part)
                part, filled = [[] for _ in groups], 0
    if filled or not parts:
        parts.append(part)
    return parts


def _merge(total: ReportOutcome, part: ReportOutcome) -> None:
    """Add one slice's outcome of a report to what the earlier slices gave."""
    for name in ReportOutcome.__dataclass_fields__:
        value = getattr(part, name)
        if isinstance(value, list):
            getattr(total, name).extend(value)
        else:
            setattr(total, name, getattr(total, name) + value)


class CouncilService:
    def __init__(
        self,
        store: Store,
        terms: TreatyTerms,
        clock: Clock,
        *,
        replay_window: float = 300.0,
        fanout: Fanout | None = None,
        tick_interval: float = 5.0,
        state_interval: float = 30.0,
        group_window: float = 0.002,
        council_key: str | None = None,
    ) -> None:
        """``council_key``: the council's private key (base64), which signs every stream
        message; None: a key of its own, made now (tests)."""
        self.store = store
        private = council_key or signing.generate()[0]
        key = signing.signing_key(private)
        self.public_key = signing.public_from_private(private)
        """What members pin as ``council-key``."""
        self._sign: Signer = functools.partial(signing.sign, key)
        self.terms = terms
        self.clock = clock
        self.replay_window = replay_window
        self.fanout: Fanout = fanout or InProcessFanout()
        self.tick_interval = tick_interval
        self.state_interval = state_interval
        self.group_window = group_window
        ids = id_maker()
        self._new_id = lambda: next(ids)
        self.treaty = Treaty(terms, new_id=self._new_id)
        self._members: dict[str, MemberRecord] = {}
        """The roster, for forward presence (who to serve first); verification reads the
        store."""
        self._lock = asyncio.Lock()
        self._consulted: OrderedDict[str, None] = OrderedDict()
        self._last_tick: datetime | None = None
        self._last_save: datetime | None = None
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._protect_for: object = None
        self._protect_bytes = b""
        self.storage_fault: str | None = None
        """Why the last commit failed (a full disk…), until one succeeds: health says 503."""

    # -- lifecycle -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _committing(self) -> AsyncIterator[None]:
        """The store's transaction. When it fails (a full disk, an I/O error) the treaty's
        memory, already changed, is rebuilt from the store — it never believes a decision
        that was not written — and ``storage_fault`` says why until a commit succeeds."""
        try:
            async with self.store.transaction():
                yield
        except StoreError as exc:
            if self.storage_fault is None:
                log.error("storage.failed %s (the council answers 503 until it recovers)", exc)
            self.storage_fault = str(exc)
            await self._reload(self.clock.now())
            raise
        if self.storage_fault is not None:
            log.warning("storage.recovered after: %s", self.storage_fault)
            self.storage_fault = None

    async def start(self) -> None:
        """Load members, the treaty's state and the active set; ``sync`` the treaty."""
        async with self._lock:
            now = self.clock.now()
            effects, unreadable = await self._reload(now)
            await self.store.counters.bump(unreadable)
            await self._carry_out(effects, now)
            self._last_tick = self._last_save = now

    async def _reload(self, now: datetime) -> tuple[list[Effect], dict[str, int]]:
        """Members, the treaty's saved state and the active set, from the store, into a new
        treaty (reads only). Returns its ``sync`` effects, for the caller to carry out, and
        what could not be read (counters)."""
        records = await self.store.members.list()
        self._members = {m.name: m for m in records}
        state, unreadable = await self._load_state()
        self.treaty = Treaty(
            self.terms, [member_info(m) for m in records], state, new_id=self._new_id
        )
        _, active = await self.store.log.active(now)
        stored = await self.store.log.evidence([d.id for d in active])
        evidence: dict[str, Evidence] = {}
        for decision_id, plain in stored.items():
            try:
                evidence[decision_id] = Evidence.from_plain(plain)
            except (KeyError, TypeError, ValueError):
                unreadable["treaty.evidence.unreadable"] = (
                    unreadable.get("treaty.evidence.unreadable", 0) + 1
                )
        log.info(
            "treaty.loaded members=%d decisions=%d state=%s",
            len(records),
            len(active),
            "restored" if state is not None else "empty",
        )
        return list(self.treaty.sync(active, now, evidence)), unreadable

    async def _load_state(self) -> tuple[TreatyState | None, dict[str, int]]:
        blob = await self.store.treaty.load()
        if blob is None:
            return None, {}
        try:
            return TreatyState.from_plain(blob, self.terms), {}
        except (KeyError, TypeError, ValueError) as exc:
            # decide less, never more: the buckets start empty, decisions come from the store
            log.warning("treaty.state.unreadable %s; starting from the store alone", exc)
            return None, {"treaty.state.unreadable": 1}

    async def save_state(self) -> None:
        """Persist the treaty's state (the reaper calls this every ``state_interval``)."""
        async with self._lock:
            now = self.clock.now()
            await self.store.treaty.save(self.treaty.state.to_plain(), now)
            self._last_save = now

    async def stop(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.save_state()

    async def tick(self) -> int:
        """The reaper's round: ``expire`` events for decisions past their expiry, the
        treaty's ``Tick`` every ``tick_interval``, its state saved every ``state_interval``.
        Returns how many decisions expired."""
        if self.storage_fault is not None:  # has space come back? (a commit tells)
            with contextlib.suppress(StoreError):
                async with self._lock, self._committing():
                    await self.store.counters.bump({"storage.probes": 1})
        expired = await self.expire_due()
        now = self.clock.now()
        if self._last_tick is None or now - self._last_tick >= timedelta(
            seconds=self.tick_interval
        ):
            async with self._lock:
                await self._carry_out(self.treaty.handle(Tick(), now), now)
            self._last_tick = now
        if self._last_save is None or now - self._last_save >= timedelta(
            seconds=self.state_interval
        ):
            await self.save_state()
        return expired

    # -- carrying out the treaty's effects -------------------------------------------

    async def _handle(self, events: Sequence[Event], now: datetime) -> ReportOutcome:
        """Apply events to the treaty and carry out their effects (caller holds the lock)."""
        effects: list[Effect] = []
        for event in events:
            effects += self.treaty.handle(event, now)
        return await self._carry_out(effects, now)

    async def _carry_out(
        self, effects: Sequence[Effect], now: datetime, counters: Mapping[str, int] = {}
    ) -> ReportOutcome:
        """Carry out effects in order, in one transaction; then announce them."""
        async with self._committing():
            done = await self._write([effects], now, counters)
        await self._announce(done, now)
        return done.outcomes[0]

    async def _write(
        self, groups: Sequence[Sequence[Effect]], now: datetime, counters: Mapping[str, int]
    ) -> _Commit:
        """Write the effects of each group (one outcome per group) inside the caller's
        transaction: one append for every log change, one write per table."""
        done = _Commit()
        changes: list[tuple[EventKind, Decision]] = []
        whys: list[Plain | None] = []
        added: dict[str, int] = {}
        amends: dict[str, Plain] = {}
        audits: list[Plain] = []
        counts: dict[str, int] = dict(counters)

        def bump(name: str, n: int = 1) -> None:
            counts[name] = counts.get(name, 0) + n

        for effects in groups:
            out = ReportOutcome()
            for e in effects:
                if isinstance(e, Decide):
                    added[e.decision.id] = len(changes)
                    changes.append((EventKind.ADD, e.decision))
                    whys.append(e.evidence.to_plain() if e.keep else None)
                    done.chains[e.decision.id] = e.evidence
                    out.decided.append(e.decision)
                    out.extended += e.extends
                elif isinstance(e, Revoke):
                    changes.append((EventKind.REVOKE, e.decision))
                    whys.append(e.evidence.to_plain())
                    out.revoked.append(e.decision)
                elif isinstance(e, Refuse):
                    out.refused.append(e.refusal)
                    bump(f"refusals.{e.refusal.reason.split(':')[0]}")
                elif isinstance(e, Amend):
                    out.amended += 1
                    at = added.get(e.decision.id)
                    if at is not None:
                        whys[at] = e.evidence.to_plain()
                        done.chains[e.decision.id] = e.evidence
                    else:
                        amends[e.decision.id] = e.evidence.to_plain()
                elif isinstance(e, Hold):
                    out.held.append(e)
                    bump("quorum.held")
                elif isinstance(e, Flag):
                    out.flagged.append(FlagRecord(e.member, e.clause, e.at, e.reason))
                    bump(f"flags.{e.clause}")
                elif isinstance(e, Consult):
                    out.concerns.append(e.concern)
                    if e.concern.id not in self._consulted:
                        self._consulted[e.concern.id] = None
                        while len(self._consulted) > MAX_CONSULTED:
                            self._consulted.popitem(last=False)
                        out.consulted.append(e.concern)
                        done.consulted.append(e.concern)
                        bump("concerns.consulted")
                elif isinstance(e, Close):
                    out.closed.append(e)
                    bump(f"concerns.{e.outcome}")
                elif isinstance(e, Audit):
                    audits.append(e.record.to_plain())
            done.outcomes.append(out)
        store = self.store
        if changes:
            done.events = await store.log.append(changes, now, whys)
        if amends:
            await store.log.set_evidence(list(amends.items()))
        refused = [r for out in done.outcomes for r in out.refused]
        if refused:
            await store.records.add_refusals(refused)
        flagged = [f for out in done.outcomes for f in out.flagged]
        if flagged:
            await store.records.add_flags(flagged)
        if audits:
            await store.records.add_audit(audits)
        await store.counters.bump(counts)
        return done

    async def _announce(self, done: _Commit, now: datetime) -> None:
        """After the commit: one batch to the fan-out, the consultations, the log lines."""
        if done.events:
            await self.fanout.publish(Batch(done.events), self._first(done, now))
            self._log_events(done.events)
        for out in done.outcomes:
            for r in out.refused[:LOG_EACH]:
                log.warning(
                    "decision.refused scope=%s reason=%s member=%s",
                    scope_str(r.scope),
                    r.reason,
                    r.member,
                )
            if len(out.refused) > LOG_EACH:
                log.warning("decision.refused more=%d", len(out.refused) - LOG_EACH)
            for f in out.flagged:
                log.warning("member.flagged member=%s clause=%s %s", f.member, f.clause, f.reason)
            for c in out.closed:
                log.info(
                    "concern.closed id=%s source=%s outcome=%s",
                    c.concern.id,
                    c.concern.source,
                    c.outcome,
                )
        for concern in done.consulted:
            await self.fanout.notify(Notice("consult", encode(consult_to_wire(concern))))
            log.info("concern.consult id=%s source=%s", concern.id, concern.source)

    def _first(self, done: _Commit, now: datetime) -> list[str]:
        """Forward presence: for the commit's first decision with a rule, the members most
        likely to be hit next, who are served first."""
        decision = next(
            (e.decision for e in done.events if e.kind is EventKind.ADD and e.decision.rule),
            None,
        )
        if decision is None:
            return []
        names = [m.name for m in self._members.values() if not m.revoked]
        activity = self.treaty.activity(now)
        return forward_order(decision, names, activity, evidence=done.chains.get(decision.id))

    @staticmethod
    def _log_events(events: Sequence[DecisionEvent]) -> None:
        if len(events) <= LOG_EACH:
            for e in events:
                log.info(
                    "decision.%s seq=%d scope=%s id=%s member=%s",
                    e.kind.value,
                    e.seq,
                    scope_str(e.decision.scope),
                    e.decision.id,
                    e.decision.member,
                )
            return
        counts = {k.value: sum(1 for e in events if e.kind is k) for k in EventKind}
        log.info(
            "decisions.committed seq=%d..%d %s",
            events[0].seq,
            events[-1].seq,
            " ".join(f"{k}={n}" for k, n in counts.items() if n),
        )

    # -- members -------------------------------------------------------------------

    async def enroll(
        self, name: str, public_key: str, addresses: tuple[Scope, ...], trust: str = "member"
    ) -> MemberRecord:
        try:
            check_member_name(name, "request", "name")
        except ConfigError as exc:
            raise WireError(exc.why) from exc
        if trust not in TRUST_LEVELS:
            raise WireError(f"trust must be one of {', '.join(TRUST_LEVELS)}")
        for a in addresses:
            widest = MEMBER_WIDEST[a.version]
            if a.prefixlen < widest:
                raise WireError(
                    f"address {scope_str(a)} is wider than a /{widest}: a member's addresses "
                    "are its own hosts (protect more with the allowlist)"
                )
        key = signing.check_public_key(public_key)
        async with self._lock:
            now = self.clock.now()
            record = MemberRecord(name, key, addresses, trust, now)
            held = await self.store.members.get(name)
            if held is not None and not held.revoked:
                raise StoreError(
                    f"member {name!r} is enrolled (a new key: members rekey; or revoke it first)"
                )
            effects = self.treaty.handle(Enroll(member_info(record), OPERATOR), now)
            async with self._committing():
                if held is None:
                    await self.store.members.add(record)
                else:  # a revoked name, enrolled again with a new key
                    await self.store.members.replace(record)
                done = await self._write([effects], now, {"members.enrolled": 1})
            self._members[name] = record
            await self._announce(done, now)
            await self._announce_protect()
        log.info("member.enrolled name=%s trust=%s", name, trust)
        return record

    async def revoke_member(self, name: str, reason: str = "") -> ReportOutcome | None:
        """Revoke a member; what rested on its evidence alone is revoked through the log.
        None when there is no such active member."""
        async with self._lock:
            now = self.clock.now()
            member = await self.store.members.get(name)
            if member is None or member.revoked:
                return None
            effects = self.treaty.handle(RevokeMember(name, OPERATOR, reason), now)
            async with self._committing():
                await self.store.members.revoke(name, now)
                done = await self._write([effects], now, {"members.revoked": 1})
            self._members[name] = MemberRecord(
                member.name, member.public_key, member.addresses, member.trust, member.created, now
            )
            await self._announce(done, now)
            cut = await self.fanout.drop(name)  # its open streams end now
        out = done.outcomes[0]
        log.info(
            "member.revoked name=%s decisions_revoked=%d streams_cut=%d",
            name,
            len(out.revoked),
            cut,
        )
        return out

    async def rekey(self, name: str, public_key: str) -> MemberRecord | None:
        """Give an enrolled member a new key (its old one is refused from now on, and its
        open streams end); None when there is no such active member. StoreError when the
        key is another member's."""
        key = signing.check_public_key(public_key)
        async with self._lock:
            now = self.clock.now()
            member = await self.store.members.get(name)
            if member is None or member.revoked:
                return None
            record = MemberRecord(
                member.name, key, member.addresses, member.trust, member.created, None
            )
            audit = AuditRecord(now, OPERATOR, "member.rekey", "done", subject=name)
            async with self._committing():
                await self.store.members.replace(record)
                await self.store.records.add_audit([audit.to_plain()])
                await self.store.counters.bump({"members.rekeyed": 1})
            self._members[name] = record
            cut = await self.fanout.drop(name)
        log.info("member.rekeyed name=%s streams_cut=%d", name, cut)
        return record

    async def members(self) -> list[MemberRecord]:
        return await self.store.members.list()

    async def member(self, name: str) -> MemberRecord | None:
        return await self.store.members.get(name)

    # -- reports (group commit) ----------------------------------------------------

    async def _verify(
        self, name: str, body: bytes, signature: str | None, sent_at: datetime, nonce: str
    ) -> MemberRecord:
        """An enrolled, unrevoked member signed ``body``, fresh and never seen before."""
        member = await self._identify(name, signature)
        signing.verify(signing.verify_key(member.public_key), body, signature or "")
        await self._fresh(member, sent_at, nonce, self.clock.now())
        return member

    async def _identify(self, name: str, signature: str | None) -> MemberRecord:
        """The enrolled, unrevoked member ``name``, if the message carries a signature."""
        member = await self.store.members.get(name)
        if member is None:
            raise SignatureError("unknown-member", f"{name!r} is not enrolled")
        if member.revoked:
            raise SignatureError("revoked", f"{name!r} was revoked")
        if not signature:
            raise SignatureError("unsigned", "the X-Shieldwall-Signature header is missing")
        return member

    async def _fresh(
        self,
        member: MemberRecord,
        sent_at: datetime,
        nonce: str,
        now: datetime,
        later: dict[tuple[str, str], None] | None = None,
    ) -> None:
        """``sent_at`` is within the replay window and ``nonce`` was never received. It is
        remembered now, or, with ``later``, only checked and added there (for the caller
        to remember in its transaction; a nonce twice in ``later`` is a replay too)."""
        if sent_at.tzinfo is None:
            raise SignatureError("malformed", "sent_at needs a time zone")
        skew = abs((now - sent_at).total_seconds())
        if skew > self.replay_window:
            raise SignatureError("stale", f"sent_at is {skew:.0f}s away from council time")
        if later is None:
            if not await self.store.nonces.remember(member.name, nonce, now):
                raise SignatureError("replayed", f"{nonce} was already received")
            return
        key = (member.name, nonce)
        if key in later or await self.store.nonces.seen(member.name, nonce):
            raise SignatureError("replayed", f"{nonce} was already received")
        later[key] = None

    async def _signed_by(self, group: Sequence[_Pending]) -> list[MemberRecord | SignatureError]:
        """Who signed each report of ``group`` (or why not): the signatures of a group
        are checked together, off the event loop when there are many (libsodium releases
        the GIL, so HTTP keeps being served meanwhile)."""
        found: list[MemberRecord | SignatureError] = []
        checks: list[tuple[int, VerifyKey, bytes, str]] = []
        for i, p in enumerate(group):
            try:
                member = await self._identify(p.report.member, p.signature)
                key = signing.verify_key(member.public_key)
            except SignatureError as exc:
                found.append(exc)
                continue
            found.append(member)
            checks.append((i, key, p.body, p.signature or ""))
        items = [(key, body, sig) for _, key, body, sig in checks]
        if len(items) >= THREADED_CHECKS:
            errors = await asyncio.to_thread(signing.verify_all, items)
        else:
            errors = signing.verify_all(items)
        for (i, *_), err in zip(checks, errors, strict=True):
            if err is not None:
                found[i] = err
        return found

    async def receive_report(self, body: bytes, signature: str | None) -> ReportOutcome:
        """Verify and judge one signed report, committed with the reports that arrive
        within ``group_window``. Raises SignatureError (refused) or WireError."""
        try:
            report = decode_report(body)
        except WireError:
            await self.store.counters.bump({"reports.refused.malformed": 1})
            raise
        future: asyncio.Future[ReportOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(report, body, signature, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="reports.flush")
        return await future

    async def _flush(self) -> None:
        """Judge queued reports a group at a time until none are left."""
        while self._queue:
            if self.group_window > 0:
                await asyncio.sleep(self.group_window)  # let the reports in flight join
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                results = await self._judge_group(group)
            except Exception as exc:  # the whole group failed (a StoreError): every caller
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(group, results, strict=True):
                if p.future.done():
                    continue
                if isinstance(result, ReportOutcome):
                    p.future.set_result(result)
                else:
                    p.future.set_exception(result)

    async def _judge_group(self, group: Sequence[_Pending]) -> list[ReportOutcome | Exception]:
        results: list[ReportOutcome | Exception] = []
        async with self._lock:
            now = self.clock.now()
            counts: dict[str, int] = {}
            groups: list[list[Effect]] = []
            stats: list[tuple[int, int, int, int]] = []
            signers = await self._signed_by(group)
            # judged before the transaction opens: the treaty's pass may give the loop back
            # (a large report), and no transaction may be open while it does (another
            # coroutine's write would join it). The nonces are only read here; they are
            # written with the effects, and nobody else writes them meanwhile (the lock).
            accepted: dict[tuple[str, str], None] = {}
            for p, signer in zip(group, signers, strict=True):
                report = p.report
                try:
                    if isinstance(signer, SignatureError):
                        raise signer
                    member = signer
                    await self._fresh(member, report.sent_at, report.id, now, accepted)
                except SignatureError as exc:
                    name = f"reports.refused.{exc.reason}"
                    counts[name] = counts.get(name, 0) + 1
                    log.warning(
                        "report.refused reason=%s member=%r", exc.reason, report.member[:64]
                    )
                    results.append(exc)
                    continue
                effects, item_stats = await self._report_effects(member, report, now)
                groups.append(effects)
                stats.append(item_stats)
                results.append(ReportOutcome())  # filled in below
                counts["reports.accepted"] = counts.get("reports.accepted", 0) + 1
                for name, n in zip(
                    ("report.items.malformed", "alerts.duplicate", "sightings.received",
                     "answers.received"),
                    item_stats,
                    strict=True,
                ):  # fmt: skip
                    counts[name] = counts.get(name, 0) + n
            # a large group is written a slice at a time, giving the loop back in between;
            # its nonces and counters go with the last slice, so a failure on the way lets
            # the members send their reports again (what was written is then a duplicate)
            merged = [ReportOutcome() for _ in groups]
            parts = _slices(groups, WRITE_CHUNK)
            for k, part in enumerate(parts):
                last = k == len(parts) - 1
                if k:
                    await asyncio.sleep(0)
                async with self._committing():
                    if last:
                        for member_name, nonce in accepted:
                            await self.store.nonces.remember(member_name, nonce, now)
                    done = await self._write(part, now, counts if last else {})
                await self._announce(done, now)
                for total, out in zip(merged, done.outcomes, strict=True):
                    _merge(total, out)
        outcomes = iter(zip(merged, stats, strict=True))
        for i, result in enumerate(results):
            if isinstance(result, ReportOutcome):
                out, (malformed, duplicates, sightings, answers) = next(outcomes)
                out.malformed, out.duplicates = malformed, duplicates
                out.sightings, out.answers = sightings, answers
                results[i] = out
        return results

    async def _report_effects(
        self, member: MemberRecord, report: Report, now: datetime
    ) -> tuple[list[Effect], tuple[int, int, int, int]]:
        """The treaty's effects of one verified report, and its (malformed, duplicate
        alerts, sightings, answers) counts. A large report gives the event loop back every
        ``YIELD_EVERY`` alerts (health checks and streams go on; other reports wait for the
        lock, as they would)."""
        malformed = duplicates = answers = 0
        sightings: list[Sighting] = []
        for raw in report.sightings:
            try:
                sightings.append(sighting_from_wire(raw, report.sent_at))
            except WireError:
                malformed += 1
        effects: list[Effect] = []
        for i, raw_alert in enumerate(report.alerts):
            if i and not i % YIELD_EVERY:
                await asyncio.sleep(0)
            try:
                alert = alert_from_wire(raw_alert, report.sent_at)
            except WireError:
                malformed += 1
                continue
            found = self.treaty.handle(Alerted(member.name, alert, report.id), now)
            if not any(isinstance(e, Decide | Refuse | Hold) for e in found):
                duplicates += 1  # an active decision covers it already
            effects += found
        if sightings:
            effects += self.treaty.handle(Sighted(member.name, tuple(sightings), report.id), now)
        for raw_answer in report.answers:
            try:
                a = check_answer(raw_answer)
            except WireError:
                malformed += 1
                continue
            answers += 1
            event = Answered(a.concern, member.name, a.failures, a.successes, report=report.id)
            effects += self.treaty.handle(event, now)
        return effects, (malformed, duplicates, len(sightings), answers)

    # -- Article 4 -----------------------------------------------------------------

    async def raise_concern(
        self,
        source: Address,
        member: str | None = None,
        reason: str = "",
        rule: str | None = None,
    ) -> ReportOutcome:
        """Article 4: an operator (``member=None``) or a member is suspicious of ``source``."""
        async with self._lock:
            now = self.clock.now()
            event = RaiseConcern(
                source, member, reason, rule, OPERATOR if member is None else member
            )
            effects = self.treaty.handle(event, now)
            return await self._carry_out(effects, now, {"concerns.raised": 1})

    async def receive_concern(self, body: bytes, signature: str | None) -> ReportOutcome:
        """A member's signed concern. Raises SignatureError (refused) or WireError."""
        try:
            req = decode_concern(body)
            source = concern_source(req)
        except WireError:
            await self.store.counters.bump({"concerns.refused.malformed": 1})
            raise
        try:
            async with self._committing():
                member = await self._verify(req.member, body, signature, req.sent_at, req.id)
        except SignatureError as exc:
            await self.store.counters.bump({f"concerns.refused.{exc.reason}": 1})
            raise
        return await self.raise_concern(
            source, member.name, req.reason[:500], None if req.rule is None else req.rule[:100]
        )

    # -- operator decisions --------------------------------------------------------

    async def ban(
        self, scope: Scope, duration: float | None, reason: str, *, force: bool = False
    ) -> BanOutcome:
        """One operator ban: a new decision, the operator decision already on the scope
        extended, that decision unchanged (it lasts as long), or a refusal."""
        async with self._lock:
            now = self.clock.now()
            effects = self.treaty.handle(ManualBan(scope, duration, reason, OPERATOR, force), now)
            decided = next((e for e in effects if isinstance(e, Decide)), None)
            counts = (
                {"decisions.operator": 1} if decided is not None and not decided.extends else {}
            )
            out = await self._carry_out(effects, now, counts)
        if out.refused:
            return BanOutcome("refused", refusal=out.refused[0])
        if out.decided:
            return BanOutcome("extended" if out.extended else "added", out.decided[0])
        held = next(
            e.decision
            for e in self.treaty.state.ledger.on_scope(scope, now)
            if e.decision.origin.value == OPERATOR
        )
        return BanOutcome("unchanged", held)

    async def ban_many(
        self,
        items: Sequence[BanItem],
        *,
        duration: float | None = None,
        reason: str = "",
        source: str = "",
    ) -> BulkOutcome:
        """A chunk of an import: one treaty pass, one transaction, one stream message."""
        async with self._lock:
            now = self.clock.now()
            event = ManualBans(tuple(items), duration, reason, OPERATOR, source)
            effects = self.treaty.handle(event, now)
            added = sum(1 for e in effects if isinstance(e, Decide) and not e.extends)
            extended = sum(1 for e in effects if isinstance(e, Decide) and e.extends)
            counts = {"decisions.operator": added, "decisions.extended": extended}
            out = await self._carry_out(effects, now, counts)
            seq = await self.store.log.last_seq()
        where: dict[Scope, list[int]] = {}
        for i, item in enumerate(items):
            where.setdefault(item.scope, []).append(i)
        refused = [(where[r.scope].pop(0), r) for r in out.refused]
        unchanged = len(items) - added - extended - len(refused)
        log.info(
            "decisions.imported added=%d extended=%d unchanged=%d refused=%d source=%r",
            added,
            extended,
            unchanged,
            len(refused),
            source[:200],
        )
        return BulkOutcome(added, extended, unchanged, refused=refused, seq=seq)

    async def unban(self, target: Scope | str) -> list[Decision]:
        """Revoke every active decision on ``target`` (a scope) or with that id."""
        async with self._lock:
            now = self.clock.now()
            effects = self.treaty.handle(ManualUnban(target, OPERATOR), now)
            n = sum(1 for e in effects if isinstance(e, Revoke))
            out = await self._carry_out(effects, now, {"decisions.revoked": n})
        if not isinstance(target, str):
            await self._announce_lift([target])
        return out.revoked

    async def unban_many(self, targets: Sequence[Scope], source: str = "") -> BulkOutcome:
        """Revoke every active decision on each scope: one transaction, one message."""
        async with self._lock:
            now = self.clock.now()
            effects = self.treaty.handle(ManualUnbans(tuple(targets), OPERATOR, "", source), now)
            revoked = [e for e in effects if isinstance(e, Revoke)]
            out = await self._carry_out(effects, now, {"decisions.revoked": len(revoked)})
            seq = await self.store.log.last_seq()
        await self._announce_lift(targets)
        hit = {d.scope for d in out.revoked}
        missing = sum(1 for t in targets if t not in hit)
        return BulkOutcome(revoked=len(out.revoked), missing=missing, seq=seq)

    async def allowlist_add(self, scope: Scope, reason: str) -> list[Decision]:
        """Protect ``scope`` from now on (audited); active decisions overlapping it are
        revoked. The treaty state is saved at once, so the change survives a crash."""
        async with self._lock:
            now = self.clock.now()
            out = await self._handle([AllowlistAdd(scope, OPERATOR, reason)], now)
            await self._announce_protect()
        await self.save_state()
        return out.revoked

    async def allowlist_remove(self, scope: Scope, reason: str) -> bool:
        """Stop protecting a scope added at run time (audited). Entries of the council's
        config file are changed there; removing one here is refused (False)."""
        async with self._lock:
            now = self.clock.now()
            before = list(self.treaty.state.allowlist)
            await self._handle([AllowlistRemove(scope, OPERATOR, reason)], now)
            removed = scope in before and scope not in self.treaty.state.allowlist
            await self._announce_protect()
        await self.save_state()
        return removed

    def allowlist(self) -> tuple[list[Scope], list[Scope]]:
        """``(configured, added at run time)``."""
        return list(self.treaty.terms.allowlist), list(self.treaty.state.allowlist)

    async def expire_due(self) -> int:
        """Append ``expire`` events for decisions past their expiry, a chunk per transaction
        and stream message. Returns how many."""
        expired = 0
        while True:
            async with self._lock:
                now = self.clock.now()
                due = await self.store.log.due_for_expiry(now, EXPIRE_CHUNK)
                if due:
                    async with self._committing():
                        events = await self.store.log.append(
                            [(EventKind.EXPIRE, d) for d in due], now
                        )
                    await self._announce(_Commit(events=events), now)
            expired += len(due)
            if len(due) < EXPIRE_CHUNK:
                break
        cutoff = self.clock.now() - timedelta(seconds=2 * self.replay_window)
        await self.store.nonces.forget(cutoff)
        return expired

    # -- reading -------------------------------------------------------------------

    async def snapshot(self) -> tuple[int, list[Decision]]:
        return await self.store.log.active(self.clock.now())

    async def active_pages(self, page: int = stream.PAGE) -> AsyncIterator[list[Decision]]:
        """The active set a page at a time (never whole in memory)."""
        cursor: str | None = None
        while True:
            decisions, cursor = await self.store.log.active_page(self.clock.now(), cursor, page)
            if decisions:
                yield decisions
            if cursor is None:
                return

    async def active_page(
        self, cursor: str | None, limit: int
    ) -> tuple[list[Decision], str | None]:
        return await self.store.log.active_page(self.clock.now(), cursor, limit)

    async def last_seq(self) -> int:
        return await self.store.log.last_seq()

    async def events_since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        return await self.store.log.since(seq, limit)

    def follow(self, member: str | None, since: int | None) -> AsyncIterator[bytes]:
        """A member's decision stream as SSE bytes (:func:`shieldwall.council.stream.follow`)."""
        return stream.follow(
            self.store.log,
            self.fanout,
            self.clock.now,
            member,
            since,
            sign=self._sign,
            protect=self.protect_payload,
        )

    def protect_payload(self) -> bytes:
        """The ``protect`` message: the allowlist and members' addresses, ``[scope,
        reason]`` each (encoded once per change of the treaty's protected set)."""
        protected = self.treaty.protected
        if self._protect_for is not protected:
            scopes = [
                (scope.text(), why)
                for scope, why in protected.entries
                if why == "protected:allowlist" or why.startswith("protected:member:")
            ]
            self._protect_bytes = encode(WireProtect(scopes=scopes))
            self._protect_for = protected
        return self._protect_bytes

    async def _announce_protect(self) -> None:
        """Send the protected set to every stream if it changed."""
        before = self._protect_bytes
        payload = self.protect_payload()
        if payload != before:
            await self.fanout.notify(Notice("protect", payload))

    async def _announce_lift(self, scopes: Sequence[Scope]) -> None:
        """Tell members an operator unbanned ``scopes``: their local bans inside go too."""
        if scopes:
            data = encode(WireLift(scopes=[s.text() for s in scopes]))
            await self.fanout.notify(Notice("lift", data))

    async def explain(self, decision_id: str) -> Explanation | None:
        """A decision with its evidence chain (and why it was revoked, if it was)."""
        decision = await self.store.log.get(decision_id)
        if decision is None:
            return None
        state = await self.store.log.state(decision_id) or "active"
        if state == "active" and not decision.active_at(self.clock.now()):
            state = "expired"
        record = await self.store.log.get_evidence(decision_id) or EvidenceRecord(decision_id, None)
        chain = record.evidence
        if chain is None and (known := self.treaty.explain(decision_id)) is not None:
            chain = known.to_plain()
        return Explanation(decision, state, chain, record.revoked)

    async def refusals(self, limit: int = 500) -> list[Refusal]:
        return await self.store.records.refusals(limit)

    async def flags(self, limit: int = 500) -> list[FlagRecord]:
        return await self.store.records.flags(limit)

    async def audit(self, limit: int = 500) -> list[dict[str, Any]]:
        return await self.store.records.audit(limit)

    async def bump(self, counters: Mapping[str, int]) -> None:
        await self.store.counters.bump(counters)

    async def stats(self) -> dict[str, int]:
        counters = await self.store.counters.all()
        counters["decisions.active"] = len(self.treaty.active(self.clock.now()))
        counters["log.seq"] = await self.store.log.last_seq()
        counters["streams.live"] = self.fanout.subscribers
        for name, value in self.treaty.state.counters.items():
            counters[f"treaty.{name}"] = value
        counters.update(self.treaty.state.sizes())
        return counters


def consult_to_wire(c: Concern) -> WireConsult:
    return WireConsult(
        concern=c.id,
        source=str(c.source),
        lookback=c.lookback,
        expires=c.expires,
        reason=c.reason,
        rule=c.rule,
    )


__all__ = [
    "BanOutcome",
    "BulkOutcome",
    "CouncilService",
    "Explanation",
    "ReportOutcome",
    "StoreError",
]
