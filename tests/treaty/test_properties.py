"""Properties of the treaty over any sequence of events (Hypothesis)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.model import Address, Alert, Origin, parse_address, parse_scope
from shieldwall.treaty import (
    Alerted,
    AllianceTerms,
    AllowlistAdd,
    Answered,
    BlastRadiusTerms,
    ConsultTerms,
    Decide,
    Enroll,
    Event,
    ManualBan,
    ManualUnban,
    QuorumTerms,
    RaiseConcern,
    Revoke,
    RevokeMember,
    SanctionTerms,
    Sighted,
    Sighting,
    SightingKind,
    Threshold,
    Tick,
    Treaty,
    TreatyState,
    TreatyTerms,
)
from tests.treaty.support import NOW, Council, member

PUBLIC = [
    *(f"203.0.113.{i}" for i in range(1, 5)),
    "198.18.5.5",
    "198.18.6.6",
    "45.1.1.1",
    "45.2.2.2",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
]
PROTECTED = [
    "10.0.0.1",
    "127.0.0.1",
    "169.254.1.1",
    "fe80::1",
    "fd00::1",
    "192.0.2.1",  # m0's address
    "192.0.2.4",  # p0's address
    "198.51.100.7",  # allowlisted
]
LATER_PROTECTED = ["203.0.113.5/32", "203.0.113.0/29", "2001:db8::/126", "198.18.5.0/24"]
NAMES = ["m0", "m1", "m2", "m3", "m4", "p0", "p1", "ghost"]
ROSTER = [
    member("m0", "trusted", "192.0.2.1"),
    member("m1", "member", "192.0.2.2"),
    member("m2", "member", "192.0.2.3"),
    member("m3", "member"),
    member("m4", "member"),
    member("p0", "probation", "192.0.2.4"),
    member("p1", "probation", "192.0.2.5"),
]
FAR = NOW + timedelta(days=1000)  # sightings are clamped to ``now``

TERMS = TreatyTerms(
    allowlist=(parse_scope("198.51.100.0/24"),),
    alliance=AllianceTerms(threshold=Threshold(members=2, attempts=3), max_sources=5),
    quorum=QuorumTerms(members=2, max_pending=3),
    blast_radius=BlastRadiusTerms(trusted=3, member=2, probation=1),
    sanctions=SanctionTerms(range_sources=3, range_members=2),
    consult=ConsultTerms(members=2, max_open=3, max_open_per_member=2),
)

addresses = st.one_of(st.sampled_from(PUBLIC), st.sampled_from(PUBLIC + PROTECTED)).map(
    parse_address
)
advances = st.one_of(st.just(0), st.integers(0, 600), st.integers(0, 5400))
names = st.sampled_from(NAMES)
LATEST = "latest"  # replaced by the most recent open concern's id when the event is sent
concern_ids = st.one_of(st.just(LATEST), st.integers(1, 40).map(lambda i: f"t{i}"))
kinds = st.sampled_from([*[SightingKind.FAILURE] * 3, SightingKind.SUCCESS])


def _sighted(name: str, sightings: list[tuple[Address, SightingKind, int]]) -> Sighted:
    return Sighted(name, tuple(Sighting(a, "ssh-bf", k, n, FAR, FAR) for a, k, n in sightings))


alerted = st.builds(
    lambda n, a, c: Alerted(n, Alert("sshd", a, NOW, NOW, c)), names, addresses, st.integers(1, 9)
)
sighted = st.builds(
    _sighted, names, st.lists(st.tuples(addresses, kinds, st.integers(1, 5)), max_size=4)
)
raised = st.builds(RaiseConcern, addresses, st.one_of(st.none(), names))
answered = st.builds(
    Answered, concern_ids, names, st.integers(0, 5), st.sampled_from([0, 0, 0, 0, 0, 1])
)


def weighted(*pairs: tuple[int, st.SearchStrategy[Event]]) -> st.SearchStrategy[Event]:
    """``one_of`` with weights (it ignores repeated strategies)."""
    return st.sampled_from([s for n, s in pairs for _ in range(n)]).flatmap(lambda s: s)


member_events = weighted((3, alerted), (4, sighted), (1, raised), (2, answered))
operator_events = st.one_of(
    st.builds(RevokeMember, names),
    st.builds(ManualBan, st.sampled_from(PUBLIC + PROTECTED).map(parse_scope)),
    st.builds(ManualUnban, st.one_of(concern_ids, addresses.map(lambda a: parse_scope(str(a))))),
    st.builds(AllowlistAdd, st.sampled_from(LATER_PROTECTED).map(parse_scope)),
    st.builds(
        lambda n, a: Enroll(member(n, "member", a)),
        st.sampled_from(["m1", "new"]),
        st.sampled_from(LATER_PROTECTED),
    ),
    st.just(Tick()),
    st.just(Tick()),
)
steps = st.lists(
    st.tuples(advances, weighted((12, member_events), (1, operator_events))),
    min_size=10,
    max_size=80,
)


def _overlaps_protected(c: Council, now: datetime) -> list[str]:
    protected = c.treaty.protected
    return [
        f"{d.scope} ({protected.reason_for(d.scope)})"
        for d in c.live(now)
        if protected.reason_for(d.scope) is not None
    ]


def _run(events: list[tuple[int, Event]]) -> Council:
    c = Council(Treaty(TERMS, ROSTER))
    now = NOW
    for advance, event in events:
        now += timedelta(seconds=advance)
        if isinstance(event, Answered) and event.concern == LATEST and c.treaty.state.concerns:
            event = replace(event, concern=list(c.treaty.state.concerns)[-1])
        before = dict(c.evidence)
        effects = c.send(event, now)
        # 1. no active decision ever overlaps a protected target (no event here forces)
        assert _overlaps_protected(c, now) == []
        # 2. every decision names at least one clause, and the members it rests on
        for e in effects:
            if not isinstance(e, Decide):
                continue
            assert e.evidence.clauses
            assert e.decision.scope.num_addresses >= 1
            if e.decision.origin is Origin.ALERT:
                assert e.evidence.members
                assert set(e.evidence.members) <= {m.name for m in ROSTER} | {"new"}
                assert not any(c.treaty.members[m].revoked for m in e.evidence.members)
            if isinstance(event, Alerted):
                assert event.member in e.evidence.members
        # 3. revocation only retracts what rested on the revoked member alone
        if isinstance(event, RevokeMember):
            for e in effects:
                if isinstance(e, Revoke):
                    assert before[e.decision.id].members == (event.name,)
            for d_id, ev in before.items():
                others = set(ev.members) - {event.name}
                if others and c.treaty.explain(d_id) is not None:
                    assert d_id in c.active
        # 4. the state stays bounded
        st_ = c.treaty.state
        assert len(st_.sources) <= TERMS.alliance.max_sources
        assert len(st_.pending) <= TERMS.quorum.max_pending
        assert len(st_.concerns) <= TERMS.consult.max_open
        # 5. the effects mirror the treaty's own view of the active set
        assert {d.id for d in c.live(now)} == {d.id for d in c.treaty.active(now)}
    return c


@settings(max_examples=300, deadline=None)
@given(steps)
def test_any_sequence_keeps_the_treaty_invariants(events: list[tuple[int, Event]]) -> None:
    c = _run(events)

    plain = json.loads(json.dumps(c.treaty.state.to_plain()))
    assert TreatyState.from_plain(plain, TERMS).to_plain() == c.treaty.state.to_plain()


p0_events = st.one_of(
    st.builds(
        lambda a, n: Alerted("p0", Alert("sshd", a, NOW, NOW, n)), addresses, st.integers(1, 99)
    ),
    st.builds(
        _sighted,
        st.just("p0"),
        st.lists(st.tuples(addresses, kinds, st.integers(1, 99)), max_size=4),
    ),
    st.builds(RaiseConcern, addresses, st.just("p0")),
    st.builds(Answered, concern_ids, st.just("p0"), st.integers(0, 99)),
    st.just(Tick()),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(advances, p0_events).flatmap(
            lambda step: st.lists(st.just(step), min_size=1, max_size=3)  # replays
        ),
        max_size=30,
    )
)
def test_one_member_alone_never_satisfies_a_quorum(
    batches: list[list[tuple[int, Event]]],
) -> None:
    """A probation member's alerts, sightings, concerns and answers, replayed at will, never
    decide anything by themselves (the other members stay silent)."""
    c = Council(Treaty(TERMS, ROSTER))
    now = NOW
    for batch in batches:
        for advance, event in batch:
            now += timedelta(seconds=advance)
            effects = c.send(event, now)
            assert not [e for e in effects if isinstance(e, Decide)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(names, addresses, kinds, st.integers(1, 5)), max_size=200))
def test_tracked_sources_stay_under_the_cap(
    sightings: list[tuple[str, Address, SightingKind, int]],
) -> None:
    t = Treaty(TERMS, ROSTER)
    for name, a, k, n in sightings:
        t.handle(_sighted(name, [(a, k, n)]), NOW)
        assert len(t.state.sources) <= TERMS.alliance.max_sources
