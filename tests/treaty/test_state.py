"""The treaty's state survives a restart; forward presence; v1 verdicts carry evidence."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shieldwall.model import Action, Decision, Origin, parse_address, parse_scope
from shieldwall.treaty import (
    AllianceTerms,
    Consult,
    Evidence,
    MemberInfo,
    Protected,
    RaiseConcern,
    Revoke,
    Tick,
    Treaty,
    TreatyConfig,
    TreatyState,
    TreatyTerms,
    forward_order,
    judge_alert,
    judge_manual,
    service_of,
)
from tests.treaty.support import NOW, Council, alert, decided, fails, hours, member, members


def _busy() -> Council:
    """A council with something in every part of the state."""
    c = Council.of([*members(6), member("p", "probation")])
    c.alert("m0", "203.0.113.7")
    c.alert("m1", "203.0.113.7")
    c.alert("p", "198.18.0.9")
    for i in range(3):
        c.send(fails(f"m{i}", "45.1.1.1", 2, NOW), NOW)
    c.send(RaiseConcern(parse_address("45.9.9.9"), "m2", "odd"))
    return c


def test_the_state_round_trips_through_json() -> None:
    c = _busy()
    plain = c.treaty.state.to_plain()

    restored = TreatyState.from_plain(json.loads(json.dumps(plain)))

    assert restored.to_plain() == plain
    # the ledger is the store's to keep (Treaty.sync adopts it): the state does not grow with it
    assert "ledger" not in plain
    assert {**restored.sizes(), "treaty.decisions": 1} == c.treaty.state.sizes()
    assert restored.sizes()["treaty.pending"] == 1
    assert restored.sizes()["treaty.concerns"] == 1


def test_a_version_1_state_with_its_ledger_is_still_read() -> None:
    c = _busy()
    plain = {
        **c.treaty.state.to_plain(),
        "version": 1,
        "ledger": [e.to_plain() for e in c.treaty.state.ledger],
    }

    restored = TreatyState.from_plain(json.loads(json.dumps(plain)))

    assert restored.sizes() == c.treaty.state.sizes()


def test_a_restarted_treaty_carries_on() -> None:
    c = _busy()
    roster = list(c.treaty.members.values())
    restored = TreatyState.from_plain(json.loads(json.dumps(c.treaty.state.to_plain())))
    t = Treaty(c.treaty.terms, roster, restored)
    # what the council does at start: the store's active set and evidence
    stored = {e.decision.id: e.evidence for e in c.treaty.state.ledger}
    assert t.sync(c.treaty.active(NOW), NOW, stored) == []

    # the pending quorum, the buckets and the ledger all came back
    (d,) = decided(t.handle(fails("m3", "198.18.0.9", 1, NOW), NOW))
    assert d.evidence.members == ("m3", "p")
    assert len(decided(t.handle(fails("m3", "45.1.1.1", 2, NOW), NOW))) == 0
    assert len(decided(t.handle(fails("m4", "45.1.1.1", 20, NOW), NOW))) == 1
    assert t.explain(decided(c.log)[0].decision.id) is not None
    assert d.decision.id not in {x.decision.id for x in decided(c.log)}  # ids keep counting


def test_a_changed_granularity_resets_the_buckets() -> None:
    c = _busy()
    terms = TreatyTerms(alliance=AllianceTerms(granularity=60))

    t = Treaty(terms, list(c.treaty.members.values()), c.treaty.state)

    assert len(t.state.sources) == 0
    assert t.state.counters["sources.reset"] > 0


def test_an_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        TreatyState.from_plain({"version": 99})


def test_a_tick_forgets_what_left_every_window() -> None:
    c = _busy()

    c.send(Tick(), NOW + timedelta(days=40))

    assert c.treaty.state.sizes() == dict.fromkeys(c.treaty.state.sizes(), 0)
    assert c.treaty.state.blast == {}


def test_sync_adopts_the_stores_active_set() -> None:
    t = Treaty(TreatyTerms(), members(3))

    def d(i: str, scope: str, origin: Origin, member: str | None) -> Decision:
        return Decision(
            i, parse_scope(scope), Action.BAN, origin, "r", NOW, NOW + hours(1), member, "sshd"
        )

    stored = [
        d("a", "203.0.113.7", Origin.ALERT, "m0"),
        d("b", "203.0.113.0/24", Origin.OPERATOR, None),
        d("c", "10.0.0.0/8", Origin.OPERATOR, None),  # forced
        d("e", "192.0.2.2", Origin.ALERT, "m0"),  # m1's address: no longer allowed
    ]
    given = Evidence.of(("alliance.threshold",), ("m1", "m2"))

    effects = t.sync(stored, NOW, {"a": given})

    assert [(type(e), e.decision.id) for e in effects] == [(Revoke, "e")]  # type: ignore[union-attr]
    assert t.explain("a") == given
    assert t.explain("b") == Evidence.of(("operator",), (), (), "r")
    assert t.state.ledger.get("c").forced  # type: ignore[union-attr]
    assert t.sync([], NOW) == []
    assert t.active(NOW) == []


def test_forward_presence_orders_likely_targets_first() -> None:
    d = Decision(
        "x", parse_scope("203.0.113.7"), Action.BAN, Origin.ALERT, "", NOW, NOW, "a", "ssh-bf"
    )
    activity = {
        "a": {"ssh-bf": 50},  # reported it: already blocks it locally
        "b": {"http-probing": 500},
        "c": {"ssh-slow-bf": 3},
        "d": {"ssh-bf": 2},
        "e": {"ssh-bf": 9, "http-probing": 1},
    }

    order = forward_order(d, ["f", "e", "d", "c", "b", "a"], activity)

    assert order == ["e", "d", "c", "b", "f", "a"]
    assert forward_order(d, ["a", "a", "b"], {}) == ["b", "a"]  # every member once
    assert service_of("ssh-slow-bf") == "ssh"
    assert service_of("sshd") == "sshd"


def test_treaty_activity_feeds_forward_presence() -> None:
    c = Council.of(members(4))
    c.send(fails("m1", "45.1.1.1", 3, NOW, rule="ssh-bf"), NOW)
    c.send(fails("m2", "45.1.1.2", 30, NOW, rule="http-probing"), NOW)
    (d,) = decided(c.alert("m0", "203.0.113.7", rule="ssh-bf"))

    order = forward_order(d.decision, c.treaty.members, c.treaty.activity(NOW), evidence=d.evidence)

    assert order == ["m1", "m2", "m3", "m0"]


def test_v1_verdicts_carry_their_evidence() -> None:
    p = Protected.build()
    m = MemberInfo("web1", "member")

    v = judge_alert(alert("203.0.113.9"), m, p, {}, TreatyConfig(), NOW, "d1")
    r = judge_alert(alert("10.0.0.1"), m, p, {}, TreatyConfig(), NOW, "d2")
    o = judge_manual(parse_scope("10.0.0.0/8"), 60, "lab", p, NOW, "d3", force=True)

    assert v.evidence.clauses == ("article5.alert",)  # type: ignore[union-attr]
    assert v.evidence.members == ("web1",)  # type: ignore[union-attr]
    assert r.evidence.clauses == ("protected:private", "article5.alert")  # type: ignore[union-attr]
    assert o.evidence.clauses == ("operator", "operator.force", "protected:private")  # type: ignore[union-attr]


def test_a_concern_round_trips() -> None:
    c = Council.of(members(3))
    (consult,) = c.send(RaiseConcern(parse_address("203.0.113.7"), None, "why", "sshd"))
    assert isinstance(consult, Consult)

    from shieldwall.treaty import Concern

    assert Concern.from_plain(json.loads(json.dumps(consult.concern.to_plain()))) == consult.concern
