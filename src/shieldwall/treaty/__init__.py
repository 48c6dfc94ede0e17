"""The treaty: the rules of engagement that turn members' evidence into decisions. Pure.

Treaty v1 is :func:`judge_alert` and :func:`judge_manual`. The whole treaty is
:class:`Treaty`: events (:mod:`~shieldwall.treaty.events`) and ``now`` in, effects
(:mod:`~shieldwall.treaty.effects`) out, each with its evidence chain
(:mod:`~shieldwall.treaty.evidence`), under :class:`TreatyTerms`. See ``docs/treaty.md``.
"""

from shieldwall.model import Sighting, SightingKind
from shieldwall.treaty.effects import (
    Amend,
    Audit,
    AuditRecord,
    Close,
    Concern,
    Consult,
    Effect,
    Flag,
    Hold,
    Revoke,
)
from shieldwall.treaty.engine import Treaty
from shieldwall.treaty.events import (
    Alerted,
    AllowlistAdd,
    AllowlistRemove,
    Answered,
    BanItem,
    Enroll,
    Event,
    ManualBan,
    ManualBans,
    ManualUnban,
    ManualUnbans,
    RaiseConcern,
    RevokeMember,
    Sighted,
    Tick,
)
from shieldwall.treaty.evidence import Evidence, Exhibit
from shieldwall.treaty.forward import forward_order, service_of
from shieldwall.treaty.policy import (
    Decide,
    Duplicate,
    MemberInfo,
    Refuse,
    TreatyConfig,
    Verdict,
    judge_alert,
    judge_manual,
)
from shieldwall.treaty.protect import Protected
from shieldwall.treaty.state import TreatyState
from shieldwall.treaty.terms import (
    TRUST_LEVELS,
    AllianceTerms,
    BlastRadiusTerms,
    ConsultTerms,
    FriendlyFireTerms,
    QuorumTerms,
    SanctionTerms,
    Threshold,
    TreatyTerms,
)

__all__ = [
    "TRUST_LEVELS",
    "Alerted",
    "AllianceTerms",
    "AllowlistAdd",
    "AllowlistRemove",
    "Amend",
    "Answered",
    "Audit",
    "AuditRecord",
    "BanItem",
    "BlastRadiusTerms",
    "Close",
    "Concern",
    "Consult",
    "ConsultTerms",
    "Decide",
    "Duplicate",
    "Effect",
    "Enroll",
    "Event",
    "Evidence",
    "Exhibit",
    "Flag",
    "FriendlyFireTerms",
    "Hold",
    "ManualBan",
    "ManualBans",
    "ManualUnban",
    "ManualUnbans",
    "MemberInfo",
    "Protected",
    "QuorumTerms",
    "RaiseConcern",
    "Refuse",
    "Revoke",
    "RevokeMember",
    "SanctionTerms",
    "Sighted",
    "Sighting",
    "SightingKind",
    "Threshold",
    "Tick",
    "Treaty",
    "TreatyConfig",
    "TreatyState",
    "TreatyTerms",
    "Verdict",
    "forward_order",
    "judge_alert",
    "judge_manual",
    "service_of",
]
