"""Forward presence in the fan-out: every subscriber gets every batch, in sequence order; the
members most likely to be hit next are offered a new decision first."""

from __future__ import annotations

import asyncio

import pytest

from shieldwall.clock import ManualClock
from shieldwall.council.fanout import Batch, InProcessFanout
from shieldwall.council.fanout.inprocess import _Subscription
from shieldwall.council.service import CouncilService
from shieldwall.council.store import MemoryStore
from shieldwall.treaty import TreatyTerms
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireAlert, WireSighting, encode


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, int]]:
    seen: list[tuple[str | None, int]] = []
    original = _Subscription.offer

    def record(self: _Subscription, item: object) -> None:
        if isinstance(item, Batch):
            seen.append((self.member, item.first_seq))
        original(self, item)  # type: ignore[arg-type]

    monkeypatch.setattr(_Subscription, "offer", record)
    return seen


async def test_members_that_saw_the_rule_attacked_are_served_first_the_reporter_last(
    clock: ManualClock, offers: list[tuple[str | None, int]]
) -> None:
    fanout = InProcessFanout()
    service = CouncilService(MemoryStore(), TreatyTerms(), clock, fanout=fanout, group_window=0)
    await service.start()
    keys = {}
    for name in ("quiet", "busy", "reporter"):
        private, public = signing.generate()
        keys[name] = private
        await service.enroll(name, public, ())
    now = clock.now()

    async def send(name: str, report: Report) -> None:
        body = encode(report)
        await service.receive_report(body, signing.sign(signing.signing_key(keys[name]), body))

    subs = [fanout.subscribe(name) for name in keys]
    entered = [await s.__aenter__() for s in subs]
    try:
        # "busy" saw sshd failures from another source recently
        sighting = WireSighting(
            source="203.0.113.99", rule="sshd", kind="failure", count=3, first=now, last=now
        )
        await send("busy", Report(id="r1", member="busy", sent_at=now, sightings=[sighting]))
        offers.clear()
        alert = WireAlert(rule="sshd", source="203.0.113.5", first=now, last=now, count=5)
        await send("reporter", Report(id="r2", member="reporter", sent_at=now, alerts=[alert]))
        assert [m for m, _ in offers] == ["busy", "quiet", "reporter"]
        for sub in entered:
            items = await asyncio.wait_for(sub.next(), 5)
            assert items is not None
            assert len(items) == 1
    finally:
        for s in subs:
            await s.__aexit__(None, None, None)
