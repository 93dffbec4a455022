"""The PSP adapter: virtual cards (meal vouchers), payouts to the passenger wallet, voids, reversals,
balances (ARCHITECTURE §7; docs/providers.md).

Every effectful call takes ``idempotency_key`` — the saga step URN — which the PSP dedupes on: the
same key returns the same result with no second effect. Every call goes through the ``psp`` circuit
breaker. Errors: :class:`~nexa.platform.providers.ProviderTransientError` (retry),
:class:`~nexa.platform.providers.ProviderPermanentError` (``insufficient_funds``, ``card_declined``,
``fraud_hold`` …), :class:`~nexa.platform.providers.ProviderUnavailable` (circuit open).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings

from nexa.platform.instants import iso
from nexa.platform.providers import ProviderHttpClient

PROVIDER = "psp"
BREAKER = "psp"


def _amount(value: Decimal | str | int) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def _card(card: dict) -> dict:
    return {key: card[key] for key in ("cardId", "last4", "amount", "currency", "expiresAt", "status")}


def _payout(payout: dict) -> dict:
    return {key: payout[key] for key in ("payoutId", "amount", "currency", "status")}


class PspClient:
    def __init__(self, base_url: str | None = None):
        self.http = ProviderHttpClient(provider=PROVIDER, breaker=BREAKER, base_url=base_url or settings.NEXA_PSP_URL)

    def issue_virtual_card(
        self, *, idempotency_key: str, sub_case_urn: str, amount: Decimal, currency: str, expires_at: datetime
    ) -> dict:
        """A single-use card limited to ``amount`` and ``expires_at`` →
        ``{cardId, last4, amount, currency, expiresAt, status}``."""
        card = self.http.request(
            "POST",
            "/v1/virtual-cards",
            operation="issue_virtual_card",
            idempotency_key=idempotency_key,
            json={
                "subCaseUrn": sub_case_urn,
                "amount": _amount(amount),
                "currency": currency,
                "expiresAt": iso(expires_at),
            },
        )
        return _card(card)

    def void_card(self, *, idempotency_key: str, card_id: str) -> dict:
        """Void an unused card (compensation) → ``{cardId, status: "VOIDED", …}``; voiding twice is a no-op."""
        return self.http.request(
            "POST",
            f"/v1/virtual-cards/{quote(card_id, safe='')}/void",
            operation="void_card",
            idempotency_key=idempotency_key,
            json={},
        )

    def payout(
        self, *, idempotency_key: str, sub_case_urn: str, amount: Decimal, currency: str, regulation: str | None
    ) -> dict:
        """Pay ``amount`` into the sub-case's wallet → ``{payoutId, amount, currency, status}``."""
        payout = self.http.request(
            "POST",
            "/v1/payouts",
            operation="payout",
            idempotency_key=idempotency_key,
            json={
                "subCaseUrn": sub_case_urn,
                "amount": _amount(amount),
                "currency": currency,
                "regulation": regulation,
            },
        )
        return _payout(payout)

    def reverse_payout(self, *, idempotency_key: str, payout_id: str) -> dict:
        """Reverse a payout (compensation) → ``{payoutId, status: "REVERSED", …}``; twice is a no-op."""
        return self.http.request(
            "POST",
            f"/v1/payouts/{quote(payout_id, safe='')}/reverse",
            operation="reverse_payout",
            idempotency_key=idempotency_key,
            json={},
        )

    def card_lookup(self, *, idempotency_key: str) -> dict | None:
        """The card issued under ``idempotency_key`` (same shape as :meth:`issue_virtual_card`), or
        ``None`` when the PSP confirms it never executed that request."""
        found = self.http.lookup_idempotency_key(idempotency_key)
        return None if found is None else _card(found)

    def payout_lookup(self, *, idempotency_key: str) -> dict | None:
        """The payout made under ``idempotency_key`` (same shape as :meth:`payout`), or ``None`` when
        the PSP confirms it never executed that request."""
        found = self.http.lookup_idempotency_key(idempotency_key)
        return None if found is None else _payout(found)

    def wallet_balance(self, *, sub_case_urn: str) -> dict:
        """The PSP's own view of the wallet → ``{subCaseUrn, balances: {"EUR": "250.00"}}``."""
        return self.http.request("GET", f"/v1/wallets/{quote(sub_case_urn, safe='')}", operation="wallet_balance")


def psp_client() -> PspClient:
    return PspClient()
