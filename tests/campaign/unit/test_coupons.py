from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.campaign.domain.coupons import (
    ALPHABET,
    generate_code,
    is_redeemable,
    is_valid_code,
    issue_coupon,
    normalize_code,
)
from services.campaign.domain.definitions import CouponAction

ISSUED = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_codes_have_the_format_and_no_ambiguous_characters() -> None:
    code = generate_code()
    assert len(code) == len("RTN-XXXX-XXXX-XXXX")
    assert is_valid_code(code)
    assert not set(code.replace("RTN-", "").replace("-", "")) - set(ALPHABET)
    assert not set("01OI") & set(ALPHABET)
    assert len(ALPHABET) == 32


def test_codes_are_unique() -> None:
    codes = {generate_code() for _ in range(10_000)}
    assert len(codes) == 10_000


def test_code_format_check_and_normalisation() -> None:
    assert not is_valid_code("RTN-0000-AAAA-BBBB")  # 0 is not in the alphabet
    assert not is_valid_code("XYZ-AAAA-BBBB-CCCC")
    assert normalize_code(" rtn-abcd-efgh-jkmn ") == "RTN-ABCD-EFGH-JKMN"


def test_issue_and_redeem_window() -> None:
    action = CouponAction(type="coupon", kind="amount", value=Decimal(10), currency="EUR", valid_days=7)
    coupon = issue_coupon(action, ISSUED, code="RTN-AAAA-BBBB-CCCC")
    assert coupon.expires_at == ISSUED + timedelta(days=7)
    assert (coupon.kind, coupon.value, coupon.currency) == ("amount", Decimal(10), "EUR")
    assert not is_redeemable(coupon, ISSUED - timedelta(seconds=1))
    assert is_redeemable(coupon, ISSUED)
    assert is_redeemable(coupon, coupon.expires_at - timedelta(seconds=1))
    assert not is_redeemable(coupon, coupon.expires_at)
    redeemed = dataclasses.replace(coupon, redeemed_at=ISSUED + timedelta(days=1))
    assert not is_redeemable(redeemed, ISSUED + timedelta(days=2))


def test_issue_generates_a_code_when_none_given() -> None:
    action = CouponAction(type="coupon", kind="percent", value=Decimal(15))
    coupon = issue_coupon(action, ISSUED)
    assert is_valid_code(coupon.code)
    assert coupon.currency is None
