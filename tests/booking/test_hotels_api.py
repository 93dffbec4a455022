"""GET /v1/hotels/list, POST /v1/hotels/search, GET /v1/hotels/cases/{case_urn} (docs/hotels.md)."""

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from booking import policy_hook
from booking.contract_search import contract_offers_for_search
from booking.hotel_search import (
    ContractOffer,
    SearchRules,
    register_contract_offers_source,
    register_policy_rules_source,
)
from booking.hotels import hotels_seed_demo
from booking.models import Hotel, HotelSearch
from booking.vendors import Money
from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CaseFactory

pytestmark = pytest.mark.django_db

VENDORS = ("stayhub", "globerooms", "nightbed")


@pytest.fixture(autouse=True)
def _vendors(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    return simulator_control


def _check_in() -> str:
    return str(date.today() + timedelta(days=1))


def search_body(**overrides):
    return {"airport": "MAD", "checkIn": _check_in(), "nights": 2, "rooms": 2, "occupancy": 2, **overrides}


def case_search_body(case_urn: str) -> dict:
    body = search_body(caseUrn=case_urn)
    del body["airport"]
    return body


class TestHotelsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "list",
            "GET",
            "/v1/hotels/list?airport=MAD",
            min_role=Role.AIRPORT_OPERATOR,
            check=lambda response, objects: len(response.json()["items"]) == 5,
        ),
        RouteContract(
            "search",
            "POST",
            "/v1/hotels/search",
            min_role=Role.AIRPORT_OPERATOR,
            body=lambda objects: search_body(),
            audit_actions=("hotel.searched",),
            check=lambda response, objects: len(response.json()["offers"]) > 0,
        ),
        RouteContract(
            "case-search",
            "POST",
            "/v1/hotels/search",
            min_role=Role.AIRPORT_OPERATOR,
            body=lambda objects: case_search_body(objects["case"].urn),
            audit_actions=("hotel.searched",),
        ),
        RouteContract(
            "for-case",
            "GET",
            "/v1/hotels/cases/{case}",
            min_role=Role.AIRPORT_OPERATOR,
            check=lambda response, objects: response.json() == {"items": []},
        ),
    )

    def make_objects(self, airline):
        hotels_seed_demo(airline=airline)
        return {"case": CaseFactory(airline=airline, airport="BCN")}


# --- the catalog -----------------------------------------------------------------------------------


def test_list_is_nearest_first_with_filters_and_pages(client_for):
    hotels_seed_demo(airline="IB")
    hotels_seed_demo(airline="IB")  # idempotent
    assert Hotel.objects.filter(airline="IB", airport="MAD").count() == 5
    client = client_for("IB")
    items = client.get("/v1/hotels/list", {"airport": "mad"}).json()["items"]
    assert [item["distanceKm"] for item in items] == sorted(item["distanceKm"] for item in items)
    first = items[0]
    assert set(first) == {
        "urn",
        "name",
        "airport",
        "lat",
        "lng",
        "distanceKm",
        "stars",
        "accessibleRooms",
        "address",
        "phone",
        "vendorIds",
    }
    assert first["urn"].startswith("urn:nexa:hotel:")
    assert 0 < first["distanceKm"] < 10
    assert all(
        item["stars"] >= 4 for item in client.get("/v1/hotels/list", {"airport": "MAD", "minStars": 4}).json()["items"]
    )
    near = client.get("/v1/hotels/list", {"airport": "MAD", "maxDistanceKm": 5}).json()["items"]
    assert near and all(item["distanceKm"] <= 5 for item in near)
    page = client.get("/v1/hotels/list", {"airport": "MAD", "limit": 2}).json()
    assert len(page["items"]) == 2 and page["hasMore"]
    rest = client.get("/v1/hotels/list", {"airport": "MAD", "limit": 2, "cursor": page["nextCursor"]}).json()
    assert [i["urn"] for i in rest["items"]] == [i["urn"] for i in items[2:4]]


def test_list_unknown_airport_is_empty_and_bad_input_is_400(client_for):
    hotels_seed_demo(airline="IB")
    client = client_for("IB")
    assert client.get("/v1/hotels/list", {"airport": "ZRH"}).json()["items"] == []
    assert_problem(client.get("/v1/hotels/list", {"airport": "MADRID"}), 400, "validation-error")
    assert_problem(client.get("/v1/hotels/list"), 400, "validation-error")
    assert_problem(client.get("/v1/hotels/list", {"airport": "MAD", "minStars": "9"}), 400, "validation-error")


def test_list_is_tenant_scoped(client_for):
    hotels_seed_demo(airline="LH")
    assert client_for("IB").get("/v1/hotels/list", {"airport": "MAD"}).json()["items"] == []


# --- the search --------------------------------------------------------------------------------------


def test_search_answers_every_vendor_normalised_and_ranked(client_for):
    hotels_seed_demo(airline="IB")
    response = client_for("IB").post("/v1/hotels/search", search_body(), format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["searchUrn"].startswith("urn:nexa:search:")
    assert {v["vendor"]: v["status"] for v in body["vendors"]} == dict.fromkeys(VENDORS, "ok")
    assert body["partialFailures"] == []
    sources = {offer["source"] for offer in body["offers"]}
    assert sources == set(VENDORS)
    currencies = {offer["nightlyRate"]["currency"] for offer in body["offers"]}
    assert currencies == {"EUR", "USD", "GBP"}
    assert all(offer["rateInAirlineCurrency"]["currency"] == "EUR" for offer in body["offers"])
    assert all(offer["hotelUrn"] and offer["policyCompliant"] and offer["violations"] == [] for offer in body["offers"])
    distances = [offer["distanceKm"] for offer in body["offers"]]
    assert distances == sorted(distances)
    # the paginating vendor's every page arrived (MAD has 4 nightbed hotels, 2 per page)
    assert next(v for v in body["vendors"] if v["vendor"] == "nightbed")["offerCount"] >= 3
    assert HotelSearch.objects.get(airline="IB").offer_count == len(body["offers"])


def test_search_elsewhere_finds_nothing(client_for):
    body = client_for("IB").post("/v1/hotels/search", search_body(airport="ZRH"), format="json").json()
    assert body["offers"] == [] and all(v["status"] == "ok" for v in body["vendors"])


def test_one_vendor_hung_answers_in_time_with_the_others(client_for, simulator_control):
    simulator_control.hotels.vendor("globerooms").hang()
    started = time.monotonic()
    response = client_for("IB").post("/v1/hotels/search", search_body(), format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 2.5  # a behaviour check (the 2 s time-box), not a performance assertion
    body = response.json()
    statuses = {v["vendor"]: v["status"] for v in body["vendors"]}
    assert statuses == {"stayhub": "ok", "globerooms": "timeout", "nightbed": "ok"}
    assert {o["source"] for o in body["offers"]} == {"stayhub", "nightbed"}
    assert body["partialFailures"] == [
        {"domain": "globerooms", "status": "timeout", "detail": "globerooms did not answer within 2 s."}
    ]


def test_a_vendors_breaker_opens_alone(client_for, simulator_control, settings):
    settings.NEXA_BREAKER_FAIL_MAX = 2
    simulator_control.hotels.vendor("stayhub").outage()
    client = client_for("IB")
    for _ in range(2):
        body = client.post("/v1/hotels/search", search_body(), format="json").json()
        assert {v["vendor"]: v["status"] for v in body["vendors"]}["stayhub"] == "error"
    before = simulator_control.hotels.vendor("stayhub").request_count()
    body = client.post("/v1/hotels/search", search_body(), format="json").json()
    statuses = {v["vendor"]: v["status"] for v in body["vendors"]}
    assert statuses == {"stayhub": "circuit-open", "globerooms": "ok", "nightbed": "ok"}
    assert simulator_control.hotels.vendor("stayhub").request_count() == before  # nothing sent


def test_all_vendors_down_is_503_booking(client_for, simulator_control):
    for vendor in VENDORS:
        simulator_control.hotels.vendor(vendor).outage()
    response = client_for("IB").post("/v1/hotels/search", search_body(), format="json")
    body = assert_problem(response, 503, "downstream-unavailable")
    assert body["failedDomain"] == "booking"
    assert response["Retry-After"] == "30"


def test_search_by_case_uses_its_airport_and_another_airlines_case_is_404(client_for):
    case = CaseFactory(airline="IB", airport="CDG")
    other = CaseFactory(airline="LH", airport="CDG")
    client = client_for("IB")
    both = client.post("/v1/hotels/search", {**search_body(caseUrn=case.urn), "airport": None}, format="json")
    assert both.status_code == 400  # airport null is not "absent"
    payload = case_search_body(case.urn)
    response = client.post("/v1/hotels/search", payload, format="json")
    assert response.status_code == 200, response.content
    assert HotelSearch.objects.get().airport == "CDG"
    payload["caseUrn"] = other.urn
    assert_problem(client.post("/v1/hotels/search", payload, format="json"), 404, "not-found")
    assert_problem(client.get(f"/v1/hotels/cases/{other.urn}"), 404, "not-found")


@pytest.mark.parametrize(
    "change",
    [
        {"airport": "MADRID"},
        {"airport": "QQQ"},  # not an airport
        {"caseUrn": "urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"},  # both airport and caseUrn
        {"nights": 0},
        {"rooms": "2"},
        {"occupancy": 9},
        {"checkIn": "2001-01-01"},
        {"tier": "STEERAGE"},
    ],
)
def test_search_refuses_bad_input(client_for, change):
    assert_problem(
        client_for("IB").post("/v1/hotels/search", search_body(**change), format="json"), 400, "validation-error"
    )


def test_policy_and_contract_hooks_rank_and_flag(client_for):
    hotels_seed_demo(airline="IB")
    hotel = Hotel.objects.filter(airline="IB", airport="MAD").order_by("-distance_km").first()
    register_policy_rules_source(
        lambda **kwargs: SearchRules(min_stars=4, max_nightly_rate=Money(Decimal("200"), "EUR"))
    )
    register_contract_offers_source(
        lambda *, principal, query: [
            ContractOffer(
                "urn:nexa:contract:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a",
                hotel.urn,
                hotel.name,
                hotel.stars,
                hotel.distance_km,
                Money(Decimal("99.00"), "EUR"),
                10,
                True,
            )
        ]
    )
    try:
        offers = client_for("IB").post("/v1/hotels/search", search_body(), format="json").json()["offers"]
    finally:  # back to what booking.apps registers
        policy_hook.register()
        register_contract_offers_source(contract_offers_for_search)
    assert offers[0]["source"] == "contract"  # compliant, contract before vendors despite the distance
    compliant = [o["policyCompliant"] for o in offers]
    assert compliant == sorted(compliant, reverse=True)
    two_star = [o for o in offers if o["stars"] == 2]
    assert two_star and all("minStars" in o["violations"] and not o["policyCompliant"] for o in two_star)


def test_a_replayed_search_answers_the_same_search(client_for):
    client = client_for("IB")
    key = "0b7e6c1e-5f0e-4d4e-9a57-6f1d2b3c4d5e"
    first = client.post("/v1/hotels/search", search_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post("/v1/hotels/search", search_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["searchUrn"] == first.json()["searchUrn"]
    assert HotelSearch.objects.filter(airline="IB").count() == 1


@pytest.mark.django_db(transaction=True)  # the search asks its sources on their own connections
def test_a_contract_of_the_airline_is_offered_first_at_its_agreed_rate(client_for):
    """Contract allotment is inventory the search sees first (booking.apps registers the source)."""
    hotels_seed_demo(airline="IB")
    hotel = Hotel.objects.filter(airline="IB", airport="MAD").order_by("-distance_km").first()
    check_in = date.today() + timedelta(days=1)
    created = client_for("IB", Role.OPS_SUPERVISOR).post(
        "/v1/contracts",
        {
            "hotelUrn": hotel.urn,
            "airport": "MAD",
            "validFrom": str(check_in - timedelta(days=1)),
            "validTo": str(check_in + timedelta(days=10)),
            "allotment": 12,
            "rate": {"amount": "79.00", "currency": "EUR"},
            "releaseHours": 24,
            "mealsIncluded": ["BREAKFAST"],
            "cancellationTerms": "free until release",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    response = client_for("IB").post("/v1/hotels/search", search_body(), format="json")
    assert response.status_code == 200, response.content
    offers = response.json()["offers"]
    contract = [offer for offer in offers if offer["source"] == "contract"]
    assert [offer["hotelUrn"] for offer in contract] == [hotel.urn]
    assert contract[0]["nightlyRate"] == {"amount": "79.00", "currency": "EUR"} and contract[0]["roomsAvailable"] == 12
    assert offers[0]["source"] == "contract"  # before every vendor offer, though it is the farthest hotel
    # another airline's search never sees it
    other = client_for("LH").post("/v1/hotels/search", search_body(), format="json").json()["offers"]
    assert not [offer for offer in other if offer["source"] == "contract"]
