"""The hotel search's policy check reads the rules as policies store them (regression: a
``maxOccupancy`` of ``{perRoom, familyException}`` made every search report ``policyUnavailable``)."""

from decimal import Decimal

from booking.policy_hook import rules_from_resolution
from booking.vendors import Money


def test_max_occupancy_stored_as_per_room_object():
    rules = rules_from_resolution(
        {
            "effectiveRules": {
                "maxDistanceKm": 20,
                "minStars": 3,
                "maxNightlyRate": {"amount": "120.00", "currency": "EUR"},
                "maxOccupancy": {"perRoom": 1, "familyException": True},
                "accessibleRoomForPrm": True,
            },
            "policyUrn": "urn:nexa:policy:0190f7e4-0000-7000-8000-000000000001",
        }
    )
    assert rules.max_occupancy == 1
    assert rules.max_distance_km == 20.0
    assert rules.min_stars == 3
    assert rules.max_nightly_rate == Money(Decimal("120.00"), "EUR")
    assert rules.accessible_room_for_prm is True


def test_max_occupancy_as_a_number_still_reads():
    assert rules_from_resolution({"rules": {"maxOccupancy": 3}}).max_occupancy == 3
