"""Pure profile domain: state document, event folding, metrics, segments, identity and privacy. No I/O."""

from .apply import (
    InvalidEvent,
    apply,
    apply_all,
    apply_in_place,
    changed_between,
    changed_fields,
    parse_payload,
    set_tags,
)
from .derive import normalise
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
from .state import INTERNAL_FIELDS, ProfileState, new_profile
from .view import announced_metrics, customer_view, jsonable, update_metrics

__all__ = [
    "INTERNAL_FIELDS",
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
    "announced_metrics",
    "apply",
    "apply_all",
    "apply_in_place",
    "changed_between",
    "changed_fields",
    "choose_survivor",
    "customer_view",
    "derived_metrics",
    "erase_pii",
    "evaluate",
    "flat_view",
    "identifiers_from_event",
    "jsonable",
    "membership_changes",
    "merge_states",
    "new_profile",
    "normalise",
    "normalise_email",
    "normalise_phone",
    "parse_condition",
    "parse_payload",
    "ratio_30_90",
    "resolve_identity",
    "set_tags",
    "update_metrics",
    "viewed_not_bought",
    "windows",
]
