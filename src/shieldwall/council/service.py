"""The council's shell: read state, call the pure treaty, write the log, fan out.

No treaty logic lives here: every "should this be decided?" answer comes from
:class:`shieldwall.treaty.Treaty`. The service turns verified reports, operator commands,
membership changes and the passing of time into treaty events, and carries out the effects
in order (``docs/treaty.md``, "Calling the treaty"):

========  =========================================================================
effect    what the service does
========  =========================================================================
Decide    an ``add`` event in the decision log, with its evidence chain (one transaction)
Revoke    a ``revoke`` event, with why it was revoked
Refuse    the refusals table, counter ``refusals.<clause>``
Amend     replaces the decision's stored evidence
Flag      the flags table, counter ``flags.<clause>``, a warning in the log
Consult   a consultation on every live stream (SSE ``event: consult``; not in the log)
Close     counter ``concerns.<outcome>``
Audit     the audit table
Hold      counter ``quorum.held``
========  =========================================================================

One lock serialises the treaty and the log writes, so the log's order is the treaty's order.
The treaty's state is persisted by :meth:`CouncilService.tick` every ``state_interval``
seconds and by :meth:`CouncilService.stop`, never per report: a crash loses the state's
changes since the last save (buckets of sightings, open concerns, quorum requests, blast
radius counts); decisions and their evidence are in the store and are adopted again by
``Treaty.sync`` at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shieldwall.clock import Clock
from shieldwall.config.schema import check_member_name
from shieldwall.council.fanout import Broadcaster, Notice
from shieldwall.council.store.base import EvidenceRecord, FlagRecord, MemberRecord, Plain, Store
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
    ManualUnban,
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
    alert_from_wire,
    check_answer,
    concern_source,
    decode_concern,
    decode_report,
    encode,
    sighting_from_wire,
)

log = logging.getLogger("shieldwall.council")

OPERATOR = "operator"
MAX_CONSULTED = 20_000
"""Concern ids remembered so that each is put to the members once."""


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
    sightings: int = 0
    answers: int = 0
    concerns: list[Concern] = field(default_factory=list)
    """Concerns put to the members (``Consult``), including one raised again."""
    consulted: list[Concern] = field(default_factory=list)
    """Of those, the ones published now (each concern id is published once)."""
    closed: list[Close] = field(default_factory=list)
    flagged: list[FlagRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Explanation:
    """``GET /v1/decisions/{id}/explain``: a decision, its state and its evidence chain."""

    decision: Decision
    state: str
    evidence: dict[str, Any] | None
    revoked: dict[str, Any] | None


def new_id() -> str:
    return uuid.uuid4().hex


def member_info(m: MemberRecord) -> MemberInfo:
    return MemberInfo(m.name, m.trust, m.revoked, m.addresses)


class CouncilService:
    def __init__(
        self,
        store: Store,
        terms: TreatyTerms,
        clock: Clock,
        *,
        replay_window: float = 300.0,
        broadcaster: Broadcaster | None = None,
        tick_interval: float = 5.0,
        state_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.terms = terms
        self.clock = clock
        self.replay_window = replay_window
        self.broadcaster = broadcaster or Broadcaster()
        self.tick_interval = tick_interval
        self.state_interval = state_interval
        self.treaty = Treaty(terms, new_id=new_id)
        self._members: dict[str, MemberRecord] = {}
        self._lock = asyncio.Lock()
        self._consulted: OrderedDict[str, None] = OrderedDict()
        self._last_tick: datetime | None = None
        self._last_save: datetime | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Load members, the treaty's state and the active set; ``sync`` the treaty."""
        async with self._lock:
            now = self.clock.now()
            records = await self.store.list_members()
            self._members = {m.name: m for m in records}
            state = await self._load_state()
            self.treaty = Treaty(
                self.terms, [member_info(m) for m in records], state, new_id=new_id
            )
            _, active = await self.store.active(now)
            stored = await self.store.evidence([d.id for d in active])
            evidence: dict[str, Evidence] = {}
            for decision_id, plain in stored.items():
                try:
                    evidence[decision_id] = Evidence.from_plain(plain)
                except (KeyError, TypeError, ValueError):
                    await self.store.bump("treaty.evidence.unreadable")
            await self._carry_out(self.treaty.sync(active, now, evidence), now)
            self._last_tick = self._last_save = now
            log.info(
                "treaty.started members=%d decisions=%d state=%s",
                len(records),
                len(active),
                "restored" if state is not None else "empty",
            )

    async def _load_state(self) -> TreatyState | None:
        blob = await self.store.load_treaty_state()
        if blob is None:
            return None
        try:
            return TreatyState.from_plain(blob, self.terms)
        except (KeyError, TypeError, ValueError) as exc:
            # decide less, never more: the buckets start empty, decisions come from the store
            log.warning("treaty.state.unreadable %s; starting from the store alone", exc)
            await self.store.bump("treaty.state.unreadable")
            return None

    async def save_state(self) -> None:
        """Persist the treaty's state (the reaper calls this every ``state_interval``)."""
        async with self._lock:
            now = self.clock.now()
            await self.store.save_treaty_state(self.treaty.state.to_plain(), now)
            self._last_save = now

    async def stop(self) -> None:
        await self.save_state()

    async def tick(self) -> int:
        """The reaper's round: ``expire`` events for decisions past their expiry, the
        treaty's ``Tick`` every ``tick_interval``, its state saved every ``state_interval``.
        Returns how many decisions expired."""
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

    async def _carry_out(self, effects: Sequence[Effect], now: datetime) -> ReportOutcome:
        """Carry out effects in order. Log changes (with their evidence) are one transaction;
        an ``Amend`` of a decision decided in the same batch updates the chain stored with
        its ``add``."""
        out = ReportOutcome()
        changes: list[tuple[EventKind, Decision]] = []
        whys: list[Plain | None] = []
        added: dict[str, int] = {}
        chains: dict[str, Evidence] = {}
        amends: dict[str, Plain] = {}
        audits: list[Plain] = []
        for e in effects:
            if isinstance(e, Decide):
                added[e.decision.id] = len(changes)
                changes.append((EventKind.ADD, e.decision))
                whys.append(e.evidence.to_plain())
                chains[e.decision.id] = e.evidence
                out.decided.append(e.decision)
            elif isinstance(e, Revoke):
                changes.append((EventKind.REVOKE, e.decision))
                whys.append(e.evidence.to_plain())
                out.revoked.append(e.decision)
            elif isinstance(e, Refuse):
                out.refused.append(e.refusal)
            elif isinstance(e, Amend):
                out.amended += 1
                at = added.get(e.decision.id)
                if at is not None:
                    whys[at] = e.evidence.to_plain()
                    chains[e.decision.id] = e.evidence
                else:
                    amends[e.decision.id] = e.evidence.to_plain()
            elif isinstance(e, Hold):
                out.held.append(e)
            elif isinstance(e, Flag):
                out.flagged.append(FlagRecord(e.member, e.clause, e.at, e.reason))
            elif isinstance(e, Consult):
                out.concerns.append(e.concern)
                if e.concern.id not in self._consulted:
                    self._consulted[e.concern.id] = None
                    while len(self._consulted) > MAX_CONSULTED:
                        self._consulted.popitem(last=False)
                    out.consulted.append(e.concern)
            elif isinstance(e, Close):
                out.closed.append(e)
            elif isinstance(e, Audit):
                audits.append(e.record.to_plain())
        if changes:
            events = await self.store.append(changes, now, whys)
            self._publish(events, now, chains)
        if amends:
            await self.store.set_evidence(list(amends.items()))
        await self._record(out, audits)
        return out

    def _publish(
        self, events: list[DecisionEvent], now: datetime, chains: dict[str, Evidence]
    ) -> None:
        if any(e.kind is EventKind.ADD for e in events):
            activity = self.treaty.activity(now)
            names = [m.name for m in self._members.values() if not m.revoked]

            def order(e: DecisionEvent) -> list[str]:
                if e.kind is not EventKind.ADD:
                    return []
                return forward_order(
                    e.decision, names, activity, evidence=chains.get(e.decision.id)
                )

            self.broadcaster.publish(events, order)
        else:
            self.broadcaster.publish(events)
        for e in events:
            log.info(
                "decision.%s seq=%d scope=%s id=%s member=%s",
                e.kind.value,
                e.seq,
                scope_str(e.decision.scope),
                e.decision.id,
                e.decision.member,
            )

    async def _record(self, out: ReportOutcome, audits: list[Plain]) -> None:
        store = self.store
        if out.refused:
            await store.record_refusals(out.refused)
            for r in out.refused:
                await store.bump(f"refusals.{r.reason.split(':')[0]}")
                log.warning(
                    "decision.refused scope=%s reason=%s member=%s",
                    scope_str(r.scope),
                    r.reason,
                    r.member,
                )
        if out.flagged:
            await store.record_flags(out.flagged)
            for f in out.flagged:
                await store.bump(f"flags.{f.clause}")
                log.warning("member.flagged member=%s clause=%s %s", f.member, f.clause, f.reason)
        if out.held:
            await store.bump("quorum.held", len(out.held))
        for c in out.closed:
            await store.bump(f"concerns.{c.outcome}")
            log.info(
                "concern.closed id=%s source=%s outcome=%s",
                c.concern.id,
                c.concern.source,
                c.outcome,
            )
        for concern in out.consulted:
            self.broadcaster.notify(Notice("consult", encode(consult_to_wire(concern))))
            await store.bump("concerns.consulted")
            log.info("concern.consult id=%s source=%s", concern.id, concern.source)
        if audits:
            await store.record_audit(audits)

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
        key = signing.check_public_key(public_key)
        async with self._lock:
            record = MemberRecord(name, key, addresses, trust, self.clock.now())
            await self.store.add_member(record)
            self._members[name] = record
            now = self.clock.now()
            await self._handle([Enroll(member_info(record), OPERATOR)], now)
        await self.store.bump("members.enrolled")
        log.info("member.enrolled name=%s trust=%s", name, trust)
        return record

    async def revoke_member(self, name: str, reason: str = "") -> ReportOutcome | None:
        """Revoke a member; what rested on its evidence alone is revoked through the log.
        None when there is no such active member."""
        async with self._lock:
            now = self.clock.now()
            if not await self.store.revoke_member(name, now):
                return None
            member = await self.store.get_member(name)
            if member is not None:
                self._members[name] = member
            out = await self._handle([RevokeMember(name, OPERATOR, reason)], now)
        await self.store.bump("members.revoked")
        log.info("member.revoked name=%s decisions_revoked=%d", name, len(out.revoked))
        return out

    async def members(self) -> list[MemberRecord]:
        return await self.store.list_members()

    # -- reports -------------------------------------------------------------------

    async def _verify(
        self, name: str, body: bytes, signature: str | None, sent_at: datetime, nonce: str
    ) -> MemberRecord:
        """An enrolled, unrevoked member signed ``body``, fresh and never seen before."""
        member = self._members.get(name) or await self.store.get_member(name)
        if member is None:
            raise SignatureError("unknown-member", f"{name!r} is not enrolled")
        if member.revoked:
            raise SignatureError("revoked", f"{name!r} was revoked")
        if not signature:
            raise SignatureError("unsigned", "the X-Shieldwall-Signature header is missing")
        signing.verify(signing.verify_key(member.public_key), body, signature)
        now = self.clock.now()
        if sent_at.tzinfo is None:
            raise SignatureError("malformed", "sent_at needs a time zone")
        skew = abs((now - sent_at).total_seconds())
        if skew > self.replay_window:
            raise SignatureError("stale", f"sent_at is {skew:.0f}s away from council time")
        if not await self.store.remember_nonce(member.name, nonce, now):
            raise SignatureError("replayed", f"{nonce} was already received")
        return member

    async def receive_report(self, body: bytes, signature: str | None) -> ReportOutcome:
        """Verify and judge one signed report. Raises SignatureError (refused) or WireError."""
        try:
            report = decode_report(body)
        except WireError:
            await self.store.bump("reports.refused.malformed")
            raise
        try:
            member = await self._verify(report.member, body, signature, report.sent_at, report.id)
        except SignatureError as exc:
            await self.store.bump(f"reports.refused.{exc.reason}")
            log.warning("report.refused reason=%s member=%r", exc.reason, report.member[:64])
            raise
        await self.store.bump("reports.accepted")
        return await self._judge_report(member, report)

    async def _judge_report(self, member: MemberRecord, report: Report) -> ReportOutcome:
        malformed = duplicates = 0
        sightings: list[Sighting] = []
        for raw in report.sightings:
            try:
                sightings.append(sighting_from_wire(raw))
            except WireError:
                malformed += 1
        async with self._lock:
            now = self.clock.now()
            effects: list[Effect] = []
            for raw_alert in report.alerts:
                try:
                    alert = alert_from_wire(raw_alert)
                except WireError:
                    malformed += 1
                    continue
                found = self.treaty.handle(Alerted(member.name, alert, report.id), now)
                if not any(isinstance(e, Decide | Refuse | Hold) for e in found):
                    duplicates += 1  # an active decision covers it already
                effects += found
            if sightings:
                effects += self.treaty.handle(
                    Sighted(member.name, tuple(sightings), report.id), now
                )
            answers = 0
            for raw_answer in report.answers:
                try:
                    a = check_answer(raw_answer)
                except WireError:
                    malformed += 1
                    continue
                answers += 1
                event = Answered(a.concern, member.name, a.failures, a.successes, report=report.id)
                effects += self.treaty.handle(event, now)
            out = await self._carry_out(effects, now)
        out.malformed, out.duplicates = malformed, duplicates
        out.sightings, out.answers = len(sightings), answers
        if malformed:
            await self.store.bump("report.items.malformed", malformed)
        if duplicates:
            await self.store.bump("alerts.duplicate", duplicates)
        if sightings:
            await self.store.bump("sightings.received", len(sightings))
        if answers:
            await self.store.bump("answers.received", answers)
        return out

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
            out = await self._handle([event], now)
        await self.store.bump("concerns.raised")
        return out

    async def receive_concern(self, body: bytes, signature: str | None) -> ReportOutcome:
        """A member's signed concern. Raises SignatureError (refused) or WireError."""
        try:
            req = decode_concern(body)
            source = concern_source(req)
        except WireError:
            await self.store.bump("concerns.refused.malformed")
            raise
        try:
            member = await self._verify(req.member, body, signature, req.sent_at, req.id)
        except SignatureError as exc:
            await self.store.bump(f"concerns.refused.{exc.reason}")
            raise
        return await self.raise_concern(
            source, member.name, req.reason[:500], None if req.rule is None else req.rule[:100]
        )

    # -- operator decisions --------------------------------------------------------

    async def ban(
        self, scope: Scope, duration: float | None, reason: str, *, force: bool = False
    ) -> Decision | Refusal:
        async with self._lock:
            now = self.clock.now()
            out = await self._handle([ManualBan(scope, duration, reason, OPERATOR, force)], now)
        if out.decided:
            await self.store.bump("decisions.operator")
            return out.decided[0]
        return out.refused[0]

    async def unban(self, target: Scope | str) -> list[Decision]:
        """Revoke every active decision on ``target`` (a scope) or with that id."""
        async with self._lock:
            now = self.clock.now()
            out = await self._handle([ManualUnban(target, OPERATOR)], now)
        if out.revoked:
            await self.store.bump("decisions.revoked", len(out.revoked))
        return out.revoked

    async def allowlist_add(self, scope: Scope, reason: str) -> list[Decision]:
        """Protect ``scope`` from now on (audited); active decisions overlapping it are
        revoked. The treaty state is saved at once, so the change survives a crash."""
        async with self._lock:
            now = self.clock.now()
            out = await self._handle([AllowlistAdd(scope, OPERATOR, reason)], now)
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
        await self.save_state()
        return removed

    def allowlist(self) -> tuple[list[Scope], list[Scope]]:
        """``(configured, added at run time)``."""
        return list(self.treaty.terms.allowlist), list(self.treaty.state.allowlist)

    async def expire_due(self) -> int:
        """Append ``expire`` events for decisions past their expiry. Returns how many."""
        async with self._lock:
            now = self.clock.now()
            due = await self.store.due_for_expiry(now)
            if due:
                events = await self.store.append([(EventKind.EXPIRE, d) for d in due], now)
                self._publish(events, now, {})
        cutoff = self.clock.now() - timedelta(seconds=2 * self.replay_window)
        await self.store.forget_nonces(cutoff)
        return len(due)

    # -- reading -------------------------------------------------------------------

    async def snapshot(self) -> tuple[int, list[Decision]]:
        return await self.store.active(self.clock.now())

    async def events_since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        return await self.store.since(seq, limit)

    async def explain(self, decision_id: str) -> Explanation | None:
        """A decision with its evidence chain (and why it was revoked, if it was)."""
        decision = await self.store.get_decision(decision_id)
        if decision is None:
            return None
        state = await self.store.decision_state(decision_id) or "active"
        if state == "active" and not decision.active_at(self.clock.now()):
            state = "expired"
        record = await self.store.get_evidence(decision_id) or EvidenceRecord(decision_id, None)
        chain = record.evidence
        if chain is None and (known := self.treaty.explain(decision_id)) is not None:
            chain = known.to_plain()
        return Explanation(decision, state, chain, record.revoked)

    async def stats(self) -> dict[str, int]:
        counters = await self.store.counters()
        seq, active = await self.snapshot()
        counters["decisions.active"] = len(active)
        counters["log.seq"] = seq
        counters["streams.live"] = self.broadcaster.subscribers
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


__all__ = ["CouncilService", "Explanation", "ReportOutcome", "StoreError"]
