"""Property tests for the fixed-precision values Price, Quantity and Money.

Decimal is the oracle: whatever a fixed-precision value claims to be, it must agree with
exact decimal arithmetic on the same numbers.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.model.errors import (
    ArithmeticOverflowError,
    InvalidValueError,
    NegativeValueError,
    NonFiniteValueError,
    PrecisionError,
)
from node.model.objects import CURRENCIES, RAW_MAX, RAW_MIN, USD, Money, Price, Quantity

precisions = st.integers(min_value=0, max_value=9)
raws = st.integers(min_value=RAW_MIN, max_value=RAW_MAX)
# Small enough that aligning to precision 9 and adding two of them stays within 64 bits.
small_raws = st.integers(min_value=-(10**9), max_value=10**9)


@st.composite
def prices(draw, raw=small_raws):
    return Price.from_raw(draw(raw), draw(precisions))


@st.composite
def quantities(draw):
    return Quantity.from_raw(draw(st.integers(min_value=0, max_value=10**9)), draw(precisions))


currencies = st.sampled_from(sorted(CURRENCIES.values(), key=lambda c: c.code))


# ------------------------------------------------------------------ round trips


@given(raws, precisions)
def test_price_round_trips_through_str_and_decimal(raw, precision):
    p = Price.from_raw(raw, precision)
    assert Price(str(p), precision).raw == raw
    assert Price(p.as_decimal(), precision).raw == raw
    parsed = Price.from_str(str(p))
    assert (parsed.raw, parsed.precision) == (raw, precision)


@given(st.integers(min_value=0, max_value=RAW_MAX), precisions)
def test_quantity_round_trips_through_str_and_decimal(raw, precision):
    q = Quantity.from_raw(raw, precision)
    assert Quantity(str(q), precision).raw == raw
    assert Quantity(q.as_decimal(), precision).raw == raw
    assert Quantity.from_str(str(q)) == q


@given(st.integers(min_value=RAW_MIN, max_value=RAW_MAX), currencies)
def test_money_round_trips_through_str(raw, currency):
    m = Money.from_raw(raw, currency)
    back = Money.from_str(str(m))
    assert back.raw == raw and back.currency == currency


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**6), max_value=10**6),
    precisions,
)
def test_construction_rounds_half_even_like_decimal(value, precision):
    expected = value.quantize(Decimal(1).scaleb(-precision), rounding="ROUND_HALF_EVEN")
    assert Price(value, precision).as_decimal() == expected
    assert Price(str(value), precision).as_decimal() == expected


# ------------------------------------------------------------------ arithmetic


@given(prices(), prices())
def test_price_add_sub_agree_with_decimal(a, b):
    assert (a + b).as_decimal() == a.as_decimal() + b.as_decimal()
    assert (a - b).as_decimal() == a.as_decimal() - b.as_decimal()
    assert (a + b).precision == max(a.precision, b.precision)
    assert isinstance(a + b, Price)


@given(quantities(), quantities())
def test_quantity_add_agrees_with_decimal_and_sub_never_goes_negative(a, b):
    assert (a + b).as_decimal() == a.as_decimal() + b.as_decimal()
    big, small = (a, b) if a >= b else (b, a)
    assert (big - small).as_decimal() == big.as_decimal() - small.as_decimal()
    if big != small:
        with pytest.raises(NegativeValueError):
            small - big


@given(prices(), prices())
def test_addition_is_commutative(a, b):
    s1, s2 = a + b, b + a
    assert (s1.raw, s1.precision) == (s2.raw, s2.precision)


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(10**12), max_value=10**12),
    currencies,
)
def test_money_add_sub_agree_with_decimal(x, y, currency):
    a, b = Money.from_raw(x, currency), Money.from_raw(y, currency)
    assert (a + b).as_decimal() == a.as_decimal() + b.as_decimal()
    assert (a - b).as_decimal() == a.as_decimal() - b.as_decimal()
    assert (a + b).currency == currency


# ------------------------------------------------------------------ comparison and hashing


@given(prices(), prices())
def test_comparisons_match_decimal_across_precisions(a, b):
    da, db = a.as_decimal(), b.as_decimal()
    assert (a == b) == (da == db)
    assert (a != b) == (da != db)
    assert (a < b) == (da < db)
    assert (a <= b) == (da <= db)
    assert (a > b) == (da > db)
    assert (a >= b) == (da >= db)


@given(small_raws, precisions, st.integers(min_value=0, max_value=9))
def test_equal_values_at_different_precisions_hash_equal(raw, precision, extra):
    extra = min(extra, 9 - precision)
    a = Price.from_raw(raw, precision)
    b = Price.from_raw(raw * 10**extra, precision + extra)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    qa = Quantity.from_raw(abs(raw), precision)
    qb = Quantity.from_raw(abs(raw) * 10**extra, precision + extra)
    assert qa == qb and hash(qa) == hash(qb)


@given(st.integers(min_value=RAW_MIN, max_value=RAW_MAX), currencies)
def test_equal_money_hashes_equal(raw, currency):
    a, b = Money.from_raw(raw, currency), Money.from_raw(raw, currency)
    assert a == b and hash(a) == hash(b)


def test_money_of_different_currencies_is_never_equal():
    assert Money("1.00", USD) != Money("1.00", CURRENCIES["EUR"])


# ------------------------------------------------------------------ invalid values


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, "nan", "NaN", "inf", "-Infinity", Decimal("NaN")]
)
@pytest.mark.parametrize("cls", [Price, Quantity])
def test_non_finite_values_are_rejected(cls, bad):
    with pytest.raises(NonFiniteValueError):
        cls(bad, 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, "nan"])
def test_non_finite_money_is_rejected(bad):
    with pytest.raises(NonFiniteValueError):
        Money(bad, USD)


@given(st.integers(min_value=1, max_value=10**9), precisions)
def test_negative_quantity_is_rejected(raw, precision):
    with pytest.raises(NegativeValueError):
        Quantity.from_raw(-raw, precision)
    with pytest.raises(NegativeValueError):
        Quantity(-Decimal(raw).scaleb(-precision), precision)


@pytest.mark.parametrize("precision", [-1, 10, 1.0, "2", None, True])
def test_precision_out_of_range_is_rejected(precision):
    with pytest.raises(PrecisionError):
        Price(1, precision)
    with pytest.raises(PrecisionError):
        Quantity.from_raw(1, precision)


def test_precision_bounds_are_accepted():
    assert Price(1, 0).precision == 0
    assert str(Price("1.123456789", 9)) == "1.123456789"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Price.from_raw(RAW_MAX, 0) + Price.from_raw(1, 0),
        lambda: Price.from_raw(RAW_MIN, 0) - Price.from_raw(1, 0),
        lambda: Quantity.from_raw(RAW_MAX, 3) + Quantity.from_raw(1, 3),
        lambda: Money.from_raw(RAW_MAX, USD) + Money.from_raw(1, USD),
        # Aligning to the finer precision alone overflows.
        lambda: Price.from_raw(RAW_MAX // 10 + 1, 0) + Price.from_raw(0, 1),
        lambda: Price(10**10, 9),
        lambda: Price(2**63, 0),
        lambda: Price(1e19, 0),
        lambda: Price.from_raw(2**63, 0),
    ],
)
def test_results_beyond_64_bits_raise_overflow(make):
    with pytest.raises(ArithmeticOverflowError):
        make()


def test_overflow_error_is_also_an_overflow_error():
    with pytest.raises(OverflowError):
        Price.from_raw(RAW_MAX, 0) + Price.from_raw(1, 0)


def test_largest_values_are_accepted():
    assert Price.from_raw(RAW_MAX, 0) - Price.from_raw(RAW_MAX, 0) == 0
    assert Price.from_raw(RAW_MIN, 0).raw == RAW_MIN


def test_money_of_different_currencies_cannot_be_combined():
    usd, eur = Money("10.00", USD), Money("10.00", CURRENCIES["EUR"])
    with pytest.raises(InvalidValueError, match="USD.*EUR"):
        usd + eur
    with pytest.raises(InvalidValueError):
        usd - eur


@pytest.mark.parametrize("bad", ["abc", "", "1.2.3", True, None, [1]])
def test_non_numbers_are_rejected(bad):
    with pytest.raises(InvalidValueError):
        Price(bad, 2)
