"""The treaty: events and ``now`` in, effects out. Pure: no I/O, no clock, no asyncio.

The council keeps one :class:`Treaty` (terms, the roster of members, a
:class:`~shieldwall.treaty.state.TreatyState`) and calls ``treaty.handle(event, now)`` for
every verified report item, operator command and membership change, and
``handle(Tick(), now)`` periodically. It carries out the effects in order (see
:mod:`shieldwall.treaty.effects`) and persists ``treaty.state.to_plain()``.

Every decision goes through one gate (``_decide``): protected targets are refused, the
causing member's blast radius is charged, repeat offenders get longer bans, and a range
sanction is considered. Each clause is described in ``docs/treaty.md``.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import assert_never

from shieldwall.model import (
    Action,
    Address,
    Decision,
    Origin,
    Refusal,
    Scope,
    SightingKind,
    address_scope,
    scope_str,
)
from shieldwall.treaty.effects import (
    Amend,
    Audit,
    AuditRecord,
    Close,
    Concern,
    Consult,
    Effect,
    Flag,
    Hold,
    Revoke,
)
from shieldwall.treaty.events import (
    Alerted,
    AllowlistAdd,
    AllowlistRemove,
    Answered,
    Enroll,
    Event,
    ManualBan,
    ManualBans,
    ManualUnban,
    ManualUnbans,
    RaiseConcern,
    RevokeMember,
    Sighted,
    Tick,
)
from shieldwall.treaty.evidence import (
    ALLIANCE,
    ARTICLE4,
    ARTICLE4_EXPIRED,
    ARTICLE4_LIMIT,
    ARTICLE5,
    BLAST_RADIUS,
    FRIENDLY_FIRE,
    HISTORY,
    INVALID_DURATION,
    MAX_EXHIBITS,
    MEMBER_REVOKED,
    MEMBER_UNKNOWN,
    OPERATOR,
    OPERATOR_FORCE,
    QUORUM,
    REVOCATION,
    SANCTION_RANGE,
    SANCTION_REPEAT,
    Evidence,
    Exhibit,
)
from shieldwall.treaty.policy import MAX_DURATION, Decide, MemberInfo, Refuse
from shieldwall.treaty.protect import Protected
from shieldwall.treaty.state import (
    MAX_COUNT,
    MAX_RULES_PER_MEMBER,
    Entry,
    Offender,
    OpenConcern,
    Pending,
    Track,
    TreatyState,
)
from shieldwall.treaty.terms import TreatyTerms

MAX_RULE_CHARS = 100


def _rule(name: str) -> str:
    return name[:MAX_RULE_CHARS]


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Treaty:
    """The rules of engagement, applied one event at a time."""

    def __init__(
        self,
        terms: TreatyTerms | None = None,
        members: Iterable[MemberInfo] = (),
        state: TreatyState | None = None,
        *,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        """``new_id`` makes decision and concern ids (the council passes ``uuid4().hex``);
        by default they are ``t1``, ``t2``… from a counter kept in the state."""
        self.terms = terms or TreatyTerms()
        self.state = state if state is not None else TreatyState.empty(self.terms)
        if self.state.granularity != self.terms.alliance.granularity:
            # the slot width changed: old slots cannot be read any more
            self.state.inc("sources.reset", len(self.state.sources))
            self.state.sources.clear()
            self.state.activity.clear()
            self.state.granularity = self.terms.alliance.granularity
        self._members: dict[str, MemberInfo] = {m.name: m for m in members}
        self._new_id = new_id or self._next_id
        self._protected = self._build_protected()

    # -- public ----------------------------------------------------------------------------

    @property
    def protected(self) -> Protected:
        return self._protected

    @property
    def members(self) -> Mapping[str, MemberInfo]:
        return self._members

    def handle(self, event: Event, now: datetime) -> list[Effect]:
        """Apply one event at ``now``; the effects are to be carried out in order."""
        match event:
            case Alerted():
                return self._alerted(event, now)
            case Sighted():
                return self._sighted(event, now)
            case RaiseConcern():
                return self._raise(event, now)
            case Answered():
                return self._answered(event, now)
            case ManualBan():
                return self._manual_ban(event, now)
            case ManualBans():
                return self._manual_bans(event, now)
            case ManualUnban():
                return self._manual_unban(event, now)
            case ManualUnbans():
                return self._manual_unbans(event, now)
            case AllowlistAdd():
                return self._allowlist_add(event, now)
            case AllowlistRemove():
                return self._allowlist_remove(event, now)
            case Enroll():
                return self._enroll(event, now)
            case RevokeMember():
                return self._revoke_member(event, now)
            case Tick():
                return self._tick(now)
            case _:  # pragma: no cover - exhaustive
                assert_never(event)

    def sync(
        self,
        decisions: Iterable[Decision],
        now: datetime,
        evidence: Mapping[str, Evidence] | None = None,
    ) -> list[Effect]:
        """Align the ledger with the store's active set (at start): unknown decisions are
        adopted (with their stored ``evidence`` when given), vanished ones forgotten. Adopted
        member decisions that now overlap a protected target are revoked."""
        evidence = evidence or {}
        given = {d.id: d for d in decisions if d.active_at(now)}
        for entry in self.state.ledger:
            if entry.decision.id not in given:
                self.state.ledger.remove(entry.decision.id)
        for d in given.values():
            if self.state.ledger.get(d.id) is not None:
                continue
            ev = evidence.get(d.id)
            if ev is None and d.origin is Origin.OPERATOR:
                ev = Evidence.of((OPERATOR,), (), (), d.reason)
            elif ev is None:
                members = () if d.member is None else (d.member,)
                ev = Evidence.of((ARTICLE5,), members, (), d.reason)
            forced = d.origin is Origin.OPERATOR and self._protected.reason_for(d.scope) is not None
            self.state.ledger.add(Entry(d, ev, None, forced))
        return self._revoke_protected(now)

    def explain(self, decision_id: str) -> Evidence | None:
        """The evidence chain of an active decision the treaty knows."""
        entry = self.state.ledger.get(decision_id)
        return None if entry is None else entry.evidence

    def active(self, now: datetime) -> list[Decision]:
        return sorted(
            (e.decision for e in self.state.ledger if e.decision.active_at(now)),
            key=lambda d: (d.created, d.id),
        )

    def concern(self, concern_id: str) -> Concern | None:
        oc = self.state.concerns.get(concern_id)
        return None if oc is None else oc.concern

    def activity(self, now: datetime) -> dict[str, dict[str, int]]:
        """member → rule → failures it sighted within the alliance window (forward presence)."""
        lo = self._lo(now)
        out: dict[str, dict[str, int]] = {}
        for member, by_rule in self.state.activity.items():
            counts = {r: n for r, slots in by_rule.items() if (n := sum_from(slots, lo))}
            if counts:
                out[member] = counts
        return out

    # -- helpers ---------------------------------------------------------------------------

    def _next_id(self) -> str:
        self.state.seq += 1
        return f"t{self.state.seq}"

    def _build_protected(self) -> Protected:
        return Protected.build(
            allowlist=(*self.terms.allowlist, *self.state.allowlist),
            member_addresses=[(m.name, a) for m in self._members.values() for a in m.addresses],
            protect_private=self.terms.protect_private,
        )

    def _scope(self, address: Address) -> Scope:
        return address_scope(address)

    def _active_member(self, name: str) -> MemberInfo | None:
        m = self._members.get(name)
        return None if m is None or m.revoked else m

    def _lo(self, now: datetime) -> int:
        """The first slot inside the alliance window ending at ``now``."""
        return self.state.slot(now - timedelta(seconds=self.terms.alliance.window))

    def _base_duration(self, bantime: float | None) -> float:
        seconds = self.terms.ban_duration
        if self.terms.honour_rule_bantime and bantime is not None and bantime > 0:
            seconds = bantime
        return min(seconds, self.terms.max_duration)

    def _refuse(
        self,
        scope: Scope,
        clause: str,
        member: str | None,
        now: datetime,
        rule: str | None,
        evidence: Evidence,
    ) -> Refuse:
        self.state.inc(f"refused.{clause.split(':')[0]}")
        return Refuse(Refusal(scope, clause, member, now, rule), evidence)

    def _reporter(
        self, name: str, scope: Scope, now: datetime, rule: str | None, exhibit: Exhibit
    ) -> MemberInfo | Refuse:
        m = self._members.get(name)
        if m is not None and not m.revoked:
            return m
        clause = MEMBER_UNKNOWN if m is None else MEMBER_REVOKED
        return self._refuse(scope, clause, name, now, rule, Evidence.of((clause,), (), (exhibit,)))

    def _flag(self, member: str, clause: str, now: datetime, window: float, why: str) -> list[Flag]:
        key = f"{clause}/{member}"
        until = self.state.flagged.get(key)
        if until is not None and until > now:
            return []
        self.state.flagged[key] = now + timedelta(seconds=window)
        self.state.inc(f"flagged.{clause}")
        return [Flag(member, clause, now, why)]

    def _track(self, source: Address) -> Track:
        sources = self.state.sources
        track = sources.get(source)
        if track is not None:
            sources.move_to_end(source)
            return track
        while len(sources) >= self.terms.alliance.max_sources:
            sources.popitem(last=False)
            self.state.inc("sources.evicted")
        track = sources[source] = Track()
        return track

    def _bucket_failures(self, source: Address, now: datetime) -> dict[str, int]:
        track = self.state.sources.get(source)
        if track is None:
            return {}
        return {
            m: n for m, n in track.failures_any(self._lo(now)).items() if self._active_member(m)
        }

    def _bucket_successes(self, source: Address, now: datetime) -> dict[str, int]:
        track = self.state.sources.get(source)
        if track is None:
            return {}
        return {
            m: n for m, n in track.successes_in(self._lo(now)).items() if self._active_member(m)
        }

    def _offences(self, scope: Scope, now: datetime) -> int:
        o = self.state.offenders.get(scope)
        if o is None or o.last + timedelta(seconds=self.terms.sanctions.memory) <= now:
            return 0
        return o.count

    def _offend(self, scope: Scope, now: datetime) -> None:
        offenders = self.state.offenders
        count = self._offences(scope, now)
        offenders.pop(scope, None)
        while len(offenders) >= self.terms.sanctions.max_offenders:
            offenders.popitem(last=False)
            self.state.inc("offenders.evicted")
        offenders[scope] = Offender(count + 1, now)

    def _pardon(self, scope: Scope) -> None:
        """A decision was retracted as unfounded: it does not count as an offence."""
        o = self.state.offenders.get(scope)
        if o is not None:
            o.count -= 1
            if o.count <= 0:
                del self.state.offenders[scope]

    def _blast_ok(self, member: MemberInfo, now: datetime) -> bool:
        br = self.terms.blast_radius
        cutoff = now - timedelta(seconds=br.window)
        times = self.state.blast.get(member.name)
        if not times:
            return br.limit_for(member.trust) > 0
        # times are kept in order: what left the window is a prefix (no pass over the rest)
        gone = bisect_right(times, cutoff)
        if gone:
            del times[:gone]
        return len(times) < br.limit_for(member.trust)

    # -- the gate every decision goes through ----------------------------------------------

    def _decide(
        self,
        scope: Scope,
        seconds: float,
        now: datetime,
        evidence: Evidence,
        *,
        rule: str | None,
        cause: str | None = None,
        member: str | None = None,
        escalate: bool = True,
        not_before: datetime | None = None,
    ) -> list[Effect]:
        """Decide ``scope`` unless a clause refuses: protected targets, blast radius. Repeat
        offenders get longer bans; a single address may bring its range's sanction."""
        why = self._protected.reason_for(scope)
        if why is not None:
            ev = Evidence.of((why, *evidence.clauses), evidence.members, evidence.exhibits)
            return [
                self._refuse(scope, why, cause, now, rule, replace(ev, summary=evidence.summary))
            ]
        out: list[Effect] = []
        charged = self._members.get(cause) if cause is not None else None
        if charged is not None and not self._blast_ok(charged, now):
            limit = self.terms.blast_radius.limit_for(charged.trust)
            window = self.terms.blast_radius.window
            ev = Evidence.of((BLAST_RADIUS, *evidence.clauses), evidence.members)
            why_flag = f"more than {limit} decisions within {_span(window)}"
            out.append(self._refuse(scope, BLAST_RADIUS, charged.name, now, rule, ev))
            out.extend(self._flag(charged.name, BLAST_RADIUS, now, window, why_flag))
            return out
        clauses = evidence.clauses
        summary = evidence.summary
        if escalate:
            n = self._offences(scope, now)
            longer = self.terms.sanctions.escalate(seconds, n)
            if n and longer > seconds:
                seconds = longer
                clauses = (*clauses, SANCTION_REPEAT)
                summary = f"{summary} (repeat offender: decided {n} time(s) before)"
        expires = now + timedelta(seconds=min(seconds, MAX_DURATION))
        if not_before is not None and expires < not_before:
            expires = not_before
        decision = Decision(
            id=self._new_id(),
            scope=scope,
            action=Action.BAN,
            origin=Origin.ALERT,
            reason=summary,
            created=now,
            expires=expires,
            member=member,
            rule=rule,
        )
        evidence = Evidence(clauses, evidence.members, evidence.exhibits, summary)
        self.state.ledger.add(Entry(decision, evidence, cause))
        if escalate:
            self._offend(scope, now)
        if charged is not None:
            insort(self.state.blast.setdefault(charged.name, []), now)  # in order (see above)
        self.state.inc(f"decided.{clauses[0]}")
        out.append(Decide(decision, evidence))
        if scope.is_host:
            source = scope.network_address
            if self.state.pending.pop(source, None) is not None:
                self.state.inc("quorum.overtaken")
            cid = self.state.concern_by_source.get(source)
            if cid is not None:
                oc = self._drop_concern(cid)
                out.append(Close(oc.concern, "already-decided", evidence, decision.id))
            if self.terms.sanctions.range:
                out.extend(self._range_sanction(scope, now))
        return out

    def _range_sanction(self, scope: Scope, now: datetime) -> list[Effect]:
        s = self.terms.sanctions
        ledger = self.state.ledger
        rng = ledger.range_of(scope)
        # operators' decisions are not evidence of an attack from the range
        entries = [e for e in ledger.in_range(rng, now) if e.decision.origin is Origin.ALERT]
        sources = {e.decision.scope for e in entries}
        members = {m for e in entries for m in e.evidence.members}
        if len(sources) < s.range_sources or len(members) < s.range_members:
            return []
        if ledger.covering(rng, now) is not None:
            return []
        rules = {e.decision.rule for e in entries}
        reason = (
            f"{len(sources)} attackers from {rng} decided on the evidence of {len(members)} members"
        )
        exhibits = [
            Exhibit(None, "decision", e.decision.created, e.decision.rule, ref=e.decision.id)
            for e in entries
        ]
        evidence = Evidence.of((SANCTION_RANGE,), members, exhibits, reason)
        out = self._decide(
            rng,
            s.range_bantime,
            now,
            evidence,
            rule=rules.pop() if len(rules) == 1 else None,
            not_before=max(e.decision.expires for e in entries),
        )
        ranged = next((e.decision for e in out if isinstance(e, Decide)), None)
        if ranged is None:
            return out
        for e in entries:
            ledger.remove(e.decision.id)
            why = f"superseded by the range decision {ranged.id} on {rng}"
            ev = Evidence.of((SANCTION_RANGE,), e.evidence.members, e.evidence.exhibits, why)
            out.append(Revoke(e.decision, ev))
        return out

    def _corroborate(self, entry: Entry, exhibit: Exhibit) -> list[Effect]:
        """A further member's evidence for an active decision joins its chain."""
        if exhibit.member is None or exhibit.member in entry.evidence.members:
            self.state.inc("corroborated.again")
            return []
        entry.evidence = entry.evidence.with_exhibit(exhibit)
        self.state.inc("corroborated")
        return [Amend(entry.decision, entry.evidence)]

    # -- Article 5 and quorum --------------------------------------------------------------

    def _alerted(self, ev: Alerted, now: datetime) -> list[Effect]:
        alert = ev.alert
        scope = self._scope(alert.source)
        rule = _rule(alert.rule)
        count = max(0, min(alert.count, MAX_COUNT))
        exhibit = Exhibit(ev.member, "alert", now, rule, count, ref=ev.report)
        member = self._reporter(ev.member, scope, now, rule, exhibit)
        if isinstance(member, Refuse):
            return [member]
        if alert.last < now - timedelta(seconds=self.terms.alliance.window):
            evidence = Evidence.of((HISTORY,), (member.name,), (exhibit,))
            return [self._refuse(scope, HISTORY, member.name, now, rule, evidence)]
        why = self._protected.reason_for(scope)
        if why is not None:
            evidence = Evidence.of((why, ARTICLE5), (member.name,), (exhibit,))
            return [self._refuse(scope, why, member.name, now, rule, evidence)]
        low = member.trust in self.terms.quorum.levels
        base = self._base_duration(alert.bantime)
        covering = self.state.ledger.covering(scope, now)
        if covering is not None:
            out = self._corroborate(covering, exhibit)
            if not low and now + timedelta(seconds=base) > covering.decision.expires:
                reason = (
                    f"{rule}: {count} failures at {member.name} (extends {covering.decision.id})"
                )
                evidence = Evidence.of(
                    (ARTICLE5,),
                    (*covering.evidence.members, member.name),
                    (exhibit, *covering.evidence.exhibits),
                    reason,
                )
                out += self._decide(
                    scope,
                    base,
                    now,
                    evidence,
                    rule=rule,
                    cause=member.name,
                    member=member.name,
                    escalate=False,
                )
            return out
        if low:
            return self._request_quorum(member, alert.source, rule, alert.bantime, exhibit, now)
        reason = f"{rule}: {count} failures at {member.name}"
        evidence = Evidence.of((ARTICLE5,), (member.name,), (exhibit,), reason)
        return self._decide(
            scope, base, now, evidence, rule=rule, cause=member.name, member=member.name
        )

    def _request_quorum(
        self,
        member: MemberInfo,
        source: Address,
        rule: str,
        bantime: float | None,
        exhibit: Exhibit,
        now: datetime,
    ) -> list[Effect]:
        q = self.terms.quorum
        pending = self.state.pending
        p = pending.get(source)
        if p is not None and p.since + timedelta(seconds=q.window) <= now:
            del pending[source]
            p = None
        if p is None:
            while len(pending) >= q.max_pending:
                pending.popitem(last=False)
                self.state.inc("quorum.evicted")
            p = pending[source] = Pending(source, rule, now, bantime)
        else:
            pending.move_to_end(source)
        if member.name not in p.requesters:
            p.requesters.append(member.name)
        if len(p.exhibits) < MAX_EXHIBITS:
            p.exhibits.append(exhibit)
        return self._settle_pending(p, now, requester=member.name)

    def _settle_pending(
        self, p: Pending, now: datetime, *, requester: str | None = None
    ) -> list[Effect]:
        """Decide a quorum request once k distinct members support it: the requesters and the
        members whose sightings show failures from the source within the alliance window.
        Short of it, ``requester`` (who just asked) gets a ``Hold``; re-evaluations are silent."""
        need = self.terms.quorum.members
        requesters = [m for m in p.requesters if self._active_member(m)]
        witnesses = self._bucket_failures(p.source, now)
        support = list(dict.fromkeys([*requesters, *witnesses]))
        scope = address_scope(p.source)
        if not requesters or len(support) < need:
            if requester is None:
                return []
            evidence = Evidence.of(
                (QUORUM, ARTICLE5),
                support,
                p.exhibits,
                f"{len(support)} of {need} members so far",
            )
            self.state.inc("quorum.held")
            return [Hold(scope, requester, need, tuple(sorted(support)), evidence)]
        del self.state.pending[p.source]
        sightings = [Exhibit(m, "sightings", now, None, n) for m, n in witnesses.items()]
        reason = (
            f"{p.rule}: alert at {', '.join(requesters)}, "
            f"corroborated by {len(support)} members (quorum {need})"
        )
        evidence = Evidence.of((ARTICLE5, QUORUM), support, (*p.exhibits, *sightings), reason)
        return self._decide(
            scope,
            self._base_duration(p.bantime),
            now,
            evidence,
            rule=p.rule,
            cause=requesters[0],
            member=requesters[0],
        )

    # -- alliance-wide detection and friendly fire -----------------------------------------

    def _sighted(self, ev: Sighted, now: datetime) -> list[Effect]:
        member = self._active_member(ev.member)
        if member is None:
            self.state.inc("sightings.refused", len(ev.sightings))
            return []
        oldest = now - timedelta(seconds=self.terms.alliance.window)
        # source -> its track (as _track last returned it) and the rules sighted
        touched: dict[Address, tuple[Track, set[str]]] = {}
        evicted = self.state.counters.get("sources.evicted", 0)
        activity = self.state.activity.setdefault(member.name, {})
        for s in ev.sightings:
            if s.count <= 0 or not s.rule:
                self.state.inc("sightings.malformed")
                continue
            at = min(s.last, now)
            if at < oldest:
                self.state.inc("sightings.stale")
                continue
            if self._protected.reason_for_address(s.source) is not None:
                self.state.inc("sightings.protected")  # never decided, so never tracked
                continue
            track = self._track(s.source)
            slot = self.state.slot(at)
            count = min(s.count, MAX_COUNT)
            seen = touched.get(s.source)
            rules = set() if seen is None else seen[1]
            if seen is None or seen[0] is not track:
                touched[s.source] = (track, rules)
            if s.kind is SightingKind.SUCCESS:
                track.add_success(member.name, slot, count)
                continue
            rule = _rule(s.rule)
            if not track.add_failure(rule, member.name, slot, count):
                self.state.inc("sightings.rules-capped")
                continue
            rules.add(rule)
            if rule in activity or len(activity) < MAX_RULES_PER_MEMBER:
                slots = activity.setdefault(rule, {})
                slots[slot] = min(slots.get(slot, 0) + count, MAX_COUNT)
        lo = self.state.slot(oldest)  # = self._lo(now)
        for by_rule in activity.values():
            if by_rule and min(by_rule) < lo:
                for k in [k for k in by_rule if k < lo]:
                    del by_rule[k]
        # a track is still the source's one unless _track evicted sources meanwhile
        evictions = self.state.counters.get("sources.evicted", 0) != evicted
        out: list[Effect] = []
        for source, (track, rules) in touched.items():
            tracked = self.state.sources.get(source) if evictions else track
            if tracked is None:
                continue  # evicted by a later sighting of the same batch
            tracked.prune(lo)
            p = self.state.pending.get(source) if self.state.pending else None
            if p is not None:
                out += self._settle_pending(p, now)
            by_source = self.state.concern_by_source
            cid = by_source.get(source) if by_source else None
            if cid is not None:
                out += self._settle_concern(self.state.concerns[cid], now)
            if self.terms.alliance.enabled:
                for rule in sorted(rules):
                    out += self._judge_alliance(source, rule, now, tracked, lo)
        return out

    def _judge_alliance(
        self, source: Address, rule: str, now: datetime, track: Track, lo: int
    ) -> list[Effect]:
        """Decide ``source`` on ``rule``'s alliance-wide sums (its ``track``, the window from
        slot ``lo``), unless friendly fire vetoes."""
        scope = self._scope(source)
        if self.state.ledger.covering(scope, now) is not None:
            return []
        a = self.terms.alliance
        t = a.threshold_for(rule)
        roster = self._members
        per = {
            m: n
            for m, n in track.failures_for(rule, lo).items()
            if (info := roster.get(m)) is not None and not info.revoked
        }
        qualifying = [m for m, n in per.items() if n >= t.per_member]
        total = sum(per.values())
        if len(qualifying) < t.members or total < t.attempts:
            return []
        ff = self.terms.friendly_fire
        ok: dict[str, int] = {}
        vetoed = False
        if ff.enabled:
            ok = {
                m: n
                for m, n in track.successes_in(lo).items()
                if (info := roster.get(m)) is not None and not info.revoked
            }
            vetoed = sum(ok.values()) >= ff.successes
            if vetoed:
                self.state.inc("friendly-fire.vetoed")
                if track.vetoed is not None and track.vetoed + timedelta(seconds=a.window) > now:
                    return []  # refused once per window (before any exhibit is written)
                track.vetoed = now
        window = _span(a.window)
        ranked = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
        exhibits = [Exhibit(m, "sightings", now, rule, n) for m, n in ranked]
        if vetoed:
            why = (
                f"{rule}: {total} failures at {len(per)} members within {window}, but "
                f"{sum(ok.values())} successful logins at {len(ok)} members"
            )
            logins = [Exhibit(m, "sightings", now, None, 0, n) for m, n in sorted(ok.items())]
            evidence = Evidence.of(
                (FRIENDLY_FIRE, ALLIANCE), (*per, *ok), (*logins, *exhibits), why
            )
            return [self._refuse(scope, FRIENDLY_FIRE, None, now, rule, evidence)]
        reason = f"{rule}: {total} failures at {len(per)} members within {window}"
        evidence = Evidence.of((ALLIANCE,), per, exhibits, reason)
        return self._decide(scope, self._base_duration(None), now, evidence, rule=rule)

    # -- Article 4: consultation -----------------------------------------------------------

    def _raise(self, ev: RaiseConcern, now: datetime) -> list[Effect]:
        scope = address_scope(ev.source)
        c = self.terms.consult
        exhibit = Exhibit(ev.member, "concern", now, ev.rule)
        members: tuple[str, ...] = ()
        if ev.member is not None:
            member = self._reporter(ev.member, scope, now, ev.rule, exhibit)
            if isinstance(member, Refuse):
                return [member]
            members = (member.name,)
        why = self._protected.reason_for(scope)
        if why is not None:
            evidence = Evidence.of((why, ARTICLE4), members, (exhibit,))
            return [self._refuse(scope, why, ev.member, now, ev.rule, evidence)]
        cid = self.state.concern_by_source.get(ev.source)
        if cid is not None:
            oc = self.state.concerns[cid]
            if oc.concern.expires > now:
                if ev.member is not None and ev.member not in oc.raisers:
                    oc.raisers.append(ev.member)
                return [Consult(oc.concern)]
            out = self._expire_concern(cid)
        else:
            out = []
        concern = Concern(
            id=self._new_id(),
            source=ev.source,
            raised_by=ev.member,
            raised_at=now,
            expires=now + timedelta(seconds=c.timeout),
            lookback=c.lookback,
            reason=ev.reason,
            rule=ev.rule,
        )
        covering = self.state.ledger.covering(scope, now)
        if covering is not None:
            return [
                *out,
                Close(concern, "already-decided", covering.evidence, covering.decision.id),
            ]
        limited = len(self.state.concerns) >= c.max_open
        if not limited and ev.member is not None:
            mine = sum(
                1 for oc in self.state.concerns.values() if oc.concern.raised_by == ev.member
            )
            limited = mine >= c.max_open_per_member
        if limited:
            evidence = Evidence.of((ARTICLE4_LIMIT,), members, (exhibit,))
            out.append(self._refuse(scope, ARTICLE4_LIMIT, ev.member, now, ev.rule, evidence))
            if ev.member is not None and len(self.state.concerns) < c.max_open:
                why_flag = f"more than {c.max_open_per_member} open concerns"
                out += self._flag(ev.member, ARTICLE4_LIMIT, now, c.timeout, why_flag)
            return out
        oc = OpenConcern(concern, list(members))
        self.state.concerns[concern.id] = oc
        self.state.concern_by_source[concern.source] = concern.id
        self.state.inc("concerns.raised")
        settled = self._settle_concern(oc, now)
        return [*out, *settled] if settled else [*out, Consult(concern)]

    def _answered(self, ev: Answered, now: datetime) -> list[Effect]:
        oc = self.state.concerns.get(ev.concern)
        if oc is None:
            self.state.inc("testimony.unknown")
            return []
        if oc.concern.expires <= now:
            return self._expire_concern(oc.concern.id)
        if self._active_member(ev.member) is None:
            self.state.inc("testimony.refused")
            return []
        oc.testimony[ev.member] = Exhibit(
            ev.member,
            "testimony",
            now,
            _rule(ev.rule) if ev.rule else oc.concern.rule,
            max(0, min(ev.failures, MAX_COUNT)),
            max(0, min(ev.successes, MAX_COUNT)),
            ev.report or oc.concern.id,
        )
        return self._settle_concern(oc, now)

    def _witnesses(
        self, oc: OpenConcern, now: datetime
    ) -> tuple[dict[str, Exhibit], dict[str, int]]:
        """Members with failures (testimony, else sightings), and members with successes."""
        source = oc.concern.source
        failing: dict[str, Exhibit] = {}
        ok: dict[str, int] = {}
        for m, ex in oc.testimony.items():
            if not self._active_member(m):
                continue
            if ex.failures > 0:
                failing[m] = ex
            if ex.successes > 0:
                ok[m] = ex.successes
        for m, n in self._bucket_failures(source, now).items():
            failing.setdefault(m, Exhibit(m, "sightings", now, None, n))
        for m, n in self._bucket_successes(source, now).items():
            ok[m] = max(ok.get(m, 0), n)
        return failing, ok

    def _settle_concern(self, oc: OpenConcern, now: datetime) -> list[Effect]:
        """Close a concern that has k distinct members with failures and none with successes
        (decided), or one with successes (friendly fire); otherwise it stays open."""
        concern = oc.concern
        failing, ok = self._witnesses(oc, now)
        asked = Exhibit(
            concern.raised_by, "concern", concern.raised_at, concern.rule, ref=concern.id
        )
        ff = self.terms.friendly_fire
        if ff.enabled and sum(ok.values()) >= ff.successes:
            self._drop_concern(concern.id)
            self.state.inc("concerns.friendly-fire")
            why = f"{sum(ok.values())} successful logins at {len(ok)} members"
            logins = [Exhibit(m, "testimony", now, None, 0, n) for m, n in sorted(ok.items())]
            evidence = Evidence.of(
                (FRIENDLY_FIRE, ARTICLE4), (*ok, *failing), (asked, *logins, *failing.values()), why
            )
            return [Close(concern, "friendly-fire", evidence)]
        k = self.terms.consult.members
        if len(failing) < k:
            return []
        self._drop_concern(concern.id)
        reason = (
            f"concern {concern.id}: {len(failing)} members saw failures from {concern.source}"
            + (f" ({concern.reason})" if concern.reason else "")
        )
        evidence = Evidence.of((ARTICLE4,), failing, (asked, *failing.values()), reason)
        out = self._decide(
            address_scope(concern.source),
            self._base_duration(None),
            now,
            evidence,
            rule=concern.rule,
            member=concern.raised_by,
        )
        decided = next((e for e in out if isinstance(e, Decide)), None)
        if decided is None:
            self.state.inc("concerns.refused")
            return [*out, Close(concern, "refused", evidence)]
        self.state.inc("concerns.decided")
        return [*out, Close(concern, "decided", decided.evidence, decided.decision.id)]

    def _drop_concern(self, concern_id: str) -> OpenConcern:
        oc = self.state.concerns.pop(concern_id)
        if self.state.concern_by_source.get(oc.concern.source) == concern_id:
            del self.state.concern_by_source[oc.concern.source]
        return oc

    def _expire_concern(self, concern_id: str) -> list[Effect]:
        oc = self._drop_concern(concern_id)
        self.state.inc("concerns.expired")
        concern = oc.concern
        failing = {m: e for m, e in oc.testimony.items() if e.failures > 0}
        why = (
            f"{len(failing)} of {self.terms.consult.members} members saw failures "
            f"before the timeout"
        )
        evidence = Evidence.of((ARTICLE4_EXPIRED,), failing, oc.testimony.values(), why)
        return [Close(concern, "expired", evidence)]

    # -- operators and membership ----------------------------------------------------------

    def _audit(self, record: AuditRecord) -> Audit:
        self.state.inc(f"audit.{record.action}")
        return Audit(record)

    def _operator_ban(
        self,
        scope: Scope,
        seconds: float,
        reason: str,
        now: datetime,
        *,
        force: bool = False,
        evidence: Evidence | None = None,
        expires: datetime | None = None,
        bulk: bool = False,
    ) -> Decide | Refuse | Entry:
        """One operator ban: refused (a protected target unless forced, a duration out of
        range), or decided — extending the operator decision already on ``scope`` if there
        is one — or that decision itself (an :class:`Entry`) when it already lasts as long.
        ``evidence``: the chain to give a new decision (a bulk shares one); ``expires``:
        ``now + seconds``, if the caller has it already. ``bulk``: an import (each target
        looked up once: not remembered; the chain not stored with each decision)."""
        why = self._protected.reason_for(scope, remember=not bulk)
        if why is not None and not force:
            return Refuse(Refusal(scope, why, None, now), Evidence.of((why, OPERATOR)))
        if not (0 < seconds <= MAX_DURATION):
            return Refuse(
                Refusal(scope, INVALID_DURATION, None, now),
                Evidence.of((INVALID_DURATION, OPERATOR)),
            )
        if expires is None:
            expires = now + timedelta(seconds=seconds)
        held = self.state.ledger.operator_on(scope, now)
        if held is not None:
            if held.decision.expires >= expires:
                return held
            longer = held.decision._replace(expires=expires, reason=reason or held.decision.reason)
            self.state.ledger.add(Entry(longer, held.evidence, None, held.forced or force))
            return Decide(longer, held.evidence, extends=True, keep=False)
        if evidence is None:
            clauses = (OPERATOR,) if why is None else (OPERATOR, OPERATOR_FORCE, why)
            evidence = Evidence.of(clauses, (), (Exhibit(None, "operator", now),), reason)
        decision = Decision(
            self._new_id(), scope, Action.BAN, Origin.OPERATOR, reason, now, expires
        )
        # an explicit ``force`` also keeps the decision when its target becomes protected later
        self.state.ledger.add(Entry(decision, evidence, None, force))
        return Decide(decision, evidence, keep=not bulk)

    def _manual_ban(self, ev: ManualBan, now: datetime) -> list[Effect]:
        seconds = self.terms.ban_duration if ev.duration is None else ev.duration
        reason = ev.reason or "operator ban"
        verdict = self._operator_ban(ev.scope, seconds, reason, now, force=ev.force)
        if isinstance(verdict, Refuse):
            clause = verdict.refusal.reason
            self.state.inc(f"refused.{clause.split(':')[0]}")
            audit = self._audit(
                AuditRecord(
                    now, ev.actor, "ban", f"refused:{clause}", scope=ev.scope, reason=ev.reason
                )
            )
            return [verdict, audit]
        decision = verdict.decision
        detail = ", ".join(c for c in verdict.evidence.clauses if c != OPERATOR)
        if isinstance(verdict, Entry):
            detail = "unchanged: it already lasts as long"
        elif verdict.extends:
            detail = "extended"
        audit = self._audit(
            AuditRecord(
                now,
                ev.actor,
                "ban",
                "done",
                scope=ev.scope,
                reason=ev.reason,
                decisions=(decision.id,),
                forced=self._protected.reason_for(ev.scope) is not None,
                detail=detail,
            )
        )
        return [audit] if isinstance(verdict, Entry) else [verdict, audit]

    def _manual_bans(self, ev: ManualBans, now: datetime) -> list[Effect]:
        """A bulk ban: each item judged as :meth:`_operator_ban` judges it, the new decisions
        sharing one chain per reason; one audit record.

        The common item — a target no one protects, with no operator decision on it yet —
        takes a fast path (the same checks, inlined; new entries added to the ledger a batch
        at a time): an import of a million costs a million of these."""
        default = self.terms.ban_duration if ev.duration is None else ev.duration
        chains: dict[str, Evidence] = {}
        ends: dict[float, datetime] = {}
        out: list[Effect] = []
        extended = unchanged = refused = 0
        exhibit = (Exhibit(None, "import", now, ref=ev.source or None),)
        protected = self._protected
        ledger = self.state.ledger
        new_id = self._new_id
        fresh: dict[datetime, list[Entry]] = {}
        seen: set[Scope] = set()
        for item in ev.items:
            reason = item.reason or ev.reason or "operator ban"
            chain = chains.get(reason)
            if chain is None:
                chain = chains[reason] = Evidence.of((OPERATOR,), (), exhibit, reason)
            seconds = default if item.duration is None else item.duration
            expires = ends.get(seconds)
            if expires is None:
                expires = ends[seconds] = now + timedelta(seconds=min(seconds, MAX_DURATION))
            scope = item.scope
            if (
                scope not in seen
                and 0 < seconds <= MAX_DURATION
                and protected.reason_for(scope, remember=False) is None
                and ledger.operator_on(scope, now) is None
            ):
                seen.add(scope)
                d = Decision(new_id(), scope, Action.BAN, Origin.OPERATOR, reason, now, expires)
                fresh.setdefault(expires, []).append(Entry(d, chain))
                out.append(Decide(d, chain, False, False))
                continue
            for at, entries in fresh.items():  # the general path sees every decision so far
                ledger.add_new(entries, at.timestamp())
            fresh.clear()
            verdict = self._operator_ban(
                scope, seconds, reason, now, evidence=chain, expires=expires, bulk=True
            )
            if isinstance(verdict, Entry):
                unchanged += 1
                continue
            if isinstance(verdict, Refuse):
                refused += 1
                self.state.inc(f"refused.{verdict.refusal.reason.split(':')[0]}")
                out.append(verdict)
                continue
            extended += verdict.extends
            out.append(verdict)
        for at, entries in fresh.items():
            ledger.add_new(entries, at.timestamp())
        added = sum(1 for e in out if isinstance(e, Decide)) - extended
        detail = f"{added} added, {extended} extended, {unchanged} unchanged, {refused} refused" + (
            f" ({ev.source})" if ev.source else ""
        )
        out.append(
            self._audit(
                AuditRecord(now, ev.actor, "import", "done", reason=ev.reason, detail=detail)
            )
        )
        return out

    def _unban_entries(self, entries: Iterable[Entry], actor: str, reason: str) -> list[Effect]:
        out: list[Effect] = []
        ledger = self.state.ledger
        for e in entries:
            ledger.remove(e.decision.id)
            self._pardon(e.decision.scope)
            why = reason or f"revoked by {actor}"
            out.append(
                Revoke(
                    e.decision,
                    Evidence.of((OPERATOR,), e.evidence.members, e.evidence.exhibits, why),
                )
            )
        return out

    def _manual_unban(self, ev: ManualUnban, now: datetime) -> list[Effect]:
        ledger = self.state.ledger
        if isinstance(ev.target, str):
            entry = ledger.get(ev.target)
            entries = [entry] if entry is not None and entry.decision.active_at(now) else []
            scope = None if entry is None else entry.decision.scope
        else:
            entries = ledger.on_scope(ev.target, now)
            scope = ev.target
        out = self._unban_entries(entries, ev.actor, ev.reason)
        ids = tuple(e.decision.id for e in entries)
        outcome = "done" if entries else "refused:no-such-decision"
        out.append(
            self._audit(
                AuditRecord(
                    now, ev.actor, "unban", outcome, scope=scope, reason=ev.reason, decisions=ids
                )
            )
        )
        return out

    def _manual_unbans(self, ev: ManualUnbans, now: datetime) -> list[Effect]:
        ledger = self.state.ledger
        out: list[Effect] = []
        missing = 0
        for target in ev.targets:
            entries = ledger.on_scope(target, now)
            if not entries:
                missing += 1
            out += self._unban_entries(entries, ev.actor, ev.reason)
        detail = (
            f"{len(out)} decision(s) revoked on {len(ev.targets) - missing} scope(s), "
            f"{missing} without a decision" + (f" ({ev.source})" if ev.source else "")
        )
        out.append(
            self._audit(
                AuditRecord(now, ev.actor, "unban", "done", reason=ev.reason, detail=detail)
            )
        )
        return out

    def _revoke_protected(
        self, now: datetime, within: Iterable[Scope] | None = None
    ) -> list[Effect]:
        """Revoke active decisions that overlap a protected target (after it became one);
        operators' forced decisions stay. ``within``: only the decisions overlapping these
        newly protected scopes are read (None: every decision, at start)."""
        out: list[Effect] = []
        if within is None:
            candidates = list(self.state.ledger)
        else:
            seen: dict[str, Entry] = {}
            for scope in within:
                seen.update((e.decision.id, e) for e in self.state.ledger.overlapping(scope))
            candidates = list(seen.values())
        for e in candidates:
            if e.forced or not e.decision.active_at(now):
                continue
            why = self._protected.reason_for(e.decision.scope)
            if why is None:
                continue
            self.state.ledger.remove(e.decision.id)
            self._pardon(e.decision.scope)
            self.state.inc(f"revoked.{why.split(':')[0]}")
            summary = f"{scope_str(e.decision.scope)} overlaps a target that is now protected"
            ev = Evidence.of((why,), e.evidence.members, e.evidence.exhibits, summary)
            out.append(Revoke(e.decision, ev))
        return out

    def _allowlist_add(self, ev: AllowlistAdd, now: datetime) -> list[Effect]:
        if ev.scope not in self.state.allowlist:
            self.state.allowlist.append(ev.scope)
        self._protected = self._build_protected()
        out = self._revoke_protected(now, [ev.scope])
        ids = tuple(e.decision.id for e in out if isinstance(e, Revoke))
        out.append(
            self._audit(
                AuditRecord(
                    now,
                    ev.actor,
                    "allowlist.add",
                    "done",
                    scope=ev.scope,
                    reason=ev.reason,
                    decisions=ids,
                )
            )
        )
        return out

    def _allowlist_remove(self, ev: AllowlistRemove, now: datetime) -> list[Effect]:
        if ev.scope in self.state.allowlist:
            self.state.allowlist.remove(ev.scope)
            self._protected = self._build_protected()
            outcome = "done"
        elif ev.scope in self.terms.allowlist:
            outcome = "refused:configured"  # council.toml's allowlist is changed there
        else:
            outcome = "refused:not-allowlisted"
        return [
            self._audit(
                AuditRecord(
                    now, ev.actor, "allowlist.remove", outcome, scope=ev.scope, reason=ev.reason
                )
            )
        ]

    def _enroll(self, ev: Enroll, now: datetime) -> list[Effect]:
        self._members[ev.member.name] = ev.member
        self._protected = self._build_protected()
        out = self._revoke_protected(now, ev.member.addresses)
        ids = tuple(e.decision.id for e in out if isinstance(e, Revoke))
        detail = f"trust={ev.member.trust}, {len(ev.member.addresses)} address(es)"
        out.append(
            self._audit(
                AuditRecord(
                    now,
                    ev.actor,
                    "member.enroll",
                    "done",
                    subject=ev.member.name,
                    decisions=ids,
                    detail=detail,
                )
            )
        )
        return out

    def _revoke_member(self, ev: RevokeMember, now: datetime) -> list[Effect]:
        name = ev.name
        m = self._members.get(name)
        if m is None:
            return [
                self._audit(
                    AuditRecord(
                        now, ev.actor, "member.revoke", "refused:member-unknown", subject=name
                    )
                )
            ]
        self._members[name] = replace(m, revoked=True)
        out: list[Effect] = []
        revoked: list[str] = []
        amended = 0
        for e in self.state.ledger:
            if e.decision.origin is Origin.OPERATOR or name not in e.evidence.members:
                continue
            if not e.decision.active_at(now):
                continue  # expired: pruned at the next tick
            rest = e.evidence.without_member(name)
            if rest.members:
                e.evidence = rest
                amended += 1
                out.append(Amend(e.decision, rest))
                continue
            self.state.ledger.remove(e.decision.id)
            self._pardon(e.decision.scope)
            revoked.append(e.decision.id)
            why = f"rested only on the evidence of {name}, which was revoked"
            evidence = Evidence.of((REVOCATION,), (name,), e.evidence.exhibits, why)
            out.append(Revoke(e.decision, evidence))
        for source, p in list(self.state.pending.items()):
            if name in p.requesters:
                p.requesters.remove(name)
                p.exhibits = [x for x in p.exhibits if x.member != name]
                if not p.requesters:
                    del self.state.pending[source]
        for cid, oc in list(self.state.concerns.items()):
            if oc.concern.raised_by == name:
                self._drop_concern(cid)
                evidence = Evidence.of((REVOCATION,), (name,), (), f"{name} was revoked")
                out.append(Close(oc.concern, "member-revoked", evidence))
                continue
            oc.testimony.pop(name, None)
            if name in oc.raisers:
                oc.raisers.remove(name)
        for source, track in list(self.state.sources.items()):
            if track.drop_member(name):
                del self.state.sources[source]
        self.state.activity.pop(name, None)
        self.state.blast.pop(name, None)
        self.state.inc("members.revoked")
        out.append(
            self._audit(
                AuditRecord(
                    now,
                    ev.actor,
                    "member.revoke",
                    "done",
                    subject=name,
                    reason=ev.reason,
                    decisions=tuple(revoked),
                    detail=f"{len(revoked)} decision(s) revoked, {amended} amended",
                )
            )
        )
        return out

    # -- time ------------------------------------------------------------------------------

    def _tick(self, now: datetime) -> list[Effect]:
        """Expire concerns and quorum requests; forget what left every window."""
        st = self.state
        out: list[Effect] = []
        for cid, oc in list(st.concerns.items()):
            if oc.concern.expires <= now:
                out += self._expire_concern(cid)
        q = self.terms.quorum
        for source, p in list(st.pending.items()):
            if p.since + timedelta(seconds=q.window) > now:
                continue
            del st.pending[source]
            why = f"{p.rule}: no quorum of {q.members} members within {_span(q.window)}"
            evidence = Evidence.of((QUORUM, ARTICLE5), p.requesters, p.exhibits, why)
            member = p.requesters[0] if p.requesters else None
            out.append(self._refuse(address_scope(source), QUORUM, member, now, p.rule, evidence))
        st.ledger.prune(now)
        memory = timedelta(seconds=self.terms.sanctions.memory)
        # dict.items(): an OrderedDict's own items() looks every key up again, and hashing an
        # ipaddress address runs Python code; the order of these scans does not matter
        for scope, o in list(dict.items(st.offenders)):
            if o.last + memory <= now:
                del st.offenders[scope]
        lo = self._lo(now)
        for source, track in list(dict.items(st.sources)):
            if track.prune(lo):
                del st.sources[source]
        for member, by_rule in list(st.activity.items()):
            for rule, slots in list(by_rule.items()):
                for k in [k for k in slots if k < lo]:
                    del slots[k]
                if not slots:
                    del by_rule[rule]
            if not by_rule:
                del st.activity[member]
        cutoff = now - timedelta(seconds=self.terms.blast_radius.window)
        for member, times in list(st.blast.items()):
            kept = [t for t in times if t > cutoff]
            if kept:
                st.blast[member] = kept
            else:
                del st.blast[member]
        for key, until in list(st.flagged.items()):
            if until <= now:
                del st.flagged[key]
        return out


def sum_from(slots: Mapping[int, int], lo: int) -> int:
    return sum(v for k, v in slots.items() if k >= lo)
