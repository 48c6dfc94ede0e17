"""The treaty's clauses, scenario by scenario (issue 4)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from shieldwall.model import Origin, parse_address, parse_scope
from shieldwall.treaty import (
    Alerted,
    AllianceTerms,
    AllowlistAdd,
    AllowlistRemove,
    Amend,
    Answered,
    Audit,
    Close,
    Consult,
    Decide,
    Enroll,
    Flag,
    Hold,
    ManualBan,
    ManualUnban,
    RaiseConcern,
    Refuse,
    Revoke,
    RevokeMember,
    SanctionTerms,
    Threshold,
    Tick,
    TreatyTerms,
)
from tests.treaty.support import (
    NOW,
    Council,
    alert,
    decided,
    fails,
    hours,
    logins,
    member,
    members,
    of_type,
)

ATTACKER = "203.0.113.7"


# -- alliance-wide detection ---------------------------------------------------------------


def test_low_and_slow_across_fifty_members_is_decided_by_the_alliance_threshold() -> None:
    """50 members each see 2 attempts within an hour: no local bucket overflows, but the
    alliance does."""
    c = Council.of(members(50))

    for i in range(50):
        c.send(
            fails(f"m{i}", ATTACKER, 2, NOW + timedelta(seconds=70 * i)),
            NOW + timedelta(seconds=70 * i),
        )

    (d,) = decided(c.log)
    assert d.decision.scope == parse_scope(ATTACKER)
    assert d.evidence.clauses == ("alliance.threshold",)
    assert len(d.evidence.members) >= 5
    assert d.decision.member is None
    assert d.decision.rule == "ssh-bf"


def test_low_and_slow_across_five_members_is_not_decided() -> None:
    c = Council.of(members(50))

    for i in range(5):
        c.send(fails(f"m{i}", ATTACKER, 2, NOW), NOW)

    assert decided(c.log) == []


def test_three_attempts_at_each_of_twenty_members_within_an_hour() -> None:
    """A per-rule threshold: 20 distinct members with at least 3 attempts each."""
    rule = Threshold(members=20, per_member=3, attempts=60)
    terms = TreatyTerms(alliance=AllianceTerms(rules={"ssh-slow-bf": rule}))
    c = Council.of(members(40), terms)

    for i in range(19):
        c.send(fails(f"m{i}", ATTACKER, 3, NOW, "ssh-slow-bf"), NOW)
    for i in range(19, 30):
        c.send(fails(f"m{i}", ATTACKER, 2, NOW, "ssh-slow-bf"), NOW)  # below per-member
    assert decided(c.log) == []

    c.send(fails("m30", ATTACKER, 3, NOW, "ssh-slow-bf"), NOW)

    assert len(decided(c.log)) == 1


def test_the_window_slides() -> None:
    """Sightings two hours apart do not add up."""
    c = Council.of(members(20))

    for i in range(4):
        c.send(fails(f"m{i}", ATTACKER, 10, NOW), NOW)
    later = NOW + hours(2)
    c.send(Tick(), later)
    c.send(fails("m10", ATTACKER, 10, later), later)

    assert decided(c.log) == []
    c.send(fails("m11", ATTACKER, 10, later), later)  # 2 members within the hour
    assert decided(c.log) == []


def test_stale_and_protected_sightings_are_skipped_and_counted() -> None:
    c = Council.of(members(3))

    c.send(fails("m0", ATTACKER, 5, NOW - hours(3)), NOW)
    c.send(fails("m0", "10.0.0.1", 5, NOW), NOW)
    c.send(fails("m0", "192.0.2.2", 5, NOW), NOW)  # m1's own address

    counters = c.treaty.state.counters
    assert counters["sightings.stale"] == 1
    assert counters["sightings.protected"] == 2
    assert len(c.treaty.state.sources) == 0


def test_tracked_sources_are_capped_and_evictions_counted() -> None:
    c = Council.of(members(3), TreatyTerms(alliance=AllianceTerms(max_sources=100)))

    for i in range(1000):
        c.send(fails("m0", str(ipaddress.IPv4Address("203.0.113.0") + i), 1, NOW), NOW)

    assert len(c.treaty.state.sources) == 100
    assert c.treaty.state.counters["sources.evicted"] == 900


# -- friendly fire -------------------------------------------------------------------------


def _nat(successes: bool) -> Council:
    """A shared address: typos at 30 members (1 failure each), logins at 3 of them."""
    c = Council.of(members(40))
    for i in range(30):
        c.send(fails(f"m{i}", ATTACKER, 1, NOW), NOW)
        if successes and i % 10 == 0:
            c.send(logins(f"m{i}", ATTACKER, 1, NOW), NOW)
    return c


def test_nat_friendly_fire_is_not_decided_on_sums() -> None:
    c = _nat(successes=True)

    assert decided(c.log) == []
    (refusal,) = of_type(c.log, Refuse)  # refused once per window, not once per sighting
    assert refusal.refusal.reason == "friendly-fire"
    assert refusal.evidence.clauses[:2] == ("friendly-fire", "alliance.threshold")
    assert c.treaty.state.counters["friendly-fire.vetoed"] >= 2


def test_the_same_without_successes_is_decided() -> None:
    c = _nat(successes=False)

    (d,) = decided(c.log)
    assert d.evidence.clauses == ("alliance.threshold",)


def test_a_local_alert_still_decides_a_source_with_successes() -> None:
    """Article 5 is first-hand evidence (a member's own bucket overflowed): friendly fire
    vetoes sums, not alerts."""
    c = _nat(successes=True)

    effects = c.alert("m35", ATTACKER)

    (d,) = decided(effects)
    assert d.evidence.clauses == ("article5.alert",)


# -- Article 5, blast radius, poisoning, revocation ----------------------------------------


def test_an_alert_decides_with_its_evidence_chain() -> None:
    c = Council.of(members(3))

    (d,) = decided(c.alert("m0", ATTACKER))

    assert d.evidence.clauses == ("article5.alert",)
    assert d.evidence.members == ("m0",)
    assert d.evidence.exhibits[0].kind == "alert"
    assert d.decision.expires - NOW == hours(4)


def test_a_second_member_corroborates_an_active_decision() -> None:
    c = Council.of(members(3))
    (d,) = decided(c.alert("m0", ATTACKER))

    (amend,) = c.alert("m1", ATTACKER)
    assert c.alert("m1", ATTACKER) == []  # the same member again adds nothing

    assert isinstance(amend, Amend)
    assert amend.decision.id == d.decision.id
    assert amend.evidence.members == ("m0", "m1")


def test_poisoning_is_contained_and_undone_by_revocation() -> None:
    """One member reports 10,000 addresses, protected ones and other members' among them."""
    roster = [*members(10), member("evil", "member", "198.18.0.1")]
    terms = TreatyTerms(allowlist=(parse_scope("198.51.100.0/24"),))
    c = Council.of(roster, terms)
    honest_target = "100.0.0.9"
    c.alert("m3", honest_target)
    sources = [
        *(f"192.0.2.{i}" for i in range(1, 11)),  # members' addresses
        *(f"10.{i}.0.1" for i in range(50)),
        *(f"198.51.100.{i}" for i in range(50)),  # allowlist
        "127.0.0.1",
        "169.254.0.1",
        honest_target,
        *(str(ipaddress.IPv4Address("100.0.0.0") + 100 + i) for i in range(9_887)),
    ]
    assert len(sources) == 10_000

    for s in sources:
        c.alert("evil", s)

    protected = c.treaty.protected
    decided_by_evil = [d for d in decided(c.log) if d.decision.member == "evil"]
    assert all(protected.reason_for(d.decision.scope) is None for d in decided(c.log))
    assert len(decided_by_evil) == 100  # the blast-radius cap for trust "member"
    flags = of_type(c.log, Flag)
    assert [(f.member, f.clause) for f in flags] == [("evil", "blast-radius")]
    refused = [r.refusal.reason for r in of_type(c.log, Refuse)]
    assert refused.count("blast-radius") > 9_000
    assert {r for r in refused if r.startswith("protected:")} >= {
        "protected:member:m0",
        "protected:private",
        "protected:allowlist",
        "protected:loopback",
        "protected:link-local",
    }

    effects = c.send(RevokeMember("evil", reason="poisoning"))

    revoked = of_type(effects, Revoke)
    assert {r.decision.id for r in revoked} == {d.decision.id for d in decided_by_evil}
    assert all(r.evidence.clauses == ("revocation",) for r in revoked)
    (amend,) = of_type(effects, Amend)  # m3's decision: evil had corroborated it
    assert amend.evidence.members == ("m3",)
    assert c.scopes() == {f"{honest_target}/32"}
    (audit,) = of_type(effects, Audit)
    assert audit.record.action == "member.revoke"
    assert len(audit.record.decisions) == 100
    assert c.alert("evil", "100.1.0.1")[0].refusal.reason == "member-revoked"  # type: ignore[union-attr]


def test_the_blast_radius_window_slides() -> None:
    c = Council.of([member("p", "probation"), *members(3)])
    terms = c.treaty.terms.blast_radius
    assert terms.probation == 10

    for i in range(10):
        c.alert("p", f"203.0.113.{i}")
        c.send(fails("m0", f"203.0.113.{i}", 1, NOW), NOW)  # the quorum
    c.alert("p", "203.0.113.100")
    c.send(fails("m0", "203.0.113.100", 1, NOW), NOW)

    assert len([d for d in decided(c.log) if d.decision.member == "p"]) == 10
    assert of_type(c.log, Refuse)[-1].refusal.reason == "blast-radius"
    later = NOW + hours(1.1)
    c.alert("p", "203.0.113.200", later)
    c.send(fails("m0", "203.0.113.200", 1, later), later)
    assert decided(c.log)[-1].decision.scope == parse_scope("203.0.113.200")


# -- quorum --------------------------------------------------------------------------------


def test_a_probation_alert_waits_for_a_quorum() -> None:
    c = Council.of([member("p", "probation"), *members(3)])

    (hold,) = c.alert("p", ATTACKER)
    c.alert("p", ATTACKER)  # again: still one member
    c.send(fails("p", ATTACKER, 50, NOW), NOW)  # its own sightings: still one member

    assert isinstance(hold, Hold)
    assert hold.need == 2
    assert hold.have == ("p",)
    assert decided(c.log) == []

    (d,) = decided(c.send(fails("m1", ATTACKER, 1, NOW), NOW))

    assert d.evidence.clauses == ("article5.alert", "quorum")
    assert d.evidence.members == ("m1", "p")
    assert d.decision.member == "p"


def test_a_second_probation_alert_makes_the_quorum() -> None:
    c = Council.of([member("p", "probation"), member("q", "probation")])

    c.alert("p", ATTACKER)
    (d,) = decided(c.alert("q", ATTACKER))

    assert d.evidence.members == ("p", "q")


def test_a_quorum_not_reached_is_refused_at_its_timeout() -> None:
    c = Council.of([member("p", "probation"), *members(3)])
    c.alert("p", ATTACKER)

    assert c.send(Tick(), NOW + timedelta(minutes=30)) == []
    (refusal,) = c.send(Tick(), NOW + hours(1))

    assert isinstance(refusal, Refuse)
    assert refusal.refusal.reason == "quorum"
    assert refusal.evidence.members == ("p",)
    assert c.treaty.state.pending == {}


def test_quorum_levels_are_configurable() -> None:
    from shieldwall.treaty import QuorumTerms

    terms = TreatyTerms(quorum=QuorumTerms(levels=("probation", "member"), members=3))
    c = Council.of(members(5), terms)

    c.alert("m0", ATTACKER)
    c.alert("m1", ATTACKER)
    assert decided(c.log) == []
    assert len(decided(c.alert("m2", ATTACKER))) == 1


# -- revocation ----------------------------------------------------------------------------


def test_revocation_keeps_decisions_others_corroborated() -> None:
    c = Council.of(members(60))
    for i in range(50):
        c.send(fails(f"m{i}", ATTACKER, 2, NOW), NOW)
    (alliance,) = decided(c.log)
    c.alert("m7", "203.0.113.50")

    effects = c.send(RevokeMember("m7"))

    (revoke,) = of_type(effects, Revoke)
    assert revoke.decision.scope == parse_scope("203.0.113.50")
    (amend,) = of_type(effects, Amend)
    assert amend.decision.id == alliance.decision.id
    assert "m7" not in amend.evidence.members
    assert alliance.decision.id in c.active


def test_a_revoked_members_sightings_stop_counting() -> None:
    c = Council.of(members(10))
    for i in range(4):
        c.send(fails(f"m{i}", ATTACKER, 5, NOW), NOW)

    c.send(RevokeMember("m0"))
    c.send(fails("m4", ATTACKER, 5, NOW), NOW)

    assert decided(c.log) == []  # 4 live members, not 5
    c.send(fails("m5", ATTACKER, 5, NOW), NOW)
    assert len(decided(c.log)) == 1


# -- sanctions -----------------------------------------------------------------------------


def test_repeat_offenders_get_longer_bans() -> None:
    c = Council.of(members(3))
    durations = []
    now = NOW
    for _ in range(8):
        (d,) = decided(c.alert("m0", ATTACKER, now))
        durations.append(d.decision.expires - now)
        now = d.decision.expires + timedelta(minutes=1)
        c.send(Tick(), now)

    assert durations == [hours(h) for h in (4, 8, 16, 32, 64, 128, 168, 168)]  # capped at 7d
    assert decided(c.log)[0].evidence.clauses == ("article5.alert",)
    assert decided(c.log)[1].evidence.clauses == ("article5.alert", "sanction.repeat")


def test_repeat_multipliers_and_memory() -> None:
    sanctions = SanctionTerms(multipliers=(1, 3, 10), memory=7 * 86400.0)
    c = Council.of(members(3), TreatyTerms(sanctions=sanctions))
    now = NOW
    durations = []
    for gap in (0, 0, 0, 0, 8 * 86400):
        now += timedelta(seconds=gap)
        (d,) = decided(c.alert("m0", ATTACKER, now))
        durations.append(d.decision.expires - now)
        now = d.decision.expires + timedelta(minutes=1)

    assert durations == [hours(4), hours(12), hours(40), hours(40), hours(4)]


def test_a_decision_for_an_active_target_is_not_a_repeat_offence() -> None:
    c = Council.of(members(3))
    c.alert("m0", ATTACKER)
    c.alert("m1", ATTACKER)
    c.alert("m2", ATTACKER)

    now = NOW + hours(5)
    (d,) = decided(c.alert("m0", ATTACKER, now))
    assert d.decision.expires - now == hours(8)  # one offence before, not three


def test_an_unfounded_decision_does_not_count_as_an_offence() -> None:
    c = Council.of(members(3))
    (d,) = decided(c.alert("m0", ATTACKER))
    c.send(ManualUnban(d.decision.id))

    (again,) = decided(c.alert("m0", ATTACKER))

    assert again.decision.expires - NOW == hours(4)


def _range_attack(c: Council, members_: int, sources: int, prefix: str = "203.0.113.") -> None:
    for i in range(sources):
        c.alert(f"m{i % members_}", f"{prefix}{10 + i}")


def test_a_range_decision_replaces_enough_attackers_from_enough_members() -> None:
    c = Council.of(members(5))
    _range_attack(c, members_=3, sources=4)
    assert len(c.active) == 4

    effects = c.alert("m0", "203.0.113.99")

    ranged = [d for d in decided(effects) if d.decision.scope.prefixlen == 24]
    (r,) = ranged
    assert r.decision.scope == parse_scope("203.0.113.0/24")
    assert r.evidence.clauses == ("sanction.range",)
    assert r.evidence.members == ("m0", "m1", "m2")
    assert r.decision.expires - NOW == hours(24)
    superseded = of_type(effects, Revoke)
    assert len(superseded) == 5
    assert all(s.evidence.clauses == ("sanction.range",) for s in superseded)
    assert c.scopes() == {"203.0.113.0/24"}
    assert isinstance(c.alert("m4", "203.0.113.200")[0], Amend)  # covered by the range


def test_no_range_decision_from_too_few_members() -> None:
    c = Council.of(members(5))
    _range_attack(c, members_=2, sources=20)

    assert all(d.decision.scope.prefixlen == 32 for d in decided(c.log))


def test_no_range_decision_over_a_protected_target() -> None:
    c = Council.of([*members(5), member("web", "member", "203.0.113.1")])
    _range_attack(c, members_=3, sources=5)

    assert all(d.decision.scope.prefixlen == 32 for d in decided(c.log))
    refusal = of_type(c.log, Refuse)[-1]
    assert refusal.refusal.scope == parse_scope("203.0.113.0/24")
    assert refusal.refusal.reason == "protected:member:web"
    assert "sanction.range" in refusal.evidence.clauses
    assert len(c.active) == 5


def test_operators_decisions_do_not_count_towards_a_range() -> None:
    c = Council.of(members(5))
    for i in range(10):
        c.send(ManualBan(parse_scope(f"203.0.113.{50 + i}"), 86400))
    _range_attack(c, members_=3, sources=4)

    assert all(d.decision.scope.prefixlen == 32 for d in decided(c.log))
    assert len(c.active) == 14


def test_ipv6_ranges_are_slash_64() -> None:
    c = Council.of(members(5))
    _range_attack(c, members_=3, sources=5, prefix="2001:db8:0:1::")

    assert parse_scope("2001:db8:0:1::/64") in {d.decision.scope for d in decided(c.log)}


# -- Article 4: consultation ---------------------------------------------------------------


def test_consultation_happy_path() -> None:
    c = Council.of(members(5))

    (consult,) = c.send(RaiseConcern(parse_address(ATTACKER), "m0", "slow user enumeration"))
    assert isinstance(consult, Consult)
    cid = consult.concern.id
    assert consult.concern.expires - NOW == timedelta(minutes=10)

    assert c.send(Answered(cid, "m1", failures=3)) == []
    assert c.send(Answered(cid, "m1", failures=3)) == []  # a replay counts once
    assert c.send(Answered(cid, "m2", failures=0)) == []  # saw nothing
    effects = c.send(Answered(cid, "m3", failures=1))

    (d,) = decided(effects)
    (closed,) = of_type(effects, Close)
    assert closed.outcome == "decided"
    assert closed.decision == d.decision.id
    assert d.evidence.clauses == ("article4.corroborated",)
    assert d.evidence.members == ("m1", "m3")
    assert d.evidence.exhibits[0].kind == "concern"
    assert d.decision.member == "m0"
    assert c.treaty.concern(cid) is None


def test_a_concern_is_decided_at_once_when_sightings_already_corroborate_it() -> None:
    c = Council.of(members(5))
    c.send(fails("m1", ATTACKER, 1, NOW), NOW)
    c.send(fails("m2", ATTACKER, 1, NOW), NOW)

    effects = c.send(RaiseConcern(parse_address(ATTACKER), None, "operator hunch"))

    assert [type(e) for e in effects] == [Decide, Close]


def test_a_success_closes_the_concern_as_friendly_fire() -> None:
    c = Council.of(members(5))
    (consult,) = c.send(RaiseConcern(parse_address(ATTACKER), "m0"))
    c.send(Answered(consult.concern.id, "m1", failures=4))  # type: ignore[union-attr]

    (closed,) = c.send(Answered(consult.concern.id, "m2", failures=1, successes=1))  # type: ignore[union-attr]

    assert isinstance(closed, Close)
    assert closed.outcome == "friendly-fire"
    assert decided(c.log) == []


def test_a_concern_expires() -> None:
    c = Council.of(members(5))
    (consult,) = c.send(RaiseConcern(parse_address(ATTACKER), "m0"))
    assert isinstance(consult, Consult)
    c.send(Answered(consult.concern.id, "m1", failures=4))

    (closed,) = c.send(Tick(), NOW + timedelta(minutes=11))

    assert isinstance(closed, Close)
    assert closed.outcome == "expired"
    assert closed.evidence.clauses == ("article4.expired",)
    assert closed.evidence.members == ("m1",)
    assert c.send(Answered(consult.concern.id, "m2", failures=4)) == []  # too late
    assert decided(c.log) == []


def test_one_member_cannot_corroborate_its_own_concern() -> None:
    c = Council.of([member("p", "probation"), *members(2)])
    (consult,) = c.send(RaiseConcern(parse_address(ATTACKER), "p"))
    assert isinstance(consult, Consult)

    for _ in range(5):
        c.send(Answered(consult.concern.id, "p", failures=100))

    assert decided(c.log) == []


def test_concerns_about_protected_targets_are_refused() -> None:
    c = Council.of(members(3))

    (refusal,) = c.send(RaiseConcern(parse_address("192.0.2.2"), "m0"))

    assert isinstance(refusal, Refuse)
    assert refusal.refusal.reason == "protected:member:m1"


def test_open_concerns_per_member_are_capped_and_the_member_flagged() -> None:
    c = Council.of(members(3))
    for i in range(60):
        c.send(RaiseConcern(parse_address(f"203.0.113.{i}"), "m0"))

    assert len(of_type(c.log, Consult)) == 50
    assert [r.refusal.reason for r in of_type(c.log, Refuse)] == ["article4.limit"] * 10
    assert [f.clause for f in of_type(c.log, Flag)] == ["article4.limit"]


def test_the_same_concern_twice_is_one_consultation() -> None:
    c = Council.of(members(3))

    (first,) = c.send(RaiseConcern(parse_address(ATTACKER), "m0"))
    (second,) = c.send(RaiseConcern(parse_address(ATTACKER), "m1"))

    assert isinstance(first, Consult)
    assert isinstance(second, Consult)
    assert first.concern.id == second.concern.id


def test_a_decision_closes_an_open_concern() -> None:
    c = Council.of(members(3))
    c.send(RaiseConcern(parse_address(ATTACKER), "m0"))

    effects = c.alert("m1", ATTACKER)

    assert [type(e) for e in effects] == [Decide, Close]
    assert of_type(effects, Close)[0].outcome == "already-decided"


# -- operators, allowlist, membership ------------------------------------------------------


def test_manual_decisions_are_audited() -> None:
    c = Council.of(members(3))

    d, audit = c.send(ManualBan(parse_scope("203.0.113.0/24"), 3600, "scanner", actor="alice"))
    refusal, audit2 = c.send(ManualBan(parse_scope("10.0.0.0/8"), 3600, "oops", actor="alice"))
    forced, audit3 = c.send(
        ManualBan(parse_scope("10.9.0.0/16"), 3600, "lab", actor="bob", force=True)
    )

    assert isinstance(d, Decide)
    assert d.decision.origin is Origin.OPERATOR
    assert d.evidence.clauses == ("operator",)
    assert isinstance(audit, Audit)
    assert audit.record.actor == "alice"
    assert audit.record.action == "ban"
    assert audit.record.outcome == "done"
    assert audit.record.decisions == (d.decision.id,)
    assert isinstance(refusal, Refuse)
    assert isinstance(audit2, Audit)
    assert audit2.record.outcome == "refused:protected:private"
    assert isinstance(forced, Decide)
    assert forced.evidence.clauses == ("operator", "operator.force", "protected:private")
    assert isinstance(audit3, Audit)
    assert audit3.record.forced


def test_manual_unban_by_scope_and_id() -> None:
    c = Council.of(members(3))
    (d,) = decided(c.alert("m0", ATTACKER))

    revoke, audit = c.send(ManualUnban(parse_scope(ATTACKER), actor="alice", reason="fp"))
    (nothing,) = c.send(ManualUnban(d.decision.id))

    assert isinstance(revoke, Revoke)
    assert revoke.evidence.clauses == ("operator",)
    assert isinstance(audit, Audit)
    assert audit.record.decisions == (d.decision.id,)
    assert isinstance(nothing, Audit)
    assert nothing.record.outcome == "refused:no-such-decision"


def test_allowlisting_revokes_overlapping_decisions_but_not_forced_ones() -> None:
    c = Council.of(members(3))
    (d,) = decided(c.alert("m0", ATTACKER))
    c.send(ManualBan(parse_scope("203.0.113.0/24"), 86400, "", force=True))
    c.send(ManualBan(parse_scope("198.18.0.0/15"), 3600))

    effects = c.send(AllowlistAdd(parse_scope("203.0.113.0/28"), actor="alice", reason="partner"))

    (revoke, audit) = effects
    assert isinstance(revoke, Revoke)
    assert revoke.decision.id == d.decision.id
    assert revoke.evidence.clauses == ("protected:allowlist",)
    assert isinstance(audit, Audit)
    assert audit.record.action == "allowlist.add"
    assert c.alert("m1", "203.0.113.7")[0].refusal.reason == "protected:allowlist"  # type: ignore[union-attr]

    (removed,) = c.send(AllowlistRemove(parse_scope("203.0.113.0/28")))
    assert isinstance(removed, Audit)
    assert removed.record.outcome == "done"
    assert len(decided(c.alert("m1", "203.0.113.7"))) == 0  # the forced /24 covers it


def test_configured_allowlist_entries_cannot_be_removed_at_run_time() -> None:
    terms = TreatyTerms(allowlist=(parse_scope("198.51.100.0/24"),))
    c = Council.of(members(3), terms)

    (audit,) = c.send(AllowlistRemove(parse_scope("198.51.100.0/24")))

    assert isinstance(audit, Audit)
    assert audit.record.outcome == "refused:configured"


def test_enrolling_a_member_protects_its_addresses_at_once() -> None:
    c = Council.of(members(3))
    (d,) = decided(c.alert("m0", ATTACKER))

    effects = c.send(Enroll(member("web9", "member", "203.0.113.0/29")))

    revoke = of_type(effects, Revoke)[0]
    assert revoke.decision.id == d.decision.id
    assert revoke.evidence.clauses == ("protected:member:web9",)
    assert c.active == {}


def test_unknown_and_revoked_members_are_refused() -> None:
    c = Council.of(members(1))

    (r,) = c.send(Alerted("nobody", alert(ATTACKER)))

    assert isinstance(r, Refuse)
    assert r.refusal.reason == "member-unknown"


def test_an_alert_older_than_the_alliance_window_is_history_not_a_decision() -> None:
    c = Council.of(members(3))
    window = c.treaty.terms.alliance.window
    old = Alerted("m0", alert("203.0.113.50", at=NOW - timedelta(seconds=window + 60)))
    effects = c.send(old, NOW)
    (refused,) = of_type(effects, Refuse)
    assert refused.refusal.reason == "history"
    assert not decided(effects)
    # within the window it is news
    recent = Alerted("m0", alert("203.0.113.50", at=NOW - timedelta(seconds=window - 60)))
    assert decided(c.send(recent, NOW))
