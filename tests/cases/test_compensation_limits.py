"""Issue 9 §2: compensation limits that hold — per passenger (sub-case) per disruption, summed over
EVERY saga run of the sub-case, in the airline's settlement currency, from its TenantSettings; other
currencies only when the airline allows them (converted with the rate recorded on the run). Each test
is one attack on the old per-request, per-currency, per-version ceilings."""

import json
from decimal import Decimal

import pytest
from django.test import override_settings

from cases import services
from cases.models import SagaRun, SagaRunStatus, SagaStep, SubCase
from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.roles import Role
from tests.api_base import assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

CURRENCIES = ["EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK",
              "HUF", "RON", "BGN", "TRY", "MXN", "BRL", "CAD", "AUD", "NZD", "ZAR"]  # fmt: skip


def cash(amount, currency="EUR"):
    return {"type": "CASH", "amount": amount, "currency": currency, "regulation": "EU261"}


def supervisor(airline="IB"):
    return Principal(airline=airline, role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sup", subject="sup")


def version_of(sub_case):
    return SubCase.objects.get(pk=sub_case.pk).version


def compensate(client, sub_case, items, *, version=None, reason="storm"):
    payload = {"version": version or version_of(sub_case), "items": items, "reason": reason}
    return client.post(
        f"/v1/subcases/{sub_case.urn}/compensate", data=json.dumps(payload), content_type="application/json"
    )


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")


def test_twenty_currencies_are_refused_unless_the_airline_allows_them(client_for, passenger):
    """The 20-currency attack: 20 CASH items just under the limit, each in another currency."""
    items = [cash("590.00", currency) for currency in CURRENCIES]
    response = compensate(client_for("IB"), passenger, items)
    problem = assert_problem(response, 422, "unprocessable")
    refused = {error["field"] for error in problem["errors"]}
    assert refused == {f"items[{i}].currency" for i in range(1, 20)}
    assert "settles in EUR" in problem["errors"][0]["message"]
    assert not SagaRun.objects.filter(sub_case=passenger).exists()


def test_twenty_allowed_currencies_are_summed_in_the_settlement_currency(client_for, passenger):
    TenantSettings.objects.create(airline="IB", currency_rates=dict.fromkeys(CURRENCIES[1:], "1.00"))
    items = [cash("40.00", currency) for currency in CURRENCIES]  # 20 x 40 = 800 EUR > 600
    problem = assert_problem(compensate(client_for("IB"), passenger, items), 422, "unprocessable")
    assert problem["limit"] == {"type": "CASH", "amount": "600.00", "currency": "EUR"}
    assert problem["alreadyGranted"] == {"type": "CASH", "amount": "0.00", "currency": "EUR"}
    assert problem["requested"] == {"type": "CASH", "amount": "800.00", "currency": "EUR"}
    assert problem["errors"][0]["field"] == "items"
    assert "limit of 600.00 EUR" in problem["errors"][0]["message"]
    assert compensate(client_for("IB"), passenger, items[:15]).status_code == 202  # 600 EUR: at the limit


def test_the_same_payload_after_a_transition_is_refused_over_the_limit(client_for, passenger):
    """The version-bump attack: every transition gave a fresh allowance."""
    client = client_for("IB")
    assert compensate(client, passenger, [cash("400.00")]).status_code == 202
    services.subcase_transition(
        principal=supervisor(), sub_case=passenger, transition="mark_grouped", expected_version=version_of(passenger)
    )
    problem = assert_problem(compensate(client, passenger, [cash("400.00")]), 422, "unprocessable")
    assert problem["alreadyGranted"] == {"type": "CASH", "amount": "400.00", "currency": "EUR"}
    assert problem["limit"] == {"type": "CASH", "amount": "600.00", "currency": "EUR"}
    assert "400.00 EUR already granted" in problem["errors"][0]["message"]
    # What is left is still grantable, in another run.
    assert compensate(client, passenger, [cash("200.00")]).status_code == 202
    assert SagaRun.objects.filter(sub_case=passenger).count() == 2


def test_the_same_request_again_is_still_the_same_run_not_a_refusal(client_for, passenger):
    client = client_for("IB")
    first = compensate(client, passenger, [cash("600.00")], version=1)
    again = compensate(client, passenger, [cash("600.00")], version=1)
    assert first.status_code == again.status_code == 202
    assert first.json()["sagaUrn"] == again.json()["sagaUrn"]


def test_a_currency_the_airline_does_not_allow_is_a_422(client_for, passenger):
    problem = assert_problem(compensate(client_for("IB"), passenger, [cash("10.00", "USD")]), 422, "unprocessable")
    assert problem["errors"] == [
        {
            "field": "items[0].currency",
            "message": "USD is not accepted by the airline (it settles in EUR; accepted: EUR)",
        }
    ]


def test_an_allowed_currency_is_converted_with_the_rate_recorded_on_the_run(client_for, passenger):
    TenantSettings.objects.create(airline="IB", currency_rates={"USD": "0.90"})
    response = compensate(client_for("IB"), passenger, [cash("500.00", "USD")])
    assert response.status_code == 202, response.content
    run = SagaRun.objects.get(sub_case=passenger)
    assert run.fx == {"settlementCurrency": "EUR", "rates": {"USD": "0.90"}}
    step = SagaStep.objects.get(run=run, kind="CASH")
    assert step.settled_amount == Decimal("450.00") and step.item["currency"] == "USD"
    progress = client_for("IB").get(f"/v1/orchestration/cases/{passenger.case.urn}/progress").json()
    [shown] = progress["runs"]
    assert shown["fx"] == {"settlementCurrency": "EUR", "rates": {"USD": "0.90"}}
    assert [(s["type"], s["settledAmount"], s["outcomeUnknown"]) for s in shown["steps"]] == [
        ("CASH", "450.00", False), ("NOTIFY", None, False),
    ]  # fmt: skip
    # A later rate change does not re-price what was granted: 450 + 200 > 600.
    TenantSettings.objects.filter(airline="IB").update(currency_rates={"USD": "0.10"})
    problem = assert_problem(compensate(client_for("IB"), passenger, [cash("200.00")]), 422, "unprocessable")
    assert problem["alreadyGranted"]["amount"] == "450.00"


def test_limits_and_settlement_currency_come_from_the_airlines_settings(client_for, passenger):
    lh = SubCaseFactory(case=CaseFactory(airline="LH", flight_number="LH1114"), airline="LH")
    TenantSettings.objects.create(airline="IB", cash_limit=Decimal("100.00"))
    TenantSettings.objects.create(airline="LH", settlement_currency="CHF", meal_limit=Decimal("20.00"))
    problem = assert_problem(compensate(client_for("IB"), passenger, [cash("250.00")]), 422, "unprocessable")
    assert problem["limit"] == {"type": "CASH", "amount": "100.00", "currency": "EUR"}
    assert compensate(client_for("LH"), lh, [cash("250.00", "CHF")]).status_code == 202
    meal = {"type": "MEAL", "amount": "25.00", "currency": "CHF"}
    assert assert_problem(compensate(client_for("LH"), lh, [meal]), 422, "unprocessable")["limit"] == {
        "type": "MEAL", "amount": "20.00", "currency": "CHF"
    }  # fmt: skip
    # EUR is not LH's currency and LH has no rate for it.
    assert_problem(compensate(client_for("LH"), lh, [cash("1.00", "EUR")]), 422, "unprocessable")


@override_settings(NEXA_COMPENSATION_LIMIT_CASH="300.00", NEXA_SETTLEMENT_CURRENCY="GBP")
def test_defaults_come_from_the_environment(client_for, passenger):
    problem = assert_problem(compensate(client_for("IB"), passenger, [cash("301.00", "GBP")]), 422, "unprocessable")
    assert problem["limit"] == {"type": "CASH", "amount": "300.00", "currency": "GBP"}


def test_only_what_was_truly_undone_is_granted_again(client_for, passenger):
    client = client_for("IB")
    assert compensate(client, passenger, [cash("400.00")]).status_code == 202
    run = SagaRun.objects.get(sub_case=passenger)
    # The provider undid it (cancelled run, payout reversed): released.
    SagaRun.objects.filter(pk=run.pk).update(status=SagaRunStatus.CANCELLED)
    SagaStep.objects.filter(run=run, kind="CASH").update(status="COMPENSATED")
    assert compensate(client, passenger, [cash("400.00")], reason="again").status_code == 202
    second = SagaRun.objects.exclude(pk=run.pk).get(sub_case=passenger)
    # Its reversal failed, or its outcome is unknown: still granted.
    SagaStep.objects.filter(run=second, kind="CASH").update(status="COMPENSATION_FAILED")
    assert_problem(compensate(client, passenger, [cash("400.00")], reason="third"), 422, "unprocessable")
    SagaStep.objects.filter(run=second, kind="CASH").update(status="FAILED", outcome_unknown=True)
    assert_problem(compensate(client, passenger, [cash("400.00")], reason="third"), 422, "unprocessable")
    # Refused by the PSP (nothing paid): released.
    SagaStep.objects.filter(run=second, kind="CASH").update(status="FAILED", outcome_unknown=False)
    assert compensate(client, passenger, [cash("400.00")], reason="third").status_code == 202


def test_a_retry_counts_against_the_limit(client_for, passenger):
    """A failed run's undone items are granted again by a retry: over the limit, the retry is a 422."""
    client = client_for("IB")
    assert compensate(client, passenger, [cash("400.00")]).status_code == 202
    failed = SagaRun.objects.get(sub_case=passenger)
    SagaRun.objects.filter(pk=failed.pk).update(status=SagaRunStatus.FAILED)
    SagaStep.objects.filter(run=failed).update(status="COMPENSATED")
    assert compensate(client, passenger, [cash("400.00")], reason="new").status_code == 202
    response = client_for("IB", "OPS_SUPERVISOR").post(f"/v1/orchestration/runs/{failed.urn}/retry", {}, format="json")
    problem = assert_problem(response, 422, "unprocessable")
    assert problem["alreadyGranted"]["amount"] == "400.00" and problem["requested"]["amount"] == "400.00"
    assert SagaRun.objects.get(pk=failed.pk).status == "FAILED"


@pytest.mark.django_db(transaction=True)
def test_a_retry_and_a_new_compensation_at_once_cannot_together_exceed_the_limit():
    """The concurrent attack: both check the sum under the sub-case's row lock; one of them waits and
    then sees the other's steps."""
    from tests.cases.test_compensate import _in_threads, _problem_slug

    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    run, _ = services.subcase_compensate(
        principal=supervisor(), sub_case_urn=passenger.urn, expected_version=1, items=[cash("400.00")], reason="a"
    )
    SagaRun.objects.filter(pk=run.pk).update(status=SagaRunStatus.FAILED)
    SagaStep.objects.filter(run=run).update(status="COMPENSATED")
    for _ in range(3):  # a few rounds: the race must never let both through
        outcomes = _in_threads([
            lambda: services.saga_run_retry(principal=supervisor(), run=run, reason="retry"),
            lambda: services.subcase_compensate(principal=supervisor(), sub_case_urn=passenger.urn,
                                                expected_version=version_of(passenger), items=[cash("400.00")],
                                                reason="new"),
        ])  # fmt: skip
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1 and [_problem_slug(o) for o in losers] == ["unprocessable"], outcomes
        # Reset for the next round: whatever won is undone again.
        SagaRun.objects.filter(sub_case=passenger).update(status=SagaRunStatus.FAILED)
        SagaStep.objects.filter(run__sub_case=passenger).update(status="COMPENSATED")
    granted = SagaStep.objects.filter(run__sub_case=passenger, kind="CASH").count()
    assert granted >= 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_compensations_of_one_passenger_cannot_together_exceed_the_limit():
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    from tests.cases.test_compensate import _in_threads, _problem_slug

    outcomes = _in_threads([
        lambda reason=reason: services.subcase_compensate(
            principal=supervisor(), sub_case_urn=passenger.urn, expected_version=1, items=[cash("400.00")],
            reason=reason)
        for reason in ("a", "b", "c", "d")
    ])  # fmt: skip
    assert len([o for o in outcomes if not isinstance(o, Exception)]) == 1
    assert {_problem_slug(o) for o in outcomes if isinstance(o, Exception)} <= {"version-conflict", "unprocessable"}
    total = sum(s.settled_amount for s in SagaStep.objects.filter(run__sub_case=passenger, kind="CASH"))
    assert total == Decimal("400.00")


def test_limits_are_edited_in_admin_and_hidden_from_staff_without_an_operator(admin_client, client, django_user_model):
    TenantSettings.objects.create(airline="IB")
    url = "/admin/platform/tenantsettings/IB/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        {
            "airline": "IB",
            "settlement_currency": "EUR",
            "meal_limit": "40.00",
            "cash_limit": "300.00",
            "transport_limit": "",
            "currency_rates": '{"USD": "0.92"}',
        },
    )
    assert response.status_code == 302, response.content[:2000]
    saved = TenantSettings.objects.get(airline="IB")
    assert (saved.cash_limit, saved.transport_limit, saved.currency_rates) == (Decimal("300.00"), None, {"USD": "0.92"})
    bad = admin_client.post(url, {"airline": "IB", "currency_rates": '{"USD": "-1"}', "settlement_currency": "eur"})
    assert bad.status_code == 200 and b"not a positive rate" in bad.content

    staff = django_user_model.objects.create_user("ib-staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403


def test_the_limit_check_costs_one_settings_read_and_one_sum_under_the_lock(passenger):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.subcase_compensate(
        principal=supervisor(), sub_case_urn=passenger.urn, expected_version=1, items=[cash("100.00")], reason="a"
    )
    with CaptureQueriesContext(connection) as queries:
        services.subcase_compensate(
            principal=supervisor(), sub_case_urn=passenger.urn, expected_version=2, items=[cash("100.00")], reason="b"
        )
    sql = [q["sql"] for q in queries.captured_queries]
    settings_reads = [i for i, s in enumerate(sql) if "platform_tenantsettings" in s]
    sums = [i for i, s in enumerate(sql) if "SUM(st.settled_amount)" in s]
    lock = next(i for i, s in enumerate(sql) if "FOR NO KEY UPDATE" in s)
    assert len(settings_reads) == 1 and len(sums) == 1
    assert settings_reads[0] < lock < sums[0]  # the settings before the lock, the sum under it
