"""``GET /v1/subcases/{urn}/entitlements``: the platform contracts (roles: AIRPORT_OPERATOR+ and
FINANCE_AUDIT; 404 across tenants; 400 for a bad URN), then what a desk agent or finance sees: owed,
granted (saga steps, reservations, wallet), open, and the stored snapshot."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import jsonschema
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.models import AuditEntry
from booking.models import Reservation, RoomNight, WalletEntry
from cases import services
from cases.models import Cause, DemandWave, DemandWaveMember, SagaRun, SagaStep
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory, declaration
from tests.policies.factories import active_policy

pytestmark = pytest.mark.django_db

PATH = "/v1/subcases/{subcase}/entitlements"


def _passenger(airline="IB", **case_fields):
    fields = {"airport": "MAD", "destination": "FRA", "cause": Cause.CANCELLATION, **case_fields}
    return SubCaseFactory(case=CaseFactory(airline=airline, **fields), airline=airline)


class TestEntitlementsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "entitlements",
            "GET",
            PATH,
            any_of=(Role.AIRPORT_OPERATOR, Role.FINANCE_AUDIT),
            check=lambda response, objects: (
                response.json()["subCaseUrn"] == objects["subcase"].urn
                and response.json()["compensation"]["amount"] == "250.00"
            ),
        ),
    )

    def make_objects(self, airline):
        return {"subcase": _passenger(airline)}


def get(client_for, sub_case, role=Role.AIRPORT_OPERATOR):
    response = client_for("IB", role).get(PATH.format(subcase=sub_case.urn))
    assert response.status_code == 200, response.content
    return response.json()


def care(body, kind):
    return next(item for item in body["care"] if item["type"] == kind)


def _completed_step(sub_case, kind, item, *, settled=None, result=None):
    run = SagaRun.objects.create(
        airline=sub_case.airline,
        case=sub_case.case,
        sub_case=sub_case,
        status="COMPLETED",
        payload={"items": [item], "reason": "test"},
        payload_hash=f"{kind}-{sub_case.pk}",
        correlation_urn="urn:nexa:correlation:test",
        requested_by="urn:nexa:user:test",
        fx={"settlementCurrency": "EUR", "rates": {}},
    )
    return SagaStep.objects.create(
        run=run,
        airline=sub_case.airline,
        position=0,
        name=f"{kind.lower()}.x",
        kind=kind,
        item=item,
        status="COMPLETED",
        settled_amount=settled,
        result=result or {},
        completed_at=dt.datetime(2026, 11, 22, 22, 0, tzinfo=dt.UTC),
    )


def _reservation(sub_case, nights=1, status="CONFIRMED"):
    reservation = Reservation.objects.create(
        airline=sub_case.airline,
        case=sub_case.case,
        hotel_name="Hotel Barajas",
        source="MANUAL",
        check_in=dt.date(2026, 11, 22),
        nights=nights,
        rooms=[{"occupants": [sub_case.urn], "accessible": False}],
        status=status,
        created_by="urn:nexa:user:test",
    )
    for night in range(nights):
        RoomNight.objects.create(
            airline=sub_case.airline,
            reservation=reservation,
            sub_case=sub_case,
            night=dt.date(2026, 11, 22) + dt.timedelta(days=night),
            active=status in ("HELD", "CONFIRMED"),
        )
    return reservation


def test_a_cancelled_mad_jfk_passenger_sees_owed_granted_and_open(client_for):
    """MAD → JFK 5 761 km: 600 EUR; paid 250 EUR CASH → 350 open. Policy dinner 35 EUR; one MEAL card of
    25 EUR → 10 open. A demand wave of 1 night and a confirmed 1-night reservation → HOTEL closed;
    no ride → TRANSPORT open. The wallet shows the 250 EUR credit."""
    active_policy(airline="IB")
    sub_case = _passenger(destination="JFK")
    wave = DemandWave.objects.create(
        airline="IB",
        case=sub_case.case,
        kind="INITIAL",
        status="APPROVED",
        check_in=dt.date(2026, 11, 22),
        nights=1,
        rooms=1,
        people=1,
        requested_by="urn:nexa:user:test",
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    DemandWaveMember.objects.create(airline="IB", wave=wave, sub_case=sub_case)
    cash = _completed_step(
        sub_case, "CASH", {"type": "CASH", "amount": "250.00", "currency": "EUR", "regulation": "EU261"}, settled=250
    )
    _completed_step(sub_case, "MEAL", {"type": "MEAL", "amount": "25.00", "currency": "EUR"}, settled=25)
    reservation = _reservation(sub_case)
    WalletEntry.objects.create(
        airline="IB", sub_case=sub_case, kind="CREDIT", amount=Decimal("250.00"), currency="EUR", reference="r1"
    )

    body = get(client_for, sub_case)

    assert (body["regulation"], body["distanceKm"], body["band"]) == ("EU261", 5761, "OVER_3500_KM")
    assert body["route"] == {"origin": "MAD", "destination": "JFK", "intraEu": False}
    assert body["compensation"]["amount"] == "600.00"
    assert [g["urn"] for g in body["granted"]["compensation"]] == [cash.urn]
    assert body["open"]["compensation"] == {"amount": "350.00", "currency": "EUR"}
    assert care(body, "MEAL")["amount"] == {"amount": "35.00", "currency": "EUR"}
    assert care(body, "MEAL")["openAmount"] == {"amount": "10.00", "currency": "EUR"}
    hotel = care(body, "HOTEL")
    assert (hotel["owed"], hotel["nights"], hotel["open"]) == (True, 1, False)
    assert [(g["urn"], g["nights"], g["hotelName"]) for g in hotel["granted"]] == [
        (reservation.urn, 1, "Hotel Barajas")
    ]
    assert body["open"]["care"] == ["MEAL", "TRANSPORT"]
    assert body["granted"]["walletBalances"] == {"EUR": "250.00"}
    assert body["snapshot"] is None
    call_command("entitlements_backfill", "--case", sub_case.case.urn, stdout=StringIO(), stderr=StringIO())
    assert_matches_the_schema(get(client_for, sub_case))


def _json_schema(node):
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes "or null"."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def assert_matches_the_schema(body):
    """The body validates against the served OpenAPI's Entitlements component (every grant kind in it)."""
    components = _json_schema(APIClient().get("/v1/openapi.json").json()["components"])
    schema = {"$ref": "#/components/schemas/Entitlements", "components": components}
    jsonschema.Draft7Validator(schema).validate(body)


def test_finance_audit_reads_the_same_body(client_for):
    sub_case = _passenger()
    assert get(client_for, sub_case, Role.FINANCE_AUDIT)["compensation"]["amount"] == "250.00"


def test_cancelled_reservations_and_undone_steps_are_not_granted(client_for):
    sub_case = _passenger()
    _reservation(sub_case, status="CANCELLED")
    step = _completed_step(sub_case, "CASH", {"type": "CASH", "amount": "250.00", "currency": "EUR"}, settled=250)
    SagaStep.objects.filter(pk=step.pk).update(status="COMPENSATED")

    body = get(client_for, sub_case)

    assert body["granted"]["compensation"] == [] and body["granted"]["reservations"] == []
    assert body["open"]["compensation"] == {"amount": "250.00", "currency": "EUR"}


def test_recorded_facts_change_the_answer_and_are_audited(client_for):
    """Extraordinary circumstances → 0 EUR (Art. 5(3)); a re-route arriving 2 h 30 on MAD → FRA (> 2 h
    limit of the ≤ 1 500 km band) keeps the full 250 EUR; 2 h 00 halves it to 125 EUR."""
    sub_case = _passenger()
    principal = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sup", subject="s")
    services.subcase_reroute_record(principal=principal, sub_case=sub_case, rerouted_arrival_delay_minutes=150)
    assert get(client_for, sub_case)["compensation"]["amount"] == "250.00"
    services.subcase_reroute_record(principal=principal, sub_case=sub_case, rerouted_arrival_delay_minutes=120)
    assert get(client_for, sub_case)["compensation"] == {
        "status": "OWED",
        "amount": "125.00",
        "currency": "EUR",
        "fullAmount": "250.00",
        "reduced": True,
        "reason": "re-routed arriving 2 h late, within 2 h (Art. 7(2)): halved",
        "basis": "Art. 7(1), 7(2)",
    }
    services.case_entitlement_facts_set(principal=principal, case=sub_case.case, extraordinary_circumstances=True)
    assert get(client_for, sub_case)["compensation"]["amount"] == "0.00"
    actions = list(AuditEntry.objects.filter(airline="IB").values_list("action", flat=True).order_by("created_at"))
    assert actions.count("subcase.reroute_recorded") == 2 and "case.entitlement_facts_set" in actions


def test_the_snapshot_is_reported_and_goes_stale(client_for):
    sub_case = _passenger()
    call_command("entitlements_backfill", "--case", sub_case.case.urn)
    assert get(client_for, sub_case)["snapshot"]["current"] is True
    principal = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sup", subject="s")
    services.case_entitlement_facts_set(principal=principal, case=sub_case.case, arrival_delay_minutes=200)
    services.case_entitlement_facts_set(principal=principal, case=sub_case.case, destination="JFK")
    assert get(client_for, sub_case)["snapshot"]["current"] is False


def test_a_case_without_destination_has_unknown_compensation(client_for):
    body = get(client_for, _passenger(destination=""))
    assert (body["distanceKm"], body["band"], body["compensation"]["status"]) == (None, None, "UNKNOWN")
    assert body["open"]["compensation"] is None


def test_declaring_with_a_destination(client_for):
    client = client_for("IB", Role.OPS_SUPERVISOR)
    response = client.post("/v1/cases", declaration(destination=" fra "), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["origin"], body["destination"], body["regulation"]) == ("MAD", "FRA", "EU261")


@pytest.mark.parametrize("destination", ["XQX", "MAD", "FRANKFURT"])
def test_a_bad_destination_is_a_400_naming_it(client_for, destination):
    client = client_for("IB", Role.OPS_SUPERVISOR)
    response = client.post("/v1/cases", declaration(destination=destination), format="json")
    body = assert_problem(response, 400, "validation-error")
    assert [error["field"] for error in body["errors"]] == ["destination"]


def test_a_delay_past_local_midnight_owes_a_night_and_the_ride(client_for):
    """DELAY at MAD, scheduled 21:40 local (20:40Z), 5 h late → 02:40 local the next day (Art. 6(1)(b)(iii)):
    HOTEL 1 night and TRANSPORT owed; 5 h ≥ 3 h at arrival on MAD → FRA (1 418 km) → 250 EUR (Sturgeon).
    The same 5 h from 08:00 local stays on the day: no night."""
    late = _passenger(
        cause=Cause.DELAY,
        arrival_delay_minutes=300,
        scheduled_departure=dt.datetime(2026, 11, 22, 20, 40, tzinfo=dt.UTC),
    )
    body = get(client_for, late)
    assert (care(body, "HOTEL")["owed"], care(body, "HOTEL")["nights"], care(body, "TRANSPORT")["owed"]) == (
        True,
        1,
        True,
    )
    assert body["compensation"]["amount"] == "250.00"
    morning = _passenger(
        cause=Cause.DELAY,
        arrival_delay_minutes=300,
        scheduled_departure=dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC),
    )
    assert care(get(client_for, morning), "HOTEL")["owed"] is False


def test_bad_facts_are_refused_naming_them_and_another_airlines_case_is_not_found():
    sub_case = _passenger()
    principal = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sup", subject="s")
    with pytest.raises(Problem) as refused:
        services.case_entitlement_facts_set(
            principal=principal, case=sub_case.case, regulation="EU999", destination="QQQ", arrival_delay_minutes=-5
        )
    assert refused.value.status_code == 400
    fields = [error["field"] for error in refused.value.extensions["errors"]]
    assert fields == ["destination", "regulation", "arrivalDelayMinutes"]
    lufthansa = Principal(airline="LH", role=Role.ADMIN, operator_urn="urn:nexa:user:lh-admin", subject="l")
    with pytest.raises(Problem) as hidden:
        services.subcase_reroute_record(principal=lufthansa, sub_case=sub_case, rerouted_arrival_delay_minutes=60)
    assert hidden.value.status_code == 404
    sub_case.refresh_from_db()
    assert sub_case.rerouted_arrival_delay_minutes is None
    assert not AuditEntry.objects.filter(action__in=["case.entitlement_facts_set", "subcase.reroute_recorded"]).exists()
