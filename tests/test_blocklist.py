"""The block list: incremental diffs equal a full recomputation, after any sequence of events,
local bans, expiries and restarts; lookups find what contains an address."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.blocklist import BlockList, Diff, full_diff
from shieldwall.model import Scope, parse_address, parse_scope

T0 = 1_800_000_000.0
SCOPES = [
    parse_scope(s)
    for s in ("203.0.113.1", "203.0.113.2", "203.0.113.0/24", "198.51.100.7", "2001:db8::1")
]


@dataclass
class Model:
    """The reference: every claim and local ban, recomputed in full."""

    claims: dict[str, tuple[Scope, float]] = field(default_factory=dict)
    local: dict[Scope, float] = field(default_factory=dict)

    def target(self, now: float) -> dict[Scope, float]:
        out: dict[Scope, float] = {}
        for scope, exp in [*self.claims.values(), *self.local.items()]:
            if exp > now and exp > out.get(scope, 0.0):
                out[scope] = exp
        return out


class Enforcer:
    """What an enforcer does with a diff (the port's contract)."""

    def __init__(self) -> None:
        self.held: dict[Scope, float] = {}

    def apply(self, diff: Diff) -> None:
        for scope in diff.unblock:
            self.held.pop(scope, None)
        for scope, exp in diff.block.items():
            if exp > self.held.get(scope, 0.0) or scope in diff.unblock:
                self.held[scope] = exp

    def live(self, now: float) -> dict[Scope, float]:
        return {s: e for s, e in self.held.items() if e > now}


@dataclass(frozen=True)
class Claim:
    i: int
    scope: Scope
    dt: float


@dataclass(frozen=True)
class Release:
    i: int
    lift: bool


@dataclass(frozen=True)
class Ban:
    scope: Scope
    dt: float


@dataclass(frozen=True)
class Lift:
    scope: Scope


@dataclass(frozen=True)
class Time:
    dt: float


@dataclass(frozen=True)
class Snapshot:
    claims: list[Claim]


@dataclass(frozen=True)
class Restart:
    pass


scopes = st.sampled_from(SCOPES)
times = st.floats(-100, 5000)
claims = st.builds(Claim, st.integers(0, 7), scopes, times)
Op = Claim | Release | Ban | Lift | Time | Snapshot | Restart
ops = st.one_of(
    claims,
    st.builds(Release, st.integers(0, 7), st.booleans()),
    st.builds(Ban, scopes, times),
    st.builds(Lift, scopes),
    st.builds(Time, st.floats(0, 800)),
    st.builds(Snapshot, st.lists(claims, max_size=6)),
    st.builds(Restart),
)


@given(st.lists(ops, max_size=60))
@settings(max_examples=400, deadline=None)
def test_diffs_equal_a_full_recomputation(steps: list[Op]) -> None:
    now = T0
    blocks, model, enforcer = BlockList(), Model(), Enforcer()
    last_target: dict[Scope, float] = {}
    for step in steps:
        match step:
            case Claim(i, scope, dt):
                blocks.claim(f"d{i}", scope, T0 + dt)
                model.claims[f"d{i}"] = (scope, T0 + dt)
            case Release(i, lift):
                held = model.claims.pop(f"d{i}", None)
                lifted = blocks.release(f"d{i}", lift_local=lift)
                assert lifted == (held is not None and lift and held[0] in model.local)
                if lifted and held is not None:
                    del model.local[held[0]]
            case Ban(scope, dt):
                blocks.ban(scope, T0 + dt)
                model.local[scope] = max(model.local.get(scope, T0 + dt), T0 + dt)
            case Lift(scope):
                blocks.lift(scope)
                model.local.pop(scope, None)
            case Time(dt):
                now += dt
                blocks.expire(now)
                model.local = {s: e for s, e in model.local.items() if e > now}
            case Snapshot(given_claims):
                model.claims = {f"d{c.i}": (c.scope, T0 + c.dt) for c in given_claims}
                blocks.reset((i, s, e) for i, (s, e) in model.claims.items())
            case Restart():
                # what the agent keeps on disk: its claims and local bans; then a sync
                again = BlockList()
                again.reset(blocks.items())
                for scope, exp in blocks.local_bans().items():
                    again.ban(scope, exp)
                again.take_diff(now)
                blocks = again
                enforcer.held = dict(blocks.target(now))
                last_target = blocks.target(now)
                continue
        diff = blocks.take_diff(now)
        want = model.target(now)
        reference = full_diff(last_target, want, now)
        assert dict(diff.block) == dict(reference.block)
        assert set(diff.unblock) == set(reference.unblock)
        enforcer.apply(diff)
        assert enforcer.live(now) == want == blocks.target(now)
        last_target = want


def test_a_revoked_decision_leaves_a_shorter_block_in_place() -> None:
    blocks = BlockList()
    scope = SCOPES[0]
    blocks.claim("long", scope, T0 + 3600)
    blocks.claim("short", scope, T0 + 60)
    assert blocks.take_diff(T0) == Diff({scope: T0 + 3600})
    blocks.release("long")
    assert blocks.take_diff(T0) == Diff({scope: T0 + 60}, (scope,))  # replaced: shorter


def test_blocked_finds_the_covering_network() -> None:
    blocks = BlockList()
    blocks.claim("net", parse_scope("203.0.113.0/24"), T0 + 60)
    blocks.ban(parse_scope("198.51.100.7"), T0 + 30)
    assert blocks.blocked(parse_address("203.0.113.9"), T0) == T0 + 60
    assert blocks.blocked(parse_address("198.51.100.7"), T0) == T0 + 30
    assert blocks.blocked(parse_address("198.51.100.8"), T0) is None
    assert blocks.blocked(parse_address("203.0.113.9"), T0 + 61) is None  # expired
    assert blocks.blocked(parse_address("2001:db8::1"), T0) is None
    assert len(blocks) == 2


def test_a_diff_costs_what_changed() -> None:
    """With 100k claims held, one new claim makes a one-scope diff, and expiring a local ban
    touches nothing else."""
    blocks = BlockList()
    blocks.reset(
        (f"d{i}", parse_scope(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"), T0 + 3600)
        for i in range(100_000)
    )
    assert len(blocks.take_diff(T0)) == 100_000
    blocks.claim("new", parse_scope("203.0.113.5"), T0 + 60)
    blocks.ban(parse_scope("203.0.113.6"), T0 + 10)
    assert blocks.take_diff(T0) == Diff(
        {parse_scope("203.0.113.5"): T0 + 60, parse_scope("203.0.113.6"): T0 + 10}
    )
    assert blocks.expire(T0 + 11) == 1
    assert not blocks.take_diff(T0 + 11)
