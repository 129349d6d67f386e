"""Pure profile domain: state document, event folding, metrics, segments, identity and privacy. No I/O."""

from .apply import InvalidEvent, apply, apply_all, changed_fields, parse_payload, set_tags
from .event import EventLike, ProfileEvent
from .identity import (
    DecisionKind,
    Identifiers,
    IdentityDecision,
    choose_survivor,
    identifiers_from_event,
    merge_states,
    normalise_email,
    normalise_phone,
    resolve_identity,
)
from .metrics import derived_metrics, ratio_30_90, viewed_not_bought, windows
from .privacy import PII_COLUMNS, PII_FIELDS, erase_pii
from .segments import (
    KNOWN_FIELDS,
    Condition,
    InvalidCondition,
    evaluate,
    flat_view,
    membership_changes,
    parse_condition,
)
from .state import ProfileState, new_profile

__all__ = [
    "KNOWN_FIELDS",
    "PII_COLUMNS",
    "PII_FIELDS",
    "Condition",
    "DecisionKind",
    "EventLike",
    "Identifiers",
    "IdentityDecision",
    "InvalidCondition",
    "InvalidEvent",
    "ProfileEvent",
    "ProfileState",
    "apply",
    "apply_all",
    "changed_fields",
    "choose_survivor",
    "derived_metrics",
    "erase_pii",
    "evaluate",
    "flat_view",
    "identifiers_from_event",
    "membership_changes",
    "merge_states",
    "new_profile",
    "normalise_email",
    "normalise_phone",
    "parse_condition",
    "parse_payload",
    "ratio_30_90",
    "resolve_identity",
    "set_tags",
    "viewed_not_bought",
    "windows",
]
