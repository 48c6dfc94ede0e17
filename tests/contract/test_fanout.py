"""The Fanout contract, run over every implementation (``inprocess://``): every subscriber
gets every batch in order, notices reach who is subscribed, a subscriber that falls behind is
cut (and resumes from the store), leaving a subscription unsubscribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from shieldwall.council.fanout import SCHEMES, Batch, Fanout, InProcessFanout, Notice, open_fanout
from shieldwall.errors import ConfigError
from shieldwall.model import Action, Decision, DecisionEvent, EventKind, Origin, parse_scope

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MAKERS: dict[str, Callable[[int], Fanout]] = {"inprocess": lambda n: InProcessFanout(n)}


def test_every_scheme_is_covered() -> None:
    assert set(MAKERS) == set(SCHEMES)
    assert isinstance(open_fanout("inprocess://"), InProcessFanout)
    with pytest.raises(ConfigError, match=r"fanout: .*inprocess://"):
        open_fanout("carrier-pigeon://", "council.toml")


@pytest.fixture(params=sorted(MAKERS))
async def fanout(request: pytest.FixtureRequest) -> AsyncIterator[Fanout]:
    f = MAKERS[request.param](10)  # a subscriber 10 events behind is cut
    yield f
    await f.close()


def batch(*seqs: int) -> Batch:
    events = []
    for seq in seqs:
        d = Decision(
            f"d{seq}", parse_scope("203.0.113.1"), Action.BAN, Origin.ALERT, "r", NOW,
            NOW + timedelta(hours=1),
        )  # fmt: skip
        events.append(DecisionEvent(seq, EventKind.ADD, d, NOW))
    return Batch(events)


async def test_every_subscriber_gets_every_batch_in_order(fanout: Fanout) -> None:
    async with fanout.subscribe("a") as a, fanout.subscribe(None) as op:
        assert fanout.subscribers == 2
        assert fanout.members() == {"a"}
        await fanout.publish(batch(1, 2, 3))
        await fanout.publish(batch(4), first=["a"])
        for sub in (a, op):
            items = await asyncio.wait_for(sub.next(), 5)
            assert items is not None
            got = [e.seq for item in items if isinstance(item, Batch) for e in item.events]
            assert got == [1, 2, 3, 4]
            assert len(items) == 2  # a batch is one item, whatever it holds
    assert fanout.subscribers == 0
    assert fanout.members() == set()


async def test_a_batch_is_encoded_once_for_every_subscriber() -> None:
    calls = []

    def encode(events: object) -> bytes:
        calls.append(events)
        return b"x"

    b = batch(1, 2)
    assert b.wire(encode) == b.wire(encode) == b"x"
    assert len(calls) == 1
    assert (b.first_seq, b.last_seq, len(b)) == (1, 2, 2)
    with pytest.raises(ValueError, match="at least one"):
        Batch([])


async def test_notices_reach_who_is_subscribed(fanout: Fanout) -> None:
    await fanout.notify(Notice("consult", b"{}"))  # nobody there: lost, by design
    async with fanout.subscribe("a") as a:
        await fanout.notify(Notice("consult", b'{"x":1}'))
        await fanout.publish(batch(1))
        items = await asyncio.wait_for(a.next(), 5)
    assert items is not None
    assert isinstance(items[0], Notice)
    assert items[0].data == b'{"x":1}'
    assert isinstance(items[1], Batch)


async def test_a_subscriber_that_falls_behind_is_cut(fanout: Fanout) -> None:
    async with fanout.subscribe("slow") as slow, fanout.subscribe("fast") as fast:
        await fanout.publish(batch(1, 2, 3, 4, 5, 6))
        assert await asyncio.wait_for(fast.next(), 5) is not None
        await fanout.publish(batch(7, 8, 9, 10, 11, 12))  # slow now 12 behind: cut
        await fanout.publish(batch(13))
        first = await asyncio.wait_for(slow.next(), 5)
        assert first is not None  # what was queued before the cut is still read
        assert [e.seq for item in first if isinstance(item, Batch) for e in item.events] == [
            1, 2, 3, 4, 5, 6,
        ]  # fmt: skip
        assert await asyncio.wait_for(slow.next(), 5) is None  # then: resume from the store
        later = await asyncio.wait_for(fast.next(), 5)
        assert later is not None
        assert [e.seq for item in later if isinstance(item, Batch) for e in item.events] == [
            7, 8, 9, 10, 11, 12, 13,
        ]  # fmt: skip


async def test_a_waiting_subscriber_wakes_when_something_is_published(fanout: Fanout) -> None:
    async with fanout.subscribe("a") as a:
        waiting = asyncio.create_task(a.next())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await fanout.publish(batch(1))
        items = await asyncio.wait_for(waiting, 5)
    assert items is not None
    assert len(items) == 1


async def test_closing_ends_every_subscription(fanout: Fanout) -> None:
    async with fanout.subscribe("a") as a:
        waiting = asyncio.create_task(a.next())
        await asyncio.sleep(0.01)
        await fanout.close()
        assert await asyncio.wait_for(waiting, 5) is None


async def test_dropping_a_member_cuts_its_subscriptions_at_once(fanout: Fanout) -> None:
    async with (
        fanout.subscribe("a") as a1,
        fanout.subscribe("a") as a2,
        fanout.subscribe("b") as b,
    ):
        await fanout.publish(batch(1))
        assert await fanout.drop("a") == 2
        assert await fanout.drop("nobody") == 0
        for sub in (a1, a2):  # not even what was queued before the drop
            assert await asyncio.wait_for(sub.next(), 5) is None
        items = await asyncio.wait_for(b.next(), 5)
        assert items is not None
        assert [e.seq for item in items if isinstance(item, Batch) for e in item.events] == [1]
