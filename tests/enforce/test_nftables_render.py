"""Golden-string tests of the pure nftables renderers, and of NftEnforcer's failure handling
with a fake nft (no root needed)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.blocklist import Diff
from shieldwall.enforce import nftables as nftmod
from shieldwall.enforce._libnftables import NftResult
from shieldwall.enforce.base import Enforcer
from shieldwall.enforce.nftables import (
    NftEnforcer,
    NftView,
    format_timeout,
    parse_elements,
    partition,
    plan_batch,
    remaining_seconds,
    render_batch,
    render_setup,
    render_sync,
)
from shieldwall.errors import EnforcerError
from shieldwall.model import Scope, parse_scope
from shieldwall.net import Net

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
H = 3600.0
S = 1.0


def n(text: str) -> Scope:
    return parse_scope(text.removesuffix("/32").removesuffix("/128"))


def block(*items: tuple[str, float]) -> Diff:
    return Diff({n(s): e for s, e in items})


def unblock(*scopes: str) -> Diff:
    return Diff({}, [n(s) for s in scopes])


# --------------------------------------------------------------------------- setup


def test_setup_golden() -> None:
    assert render_setup() == (
        "add table inet shieldwall\n"
        "add set inet shieldwall addr4 { type ipv4_addr; flags timeout; }\n"
        "add set inet shieldwall addr6 { type ipv6_addr; flags timeout; }\n"
        "add set inet shieldwall net4 { type ipv4_addr; flags interval, timeout; }\n"
        "add set inet shieldwall net6 { type ipv6_addr; flags interval, timeout; }\n"
        "add chain inet shieldwall input { type filter hook input priority -10; policy accept; }\n"
        "flush chain inet shieldwall input\n"
        "add rule inet shieldwall input ip saddr @addr4 counter drop\n"
        "add rule inet shieldwall input ip saddr @net4 counter drop\n"
        "add rule inet shieldwall input ip6 saddr @addr6 counter drop\n"
        "add rule inet shieldwall input ip6 saddr @net6 counter drop\n"
    )


def test_setup_options() -> None:
    text = render_setup("sw_test", 5, hooks=("input", "forward"))
    assert "add table inet sw_test\n" in text
    assert (
        "add chain inet sw_test forward { type filter hook forward priority 5; policy accept; }\n"
        "flush chain inet sw_test forward\n"
        "add rule inet sw_test forward ip saddr @addr4 counter drop\n"
    ) in text
    assert text.count("flush chain") == 2
    # rendering twice gives the same (idempotent) script
    assert text == render_setup("sw_test", 5, hooks=("input", "forward"))


@pytest.mark.parametrize("table", ["", "1abc", "a b", "x;flush ruleset", "t{", "a" * 65])
def test_invalid_table_names_are_refused(table: str) -> None:
    with pytest.raises(ValueError, match="table name"):
        render_setup(table)
    with pytest.raises(ValueError, match="table name"):
        render_batch(unblock("192.0.2.1"), NOW, {}, table)
    with pytest.raises(ValueError, match="table name"):
        NftEnforcer(table)


def test_invalid_hooks_are_refused() -> None:
    with pytest.raises(ValueError, match="hooks"):
        render_setup(hooks=("output",))
    with pytest.raises(ValueError, match="hooks"):
        render_setup(hooks=())


# --------------------------------------------------------------------------- timeouts


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "1s"), (1, "1s"), (59, "59s"), (60, "1m"), (90, "1m30s"), (3601, "1h1s"),
     (86400, "1d"), (90061, "1d1h1m1s"), (100_000_000, "1157d9h46m40s")],
)  # fmt: skip
def test_format_timeout(seconds: int, text: str) -> None:
    assert format_timeout(seconds) == text


def test_remaining_seconds_rounds_up_with_a_floor_and_a_cap() -> None:
    assert remaining_seconds(NOW + 10 * S, NOW) == 10
    assert remaining_seconds(NOW + 9.2, NOW) == 10
    assert remaining_seconds(NOW + 0.001, NOW) == 1
    assert remaining_seconds(NOW - H, NOW) == 1
    assert remaining_seconds(NOW + 86400.0 * 10**6, NOW) == 36500 * 86400


# --------------------------------------------------------------------------- batches


def test_batch_add_ipv4_golden() -> None:
    # not held: one add, nothing else (a bulk import is one statement per element)
    plan = plan_batch(block(("192.0.2.7", NOW + H)), NOW, {})
    assert plan.text == "add element inet shieldwall addr4 { 192.0.2.7 timeout 1h }\n"
    assert plan.updates == {n("192.0.2.7"): NOW + H}
    assert (plan.blocked, plan.unblocked) == (1, 0)


def test_batch_extending_a_held_address_takes_the_robust_path() -> None:
    plan = plan_batch(block(("192.0.2.7", NOW + 2 * H)), NOW, {n("192.0.2.7"): NOW + H})
    assert plan.text == (
        "add element inet shieldwall addr4 { 192.0.2.7 timeout 1s }\n"
        "delete element inet shieldwall addr4 { 192.0.2.7 }\n"
        "add element inet shieldwall addr4 { 192.0.2.7 timeout 2h }\n"
    )


def test_batch_is_one_script_sorted_by_set_and_address() -> None:
    text = render_batch(
        block(
            ("198.51.100.9", NOW + 2 * H),
            ("2001:db8::1", NOW + 90 * S),
            ("192.0.2.7", NOW + H + 0.3),
        ),
        NOW,
        {n("198.51.100.9"): NOW + H},
        table="t1",
    )
    assert text == (
        "add element inet t1 addr4 { 198.51.100.9 timeout 1s }\n"
        "delete element inet t1 addr4 { 198.51.100.9 }\n"
        "add element inet t1 addr4 { 192.0.2.7 timeout 1h1s, 198.51.100.9 timeout 2h }\n"
        "add element inet t1 addr6 { 2001:db8::1 timeout 1m30s }\n"
    )


def test_extend_only_skips_a_shorter_or_equal_add() -> None:
    known = {n("192.0.2.7/32"): NOW + 2 * H}
    for expires in (NOW + H, NOW + 2 * H):
        plan = plan_batch(block(("192.0.2.7", expires)), NOW, known)
        assert plan.text == ""
        assert plan.skipped_not_extended == 1
        assert plan.updates == {}


def test_extend_only_renders_a_longer_add() -> None:
    known = {n("192.0.2.7/32"): NOW + H}
    plan = plan_batch(block(("192.0.2.7", NOW + 3 * H)), NOW, known)
    assert plan.text.endswith("add element inet shieldwall addr4 { 192.0.2.7 timeout 3h }\n")
    assert plan.updates == {n("192.0.2.7/32"): NOW + 3 * H}


def test_an_expired_known_entry_does_not_block_a_new_add() -> None:
    # the kernel may still hold it for a moment: the robust path, then the new timeout
    plan = plan_batch(block(("192.0.2.7", NOW + H)), NOW, {n("192.0.2.7/32"): NOW - S})
    assert plan.text.endswith("{ 192.0.2.7 timeout 1h }\n")
    assert "delete element" in plan.text


def test_skip_expired_adds() -> None:
    plan = plan_batch(
        block(("192.0.2.7", NOW), ("192.0.2.8", NOW - H), ("10.0.0.0/8", NOW)), NOW, {}
    )
    assert plan.text == ""
    assert plan.skipped_expired == 3
    assert plan.updates == {}


def test_a_view_forgets_what_lapsed() -> None:
    view = NftView.of({n("192.0.2.7/32"): NOW, n("192.0.2.8/32"): NOW + S})
    view.prune(NOW)
    assert view.blocks() == {n("192.0.2.8/32"): NOW + S}


def test_remove_of_absent_is_robust_golden() -> None:
    # not in known: the element is first made present, then deleted — never ENOENT
    text = render_batch(unblock("192.0.2.9"), NOW, {})
    assert text == (
        "add element inet shieldwall addr4 { 192.0.2.9 timeout 1s }\n"
        "delete element inet shieldwall addr4 { 192.0.2.9 }\n"
    )


def test_remove_with_a_stale_view_renders_the_same_robust_script() -> None:
    # known says it is there (the kernel may have lost it): same add-then-delete
    stale = {n("192.0.2.9/32"): NOW + H}
    plan = plan_batch(unblock("192.0.2.9"), NOW, stale)
    assert plan.text == render_batch(unblock("192.0.2.9"), NOW, {})
    assert plan.updates == {n("192.0.2.9"): None}
    assert plan.unblocked == 1


def test_every_delete_is_preceded_by_an_add_of_the_same_elements() -> None:
    changes = Diff(
        {n("192.0.2.2"): NOW + H, n("2001:db8::6"): NOW + H, n("192.0.2.1"): NOW + 2 * H},
        [n("192.0.2.9"), n("2001:db8::5")],
    )
    lines = render_batch(changes, NOW, {n("192.0.2.1/32"): NOW + H}).splitlines()
    assert any(line.startswith("delete element") for line in lines)
    for i, line in enumerate(lines):
        if line.startswith("delete element"):
            _, _, _, table, set_name, body = line.split(" ", 5)
            added = lines[i - 1]
            assert added.startswith(f"add element inet {table} {set_name} {{ ")
            assert [e.split(" ")[0] for e in added.split("{ ")[1][:-2].split(", ")] == (
                body.strip("{} ").split(", ")
            )


def test_unblock_and_block_of_one_scope_replaces_it() -> None:
    scope = n("192.0.2.7/32")
    plan = plan_batch(Diff({scope: NOW + H}, [scope]), NOW, {scope: NOW + 5 * H})
    assert plan.updates == {scope: NOW + H}  # an explicit unblock resets extend-only
    assert plan.text == (
        "add element inet shieldwall addr4 { 192.0.2.7 timeout 1s }\n"
        "delete element inet shieldwall addr4 { 192.0.2.7 }\n"
        "add element inet shieldwall addr4 { 192.0.2.7 timeout 1h }\n"
    )


def test_ipv6_golden() -> None:
    text = render_batch(Diff({n("2001:db8:0:0:0:0:0:1"): NOW + H}, [n("2001:db8::2/128")]), NOW, {})
    assert text == (
        "add element inet shieldwall addr6 { 2001:db8::2 timeout 1s }\n"
        "delete element inet shieldwall addr6 { 2001:db8::2 }\n"
        "add element inet shieldwall addr6 { 2001:db8::1 timeout 1h }\n"
    )


def test_cidr_golden_rebuilds_the_network_set() -> None:
    known = {n("198.51.100.0/24"): NOW + H, n("192.0.2.5/32"): NOW + H}
    text = render_batch(block(("203.0.113.0/24", NOW + 2 * H)), NOW, known)
    assert text == (
        "flush set inet shieldwall net4\n"
        "add element inet shieldwall net4 { 198.51.100.0/24 timeout 1h, "
        "203.0.113.0/24 timeout 2h }\n"
    )


def test_cidr_remove_of_last_network_just_flushes() -> None:
    text = render_batch(unblock("198.51.100.0/24"), NOW, {n("198.51.100.0/24"): NOW + H})
    assert text == "flush set inet shieldwall net4\n"
    # and of an absent one, too: nothing can fail
    assert render_batch(unblock("10.0.0.0/8"), NOW, {}) == text


def test_ipv6_cidr_only_touches_net6() -> None:
    known = {n("198.51.100.0/24"): NOW + H}
    text = render_batch(block(("2001:db8:1::/48", NOW + H)), NOW, known)
    assert text == (
        "flush set inet shieldwall net6\n"
        "add element inet shieldwall net6 { 2001:db8:1::/48 timeout 1h }\n"
    )


def test_address_inside_a_present_cidr_goes_to_the_address_set() -> None:
    known = {n("192.0.2.0/24"): NOW + H}
    text = render_batch(block(("192.0.2.66", NOW + 2 * H)), NOW, known)
    assert "net4" not in text
    assert text.endswith("add element inet shieldwall addr4 { 192.0.2.66 timeout 2h }\n")


def test_nested_cidrs_are_carved_not_overlapping() -> None:
    known = {n("10.0.0.0/22"): NOW + H}
    text = render_batch(block(("10.0.1.0/24", NOW + 2 * H)), NOW, known)
    assert text == (
        "flush set inet shieldwall net4\n"
        "add element inet shieldwall net4 { 10.0.0.0/24 timeout 1h, 10.0.1.0/24 timeout 2h, "
        "10.0.2.0/23 timeout 1h }\n"
    )
    # a covering network that outlives the nested one swallows it
    text = render_batch(block(("10.0.0.0/16", NOW + 3 * H)), NOW, known)
    assert text == (
        "flush set inet shieldwall net4\n"
        "add element inet shieldwall net4 { 10.0.0.0/16 timeout 3h }\n"
    )


def test_partition_golden() -> None:
    nets = {
        n("10.0.0.0/8"): NOW + H,
        n("10.1.0.0/16"): NOW + 3 * H,
        n("10.1.2.0/24"): NOW + 2 * H,  # inside the /16, shorter: nothing of its own
        n("10.1.2.128/25"): NOW + 4 * H,  # outlives everything around it
        n("192.0.2.0/24"): NOW + H,
    }
    got = [(str(s), e - NOW) for s, e in partition(nets)]
    pieces_8 = ipaddress_exclude("10.0.0.0/8", "10.1.0.0/16")
    pieces_16 = ipaddress_exclude("10.1.0.0/16", "10.1.2.128/25")
    want = sorted(
        [(p, H) for p in pieces_8]
        + [(p, 3 * H) for p in pieces_16]
        + [("10.1.2.128/25", 4 * H), ("192.0.2.0/24", H)],
        key=lambda kv: n(kv[0]).value,
    )
    assert got == want


def ipaddress_exclude(net: str, hole: str) -> list[str]:
    """What the standard library's ``address_exclude`` leaves (the reference)."""
    import ipaddress

    outer, inner = ipaddress.ip_network(net), ipaddress.ip_network(hole)
    return [str(p) for p in outer.address_exclude(inner)]  # type: ignore[arg-type]


@st.composite
def _nets(draw: st.DrawFn) -> dict[Scope, float]:
    out: dict[Scope, float] = {}
    for _ in range(draw(st.integers(0, 8))):
        plen = draw(st.integers(20, 31))
        addr = draw(st.integers(0, 2**12 - 1)) << 20 | draw(st.integers(0, 2**20 - 1))
        net = Net.of(4, addr & ~((1 << (32 - plen)) - 1), plen)
        out[net] = NOW + draw(st.integers(1, 5)) * H
    return out


@given(_nets(), st.lists(st.integers(0, 2**32 - 1), max_size=20))
@settings(max_examples=200, deadline=None)
def test_partition_is_disjoint_and_keeps_the_latest_expiry(
    nets: dict[Scope, float], probes: list[int]
) -> None:
    pieces = partition(nets)
    for (a, _), (b, _) in itertools.pairwise(pieces):
        assert a.last < b.value  # sorted and disjoint
    # probe the edges of every network plus random points
    points = set(probes)
    for net in nets:
        points |= {net.value, net.last}
    for point in points:
        want = max((e for s, e in nets.items() if s.value <= point <= s.last), default=None)
        got = [e for s, e in pieces if s.value <= point <= s.last]
        assert got == ([] if want is None else [want])


# --------------------------------------------------------------------------- sync


def test_sync_golden_is_one_atomic_script() -> None:
    active = {
        n("192.0.2.7/32"): NOW + H,
        n("2001:db8::1/128"): NOW + 2 * H,
        n("198.51.100.0/24"): NOW + 3 * H,
        n("2001:db8:1::/48"): NOW + 4 * H,
        n("192.0.2.8/32"): NOW - S,  # expired: left out
    }
    assert render_sync(active, NOW) == (
        "flush set inet shieldwall addr4\n"
        "flush set inet shieldwall addr6\n"
        "flush set inet shieldwall net4\n"
        "flush set inet shieldwall net6\n"
        "add element inet shieldwall addr4 { 192.0.2.7 timeout 1h }\n"
        "add element inet shieldwall addr6 { 2001:db8::1 timeout 2h }\n"
        "add element inet shieldwall net4 { 198.51.100.0/24 timeout 3h }\n"
        "add element inet shieldwall net6 { 2001:db8:1::/48 timeout 4h }\n"
    )


def test_sync_of_nothing_only_flushes() -> None:
    assert render_sync({}, NOW, "t2") == "".join(
        f"flush set inet t2 {s}\n" for s in ("addr4", "addr6", "net4", "net6")
    )


def test_sync_carves_nested_networks() -> None:
    text = render_sync({n("10.0.0.0/23"): NOW + H, n("10.0.1.0/24"): NOW + 2 * H}, NOW)
    assert (
        "add element inet shieldwall net4 { 10.0.0.0/24 timeout 1h, 10.0.1.0/24 timeout 2h }\n"
        in text
    )


# --------------------------------------------------------------------------- reading back


SAMPLE = json.dumps(
    {
        "nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "shieldwall", "handle": 1}},
            {"set": {"family": "inet", "name": "addr4", "table": "shieldwall",
                     "type": "ipv4_addr", "flags": ["timeout"],
                     "elem": [{"elem": {"val": "192.0.2.7", "timeout": 300, "expires": 231}}]}},
            {"set": {"family": "inet", "name": "net4", "table": "shieldwall",
                     "type": "ipv4_addr", "flags": ["interval", "timeout"],
                     "elem": [{"elem": {"val": {"prefix": {"addr": "10.0.0.0", "len": 25}},
                                        "timeout": 50, "expires": 49}},
                              {"elem": {"val": {"range": ["10.0.1.0", "10.0.1.2"]},
                                        "timeout": 50, "expires": 48}}]}},
            {"set": {"family": "inet", "name": "net6", "table": "other", "type": "ipv6_addr",
                     "elem": ["2001:db8::/64"]}},
        ]
    }
)  # fmt: skip


def test_parse_elements() -> None:
    assert parse_elements(SAMPLE) == {
        "addr4": {n("192.0.2.7/32"): 231},
        "addr6": {},
        "net4": {n("10.0.0.0/25"): 49, n("10.0.1.0/31"): 48, n("10.0.1.2/32"): 48},
        "net6": {},
    }


# --------------------------------------------------------------------------- enforcer logic


class FakeNft:
    """Records scripts; fails those containing any of ``fail_on``."""

    backend = "libnftables"

    def __init__(self, *fail_on: str) -> None:
        self.fail_on = list(fail_on)
        self.scripts: list[str] = []
        self.closed = False

    def run(self, text: str, *, json: bool = False) -> NftResult:
        self.scripts.append(text)
        if any(f in text for f in self.fail_on):
            return NftResult(1, "", "Error: Could not process rule: something\n")
        return NftResult(0, SAMPLE if json else "", "")

    def close(self) -> None:
        self.closed = True


def _enforcer(fake: FakeNft) -> NftEnforcer:
    enf = NftEnforcer("shieldwall")
    enf._nft = fake  # type: ignore[assignment]
    return enf


def test_enforcer_satisfies_the_protocol() -> None:
    enf: Enforcer = NftEnforcer()
    assert enf.name == "nftables"


async def test_apply_runs_setup_once_then_one_transaction_per_batch() -> None:
    fake = FakeNft()
    enf = _enforcer(fake)
    await enf.apply(block(("192.0.2.7", NOW + H), ("192.0.2.8", NOW + H)), NOW)
    await enf.apply(unblock("192.0.2.7"), NOW)
    await enf.apply(Diff(), NOW)
    assert fake.scripts[0] == render_setup()
    assert len(fake.scripts) == 3
    assert enf.known == {n("192.0.2.8/32"): NOW + H}
    await enf.close()
    assert fake.closed


async def test_setup_failure_raises_enforcer_error() -> None:
    enf = _enforcer(FakeNft("add table"))
    with pytest.raises(EnforcerError, match="setup"):
        await enf.apply(block(("192.0.2.7", NOW + H)), NOW)
    with pytest.raises(EnforcerError, match="setup"):
        await enf.sync({}, NOW)


async def test_failed_batch_falls_back_to_one_by_one() -> None:
    fake = FakeNft("192.0.2.66")  # this one element always fails
    enf = _enforcer(fake)
    good, bad = n("192.0.2.7/32"), n("192.0.2.66/32")
    await enf.apply(Diff({good: NOW + H, bad: NOW + H, n("10.0.0.0/8"): NOW + H}), NOW)
    assert enf.known == {good: NOW + H, n("10.0.0.0/8"): NOW + H}
    assert enf.counters.get("nft.batch_failed") == 1
    assert enf.counters.get("nft.change_failed") == 1
    # setup, batch, restore (setup + sync), retried batch, then three single changes
    assert len(fake.scripts) == 1 + 1 + 2 + 1 + 3


async def test_failed_batch_is_retried_after_restoring_the_table() -> None:
    class Flaky(FakeNft):
        def run(self, text: str, *, json: bool = False) -> NftResult:
            self.scripts.append(text)
            fail = text.startswith("add element") and len(self.scripts) == 3
            return NftResult(1 if fail else 0, "", "Error: No such file or directory\n")

    fake = Flaky()
    enf = _enforcer(fake)
    await enf.apply(block(("192.0.2.9", NOW + H)), NOW)
    await enf.apply(block(("192.0.2.7", NOW + H)), NOW)  # fails once: restore, retry
    assert fake.scripts[3] == render_setup()
    assert fake.scripts[4] == render_sync({n("192.0.2.9/32"): NOW + H}, NOW)
    assert fake.scripts[5] == fake.scripts[2]
    assert enf.known == {n("192.0.2.9/32"): NOW + H, n("192.0.2.7/32"): NOW + H}
    assert enf.counters.get("nft.change_failed") == 0


async def test_sync_replaces_the_view_and_failed_sync_degrades() -> None:
    fake = FakeNft()
    enf = _enforcer(fake)
    await enf.apply(block(("192.0.2.7", NOW + H)), NOW)
    await enf.sync({n("192.0.2.8/32"): NOW + H, n("192.0.2.9/32"): NOW - H}, NOW)
    assert enf.known == {n("192.0.2.8/32"): NOW + H}
    assert fake.scripts[-1] == render_sync({n("192.0.2.8/32"): NOW + H}, NOW)

    fake.fail_on = ["192.0.2.66"]
    await enf.sync({n("192.0.2.66/32"): NOW + H, n("192.0.2.1/32"): NOW + H}, NOW)
    assert enf.known == {n("192.0.2.1/32"): NOW + H}
    assert enf.counters.get("nft.sync_failed") == 1


def test_list_elements_parses_json() -> None:
    fake = FakeNft()
    enf = _enforcer(fake)
    assert enf.list_elements()["addr4"] == {n("192.0.2.7/32"): 231}
    assert fake.scripts == ["list table inet shieldwall"]


def test_module_logger_name() -> None:
    assert nftmod.log.name == "shieldwall.enforce.nftables"
