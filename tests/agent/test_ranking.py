"""The agent's judgement on constructed situations, no I/O: viability ranking (policy compliance, then
availability freshness, then cost, then distance), the options an offer allows, and the failure
classifier."""

import datetime as dt
from decimal import Decimal

from agent import planners, ranking, tools
from agent.ranking import COMPLIANT, NON_COMPLIANT, RELAXABLE, Option
from review.models import ReviewCategory, ReviewItem

NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
LATER = (NOW + dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
EARLIER = (NOW - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")


def situation(*, refused=(), rooms=1, nights=1, tiers=None, limits=None) -> tools.Situation:
    item = ReviewItem(category=ReviewCategory.BOOKING_FAILED, attempted_hotels=[], failure={})
    return tools.Situation(
        item=item, airport="MAD", case_urn="urn:nexa:case:x", check_in=NOW.date(), nights=nights,
        rooms_needed=rooms, accessible=False, tiers=tiers or {"ECONOMY": ["a"]}, refused_hotels=set(refused),
        baseline_rate=Decimal("100"), policy_limits=limits or {"maxDistanceKm": 25},
    )  # fmt: skip


def offer(hotel: str, *, km: float, rate: str, compliant=True, violations=(), expires=LATER, rooms=5, name=None):
    return {
        "offerId": f"stayhub~{hotel}", "hotelUrn": f"urn:nexa:hotel:{hotel}", "name": name or hotel,
        "source": "stayhub", "stars": 3, "distanceKm": km, "nightlyRate": {"amount": rate, "currency": "EUR"},
        "roomsAvailable": rooms, "accessible": False, "policyCompliant": compliant,
        "violations": list(violations), "expiresAt": expires,
    }  # fmt: skip


def test_the_compliant_hotel_18_km_away_beats_the_cheaper_one_at_45_km():
    offers = [
        offer("cheap45", km=45, rate="60.00", compliant=False, violations=["maxDistanceKm"]),
        offer("near18", km=18, rate="95.00"),
    ]
    ranked = ranking.rank(planners.hotel_options(situation(), offers, now=NOW))
    assert [(o.action, o.hotel_urn) for o in ranked] == [
        ("rebook", "urn:nexa:hotel:near18"),
        ("relax", "urn:nexa:hotel:cheap45"),
    ]
    relax = ranked[1]
    assert relax.params == {"fields": {"maxDistanceKm": 45}} and relax.compliance == RELAXABLE
    assert "policy-compliant" in ranked[0].reasons[0] and "18 km" in ranked[0].reasons[1]


def test_fresher_availability_beats_stale():
    offers = [
        offer("stale", km=5, rate="50.00", expires=EARLIER),  # the quote has expired
        offer("few", km=6, rate="55.00", rooms=1),  # not enough rooms for the groups
        offer("refused", km=7, rate="40.00"),  # refused this very item before
        offer("fresh", km=20, rate="90.00"),
    ]
    options = planners.hotel_options(situation(refused={"urn:nexa:hotel:refused"}, rooms=2), offers, now=NOW)
    ranked = ranking.rank(options, limit=4)
    assert ranked[0].hotel_urn == "urn:nexa:hotel:fresh" and ranked[0].fresh
    assert all(not o.fresh for o in ranked[1:])


def test_then_cost_then_distance():
    options = [
        Option("rebook", {"hotelUrn": "a"}, cost=Decimal("200"), distance_km=3, hotel_urn="a"),
        Option("rebook", {"hotelUrn": "b"}, cost=Decimal("150"), distance_km=9, hotel_urn="b"),
        Option("rebook", {"hotelUrn": "c"}, cost=Decimal("150"), distance_km=4, hotel_urn="c"),
        Option("override", {"hotelUrn": "d"}, compliance=NON_COMPLIANT, cost=Decimal("10"), hotel_urn="d"),
    ]
    assert [o.hotel_urn for o in ranking.rank(options, limit=4)] == ["c", "b", "a", "d"]


def test_only_the_top_three_and_one_per_hotel_and_action():
    offers = [offer(f"h{i}", km=10 + i, rate="80.00") for i in range(5)]
    offers.append({**offer("h0", km=10, rate="70.00"), "offerId": "globerooms~h0", "source": "globerooms"})
    ranked = ranking.rank(planners.hotel_options(situation(), offers, now=NOW))
    assert [o.hotel_urn for o in ranked] == ["urn:nexa:hotel:h0", "urn:nexa:hotel:h1", "urn:nexa:hotel:h2"]
    assert ranked[0].cost == Decimal("70.00")  # the cheaper vendor's offer of the same hotel


def test_an_offer_breaking_two_rules_is_an_override_and_ranks_last():
    offers = [
        offer("far", km=60, rate="300.00", compliant=False, violations=["maxDistanceKm", "maxNightlyRate"]),
        offer("relaxed", km=30, rate="90.00", compliant=False, violations=["maxDistanceKm"]),
        offer("ok", km=10, rate="99.00"),
    ]
    ranked = ranking.rank(planners.hotel_options(situation(nights=2, rooms=2), offers, now=NOW))
    assert [o.action for o in ranked] == ["rebook", "relax", "override"]
    assert [o.compliance for o in ranked] == [COMPLIANT, RELAXABLE, NON_COMPLIANT]
    assert ranked[2].params == {"hotelUrn": "urn:nexa:hotel:far", "providerOfferId": "stayhub~far"}
    assert ranked[0].cost == Decimal("396.00")  # 2 nights x 2 rooms x 99.00


def test_a_vendor_only_hotel_cannot_be_proposed():
    assert planners.hotel_options(situation(), [{**offer("x", km=1, rate="1.00"), "hotelUrn": None}], now=NOW) == []


def test_a_mixed_tier_group_is_split_by_tier_first():
    s = situation(tiers={"BUSINESS": ["urn:b1"], "ECONOMY": ["urn:e1", "urn:e2"]})
    options = planners.split_options(s) + planners.hotel_options(s, [offer("ok", km=3, rate="10.00")], now=NOW)
    ranked = ranking.rank(options)
    assert ranked[0].action == "split" and ranked[0].params == {"into": [["urn:b1"], ["urn:e1", "urn:e2"]]}
    assert planners.split_options(situation()) == []


def test_relaxation_cost_is_nights_times_rooms_times_the_rate_delta():
    cost = ranking.relaxation_cost(nights=2, rooms=3, nightly=Decimal("120.00"), baseline=Decimal("100.00"))
    assert cost == {"nightlyDelta": Decimal("20.00"), "totalDelta": Decimal("120.00"), "total": Decimal("720.00")}
    cheaper = ranking.relaxation_cost(nights=1, rooms=1, nightly=Decimal("80"), baseline=Decimal("100"))
    assert cheaper["totalDelta"] == Decimal("0.00")


# --- classification ----------------------------------------------------------------------------------------


def classify(category, attempted=(), failure=None, reason=""):
    return tools.classify(category=category, attempted_hotels=list(attempted), failure=failure or {}, reason=reason)


def test_hotels_that_answered_full_are_no_availability():
    result = classify(
        ReviewCategory.BOOKING_FAILED,
        [{"hotelUrn": "a", "reason": "hotel-full"}, {"hotelUrn": "b", "reason": "not_enough_rooms"},
         {"hotelUrn": "c", "reason": "timeout", "providerError": "504"}],
    )  # fmt: skip
    assert result["cause"] == tools.NO_AVAILABILITY and 0.5 < result["confidence"] < 0.95
    assert len(result["evidence"]) == 3


def test_provider_errors_and_payment_refusals():
    errors = classify(ReviewCategory.BOOKING_FAILED, [{"hotelUrn": "a", "reason": "error", "providerError": "500"}])
    assert errors["cause"] == tools.PROVIDER_ERROR and errors["confidence"] == 0.95
    saga = classify(
        ReviewCategory.BOOKING_FAILED, failure={"attempts": [{"step": "hotel.hold", "code": "card_declined"}]}
    )
    assert saga["cause"] == tools.PAYMENT_REFUSED


def test_categories_that_say_their_cause():
    assert classify(ReviewCategory.PAYMENT_FAILED)["cause"] == tools.PAYMENT_REFUSED
    assert classify(ReviewCategory.POLICY_VIOLATION)["cause"] == tools.NO_POLICY
    assert classify(ReviewCategory.MIXED_TIER_GROUP)["cause"] == tools.MIXED_TIER
    assert classify(ReviewCategory.DATA_INCOMPLETE)["cause"] == tools.DATA_INCOMPLETE


def test_an_allocation_failure_is_read_from_its_reason():
    strict = classify(ReviewCategory.ALLOCATION_FAILED, reason="no policy-compliant hotel within 25 km")
    assert strict["cause"] == tools.POLICY_TOO_STRICT
    assert classify(ReviewCategory.ALLOCATION_FAILED, reason="no rooms left")["cause"] == tools.NO_AVAILABILITY
    assert classify(ReviewCategory.BOOKING_FAILED)["cause"] == tools.UNKNOWN
