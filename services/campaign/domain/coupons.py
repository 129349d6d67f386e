"""Coupons: unguessable codes and the value object a campaign issues."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from services.campaign.domain.definitions import CouponAction

# 32 symbols (5 bits each) without 0/O and 1/I, which customers misread when typing a code.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIX = "RTN"
GROUPS = 3
GROUP_LENGTH = 4  # 12 symbols = 60 bits: guessing one live code is hopeless at any request rate
CODE_PATTERN = re.compile(rf"^{PREFIX}(-[{ALPHABET}]{{{GROUP_LENGTH}}}){{{GROUPS}}}$")


def generate_code() -> str:
    """A fresh random code like RTN-7KQH-M2XD-P9TA (uniqueness is enforced by the database)."""
    symbols = [secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH)]
    groups = ["".join(symbols[i : i + GROUP_LENGTH]) for i in range(0, len(symbols), GROUP_LENGTH)]
    return "-".join([PREFIX, *groups])


def normalize_code(raw: str) -> str:
    """Customers type codes in lower case and with spaces; compare the canonical form."""
    return raw.strip().upper().replace(" ", "")


def is_valid_code(code: str) -> bool:
    return CODE_PATTERN.fullmatch(code) is not None


@dataclass(frozen=True)
class Coupon:
    code: str
    kind: Literal["amount", "percent"]
    value: Decimal
    currency: str | None
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = None


def issue_coupon(action: CouponAction, issued_at: datetime, code: str | None = None) -> Coupon:
    return Coupon(
        code=code or generate_code(),
        kind=action.kind,
        value=action.value,
        currency=action.currency,
        issued_at=issued_at,
        expires_at=issued_at + timedelta(days=action.valid_days),
    )


def is_redeemable(coupon: Coupon, at: datetime) -> bool:
    """Valid from issue (inclusive) until expiry (exclusive), and only once."""
    return coupon.redeemed_at is None and coupon.issued_at <= at < coupon.expires_at
