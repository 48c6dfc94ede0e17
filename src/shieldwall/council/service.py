"""The council's shell: read state, call the pure treaty, write the log, fan out.

No treaty logic lives here: every "should this be decided?" answer comes from
:mod:`shieldwall.treaty`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from shieldwall.clock import Clock
from shieldwall.config.schema import TreatySettings, check_member_name
from shieldwall.council.fanout import Broadcaster
from shieldwall.council.store.base import MemberRecord, Store
from shieldwall.errors import ConfigError, SignatureError, StoreError, WireError
from shieldwall.model import Decision, DecisionEvent, EventKind, Refusal, Scope, scope_str
from shieldwall.treaty import (
    Decide,
    Duplicate,
    MemberInfo,
    Protected,
    Refuse,
    TreatyConfig,
    judge_alert,
    judge_manual,
)
from shieldwall.wire import signing
from shieldwall.wire.messages import WireAlert, alert_from_wire, decode_report

log = logging.getLogger("shieldwall.council")

TRUST_LEVELS = ("trusted", "member", "probation")


@dataclass(slots=True)
class ReportOutcome:
    decided: list[Decision] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    duplicates: int = 0
    malformed: int = 0


def new_id() -> str:
    return uuid.uuid4().hex


class CouncilService:
    def __init__(
        self,
        store: Store,
        treaty: TreatySettings,
        clock: Clock,
        *,
        replay_window: float = 300.0,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        self.store = store
        self.settings = treaty
        self.treaty = TreatyConfig(
            ban_duration=treaty.ban_duration,
            max_duration=treaty.max_duration,
            honour_rule_bantime=treaty.honour_rule_bantime,
            protect_private=treaty.protect_private,
            allowlist=treaty.allowlist,
        )
        self.clock = clock
        self.replay_window = replay_window
        self.broadcaster = broadcaster or Broadcaster()
        self._members: dict[str, MemberRecord] = {}
        self._protected = Protected.build()
        self._active: dict[Scope, Decision] = {}

    async def start(self) -> None:
        """Load members and the active set from the store."""
        self._members = {m.name: m for m in await self.store.list_members()}
        self._rebuild_protected()
        _, decisions = await self.store.active(self.clock.now())
        self._active = {}
        for d in decisions:
            self._note_active(d)

    def _rebuild_protected(self) -> None:
        self._protected = Protected.build(
            allowlist=self.treaty.allowlist,
            member_addresses=[(m.name, a) for m in self._members.values() for a in m.addresses],
            protect_private=self.treaty.protect_private,
        )

    def _note_active(self, d: Decision) -> None:
        prev = self._active.get(d.scope)
        if prev is None or d.expires >= prev.expires:
            self._active[d.scope] = d

    async def _commit(self, changes: list[tuple[EventKind, Decision]]) -> list[DecisionEvent]:
        events = await self.store.append(changes, self.clock.now())
        for e in events:
            if e.kind is EventKind.ADD:
                self._note_active(e.decision)
            elif self._active.get(e.decision.scope, None) == e.decision:
                del self._active[e.decision.scope]
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
        return events

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
        record = MemberRecord(name, key, addresses, trust, self.clock.now())
        await self.store.add_member(record)
        self._members[name] = record
        self._rebuild_protected()
        await self.store.bump("members.enrolled")
        log.info("member.enrolled name=%s trust=%s", name, trust)
        return record

    async def revoke_member(self, name: str) -> bool:
        done = await self.store.revoke_member(name, self.clock.now())
        if done:
            member = await self.store.get_member(name)
            if member is not None:
                self._members[name] = member
            await self.store.bump("members.revoked")
            log.info("member.revoked name=%s", name)
        return done

    async def members(self) -> list[MemberRecord]:
        return await self.store.list_members()

    # -- reports -------------------------------------------------------------------

    async def receive_report(self, body: bytes, signature: str | None) -> ReportOutcome:
        """Verify and judge one signed report. Raises SignatureError (refused) or WireError."""
        try:
            report = decode_report(body)
        except WireError:
            await self.store.bump("reports.refused.malformed")
            raise
        try:
            member = self._members.get(report.member) or await self.store.get_member(report.member)
            if member is None:
                raise SignatureError("unknown-member", f"{report.member!r} is not enrolled")
            if member.revoked:
                raise SignatureError("revoked", f"{report.member!r} was revoked")
            if not signature:
                raise SignatureError("unsigned", "the X-Shieldwall-Signature header is missing")
            signing.verify(signing.verify_key(member.public_key), body, signature)
            now = self.clock.now()
            if report.sent_at.tzinfo is None:
                raise SignatureError("malformed", "sent_at needs a time zone")
            skew = abs((now - report.sent_at).total_seconds())
            if skew > self.replay_window:
                raise SignatureError("stale", f"sent_at is {skew:.0f}s away from council time")
            if not await self.store.remember_nonce(member.name, report.id, now):
                raise SignatureError("replayed", f"report {report.id} was already received")
        except SignatureError as exc:
            await self.store.bump(f"reports.refused.{exc.reason}")
            log.warning("report.refused reason=%s member=%r", exc.reason, report.member[:64])
            raise
        await self.store.bump("reports.accepted")
        return await self._judge_alerts(member, report.alerts)

    async def _judge_alerts(self, member: MemberRecord, alerts: list[WireAlert]) -> ReportOutcome:
        out = ReportOutcome()
        now = self.clock.now()
        info = MemberInfo(member.name, member.trust, member.revoked)
        changes: list[tuple[EventKind, Decision]] = []
        for raw in alerts:
            try:
                alert = alert_from_wire(raw)
            except WireError:
                out.malformed += 1
                continue
            verdict = judge_alert(
                alert, info, self._protected, self._active, self.treaty, now, new_id()
            )
            if isinstance(verdict, Decide):
                changes.append((EventKind.ADD, verdict.decision))
                self._note_active(verdict.decision)
                out.decided.append(verdict.decision)
            elif isinstance(verdict, Refuse):
                out.refused.append(verdict.refusal)
            elif isinstance(verdict, Duplicate):
                out.duplicates += 1
        if changes:
            await self._commit(changes)
        if out.refused:
            await self.store.record_refusals(out.refused)
            for r in out.refused:
                await self.store.bump(f"refusals.{r.reason.split(':')[0]}")
                log.warning(
                    "decision.refused scope=%s reason=%s member=%s",
                    scope_str(r.scope),
                    r.reason,
                    r.member,
                )
        if out.malformed:
            await self.store.bump("alerts.malformed", out.malformed)
        if out.duplicates:
            await self.store.bump("alerts.duplicate", out.duplicates)
        return out

    # -- operator decisions --------------------------------------------------------

    async def ban(
        self, scope: Scope, duration: float | None, reason: str, *, force: bool = False
    ) -> Decision | Refusal:
        now = self.clock.now()
        verdict = judge_manual(
            scope,
            duration or self.treaty.ban_duration,
            reason,
            self._protected,
            now,
            new_id(),
            force=force,
        )
        if isinstance(verdict, Refuse):
            await self.store.record_refusals([verdict.refusal])
            await self.store.bump(f"refusals.{verdict.refusal.reason.split(':')[0]}")
            return verdict.refusal
        if not isinstance(verdict, Decide):  # pragma: no cover - judge_manual never dups
            raise TypeError(f"unexpected verdict {verdict!r}")
        await self._commit([(EventKind.ADD, verdict.decision)])
        await self.store.bump("decisions.operator")
        return verdict.decision

    async def unban(self, target: Scope | str) -> list[Decision]:
        """Revoke every active decision on ``target`` (a scope) or with that id."""
        now = self.clock.now()
        _, active = await self.store.active(now)
        if isinstance(target, str):
            hits = [d for d in active if d.id == target]
        else:
            hits = [d for d in active if d.scope == target]
        if hits:
            await self._commit([(EventKind.REVOKE, d) for d in hits])
            await self.store.bump("decisions.revoked", len(hits))
        return hits

    async def expire_due(self) -> int:
        """Append ``expire`` events for decisions past their expiry. Returns how many."""
        due = await self.store.due_for_expiry(self.clock.now())
        if due:
            await self._commit([(EventKind.EXPIRE, d) for d in due])
        cutoff = self.clock.now() - timedelta(seconds=2 * self.replay_window)
        await self.store.forget_nonces(cutoff)
        return len(due)

    async def snapshot(self) -> tuple[int, list[Decision]]:
        return await self.store.active(self.clock.now())

    async def events_since(self, seq: int, limit: int = 10_000) -> list[DecisionEvent]:
        return await self.store.since(seq, limit)

    async def stats(self) -> dict[str, int]:
        counters = await self.store.counters()
        seq, active = await self.snapshot()
        counters["decisions.active"] = len(active)
        counters["log.seq"] = seq
        counters["streams.live"] = self.broadcaster.subscribers
        return counters


__all__ = ["CouncilService", "ReportOutcome", "StoreError"]
