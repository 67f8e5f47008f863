"""SimulatedAccount: the simulated venue's ledger (cash and margin) and its pre-trade checks.

The venue owns the ledger and reports it (``AccountState`` with ``is_reported=True``); the node only
mirrors it (``node.model.account.Account``). Amounts are raw ints of each currency's precision.

Arithmetic (so every number can be checked by hand):

* notional = qty x price x multiplier, in the instrument's quote currency;
* commission = notional x fee (``maker_fee`` for MAKER fills, ``taker_fee`` for TAKER), positive =
  a cost, negative = a rebate; notional, commission and initial margin are computed exactly and
  rounded half-even to the currency's precision (``scaled_raw``);
* realized PnL and maintenance margin use the venue position's average price as a ``Decimal``,
  with the same formulas and rounding as ``node.model.position.Position`` (so for one strategy the
  venue's balance and the node's positions agree to the cent).

MARGIN account: one currency (``base_currency``). The venue keeps one net position per instrument
(signed quantity, average price) across all strategies. A fill realizes PnL on the part that
reduces the position and pays its commission from the balance. ``locked`` = initial margin of the
working orders + maintenance margin of the open positions (notional at the average price x
``margin_maint``); ``free = total - locked`` (negative free is a margin call, which this venue does
not act on). An order needs ``initial margin of the part that increases exposure + taker commission
<= free``; an order that only reduces the position always passes. Exposure is judged against the
current net position, not against other working orders. An instrument quoted in another currency
is refused: the venue does no FX conversion.

CASH account: balances in any number of currencies. A BUY of an instrument with a base currency
(CurrencyPair, CryptoSpot) pays notional + commission in the quote currency and receives
qty x multiplier in the base currency; a SELL the reverse. An instrument without a base currency
(Equity) is held as shares, tracked per instrument (not reported as a balance). A buy needs free
quote >= notional + commission; a sell needs free base currency (or free shares) >= qty: no shorting.
Working orders lock what they would spend.

A total that would go negative after a fill raises ``NegativeBalanceError`` and leaves the ledger
unchanged: the checks above should make it impossible, except for a margin account whose realized
losses exceed its balance, which this venue (no liquidation) cannot represent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from node.model.enums import AccountType
from node.model.events import AccountBalance, AccountState
from node.model.identifiers import AccountId, ClientOrderId, InstrumentId
from node.model.objects import POW10, Currency, Money, format_raw


class AccountConfigError(ValueError):
    """Starting balances or currencies that do not make a valid account of this type."""


class NegativeBalanceError(RuntimeError):
    """A fill would take a balance below zero: a pre-trade check let through what it should not."""


Asset = Currency | InstrumentId
"""What a requirement or a lock is counted in: a currency, or the shares of one instrument."""

Leg = tuple[int, int, Decimal]
"""One part of an order's execution: (qty_raw, price_raw, fee rate)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """What an order needs from the account.

    ``needed`` must be free for the order to pass the pre-trade check; ``lock`` is what stays
    reserved while it works (a margin order is checked for margin + commission, but locks margin).
    """

    asset: Asset
    needed: int
    lock: int
    precision: int

    def format(self, raw: int) -> str:
        return f"{format_raw(raw, self.precision)} {self.asset}"


def div_half_even(num: int, den: int) -> int:
    """``num / den`` rounded half-even (``den > 0``), exactly, in integers."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def scaled_raw(instrument, qty_raw: int, price_raw: int, rate: Decimal | int, currency: Currency) -> int:
    """qty x price x multiplier x rate as raw money of ``currency`` (exact, then half-even)."""
    rate_num, rate_den = Decimal(rate).as_integer_ratio()
    mult = instrument.multiplier
    num = qty_raw * price_raw * mult.raw * rate_num * POW10[currency.precision]
    den = (
        POW10[instrument.size_precision]
        * POW10[instrument.price_precision]
        * POW10[mult.precision]
        * rate_den
    )
    return div_half_even(num, den)


def notional_raw(instrument, qty_raw: int, price_raw: int) -> int:
    """Notional in the quote currency, rounded half-even to its precision."""
    return scaled_raw(instrument, qty_raw, price_raw, 1, instrument.quote_currency)


def commission_raw(instrument, qty_raw: int, price_raw: int, fee: Decimal) -> int:
    """Commission (positive = cost) in the quote currency: notional x fee, rounded half-even."""
    return scaled_raw(instrument, qty_raw, price_raw, fee, instrument.quote_currency)


def base_units_raw(instrument, qty_raw: int, currency: Currency) -> int:
    """qty x multiplier as raw money of the base currency (half-even)."""
    mult = instrument.multiplier
    num = qty_raw * mult.raw * POW10[currency.precision]
    den = POW10[instrument.size_precision] * POW10[mult.precision]
    return div_half_even(num, den)


def _dec(raw: int, precision: int) -> Decimal:
    return Decimal(raw).scaleb(-precision)


class _NetPosition:
    """The venue's net position in one instrument (MARGIN accounts)."""

    __slots__ = ("qty_raw", "avg_px", "maint_raw")

    def __init__(self) -> None:
        self.qty_raw = 0  # signed, at the instrument's size precision
        self.avg_px = Decimal(0)
        self.maint_raw = 0


class SimulatedAccount:
    """The venue's ledger for one account; see the module docstring for the rules."""

    def __init__(
        self,
        account_id: AccountId,
        account_type: AccountType,
        starting_balances: list[Money],
        base_currency: Currency | None = None,
    ) -> None:
        self.account_id = account_id
        self.account_type = AccountType(account_type)
        if not starting_balances or not all(isinstance(m, Money) for m in starting_balances):
            raise AccountConfigError(
                f"account {account_id}: starting_balances must be a non-empty list of Money"
            )
        codes = [m.currency.code for m in starting_balances]
        if len(codes) != len(dict.fromkeys(codes)):
            raise AccountConfigError(
                f"account {account_id}: a currency appears twice in starting_balances {codes}"
            )
        if any(m.raw < 0 for m in starting_balances):
            raise AccountConfigError(f"account {account_id}: starting balances must not be negative")
        if self.account_type is AccountType.MARGIN:
            if base_currency is None:
                if len(starting_balances) != 1:
                    raise AccountConfigError(
                        f"margin account {account_id} is single-currency: give base_currency or one starting balance"
                    )
                base_currency = starting_balances[0].currency
            if codes != [base_currency.code]:
                raise AccountConfigError(
                    f"margin account {account_id} holds only {base_currency}; starting balances are in {codes}"
                )
        self.base_currency = base_currency
        self._starting = list(starting_balances)
        self._rules = _RULES[self.account_type]
        self.reset()

    def reset(self) -> None:
        """Back to the starting balances: no locks, no positions, no shares."""
        self._totals: dict[Asset, int] = {m.currency: m.raw for m in self._starting}
        self._locks: dict[ClientOrderId, tuple[Asset, int]] = {}
        self._locked: dict[Asset, int] = {}
        self._positions: dict[InstrumentId, _NetPosition] = {}
        self._maint_raw = 0

    # -- queries ---------------------------------------------------------------------------------

    @property
    def is_margin(self) -> bool:
        return self.account_type is AccountType.MARGIN

    def total_raw(self, asset: Asset) -> int:
        return self._totals.get(asset, 0)

    def locked_raw(self, asset: Asset) -> int:
        locked = self._locked.get(asset, 0)
        if self.is_margin and asset == self.base_currency:
            locked += self._maint_raw
        return locked

    def free_raw(self, asset: Asset) -> int:
        return self.total_raw(asset) - self.locked_raw(asset)

    def balance_total(self, currency: Currency) -> Money:
        return Money.from_raw(self.total_raw(currency), currency)

    def balance_locked(self, currency: Currency) -> Money:
        return Money.from_raw(self.locked_raw(currency), currency)

    def balance_free(self, currency: Currency) -> Money:
        return Money.from_raw(self.free_raw(currency), currency)

    def shares_raw(self, instrument_id: InstrumentId) -> int:
        """Shares held (CASH account, instrument without a base currency), at its size precision."""
        return self._totals.get(instrument_id, 0)

    def lock_of(self, client_order_id: ClientOrderId) -> tuple[Asset, int] | None:
        return self._locks.get(client_order_id)

    def net_position(self, instrument_id: InstrumentId) -> tuple[int, Decimal] | None:
        """(signed qty raw, average price) of the venue's net position (MARGIN), or None when flat."""
        pos = self._positions.get(instrument_id)
        return None if pos is None else (pos.qty_raw, pos.avg_px)

    def balances(self) -> tuple[AccountBalance, ...]:
        """One balance per currency (starting currencies first, then in the order they appeared)."""
        out = []
        for asset, total in self._totals.items():
            if isinstance(asset, Currency):
                locked = self.locked_raw(asset)
                out.append(
                    AccountBalance(
                        total=Money.from_raw(total, asset),
                        locked=Money.from_raw(locked, asset),
                        free=Money.from_raw(total - locked, asset),
                    )
                )
        return tuple(out)

    def state(self, ts_ns: int) -> AccountState:
        return AccountState(
            account_id=self.account_id,
            account_type=self.account_type,
            base_currency=self.base_currency,
            balances=self.balances(),
            is_reported=True,
            ts_event=ts_ns,
            ts_init=ts_ns,
        )

    # -- pre-trade -------------------------------------------------------------------------------

    def refuse_reason(self, instrument) -> str | None:
        """Why this account cannot trade ``instrument`` at all, or None."""
        return self._rules.refuse_reason(self, instrument)

    def requirement(self, instrument, is_buy: bool, legs: list[Leg]) -> Requirement:
        """What an order executing as ``legs`` needs (see the module docstring)."""
        return self._rules.requirement(self, instrument, is_buy, legs)

    def check(self, req: Requirement, own: ClientOrderId | None = None) -> str | None:
        """None if ``req.needed`` is free (counting ``own``'s lock as free), else the reason."""
        free = self.free_raw(req.asset)
        if own is not None:
            lock = self._locks.get(own)
            if lock is not None and lock[0] == req.asset:
                free += lock[1]
        if req.needed <= free:
            return None
        kind = "margin" if self.is_margin else "balance"
        return f"insufficient {kind}: requires {req.format(req.needed)}, free {req.format(free)}"

    # -- locks -----------------------------------------------------------------------------------

    def lock(self, client_order_id: ClientOrderId, req: Requirement) -> bool:
        """Reserve ``req.lock`` for a working order (replacing its previous lock); True if it changed."""
        old = self._locks.get(client_order_id)
        new = (req.asset, req.lock) if req.lock else None
        if old == new:
            return False
        if old is not None:
            self._locked[old[0]] -= old[1]
            del self._locks[client_order_id]
        if new is not None:
            self._locks[client_order_id] = new
            self._locked[new[0]] = self._locked.get(new[0], 0) + new[1]
        return True

    def release(self, client_order_id: ClientOrderId) -> bool:
        """Drop a working order's lock; True if there was one."""
        old = self._locks.pop(client_order_id, None)
        if old is None:
            return False
        self._locked[old[0]] -= old[1]
        return True

    # -- fills -----------------------------------------------------------------------------------

    def apply_fill(self, instrument, is_buy: bool, qty_raw: int, price_raw: int, commission: int) -> None:
        """Book one fill (commission raw in the quote currency). Raises NegativeBalanceError."""
        self._rules.apply_fill(self, instrument, is_buy, qty_raw, price_raw, commission)

    def _commit(self, changes: dict[Asset, int], what: str) -> None:
        """Apply balance deltas, or raise before changing anything if a total would go negative."""
        new = {asset: self._totals.get(asset, 0) + delta for asset, delta in changes.items()}
        for asset, total in new.items():
            if total < 0:
                shown = format_raw(total, asset.precision) if isinstance(asset, Currency) else str(total)
                raise NegativeBalanceError(
                    f"account {self.account_id}: {what} would take the {asset} balance to {shown}; "
                    "the pre-trade checks should have refused it (a margin account whose losses exceed "
                    "its balance cannot be represented: the venue has no liquidation)"
                )
        self._totals.update(new)


class _MarginRules:
    """MARGIN: single currency, net positions, initial/maintenance margin."""

    @staticmethod
    def refuse_reason(acct: SimulatedAccount, instrument) -> str | None:
        if instrument.quote_currency != acct.base_currency:
            return (
                f"{instrument.id} is quoted in {instrument.quote_currency} but margin account {acct.account_id} "
                f"is in {acct.base_currency}; the simulated venue does no FX conversion"
            )
        return None

    @staticmethod
    def requirement(acct: SimulatedAccount, instrument, is_buy: bool, legs: list[Leg]) -> Requirement:
        currency = acct.base_currency
        pos = acct._positions.get(instrument.id)
        held = 0 if pos is None else pos.qty_raw
        reducible = -held if (is_buy and held < 0) else (held if (not is_buy and held > 0) else 0)
        margin = commission = 0
        increases = False
        for qty, px, fee in legs:
            reduce = min(qty, reducible)
            reducible -= reduce
            if qty > reduce:
                increases = True
                margin += scaled_raw(instrument, qty - reduce, px, instrument.margin_init, currency)
            commission += scaled_raw(instrument, qty, px, fee, currency)
        needed = margin + commission if increases else 0
        return Requirement(currency, needed, margin, currency.precision)

    @staticmethod
    def apply_fill(
        acct: SimulatedAccount, instrument, is_buy: bool, qty_raw: int, price_raw: int, commission: int
    ):
        currency = acct.base_currency
        if instrument.quote_currency != currency:
            raise AccountConfigError(_MarginRules.refuse_reason(acct, instrument))
        pos = acct._positions.get(instrument.id) or _NetPosition()
        sp = instrument.size_precision
        qty = _dec(qty_raw, sp)
        px = _dec(price_raw, instrument.price_precision)
        mult = instrument.multiplier.as_decimal()
        current = pos.qty_raw
        signed = qty_raw if is_buy else -qty_raw
        new_qty = current + signed
        avg = pos.avg_px
        realized = 0
        if current == 0 or (current > 0) == (signed > 0):
            held = _dec(abs(current), sp)
            avg = (avg * held + px * qty) / (held + qty)
        else:
            closing = _dec(min(qty_raw, abs(current)), sp)
            diff = px - avg if current > 0 else avg - px
            realized = Money(diff * closing * mult, currency).raw
            if new_qty != 0 and (new_qty > 0) != (current > 0):
                avg = px  # the remainder of a flip opens the other side at the fill price
        acct._commit({currency: realized - commission}, f"fill of {instrument.id}")
        acct._maint_raw -= pos.maint_raw
        if new_qty == 0:
            acct._positions.pop(instrument.id, None)
            return
        pos.qty_raw = new_qty
        pos.avg_px = avg
        pos.maint_raw = Money(_dec(abs(new_qty), sp) * avg * mult * instrument.margin_maint, currency).raw
        acct._maint_raw += pos.maint_raw
        acct._positions[instrument.id] = pos


class _CashRules:
    """CASH: multi-currency balances (and held shares), no borrowing."""

    @staticmethod
    def refuse_reason(acct: SimulatedAccount, instrument) -> str | None:
        return None

    @staticmethod
    def requirement(acct: SimulatedAccount, instrument, is_buy: bool, legs: list[Leg]) -> Requirement:
        if is_buy:
            quote = instrument.quote_currency
            cost = sum(
                notional_raw(instrument, qty, px) + commission_raw(instrument, qty, px, fee)
                for qty, px, fee in legs
            )
            return Requirement(quote, cost, cost, quote.precision)
        qty_total = sum(qty for qty, _, _ in legs)
        base = getattr(instrument, "base_currency", None)
        if base is None:
            return Requirement(instrument.id, qty_total, qty_total, instrument.size_precision)
        units = base_units_raw(instrument, qty_total, base)
        return Requirement(base, units, units, base.precision)

    @staticmethod
    def apply_fill(
        acct: SimulatedAccount, instrument, is_buy: bool, qty_raw: int, price_raw: int, commission: int
    ):
        quote = instrument.quote_currency
        base = getattr(instrument, "base_currency", None)
        held: Asset = instrument.id if base is None else base
        units = qty_raw if base is None else base_units_raw(instrument, qty_raw, base)
        notional = notional_raw(instrument, qty_raw, price_raw)
        if is_buy:
            changes = {quote: -(notional + commission), held: units}
        else:
            changes = {held: -units, quote: notional - commission}
        acct._commit(changes, f"{'buy' if is_buy else 'sell'} fill of {instrument.id}")


_RULES = {AccountType.MARGIN: _MarginRules, AccountType.CASH: _CashRules}
