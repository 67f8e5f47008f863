"""Instruments: what can be traded, with the increments every price and size must respect."""

from __future__ import annotations

from decimal import Decimal

from node.model.errors import InvalidValueError
from node.model.identifiers import InstrumentId
from node.model.objects import Currency, Money, Price, Quantity
from node.model.timestamps import check_unix_nanos


class Instrument:
    """Base instrument. ``make_price``/``make_qty`` round to the instrument's precision."""

    __slots__ = (
        "id",
        "quote_currency",
        "price_precision",
        "size_precision",
        "price_increment",
        "size_increment",
        "multiplier",
        "lot_size",
        "min_quantity",
        "max_quantity",
        "maker_fee",
        "taker_fee",
        "margin_init",
        "margin_maint",
        "ts_event",
        "ts_init",
    )

    asset_class = "UNKNOWN"

    def __init__(
        self,
        instrument_id: InstrumentId,
        quote_currency: Currency,
        price_precision: int,
        size_precision: int,
        price_increment: Price | None = None,
        size_increment: Quantity | None = None,
        multiplier: Quantity | None = None,
        lot_size: Quantity | None = None,
        min_quantity: Quantity | None = None,
        max_quantity: Quantity | None = None,
        maker_fee: Decimal | str = "0",
        taker_fee: Decimal | str = "0",
        margin_init: Decimal | str = "0",
        margin_maint: Decimal | str = "0",
        ts_event: int = 0,
        ts_init: int = 0,
    ) -> None:
        if not isinstance(instrument_id, InstrumentId):
            raise InvalidValueError(f"instrument id must be an InstrumentId, got {instrument_id!r}")
        self.id = instrument_id
        self.quote_currency = quote_currency
        self.price_precision = price_precision
        self.size_precision = size_precision
        self.price_increment = price_increment or Price.from_raw(1, price_precision)
        self.size_increment = size_increment or Quantity.from_raw(1, size_precision)
        if self.price_increment.precision != price_precision or self.price_increment.raw <= 0:
            raise InvalidValueError(
                f"{instrument_id}: price_increment must be positive at precision {price_precision}"
            )
        if self.size_increment.precision != size_precision or self.size_increment.raw <= 0:
            raise InvalidValueError(
                f"{instrument_id}: size_increment must be positive at precision {size_precision}"
            )
        self.multiplier = multiplier or Quantity(1, 0)
        self.lot_size = lot_size
        self.min_quantity = min_quantity
        self.max_quantity = max_quantity
        self.maker_fee = Decimal(maker_fee)
        self.taker_fee = Decimal(taker_fee)
        self.margin_init = Decimal(margin_init)
        self.margin_maint = Decimal(margin_maint)
        for name in ("maker_fee", "taker_fee", "margin_init", "margin_maint"):
            if not getattr(self, name).is_finite():
                raise InvalidValueError(f"{instrument_id}: {name} must be finite")
        self.ts_event = check_unix_nanos(ts_event, "Instrument.ts_event")
        self.ts_init = check_unix_nanos(ts_init, "Instrument.ts_init")

    def make_price(self, value) -> Price:
        return Price(value, self.price_precision)

    def make_qty(self, value) -> Quantity:
        return Quantity(value, self.size_precision)

    def notional_value(self, quantity: Quantity, price: Price) -> Money:
        """quantity x price x multiplier, in the quote currency."""
        value = quantity.as_decimal() * price.as_decimal() * self.multiplier.as_decimal()
        return Money(value, self.quote_currency)

    @property
    def settlement_currency(self) -> Currency:
        return self.quote_currency

    def __eq__(self, other) -> bool:
        return isinstance(other, Instrument) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id})"


class CurrencyPair(Instrument):
    """Spot FX pair such as EUR/USD."""

    __slots__ = ("base_currency",)
    asset_class = "FX"

    def __init__(
        self, instrument_id: InstrumentId, base_currency: Currency, quote_currency: Currency, **kwargs
    ):
        super().__init__(instrument_id, quote_currency, **kwargs)
        self.base_currency = base_currency


class CryptoSpot(Instrument):
    """Spot crypto pair such as BTC/USDT."""

    __slots__ = ("base_currency",)
    asset_class = "CRYPTO"

    def __init__(
        self, instrument_id: InstrumentId, base_currency: Currency, quote_currency: Currency, **kwargs
    ):
        super().__init__(instrument_id, quote_currency, **kwargs)
        self.base_currency = base_currency


class Equity(Instrument):
    """A listed share."""

    __slots__ = ()
    asset_class = "EQUITY"


def default_fx_pair(symbol: str = "EUR/USD", venue: str = "SIM", price_precision: int = 5) -> CurrencyPair:
    """A conventional FX pair for examples and tests: 1 unit size, 0.2 bp taker fee."""
    base, _, quote = symbol.partition("/")
    return CurrencyPair(
        InstrumentId(symbol, venue),
        Currency.from_str(base),
        Currency.from_str(quote),
        price_precision=price_precision,
        size_precision=0,
        maker_fee="0.00002",
        taker_fee="0.00002",
        margin_init="0.03",
        margin_maint="0.03",
    )
