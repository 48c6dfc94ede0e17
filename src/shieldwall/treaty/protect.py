"""Protected targets: no decision may overlap them (guarantee 5)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from shieldwall.model import Address, Scope, address_scope

MEMO_LIMIT = 100_000
"""Single addresses whose verdict :class:`Protected` remembers (it starts again when full)."""
_UNKNOWN = "?"

LOOPBACK: tuple[Scope, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
UNSPECIFIED: tuple[Scope, ...] = (
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
)
LINK_LOCAL: tuple[Scope, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
MULTICAST: tuple[Scope, ...] = (
    ipaddress.ip_network("224.0.0.0/4"),
    ipaddress.ip_network("255.255.255.255/32"),
    ipaddress.ip_network("ff00::/8"),
)
PRIVATE: tuple[Scope, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("fc00::/7"),
)


@dataclass(frozen=True, slots=True)
class Protected:
    """The set of protected networks, each with the reason it is protected."""

    entries: tuple[tuple[Scope, str], ...]
    _hosts: dict[tuple[int, int], dict[Scope, tuple[int, str]]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _memo: dict[Address, str | None] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    """address → its verdict: the entries never change (a change builds a new Protected)."""

    def __post_init__(self) -> None:
        # (version, prefix length) → network → (first entry index, reason): a single address
        # is checked with one dict lookup per prefix length instead of one overlap per entry
        index: dict[tuple[int, int], dict[Scope, tuple[int, str]]] = {}
        for i, (net, reason) in enumerate(self.entries):
            index.setdefault((net.version, net.prefixlen), {}).setdefault(net, (i, reason))
        object.__setattr__(self, "_hosts", index)

    @classmethod
    def build(
        cls,
        *,
        allowlist: Iterable[Scope] = (),
        member_addresses: Iterable[tuple[str, Scope]] = (),
        protect_private: bool = True,
    ) -> Protected:
        entries: list[tuple[Scope, str]] = []
        entries += [(n, "protected:loopback") for n in LOOPBACK]
        entries += [(n, "protected:unspecified") for n in UNSPECIFIED]
        entries += [(n, "protected:link-local") for n in LINK_LOCAL]
        entries += [(n, "protected:multicast") for n in MULTICAST]
        if protect_private:
            entries += [(n, "protected:private") for n in PRIVATE]
        entries += [(n, "protected:allowlist") for n in allowlist]
        entries += [(n, f"protected:member:{name}") for name, n in member_addresses]
        return cls(tuple(entries))

    def reason_for(self, scope: Scope) -> str | None:
        """The reason ``scope`` may not be decided, or None if it may (the first entry that
        overlaps it, in ``entries`` order)."""
        if scope.prefixlen == scope.max_prefixlen:
            return self.reason_for_address(scope.network_address)
        for net, reason in self.entries:
            if net.version == scope.version and net.overlaps(scope):
                return reason
        return None

    def reason_for_address(self, address: Address) -> str | None:
        """:meth:`reason_for` the single address ``address`` (remembered)."""
        memo = self._memo
        why = memo.get(address, _UNKNOWN)
        if why is not _UNKNOWN:
            return why
        scope = address_scope(address)
        best: tuple[int, str] | None = None
        for (version, prefix), nets in self._hosts.items():
            if version != scope.version:
                continue
            hit = nets.get(scope.supernet(new_prefix=prefix))
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        why = None if best is None else best[1]
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[address] = why
        return why
