"""IP networks packed into one ``int``: the scope of decisions, blocks and protected targets.

A :class:`Net` *is* an int (``int`` subclass, no per-object dict), so it hashes and compares
in C, costs what an int costs (32 bytes for IPv4, 44 for IPv6, against about 430 for an
``ipaddress.IPv4Network``), and a dict or a heap of a million of them stays small. The
bits are::

    bit 136        1 for IPv6, 0 for IPv4
    bits 8..135    the network's first address
    bits 0..7      the prefix length

so ordering nets orders them by version, then address, then prefix length (a network sorts
just before the networks nested in it). Arithmetic on a Net gives a plain int; nothing
here ever needs it.

Parsing is as strict as :mod:`ipaddress` (``strict=True``: host bits must be zero, no leading
zeros in a dotted quad); dotted quads take a fast path that never builds an ``ipaddress``
object. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final, TypeAlias

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

V6: Final = 1 << 136
_M128: Final = (1 << 128) - 1
_M32: Final = (1 << 32) - 1


class Net(int):
    """One IPv4 or IPv6 network (a single address is a /32 or a /128)."""

    __slots__ = ()

    @classmethod
    def of(cls, version: int, value: int, prefixlen: int) -> Net:
        """The network of ``version`` starting at ``value`` (host bits must be zero)."""
        width = 32 if version == 4 else 128
        if version not in (4, 6) or not 0 <= prefixlen <= width or not 0 <= value < 1 << width:
            raise ValueError(f"no IPv{version} network {value}/{prefixlen}")
        if value & ((1 << (width - prefixlen)) - 1):
            raise ValueError(f"{_text(version, value)}/{prefixlen} has host bits set")
        return cls((V6 if version == 6 else 0) | value << 8 | prefixlen)

    # -- what it is ------------------------------------------------------------------

    @property
    def version(self) -> int:
        return 6 if self >= V6 else 4

    @property
    def prefixlen(self) -> int:
        return self & 0xFF

    @property
    def max_prefixlen(self) -> int:
        return 128 if self >= V6 else 32

    @property
    def value(self) -> int:
        """The first address, as an int."""
        return (self >> 8) & _M128

    @property
    def last(self) -> int:
        """The last address, as an int."""
        return self.value | ((1 << (self.max_prefixlen - (self & 0xFF))) - 1)

    @property
    def num_addresses(self) -> int:
        return 1 << (self.max_prefixlen - (self & 0xFF))

    @property
    def is_host(self) -> bool:
        """One address (a /32 or a /128)."""
        return (self & 0xFF) == (128 if self >= V6 else 32)

    @property
    def network_address(self) -> Address:
        v = self.value
        return ipaddress.IPv6Address(v) if self >= V6 else ipaddress.IPv4Address(v)

    # -- relations -------------------------------------------------------------------

    def overlaps(self, other: Net) -> bool:
        if (self >= V6) != (other >= V6):
            return False
        return self.value <= other.last and other.value <= self.last

    def subnet_of(self, other: Net) -> bool:
        """``other`` contains this network (a network is a subnet of itself)."""
        if (self >= V6) != (other >= V6) or (other & 0xFF) > (self & 0xFF):
            return False
        shift = self.max_prefixlen - (other & 0xFF)
        return self.value >> shift == other.value >> shift

    def supernet(self, new_prefix: int) -> Net:
        """The network of prefix ``new_prefix`` (≤ this one's) that contains this one."""
        plen = self & 0xFF
        if new_prefix >= plen:
            if new_prefix > plen:
                raise ValueError(f"/{new_prefix} is narrower than {self}")
            return self
        shift = self.max_prefixlen - new_prefix
        value = (self.value >> shift) << shift
        return Net((self & V6) | value << 8 | new_prefix)

    def subnets(self) -> tuple[Net, Net]:
        """The two halves (one prefix bit longer)."""
        plen = self & 0xFF
        if plen == self.max_prefixlen:
            raise ValueError(f"{self} has no subnets")
        low = Net((self & ~0xFF) | (plen + 1))
        high = Net(low | 1 << (8 + self.max_prefixlen - plen - 1))
        return low, high

    # -- text ------------------------------------------------------------------------

    def text(self) -> str:
        """``1.2.3.4`` for a single address, ``1.2.3.0/24`` for a wider network."""
        if self < V6 and self & 0xFF == 32:  # an IPv4 address: most scopes, the fast way
            o = _OCTET_TEXT
            return (
                f"{o[self >> 32]}.{o[self >> 24 & 255]}.{o[self >> 16 & 255]}.{o[self >> 8 & 255]}"
            )
        version = 6 if self >= V6 else 4
        address = _text(version, self.value)
        return address if self.is_host else f"{address}/{self & 0xFF}"

    def __str__(self) -> str:
        """CIDR notation, like ``ipaddress`` (``1.2.3.4/32``)."""
        return f"{_text(6 if self >= V6 else 4, self.value)}/{self & 0xFF}"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else int.__format__(self, spec)

    def __repr__(self) -> str:
        return f"Net({str(self)!r})"

    def __bool__(self) -> bool:  # 0.0.0.0/0 is the int 0, and still a network
        return True

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (Net, (int(self),))

    def __deepcopy__(self, memo: Any) -> Net:
        return self

    def __copy__(self) -> Net:
        return self


def host(address: Address) -> Net:
    """The single-address network of ``address``."""
    if address.version == 4:
        return Net(int(address) << 8 | 32)
    return Net(V6 | int(address) << 8 | 128)


def host_of(version: int, value: int) -> Net:
    """The single-address network of the address ``value`` (an int) of ``version``."""
    return Net(value << 8 | 32) if version == 4 else Net(V6 | value << 8 | 128)


_OCTETS: Final = {str(n): n for n in range(256)}
_OCTET_TEXT: Final = tuple(str(n) for n in range(256))
"""The 256 valid octet texts: one lookup checks a part (digits only, no leading zero, ≤ 255)."""


def parse_v4(text: str) -> int | None:
    """A strict dotted quad (``1.2.3.4``; no leading zeros, no spaces) as an int, else None."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets = _OCTETS
    a, b, c, d = parts
    if a in octets and b in octets and c in octets and d in octets:
        return octets[a] << 24 | octets[b] << 16 | octets[c] << 8 | octets[d]
    return None


def parse_net(text: str) -> Net:
    """``1.2.3.4`` (a host), ``1.2.3.0/24``, ``2001:db8::/32``; host bits must be zero.
    An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) without a prefix is its IPv4 address.
    Raises ValueError."""
    address, slash, prefix = text.partition("/")
    v4 = parse_v4(address)
    if v4 is not None:
        if not slash:
            return Net(v4 << 8 | 32)
        if prefix.isdigit() and prefix.isascii() and len(prefix) <= 2 and int(prefix) <= 32:
            plen = int(prefix)
            if v4 & (_M32 >> plen):
                raise ValueError(f"{text!r} has host bits set")
            return Net(v4 << 8 | plen)
    if not slash:
        addr = ipaddress.ip_address(text)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return host(addr)
    net = ipaddress.ip_network(text, strict=True)
    return Net.of(net.version, int(net.network_address), net.prefixlen)


def from_ipaddress(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Net:
    return Net.of(net.version, int(net.network_address), net.prefixlen)


def _text(version: int, value: int) -> str:
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return str(ipaddress.IPv6Address(value))


def summarize(version: int, first: int, last: int) -> list[Net]:
    """The fewest networks covering the addresses ``first``…``last`` (ints), in order."""
    width = 32 if version == 4 else 128
    out: list[Net] = []
    while first <= last:
        # the largest aligned block starting at ``first`` that ends no later than ``last``
        size = (first & -first).bit_length() - 1 if first else width
        while size and first + (1 << size) - 1 > last:
            size -= 1
        out.append(Net.of(version, first, width - size))
        first += 1 << size
    return out


__all__ = [
    "V6",
    "Address",
    "Net",
    "from_ipaddress",
    "host",
    "host_of",
    "parse_net",
    "parse_v4",
    "summarize",
]
