"""Account: balances per currency, as last reported by the venue through AccountState events.

The node never computes its own balances: the venue (simulated or real) owns the ledger
and reports it; the node's Account is a mirror that strategies and the Portfolio read.
"""

from __future__ import annotations

from node.model.enums import AccountType
from node.model.errors import InvalidValueError
from node.model.identifiers import AccountId
from node.model.objects import Currency, Money


class Account:
    def __init__(
        self, account_id: AccountId, account_type: AccountType, base_currency: Currency | None
    ) -> None:
        self.id = account_id
        self.account_type = AccountType(account_type)
        self.base_currency = base_currency
        self._balances: dict[Currency, object] = {}
        self.events: list = []

    def apply(self, state) -> None:
        """Take a new AccountState (balances replace the previous ones per currency)."""
        if state.account_id != self.id:
            raise InvalidValueError(f"AccountState for {state.account_id} applied to account {self.id}")
        for balance in state.balances:
            self._balances[balance.total.currency] = balance
        self.events.append(state)

    @property
    def last_event(self):
        return self.events[-1] if self.events else None

    def currencies(self) -> list[Currency]:
        return sorted(self._balances, key=lambda c: c.code)

    def _balance(self, currency: Currency | None):
        currency = currency or self.base_currency
        if currency is None:
            raise InvalidValueError(f"account {self.id} is multi-currency: name the currency")
        return currency, self._balances.get(currency)

    def balance_total(self, currency: Currency | None = None) -> Money | None:
        currency, b = self._balance(currency)
        return None if b is None else b.total

    def balance_free(self, currency: Currency | None = None) -> Money | None:
        currency, b = self._balance(currency)
        return None if b is None else b.free

    def balance_locked(self, currency: Currency | None = None) -> Money | None:
        currency, b = self._balance(currency)
        return None if b is None else b.locked

    def balances_total(self) -> dict[Currency, Money]:
        return {c: b.total for c, b in self._balances.items()}

    def __repr__(self) -> str:
        return f"Account({self.id}, {self.account_type.name})"
