"""GET/POST /v1/contracts: the platform contracts (shared base), create, versions, optimistic concurrency,
overlap (also under real concurrent requests, and in the database itself), filters, tenant isolation."""

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditEntry
from booking.contracts.models import Contract
from booking.contracts.services import ContractTerms, contract_create
from booking.hotels import hotels_seed_demo
from booking.models import Hotel
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id
from tests.api_base import APIContractTests, RouteContract, assert_problem

pytestmark = pytest.mark.django_db

THIS_YEAR = timezone.localdate().year


def hotel_urn(airline: str = "IB", airport: str = "MAD") -> str:
    """A new hotel of ``airline``'s catalog at ``airport`` (contracts must name one)."""
    hotel = Hotel.objects.create(
        airline=airline, airport=airport, name=f"Test hotel {new_id()}", lat=40.47, lng=-3.57, distance_km=2.5, stars=4
    )
    return hotel.urn


def body(airline: str = "IB", **overrides) -> dict:
    data = {
        "hotelUrn": ""
        if "hotelUrn" in overrides
        else hotel_urn(airline, str(overrides.get("airport", "MAD")).strip().upper()[:3]),
        "airport": "MAD",
        "validFrom": f"{THIS_YEAR}-01-01",
        "validTo": f"{THIS_YEAR + 1}-12-31",
        "allotment": 25,
        "rate": {"amount": "89.50", "currency": "EUR"},
        "releaseHours": 48,
        "mealsIncluded": ["BREAKFAST"],
        "cancellationTerms": "Free cancellation until 18:00 on the day of arrival.",
    }
    data.update(overrides)
    return data


def supervisor_of(airline: str) -> Principal:
    urn = f"urn:nexa:user:{airline.lower()}-ops_supervisor"
    return Principal(airline=airline, role=Role.OPS_SUPERVISOR, operator_urn=urn, subject=urn)


def make_contract(airline: str = "IB", **overrides) -> Contract:
    data = body(airline, **overrides)
    terms = ContractTerms(
        hotel_urn=data["hotelUrn"],
        airport=data["airport"],
        valid_from=dt.date.fromisoformat(data["validFrom"]),
        valid_to=dt.date.fromisoformat(data["validTo"]),
        allotment=data["allotment"],
        rate_amount=Decimal(data["rate"]["amount"]),
        rate_currency=data["rate"]["currency"],
        release_hours=data["releaseHours"],
        meals_included=tuple(data["mealsIncluded"]),
        cancellation_terms=data["cancellationTerms"],
    )
    return contract_create(principal=supervisor_of(airline), terms=terms)


def _lists_only_own(response, objects) -> bool:
    urns = {item["urn"] for item in response.json()["items"]}
    return urns == {objects["contract"].urn}


class TestContractsAPIContract(APIContractTests):
    routes = (
        RouteContract("list", "GET", "/v1/contracts", min_role=Role.OPS_SUPERVISOR, check=_lists_only_own),
        RouteContract(
            "create",
            "POST",
            "/v1/contracts",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body=lambda objects: body(),
            audit_actions=("contract.created",),
        ),
        RouteContract(
            "update",
            "POST",
            "/v1/contracts",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=200,
            body=lambda objects: body(
                urn=objects["contract"].urn, version=1, hotelUrn=objects["contract"].hotel_urn, allotment=30
            ),
            audit_actions=("contract.updated",),
        ),
        # A JSON body is refused for its type (415) by every allowed role: the multipart cases are in
        # tests/booking/test_contracts_analyze.py. Writes nothing, so nothing is audited.
        RouteContract(
            "analyze-pdf",
            "POST",
            "/v1/contracts/analyze-pdf",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=415,
            body={"file": "x"},
            audited=False,
        ),
    )

    def make_objects(self, airline):
        return {"contract": make_contract(airline)}


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR)


# --- create ---------------------------------------------------------------------------------------------


def test_create_answers_the_contract_audits_and_publishes(supervisor):
    sent = body()
    response = supervisor.post("/v1/contracts", sent, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["urn"].startswith("urn:nexa:contract:")
    assert data["version"] == 1
    for field in ("hotelUrn", "airport", "validFrom", "validTo", "allotment", "rate", "releaseHours", "mealsIncluded"):
        assert data[field] == sent[field]
    assert data["cancellationTerms"] == sent["cancellationTerms"]
    assert data["createdBy"] == "urn:nexa:user:ib-ops_supervisor"

    entry = AuditEntry.objects.get(action="contract.created")
    assert entry.entity_urn == data["urn"] and entry.before in (None, {}) and entry.after["allotment"] == 25
    event = OutboxEvent.objects.get(event="contract:changed")
    assert event.payload == {
        "contractUrn": data["urn"],
        "version": 1,
        "change": "created",
        "hotelUrn": sent["hotelUrn"],
        "airport": "MAD",
        "validFrom": sent["validFrom"],
        "validTo": sent["validTo"],
    }
    assert event.rooms == [] and event.airline == "IB"  # internal: no Socket.IO room


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hotelUrn": "urn:nexa:case:" + str(new_id())}, "hotelUrn"),
        ({"hotelUrn": "hotel-1"}, "hotelUrn"),
        ({"airport": "ZZZ"}, "airport"),
        ({"validFrom": "2027-02-30"}, "validFrom"),
        ({"validFrom": "2027-06-01", "validTo": "2027-05-31"}, "validTo"),
        ({"allotment": 0}, "allotment"),
        ({"allotment": "25"}, "allotment"),
        ({"rate": {"amount": "89.999", "currency": "EUR"}}, "rate.amount"),
        ({"rate": {"amount": "89.50", "currency": "eur"}}, "rate.currency"),
        ({"releaseHours": -1}, "releaseHours"),
        ({"releaseHours": 721}, "releaseHours"),
        ({"mealsIncluded": ["BRUNCH"]}, "mealsIncluded.0"),
        ({"mealsIncluded": ["BREAKFAST", "LUNCH", "DINNER", "LUNCH"]}, "mealsIncluded"),
        ({"cancellationTerms": "x" * 2001}, "cancellationTerms"),
        ({"urn": "urn:nexa:contract:" + str(new_id())}, "version"),
        ({"version": 1}, "urn"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(supervisor, overrides, field):
    problem = assert_problem(
        supervisor.post("/v1/contracts", body(**overrides), format="json"), 400, "validation-error"
    )
    assert field in {error["field"] for error in problem["errors"]}, problem
    assert not Contract.objects.exists()


def _refused_hotel(response) -> dict:
    problem = assert_problem(response, 400, "validation-error")
    assert [error["field"] for error in problem["errors"]] == ["hotelUrn"], problem
    return problem


def test_a_hotel_outside_the_airlines_catalog_is_400_without_revealing_another_airlines(supervisor):
    def refused(urn: str) -> str:
        problem = _refused_hotel(supervisor.post("/v1/contracts", body(hotelUrn=urn), format="json"))
        return json.dumps({k: problem[k] for k in ("type", "title", "status", "detail", "errors")}).replace(urn, "X")

    # Another airline's hotel gets the same answer as a hotel that does not exist (but for the URN echoed).
    assert refused(hotel_urn("LH", "MAD")) == refused(format_urn("hotel", new_id()))
    assert not Contract.objects.exists()


def test_update_to_a_hotel_outside_the_catalog_is_400(supervisor):
    contract = make_contract()
    sent = body(urn=contract.urn, version=1, hotelUrn=hotel_urn("LH", "MAD"))
    _refused_hotel(supervisor.post("/v1/contracts", sent, format="json"))
    assert Contract.objects.get(current=True).version == 1


def test_an_airport_other_than_the_hotels_is_400_naming_airport(supervisor):
    sent = body(hotelUrn=hotel_urn("IB", "MAD"), airport="BCN")
    problem = assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 400, "validation-error")
    assert [error["field"] for error in problem["errors"]] == ["airport"], problem
    assert "MAD" in problem["errors"][0]["message"]
    contract = make_contract()
    update = body(urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, airport="BCN")
    problem = assert_problem(supervisor.post("/v1/contracts", update, format="json"), 400, "validation-error")
    assert [error["field"] for error in problem["errors"]] == ["airport"], problem
    assert Contract.objects.count() == 1


def test_a_demo_catalog_hotel_takes_a_contract(supervisor):
    hotels_seed_demo(airline="IB")
    hotel = Hotel.objects.filter(airline="IB", airport="BCN").order_by("distance_km").first()
    sent = body(hotelUrn=hotel.urn, airport="BCN")
    response = supervisor.post("/v1/contracts", sent, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["hotelUrn"], response.json()["airport"]) == (hotel.urn, "BCN")


def test_missing_fields_are_400(supervisor):
    problem = assert_problem(supervisor.post("/v1/contracts", {}, format="json"), 400, "validation-error")
    assert {"hotelUrn", "airport", "validFrom", "validTo", "allotment", "rate", "releaseHours"} <= {
        error["field"] for error in problem["errors"]
    }


def test_airport_is_normalised_and_meals_ordered(supervisor):
    response = supervisor.post(
        "/v1/contracts", body(airport=" mad ", mealsIncluded=["DINNER", "BREAKFAST", "DINNER"]), format="json"
    )
    assert response.status_code == 201
    assert response.json()["airport"] == "MAD"
    assert response.json()["mealsIncluded"] == ["BREAKFAST", "DINNER"]


def test_idempotency_key_replays_the_create(supervisor):
    sent = body()
    first = supervisor.post("/v1/contracts", sent, format="json", HTTP_IDEMPOTENCY_KEY="contract-1")
    again = supervisor.post("/v1/contracts", sent, format="json", HTTP_IDEMPOTENCY_KEY="contract-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Contract.objects.count() == 1


# --- overlap --------------------------------------------------------------------------------------------


def test_overlapping_contract_for_the_same_hotel_is_422_naming_it(supervisor):
    existing = make_contract(validFrom="2030-01-01", validTo="2030-06-30")
    sent = body(hotelUrn=existing.hotel_urn, validFrom="2030-06-30", validTo="2030-12-31")  # shares one night
    problem = assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 422, "contract-overlap")
    assert [error["field"] for error in problem["errors"]] == ["validFrom"]
    assert existing.urn in problem["errors"][0]["message"]
    assert Contract.objects.count() == 1
    assert not AuditEntry.objects.filter(action="contract.created").exclude(entity_urn=existing.urn).exists()


def test_adjacent_contracts_and_other_hotels_or_airlines_do_not_overlap(supervisor):
    existing = make_contract(validFrom="2030-01-01", validTo="2030-06-30")
    make_contract("LH", validFrom="2030-01-01", validTo="2030-06-30")  # catalogs are per airline: its own hotel
    next_half = body(hotelUrn=existing.hotel_urn, validFrom="2030-07-01", validTo="2030-12-31")
    assert supervisor.post("/v1/contracts", next_half, format="json").status_code == 201
    other_hotel = body(validFrom="2030-01-01", validTo="2030-06-30")
    assert supervisor.post("/v1/contracts", other_hotel, format="json").status_code == 201


def test_the_database_refuses_overlap_whatever_the_code_checks():
    existing = make_contract(validFrom="2030-01-01", validTo="2030-06-30")
    twin = Contract(
        airline="IB",
        hotel_urn=existing.hotel_urn,
        airport="MAD",
        valid_from=dt.date(2030, 6, 1),
        valid_to=dt.date(2030, 8, 1),
        allotment=1,
        rate_amount=Decimal("1.00"),
        rate_currency="EUR",
        release_hours=0,
        created_by="urn:nexa:user:x",
    )
    with pytest.raises(IntegrityError, match="contract_no_overlap_per_hotel"), transaction.atomic():
        twin.save(force_insert=True)
    twin.current = False  # a superseded version does not count
    twin.save(force_insert=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))  # four writers at once once deadlocked (a 500): repeated
def test_concurrent_overlapping_creates_one_wins_one_422(client_for, attempt):
    """Real concurrent requests for the same hotel and nights: one wins, every other is a 422 (never a 500:
    writers of one hotel queue on a per-hotel lock; the exclusion constraint is the backstop)."""
    hotel = hotel_urn()
    barrier = threading.Barrier(4)
    results: list[tuple[int, dict]] = []

    def create(index: int):
        client = client_for("IB", Role.OPS_SUPERVISOR)
        barrier.wait()
        start = dt.date(2031, 1, 1) + dt.timedelta(days=index)  # all four share 2031-01-04
        response = client.post(
            "/v1/contracts",
            body(hotelUrn=hotel, validFrom=start.isoformat(), validTo="2031-03-31"),
            format="json",
        )
        results.append((response.status_code, response.json()))
        connection.close()

    threads = [threading.Thread(target=create, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 422, 422, 422], results
    winner = next(data for status, data in results if status == 201)
    for status, data in results:
        if status == 422:
            assert data["type"].endswith("/contract-overlap")
            assert winner["urn"] in data["errors"][0]["message"]
    assert Contract.objects.filter(hotel_urn=hotel).count() == 1


# --- versions -------------------------------------------------------------------------------------------


def test_update_makes_a_new_version_and_keeps_the_old(supervisor):
    contract = make_contract()
    sent = body(
        urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, allotment=40, rate={"amount": "99", "currency": "EUR"}
    )
    response = supervisor.post("/v1/contracts", sent, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["urn"], data["version"], data["allotment"], data["rate"]["amount"]) == (contract.urn, 2, 40, "99.00")
    versions = list(Contract.objects.filter(contract_id=contract.contract_id).order_by("version"))
    assert [(v.version, v.current, v.allotment) for v in versions] == [(1, False, 25), (2, True, 40)]
    assert versions[0].superseded_at is not None
    entry = AuditEntry.objects.get(action="contract.updated")
    assert (entry.before["version"], entry.before["allotment"]) == (1, 25)
    assert (entry.after["version"], entry.after["allotment"]) == (2, 40)
    assert OutboxEvent.objects.filter(event="contract:changed", payload__change="updated", payload__version=2).exists()


def test_update_may_move_the_dates_over_its_own_earlier_version(supervisor):
    contract = make_contract(validFrom="2030-01-01", validTo="2030-06-30")
    sent = body(urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, validFrom="2030-03-01", validTo="2030-09-30")
    assert supervisor.post("/v1/contracts", sent, format="json").status_code == 200


def test_update_into_another_contracts_nights_is_422(supervisor):
    first = make_contract(validFrom="2030-01-01", validTo="2030-06-30")
    second = make_contract(hotelUrn=first.hotel_urn, validFrom="2030-07-01", validTo="2030-12-31")
    sent = body(urn=second.urn, version=1, hotelUrn=first.hotel_urn, validFrom="2030-06-01", validTo="2030-12-31")
    problem = assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 422, "contract-overlap")
    assert first.urn in problem["errors"][0]["message"]
    assert Contract.objects.get(contract_id=second.contract_id, current=True).version == 1


def test_stale_version_is_409_with_the_current_version(supervisor):
    contract = make_contract()
    update = body(urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, allotment=26)
    assert supervisor.post("/v1/contracts", update, format="json").status_code == 200
    stale = body(urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, allotment=27)
    problem = assert_problem(supervisor.post("/v1/contracts", stale, format="json"), 409, "version-conflict")
    assert problem["version"] == 2
    assert Contract.objects.get(contract_id=contract.contract_id, current=True).allotment == 26


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_of_one_version_one_wins_one_409(client_for):
    contract = make_contract()
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict]] = []

    def update(allotment: int):
        client = client_for("IB", Role.OPS_SUPERVISOR)
        barrier.wait()
        sent = body(urn=contract.urn, version=1, hotelUrn=contract.hotel_urn, allotment=allotment)
        response = client.post("/v1/contracts", sent, format="json")
        results.append((response.status_code, response.json()))
        connection.close()

    threads = [threading.Thread(target=update, args=(allotment,)) for allotment in (31, 32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in results) == [200, 409], results
    assert next(data for status, data in results if status == 409)["version"] == 2
    assert Contract.objects.filter(contract_id=contract.contract_id).count() == 2


def test_updating_another_airlines_or_an_unknown_contract_is_404(supervisor):
    foreign = make_contract("LH")
    for urn in (foreign.urn, format_urn("contract", new_id())):
        sent = body(urn=urn, version=1, hotelUrn=foreign.hotel_urn)
        assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 404, "not-found")
    assert Contract.objects.filter(contract_id=foreign.contract_id).count() == 1
    assert not AuditEntry.objects.filter(action="contract.updated").exists()


# --- list -----------------------------------------------------------------------------------------------


def test_list_shows_current_active_versions_filtered_by_airport_and_date(supervisor):
    today = timezone.localdate()
    mad = make_contract(validFrom=f"{today.year}-01-01", validTo=f"{today.year + 1}-12-31")
    later = make_contract(validFrom=f"{today.year + 2}-01-01", validTo=f"{today.year + 2}-12-31")
    fra = make_contract(airport="FRA", validFrom=f"{today.year}-01-01", validTo=f"{today.year + 1}-12-31")
    make_contract(validFrom="2020-01-01", validTo="2020-12-31")  # ended: not active
    make_contract("LH", airport="MAD")  # another airline's
    supervisor.post("/v1/contracts", body(urn=mad.urn, version=1, hotelUrn=mad.hotel_urn, allotment=7), format="json")

    def listed(**params):
        response = supervisor.get("/v1/contracts", params)
        assert response.status_code == 200, response.content
        return [(item["urn"], item["version"]) for item in response.json()["items"]]

    # by validFrom, then by version row (the update of mad was written after fra)
    assert listed() == [(fra.urn, 1), (mad.urn, 2), (later.urn, 1)]
    assert listed(airport="mad") == [(mad.urn, 2), (later.urn, 1)]
    assert listed(date=f"{today.year + 2}-06-01") == [(later.urn, 1)]
    assert listed(airport="FRA", date=today.isoformat()) == [(fra.urn, 1)]
    assert listed(airport="", date="") == listed()


def test_list_paginates_with_cursors(supervisor):
    made = [make_contract().urn for _ in range(3)]
    first = supervisor.get("/v1/contracts", {"limit": 2}).json()
    assert first["hasMore"] is True and len(first["items"]) == 2
    second = supervisor.get("/v1/contracts", {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert second["hasMore"] is False
    assert sorted(item["urn"] for item in first["items"] + second["items"]) == sorted(made)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"airport": "ZZZ"}, "airport"),
        ({"date": "2027-02-30"}, "date"),
        ({"date": "tomorrow"}, "date"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "forged"}, "cursor"),
    ],
)
def test_bad_filters_are_400(supervisor, params, field):
    problem = assert_problem(supervisor.get("/v1/contracts", params), 400, "validation-error")
    assert field in {error["field"] for error in problem["errors"]}


def test_unknown_members_are_400_naming_them(supervisor):
    sent = body(extra=1, rate={"amount": "1.00", "currency": "EUR", "tax": "0"})
    problem = assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 400, "validation-error")
    assert {"extra"} <= {error["field"] for error in problem["errors"]}
    sent = body(rate={"amount": "1.00", "currency": "EUR", "tax": "0"})
    problem = assert_problem(supervisor.post("/v1/contracts", sent, format="json"), 400, "validation-error")
    assert {error["field"] for error in problem["errors"]} == {"rate.tax"}


def test_the_schema_closes_the_request_bodies(supervisor):
    schema = supervisor.get("/v1/openapi.json").json()["components"]["schemas"]
    assert schema["ContractWriteRequest"]["additionalProperties"] is False
    assert schema["ContractRateRequest"]["additionalProperties"] is False
