"""While a provider's circuit is open, compensate answers 503 (failedDomain, Retry-After: 30) and starts
no saga; once the provider recovers and the half-open trial succeeds, the route accepts again."""

import json
import time

import pytest
from django.utils import timezone

from booking.payments import psp_client
from cases.models import SagaRun
from nexa.platform.breakers import breaker_for
from nexa.platform.providers import ProviderError
from nexa.platform.roles import Role
from tests.cases.factories import MEAL, CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

TRANSPORT = {
    "type": "TRANSPORT",
    "provider": "CABIFY",
    "pickup": {"lat": 40.4719, "lng": -3.5626},
    "dropoff": {"lat": 40.4168, "lng": -3.7038},
}


def _compensate(client, sub_case, items):
    payload = {"version": sub_case.version, "items": items, "reason": "Flight cancelled"}
    return client.post(
        f"/v1/subcases/{sub_case.urn}/compensate", data=json.dumps(payload), content_type="application/json"
    )


def _trip_psp_breaker(settings):
    for attempt in range(settings.NEXA_BREAKER_FAIL_MAX + 1):
        with pytest.raises(ProviderError):
            psp_client().payout(
                idempotency_key=f"urn:nexa:step:trip-{attempt}",
                sub_case_urn="urn:nexa:subcase:00000000-0000-7000-8000-000000000000",
                amount="1.00",
                currency="EUR",
                regulation=None,
            )
    assert breaker_for("psp").current_state == "open"


def test_open_psp_circuit_refuses_new_sagas_with_503_then_recovers(settings, simulators, simulator_control, client_for):
    settings.NEXA_BREAKER_RESET_SECONDS = 0.5
    client = client_for("IB", Role.AIRPORT_OPERATOR)
    sub_case = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    simulator_control.psp.outage()
    _trip_psp_breaker(settings)

    response = _compensate(client, sub_case, [MEAL])
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "30"
    assert response.json()["failedDomain"] == "psp"
    assert not SagaRun.objects.exists()

    # Transport alone does not need the PSP: another provider's work is still accepted.
    assert _compensate(client, sub_case, [TRANSPORT]).status_code == 202

    simulator_control.psp.outage(False)
    time.sleep(0.6)  # past the reset timeout: the next call is the half-open trial
    psp_client().issue_virtual_card(
        idempotency_key="urn:nexa:step:trial",
        sub_case_urn=sub_case.urn,
        amount="5.00",
        currency="EUR",
        expires_at=timezone.now() + timezone.timedelta(hours=6),
    )
    assert breaker_for("psp").current_state == "closed"
    sub_case.refresh_from_db()
    assert _compensate(client, sub_case, [MEAL]).status_code == 202
