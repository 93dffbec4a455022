"""Commands of the booking domain used by the compensation saga: provider effects (PSP cards and
payouts, ground transport) and the passenger-wallet ledger.

Provider calls are never made inside a transaction (they are slow and cannot be rolled back); each
is idempotent by the ``idempotency_key`` the saga passes (its step URN), so repeating a call after a
crash has no second effect. Ledger writes run in the caller's transaction and are idempotent by
``reference`` + kind (``INSERT … ON CONFLICT DO NOTHING``).

Adapters live in :mod:`booking.payments` and :mod:`booking.transport`; they raise
:mod:`nexa.platform.providers` errors (transient, permanent, unavailable) which callers handle.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, Protocol

from django.db import transaction

from audit import services as audit
from booking.contracts.services import (  # noqa: F401 - contract commands other apps and seed_demo call
    ContractTerms,
    catalog_hotel_urns,
    contract_create,
    contract_update,
    demo_contracts_seed,
)
from booking.hotel_search import (  # noqa: F401 - the hotel-search hooks other apps register (docs/hotels.md)
    CaseContext,
    ContractOffer,
    SearchQuery,
    SearchRules,
    hotels_search,
    register_case_context_lookup,
    register_contract_offers_source,
    register_policy_rules_source,
)
from booking.hotels import hotels_seed_demo  # noqa: F401 - the demo catalog, for seed_demo
from booking.models import WalletEntry, WalletEntryKind
from booking.payments import psp_client
from booking.transport import transport_client


class SubCase(Protocol):
    """A ``cases.SubCase`` row, as far as the wallet ledger reads it. Cases sits above booking
    (docs/architecture.md): the saga passes its row in, booking never imports that app."""

    pk: Any
    urn: str
    airline: str


# --- provider effects (no transaction: callers persist the outcome) -----------------------------------


def _moment(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def meal_card_issue(
    *, idempotency_key: str, sub_case_urn: str, amount: Decimal | str, currency: str, expires_at: dt.datetime | str
) -> dict[str, Any]:
    """A single-use virtual card limited to ``amount`` until ``expires_at`` → the PSP's card ({cardId, …})."""

    return psp_client().issue_virtual_card(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        amount=Decimal(str(amount)),
        currency=currency,
        expires_at=_moment(expires_at),
    )


def meal_card_void(*, idempotency_key: str, card_id: str) -> dict[str, Any]:

    return psp_client().void_card(idempotency_key=idempotency_key, card_id=card_id)


def cash_payout(
    *, idempotency_key: str, sub_case_urn: str, amount: Decimal | str, currency: str, regulation: str
) -> dict[str, Any]:
    """Pay ``amount`` into the passenger's wallet at the PSP → {payoutId, …}. Record it in the ledger
    with :func:`wallet_credit_record` in the transaction that marks the step done."""

    return psp_client().payout(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        amount=Decimal(str(amount)),
        currency=currency,
        regulation=regulation,
    )


def cash_payout_reverse(*, idempotency_key: str, payout_id: str) -> dict[str, Any]:

    return psp_client().reverse_payout(idempotency_key=idempotency_key, payout_id=payout_id)


def transport_ride_request(
    *,
    idempotency_key: str,
    provider: str,
    sub_case_urn: str,
    pickup: dict,
    dropoff: dict,
    pickup_at: dt.datetime | str | None,
) -> dict[str, Any]:
    """Book a ride with ``provider`` (UBER or CABIFY) → {rideId, provider, status, etaMinutes}."""

    return transport_client(provider).request_ride(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        pickup=pickup,
        dropoff=dropoff,
        pickup_at=_moment(pickup_at),
    )


def transport_ride_cancel(*, idempotency_key: str, provider: str, ride_id: str) -> dict[str, Any]:

    return transport_client(provider).cancel_ride(idempotency_key=idempotency_key, ride_id=ride_id)


def effect_lookup(*, kind: str, idempotency_key: str, provider: str | None = None) -> dict[str, Any] | None:
    """Resolve a step whose outcome is unknown with its provider, under its ORIGINAL key: the effect
    made (the same shape the effect call returns) or ``None`` when the provider confirms it never
    executed a request with that key. Provider errors propagate (the outcome stays unknown)."""
    if kind in ("MEAL", "CASH"):
        client = psp_client()
        found = (client.card_lookup if kind == "MEAL" else client.payout_lookup)(idempotency_key=idempotency_key)
        return None if found is None else {"provider": "psp", **found}
    if kind == "TRANSPORT":
        return transport_client(provider or "").ride_lookup(idempotency_key=idempotency_key)
    raise ValueError(f"no provider lookup for {kind}")


# --- the wallet ledger --------------------------------------------------------------------------------


def _ledger_insert(
    *,
    sub_case: SubCase,
    kind: str,
    amount: Decimal,
    currency: str,
    reference: str,
    provider_ref: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Insert one ledger row unless (reference, kind) exists; audited. ``None`` when it existed."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("wallet ledger writes must run inside the caller's transaction")
    entry = WalletEntry(
        airline=sub_case.airline,
        sub_case_id=sub_case.pk,
        kind=kind,
        amount=amount,
        currency=currency,
        reference=reference,
        provider_ref=provider_ref,
    )
    created = WalletEntry.objects.bulk_create([entry], ignore_conflicts=True)
    if not WalletEntry.objects.filter(pk=created[0].pk).exists():
        return None
    audit.record(
        airline=sub_case.airline,
        actor=actor,
        action=f"wallet.{kind.lower()}",
        entity_urn=sub_case.urn,
        case_urn=case_urn,
        after={"amount": str(amount), "currency": currency, "reference": reference, "providerRef": provider_ref},
    )
    return entry


def wallet_credit_record(
    *,
    sub_case: SubCase,
    amount: Decimal | str,
    currency: str,
    reference: str,
    payout_id: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Ledger: a PSP payout credited the passenger's wallet (+amount). Idempotent by ``reference``."""
    return _ledger_insert(
        sub_case=sub_case,
        kind=WalletEntryKind.CREDIT,
        amount=Decimal(str(amount)),
        currency=currency,
        reference=reference,
        provider_ref=payout_id,
        actor=actor,
        case_urn=case_urn,
    )


def wallet_reversal_record(
    *,
    sub_case: SubCase,
    amount: Decimal | str,
    currency: str,
    reference: str,
    payout_id: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Ledger: a credited payout was reversed at the PSP (-amount). Idempotent by ``reference``."""
    return _ledger_insert(
        sub_case=sub_case,
        kind=WalletEntryKind.REVERSAL,
        amount=-Decimal(str(amount)),
        currency=currency,
        reference=reference,
        provider_ref=payout_id,
        actor=actor,
        case_urn=case_urn,
    )
