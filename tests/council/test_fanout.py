"""Forward presence in the fan-out: every subscriber gets every event, in sequence order; the
members most likely to be hit next are offered a new decision first."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shieldwall.clock import ManualClock
from shieldwall.council.fanout import Broadcaster, Notice, Subscription
from shieldwall.council.service import CouncilService
from shieldwall.council.store.sqlite import SqliteStore
from shieldwall.model import Action, Decision, DecisionEvent, EventKind, Origin, parse_scope
from shieldwall.treaty import TreatyTerms
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireAlert, WireSighting, encode


def _event(seq: int, clock: ManualClock) -> DecisionEvent:
    now = clock.now()
    d = Decision(
        uuid.uuid4().hex,
        parse_scope("203.0.113.1"),
        Action.BAN,
        Origin.ALERT,
        "x",
        now,
        now + timedelta(hours=1),
        rule="sshd",
    )
    return DecisionEvent(seq, EventKind.ADD, d, now)


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, int | str]]:
    seen: list[tuple[str | None, int | str]] = []
    original = Subscription.offer

    def record(self: Subscription, item: DecisionEvent | Notice) -> None:
        seen.append((self.member, item.event if isinstance(item, Notice) else item.seq))
        original(self, item)

    monkeypatch.setattr(Subscription, "offer", record)
    return seen


def test_the_order_names_who_is_served_first(
    clock: ManualClock, offers: list[tuple[str | None, int | str]]
) -> None:
    hub = Broadcaster()
    subs = [hub.subscribe(m) for m in ("a", "b", None, "c")]
    hub.publish([_event(1, clock), _event(2, clock)], lambda e: ["c", "a"] if e.seq == 1 else [])
    first = [m for m, seq in offers if seq == 1]
    assert first[:2] == ["c", "a"]
    assert sorted(first, key=str) == sorted(["a", "b", None, "c"], key=str)
    assert len([o for o in offers if o[1] == 2]) == 4
    hub.notify(Notice("consult", b"{}"))
    assert [s.queue.qsize() for s in subs] == [3, 3, 3, 3]
    assert hub.members() == {"a", "b", "c"}


async def test_members_that_saw_the_rule_attacked_are_served_first_the_reporter_last(
    clock: ManualClock, offers: list[tuple[str | None, int | str]]
) -> None:
    service = CouncilService(SqliteStore(":memory:"), TreatyTerms(), clock)
    await service.start()
    keys = {}
    for name in ("quiet", "busy", "reporter"):
        private, public = signing.generate()
        keys[name] = private
        await service.enroll(name, public, ())
    subs = {name: service.broadcaster.subscribe(name) for name in keys}
    now = clock.now()

    async def send(name: str, report: Report) -> None:
        body = encode(report)
        await service.receive_report(body, signing.sign(signing.signing_key(keys[name]), body))

    # "busy" saw sshd failures from another source recently
    sighting = WireSighting(
        source="203.0.113.99", rule="sshd", kind="failure", count=3, first=now, last=now
    )
    await send("busy", Report(id="r1", member="busy", sent_at=now, sightings=[sighting]))
    offers.clear()
    alert = WireAlert(rule="sshd", source="203.0.113.5", first=now, last=now, count=5)
    await send("reporter", Report(id="r2", member="reporter", sent_at=now, alerts=[alert]))
    assert [m for m, _ in offers] == ["busy", "quiet", "reporter"]
    assert all(s.queue.qsize() == 1 for s in subs.values())
