"""The PSP simulator: single-use virtual cards (amount- and expiry-limited), payouts to a wallet per
sub-case, voids, reversals and balances.

    POST /v1/virtual-cards                {subCaseUrn, amount, currency, expiresAt}   → 201 card
    POST /v1/virtual-cards/{id}/void      {}                                          → 200 card (VOIDED)
    POST /v1/virtual-cards/{id}/charges   {amount, currency, merchant?}               → 201 charge (the merchant side)
    POST /v1/payouts                      {subCaseUrn, amount, currency, regulation?} → 201 payout (PAID)
    POST /v1/payouts/{id}/reverse         {}                                          → 200 payout (REVERSED)
    GET  /v1/wallets/{subCaseUrn}                                                     → {subCaseUrn, balances}

Refusals (``/_control`` ``refuse``, keyed by sub-case URN or ``*``) apply to issuing cards and payouts:
402 for ``insufficient_funds`` / ``card_declined``, 403 for ``fraud_hold``, 422 for any other code.
Voiding a voided card or reversing a reversed payout answers the current state with no new effect.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from urllib.parse import unquote

from booking.simulators.common import (
    Simulator,
    SimulatorError,
    iso,
    money,
    new_id,
    parse_amount,
    parse_time,
    require,
    route,
    utcnow,
)

REFUSAL_STATUS = {"insufficient_funds": 402, "card_declined": 402, "fraud_hold": 403}


def refusal(code: str) -> SimulatorError:
    return SimulatorError(REFUSAL_STATUS.get(code, 422), code, f"refused by the PSP: {code}")


def currency_of(body: dict) -> str:
    currency = str(body.get("currency", "")).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise SimulatorError(400, "invalid_request", "currency must be an ISO 4217 code")
    return currency


class PspSimulator(Simulator):
    name = "psp"

    def reset_state(self) -> None:
        self.cards: dict[str, dict] = {}
        self.payouts: dict[str, dict] = {}
        self.wallets: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    # --- virtual cards -----------------------------------------------------------------------------

    @route("POST", r"/v1/virtual-cards")
    def issue_card(self, body: dict):
        require(body, "subCaseUrn", "amount", "currency", "expiresAt")
        amount, currency = parse_amount(body["amount"]), currency_of(body)
        expires_at = parse_time(body["expiresAt"], "expiresAt")
        if expires_at <= utcnow():
            raise SimulatorError(422, "invalid_expiry", "expiresAt is in the past")
        if code := self.refusal_for(body["subCaseUrn"]):
            raise refusal(code)
        card_id = new_id("card")
        card = {
            "cardId": card_id,
            "last4": f"{int(card_id[-6:], 16) % 10000:04d}",
            "subCaseUrn": body["subCaseUrn"],
            "amount": money(amount),
            "currency": currency,
            "expiresAt": iso(expires_at),
            "status": "ACTIVE",
        }
        self.cards[card_id] = card
        self.record(
            "card_issued", cardId=card_id, subCaseUrn=card["subCaseUrn"], amount=card["amount"], currency=currency
        )
        return 201, dict(card)

    @route("POST", r"/v1/virtual-cards/(?P<card_id>[^/]+)/void")
    def void_card(self, body: dict, card_id: str):
        card = self._card(card_id)
        if card["status"] == "VOIDED":
            return 200, dict(card)
        if card["status"] == "USED":
            raise SimulatorError(409, "card_already_used", "the card was already used; it cannot be voided")
        card["status"] = "VOIDED"
        self.record("card_voided", cardId=card_id, subCaseUrn=card["subCaseUrn"], amount=card["amount"])
        return 200, dict(card)

    @route("POST", r"/v1/virtual-cards/(?P<card_id>[^/]+)/charges")
    def charge_card(self, body: dict, card_id: str):
        """A merchant charging the card: single use, at most its amount, before expiry."""
        card = self._card(card_id)
        amount, currency = parse_amount(body.get("amount")), currency_of(body)
        if card["status"] != "ACTIVE":
            raise SimulatorError(402, "card_declined", f"the card is {card['status'].lower()}")
        if parse_time(card["expiresAt"], "expiresAt") <= utcnow():
            raise SimulatorError(402, "card_expired", "the card has expired")
        if currency != card["currency"] or amount > Decimal(card["amount"]):
            raise SimulatorError(402, "amount_exceeds_limit", f"the card allows {card['amount']} {card['currency']}")
        card["status"] = "USED"
        charge = {"chargeId": new_id("ch"), "cardId": card_id, "amount": money(amount), "currency": currency}
        self.record("card_charged", subCaseUrn=card["subCaseUrn"], merchant=body.get("merchant"), **charge)
        return 201, charge

    def _card(self, card_id: str) -> dict:
        card = self.cards.get(card_id)
        if card is None:
            raise SimulatorError(404, "card_not_found", f"no card {card_id}")
        return card

    # --- payouts and wallets -----------------------------------------------------------------------

    @route("POST", r"/v1/payouts")
    def payout(self, body: dict):
        require(body, "subCaseUrn", "amount", "currency")
        amount, currency = parse_amount(body["amount"]), currency_of(body)
        if code := self.refusal_for(body["subCaseUrn"]):
            raise refusal(code)
        payout = {
            "payoutId": new_id("po"),
            "subCaseUrn": body["subCaseUrn"],
            "amount": money(amount),
            "currency": currency,
            "regulation": body.get("regulation"),
            "status": "PAID",
        }
        self.payouts[payout["payoutId"]] = payout
        self.wallets[payout["subCaseUrn"]][currency] += amount
        self.record(
            "payout",
            payoutId=payout["payoutId"],
            subCaseUrn=payout["subCaseUrn"],
            amount=payout["amount"],
            currency=currency,
            regulation=payout["regulation"],
        )
        return 201, dict(payout)

    @route("POST", r"/v1/payouts/(?P<payout_id>[^/]+)/reverse")
    def reverse_payout(self, body: dict, payout_id: str):
        payout = self.payouts.get(payout_id)
        if payout is None:
            raise SimulatorError(404, "payout_not_found", f"no payout {payout_id}")
        if payout["status"] == "REVERSED":
            return 200, dict(payout)
        payout["status"] = "REVERSED"
        self.wallets[payout["subCaseUrn"]][payout["currency"]] -= Decimal(payout["amount"])
        self.record(
            "payout_reversed",
            payoutId=payout_id,
            subCaseUrn=payout["subCaseUrn"],
            amount=payout["amount"],
            currency=payout["currency"],
        )
        return 200, dict(payout)

    @route("GET", r"/v1/wallets/(?P<sub_case_urn>[^/]+)", effectful=False)
    def wallet(self, body: dict, sub_case_urn: str):

        urn = unquote(sub_case_urn)
        balances = self.wallets.get(urn, {})
        return 200, {
            "subCaseUrn": urn,
            "balances": {currency: money(value) for currency, value in sorted(balances.items())},
        }
