"""The passenger wallet ledger (booking): credits and reversals recorded idempotently by reference,
audited, balances per currency, tenant-scoped reads, and the ``GET /v1/subcases/{urn}/wallet`` route."""

from decimal import Decimal

import pytest
from django.db import transaction

from audit.models import AuditEntry
from booking import services
from booking.models import WalletEntry
from booking.selectors import wallet_for_subcase
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

ACTOR = "urn:nexa:system:saga"


def viewer(airline="IB"):
    return Principal(airline=airline, role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:v", subject="v")


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")


def credit(sub_case, amount="250.00", currency="EUR", reference="urn:nexa:step:1", payout_id="po_1"):
    with transaction.atomic():
        return services.wallet_credit_record(
            sub_case=sub_case,
            amount=amount,
            currency=currency,
            reference=reference,
            payout_id=payout_id,
            actor=ACTOR,
            case_urn=sub_case.case.urn,
        )


def reverse(sub_case, amount="250.00", currency="EUR", reference="urn:nexa:step:1/compensate"):
    with transaction.atomic():
        return services.wallet_reversal_record(
            sub_case=sub_case,
            amount=amount,
            currency=currency,
            reference=reference,
            payout_id="po_1",
            actor=ACTOR,
            case_urn=sub_case.case.urn,
        )


def test_credit_is_recorded_once_per_reference_and_audited(passenger):
    assert credit(passenger) is not None
    assert credit(passenger) is None  # a repeated step records nothing more
    [entry] = WalletEntry.objects.filter(sub_case=passenger)
    assert (entry.kind, entry.amount, entry.currency, entry.provider_ref) == (
        "CREDIT",
        Decimal("250.00"),
        "EUR",
        "po_1",
    )
    [row] = AuditEntry.objects.filter(action="wallet.credit")
    assert row.actor == ACTOR and row.entity_urn == passenger.urn and row.case_urn == passenger.case.urn
    assert row.after == {"amount": "250.00", "currency": "EUR", "reference": "urn:nexa:step:1", "providerRef": "po_1"}


def test_balance_is_the_signed_sum_per_currency(passenger):
    credit(passenger)
    credit(passenger, amount="40.00", currency="GBP", reference="urn:nexa:step:2")
    reverse(passenger)
    reverse(passenger)  # idempotent too
    view = wallet_for_subcase(principal=viewer(), sub_case=passenger)
    assert view.balances == {"EUR": "0.00", "GBP": "40.00"}
    assert [(e.kind, e.amount) for e in view.entries] == [
        ("CREDIT", Decimal("250.00")),
        ("CREDIT", Decimal("40.00")),
        ("REVERSAL", Decimal("-250.00")),
    ]


@pytest.mark.django_db(transaction=True)
def test_ledger_writes_need_the_callers_transaction():
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        services.wallet_credit_record(
            sub_case=passenger, amount="1.00", currency="EUR", reference="r", payout_id="p", actor=ACTOR,
            case_urn=passenger.case.urn,
        )  # fmt: skip
    assert WalletEntry.objects.count() == 0


def test_wallet_reads_are_tenant_scoped(passenger):
    credit(passenger)
    assert wallet_for_subcase(principal=viewer("LH"), sub_case=passenger).balances == {}


def test_wallet_route_shows_balance_and_entries(client_for, passenger):
    credit(passenger)
    response = client_for("IB").get(f"/v1/subcases/{passenger.urn}/wallet")
    assert response.status_code == 200
    data = response.json()
    assert data["subCaseUrn"] == passenger.urn
    assert data["balances"] == {"EUR": "250.00"}
    [entry] = data["entries"]
    assert entry["kind"] == "CREDIT" and entry["amount"] == "250.00" and entry["providerRef"] == "po_1"
    assert entry["createdAt"].endswith("Z")


def test_another_airlines_wallet_is_404(client_for, passenger):
    credit(passenger)
    response = client_for("LH", Role.ADMIN).get(f"/v1/subcases/{passenger.urn}/wallet")
    assert response.status_code == 404
