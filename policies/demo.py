"""Demo policies for ``manage.py seed_demo``: IB at MAD (its cancellation) and LH at FRA (its overnight
delay), each airline with a default; ``policies.services.demo_policies_seed`` creates and activates them."""

EUR = "EUR"


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": EUR}


DEMO_POLICIES: dict[str, list[dict]] = {
    "IB": [
        {
            "name": "Iberia default",
            "scope": {},
            "rules": {
                "maxDistanceKm": 25,
                "minStars": 3,
                "maxNightlyRate": _money("110.00"),
                "maxOccupancy": {"perRoom": 2, "familyException": True},
                "mealAllowance": {"dinner": _money("25.00"), "breakfast": _money("12.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
        {
            "name": "Iberia Madrid",
            "scope": {"airport": "MAD"},
            "rules": {
                "maxDistanceKm": 15,
                "minStars": 3,
                "maxNightlyRate": _money("130.00"),
                "maxOccupancy": {"perRoom": 2, "familyException": True},
                "mealAllowance": {"dinner": _money("30.00"), "breakfast": _money("15.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
        {
            "name": "Iberia Madrid business",
            "scope": {"airport": "MAD", "tier": "BUSINESS"},
            "rules": {
                "maxDistanceKm": 15,
                "minStars": 4,
                "maxNightlyRate": _money("180.00"),
                "maxOccupancy": {"perRoom": 1, "familyException": True},
                "mealAllowance": {"dinner": _money("35.00"), "breakfast": _money("20.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
    ],
    "LH": [
        {
            "name": "Lufthansa default",
            "scope": {},
            "rules": {
                "maxDistanceKm": 25,
                "minStars": 3,
                "maxNightlyRate": _money("120.00"),
                "maxOccupancy": {"perRoom": 2, "familyException": True},
                "mealAllowance": {"dinner": _money("25.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
        {
            "name": "Lufthansa Frankfurt overnight delay",
            "scope": {"airport": "FRA", "cause": "DELAY"},
            "rules": {
                "maxDistanceKm": 10,
                "minStars": 3,
                "maxNightlyRate": _money("140.00"),
                "maxOccupancy": {"perRoom": 2, "familyException": True},
                "mealAllowance": {"dinner": _money("30.00"), "breakfast": _money("15.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
        {
            "name": "Lufthansa Frankfurt business",
            "scope": {"airport": "FRA", "tier": "BUSINESS"},
            "rules": {
                "maxDistanceKm": 10,
                "minStars": 4,
                "maxNightlyRate": _money("200.00"),
                "maxOccupancy": {"perRoom": 1, "familyException": True},
                "mealAllowance": {"dinner": _money("40.00"), "breakfast": _money("20.00")},
                "transport": True,
                "accessibleRoomForPrm": True,
                "regulation": "EU261",
            },
        },
    ],
}
