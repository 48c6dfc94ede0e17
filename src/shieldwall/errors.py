"""The one tree of shieldwall errors.

::

    ShieldwallError
    ├── ConfigError            a config file is wrong (names file, key and why)
    ├── RuleError              a detection rule is malformed
    ├── InvalidScope           text is not an IP address or CIDR
    ├── WireError              a message could not be decoded
    │   └── SignatureError     a report's signature, member, nonce or time is refused
    ├── StoreError             the council's store failed
    ├── EnforcerError          an enforcer could not apply a change
    └── CouncilError           the council refused or could not be reached (client side)
"""

from __future__ import annotations


class ShieldwallError(Exception):
    """Base of every error shieldwall raises on purpose."""


class ConfigError(ShieldwallError):
    """A configuration file is invalid."""

    def __init__(self, path: str, key: str, why: str) -> None:
        self.path = path
        self.key = key
        self.why = why
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {why}")


class RuleError(ShieldwallError):
    """A detection rule is malformed."""


class InvalidScope(ShieldwallError, ValueError):
    """Text is not an IP address or a CIDR network."""


class WireError(ShieldwallError):
    """A message on the wire could not be decoded."""


class SignatureError(WireError):
    """A report was refused: unknown or revoked member, bad signature, replay or stale time.

    ``reason`` is a short stable token (``unknown-member``, ``revoked``, ``bad-signature``,
    ``replayed``, ``stale``, ``malformed``) used in API answers and counters.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StoreError(ShieldwallError):
    """The council's store failed."""


class EnforcerError(ShieldwallError):
    """An enforcer could not apply a change."""


class CouncilError(ShieldwallError):
    """The council refused a request or could not be reached. ``reason``: the council's
    refusal (``revoked``, ``unknown-member``…), when it gave one."""

    PERMANENT = frozenset({"unknown-member", "bad-signature", "revoked", "unsigned"})
    """Refusals that asking again cannot change (an operator must act)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)

    @property
    def permanent(self) -> bool:
        return self.status in (401, 403) and self.reason in self.PERMANENT


def os_reason(exc: OSError) -> str:
    """Why an I/O call failed, as it reads inside a one-line error (``no such file or
    directory``, ``permission denied``)."""
    return (exc.strerror or str(exc)).lower()
