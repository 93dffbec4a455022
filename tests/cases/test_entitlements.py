"""The entitlement rules (cases/entitlements.py) against hand-worked examples. Each docstring carries the
arithmetic; distances are the airport catalog's coordinates through the haversine (Art. 7(4))."""

import datetime as dt
from decimal import Decimal

import pytest

from booking.airports import airport_get
from cases.entitlements import (
    EU261,
    UK261,
    Facts,
    Grant,
    Granted,
    Money,
    compensation_owed,
    entitlements,
    great_circle_km,
    regulation_for,
)

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


def km(origin: str, destination: str) -> float:
    a, b = airport_get(iata=origin), airport_get(iata=destination)
    return great_circle_km(a.latitude, a.longitude, b.latitude, b.longitude)


def facts(origin="MAD", destination="FRA", **overrides) -> Facts:
    a, b = airport_get(iata=origin), airport_get(iata=destination)
    eu = {"ES", "DE", "FR", "RE", "FI", "GR"}
    values = {
        "regulation": regulation_for(origin_country=a.country),
        "cause": "CANCELLATION",
        "distance_km": km(origin, destination),
        "intra_eu": a.country in eu and b.country in eu,
    }
    values.update(overrides)
    return Facts(**values)


def body(f: Facts, grants=(), wallet=None) -> dict:
    return entitlements(
        facts=f,
        granted=Granted(grants=tuple(grants), wallet_balances=wallet or {}),
        sub_case_urn="urn:nexa:subcase:x",
        case_urn="urn:nexa:case:x",
        route={"origin": "MAD", "destination": "FRA", "intraEu": True},
        computed_at=NOW,
    )


def care(b: dict, kind: str) -> dict:
    return next(item for item in b["care"] if item["type"] == kind)


def test_flight_distances_on_the_great_circle():
    """Art. 7(4): the great-circle distance, hand-checked: MAD→FRA ≈ 1 418 km, MAD→JFK ≈ 5 761 km, LHR→EDI ≈ 534 km."""
    for pair, expected in ((("MAD", "FRA"), 1418), (("MAD", "JFK"), 5761), (("LHR", "EDI"), 534)):
        a, b = airport_get(iata=pair[0]), airport_get(iata=pair[1])
        assert round(great_circle_km(a.latitude, a.longitude, b.latitude, b.longitude)) == pytest.approx(
            expected, abs=2
        )


def test_regulation_by_the_origin_country():
    """Art. 3(1)(a): departures from the EU/EEA/CH (MAD ES, RUN RE, ZRH CH) → EU261; LHR GB → UK261;
    JFK US → the airline's goodwill."""
    assert [
        regulation_for(origin_country=airport_get(iata=c).country) for c in ("MAD", "RUN", "ZRH", "LHR", "JFK")
    ] == [
        "EU261",
        "EU261",
        "EU261",
        "UK261",
        "AIRLINE_GOODWILL",
    ]


def test_mad_fra_cancelled_is_250_eur():
    """MAD (40.494 N, 3.567 W) → FRA (50.026 N, 8.543 E): 1 418 km ≤ 1 500 → Art. 7(1)(a) 250 EUR."""
    f = facts()
    assert round(f.distance_km) == 1418
    band, c = compensation_owed(f)
    assert (band, c.status, c.amount, c.currency, c.reduced) == ("UP_TO_1500_KM", "OWED", Decimal("250"), "EUR", False)


def test_mad_jfk_cancelled_is_600_eur_and_300_when_rerouted_arriving_3_h_late():
    """MAD → JFK: 5 761 km > 3 500 → 600 EUR (Art. 7(1)(c)). Re-routed arriving 3 h late: 180 min ≤ the
    240 min of Art. 7(2)(c) → 600 x 50 % = 300 EUR. Arriving 4 h 01 late: 241 > 240 → the full 600."""
    assert round(km("MAD", "JFK")) == 5761
    _, full = compensation_owed(facts(destination="JFK"))
    _, halved = compensation_owed(facts(destination="JFK", rerouted_arrival_delay_minutes=180))
    _, late = compensation_owed(facts(destination="JFK", rerouted_arrival_delay_minutes=241))
    assert (full.amount, full.reduced) == (Decimal("600"), False)
    assert (halved.amount, halved.full_amount, halved.reduced) == (Decimal("300"), Decimal("600"), True)
    assert (late.amount, late.reduced) == (Decimal("600"), False)


def test_rerouted_arriving_under_2_h_late_owes_nothing():
    """Art. 5(1)(c)(iii): cancelled, informed on the day, re-routed arriving 1 h 59 late (< 2 h) → 0 EUR."""
    _, c = compensation_owed(facts(rerouted_arrival_delay_minutes=119))
    assert (c.status, c.amount) == ("NOT_OWED", Decimal("0"))


def test_short_band_rerouted_exactly_2_h_late_is_halved():
    """MAD → FRA, ≤ 1 500 km: re-routed arriving 120 min late — not under 2 h (5(1)(c)(iii) does not
    apply) and ≤ 120 min (Art. 7(2)(a)) → 250 x 50 % = 125 EUR."""
    _, c = compensation_owed(facts(rerouted_arrival_delay_minutes=120))
    assert (c.amount, c.reduced) == (Decimal("125"), True)


def test_extraordinary_circumstances_owe_no_compensation_but_still_care():
    """Art. 5(3): 0 EUR; care (Art. 5(1)(b), 9) is still owed: MEAL and COMMUNICATION."""
    b = body(facts(extraordinary=True))
    assert (b["compensation"]["status"], b["compensation"]["amount"]) == ("NOT_OWED", "0.00")
    assert care(b, "MEAL")["owed"] is True
    assert care(b, "COMMUNICATION")["owed"] is True


def test_delay_of_2_h_is_care_only():
    """DELAY 120 min on MAD → FRA (≤ 1 500 km): care from 2 h (Art. 6(1)(a)) → MEAL owed; compensation
    needs ≥ 3 h at arrival (Sturgeon) → 0 EUR."""
    b = body(facts(cause="DELAY", delay_minutes=120))
    assert (b["compensation"]["status"], b["compensation"]["amount"]) == ("NOT_OWED", "0.00")
    assert care(b, "MEAL")["owed"] is True
    assert care(b, "HOTEL")["owed"] is False


def test_delay_under_the_care_threshold_owes_nothing():
    """DELAY 90 min < 120 min (Art. 6(1)(a)): no care, no compensation."""
    b = body(facts(cause="DELAY", delay_minutes=90))
    assert [item["owed"] for item in b["care"]] == [False, False, False, False]
    assert b["open"] == {"compensation": {"amount": "0.00", "currency": "EUR"}, "care": []}


def test_long_delay_over_3500_km_between_3_and_4_h_is_halved():
    """DELAY MAD → JFK 210 min: ≥ 180 → compensation (Sturgeon); > 3 500 km and ≤ 240 min → Art. 7(2)(c)
    600 x 50 % = 300 EUR. 300 min → 600 EUR."""
    _, c = compensation_owed(facts(destination="JFK", cause="DELAY", delay_minutes=210))
    _, full = compensation_owed(facts(destination="JFK", cause="DELAY", delay_minutes=300))
    assert (c.amount, c.reduced, full.amount) == (Decimal("300"), True, Decimal("600"))


def test_uk261_lhr_edi_is_220_gbp():
    """LHR → EDI: 534 km ≤ 1 500 → UK261 Art. 7(1)(a) £220."""
    f = facts(origin="LHR", destination="EDI")
    assert (f.regulation, round(f.distance_km)) == (UK261, 534)
    _, c = compensation_owed(f)
    assert (c.amount, c.currency) == (Decimal("220"), "GBP")


def test_intra_eu_over_1500_km_is_400_eur_whatever_the_distance():
    """CDG → RUN (Réunion, an outermost region): 9 369 km, intra-Community > 1 500 → Art. 7(1)(b) 400 EUR,
    not 600; MAD → HEL 2 946 km → 400 EUR too."""
    band, c = compensation_owed(facts(origin="CDG", destination="RUN"))
    assert (band, c.amount) == ("INTRA_EU_OVER_1500_KM", Decimal("400"))
    _, c = compensation_owed(facts(destination="HEL"))
    assert c.amount == Decimal("400")


def test_unknown_destination_is_unknown_compensation():
    _, c = compensation_owed(facts(distance_km=None))
    assert (c.status, c.amount) == ("UNKNOWN", None)


def test_goodwill_computes_no_amount_and_follows_the_policy():
    """JFK departure → AIRLINE_GOODWILL: no statutory amount; MEAL from the policy's allowance (35 EUR a
    day x 2 nights = 70 EUR), TRANSPORT because the policy grants it with the hotel; no COMMUNICATION."""
    f = facts(
        origin="JFK",
        destination="MAD",
        nights_needed=2,
        meal_allowance=Money(Decimal("35"), "EUR"),
        policy_transport=True,
    )
    b = body(f)
    assert b["regulation"] == "AIRLINE_GOODWILL"
    assert (b["compensation"]["status"], b["compensation"]["amount"]) == ("NOT_OWED", None)
    assert care(b, "MEAL")["amount"] == {"amount": "70.00", "currency": "EUR"}
    assert (care(b, "HOTEL")["nights"], care(b, "TRANSPORT")["owed"], care(b, "COMMUNICATION")["owed"]) == (
        2,
        True,
        False,
    )


def test_open_is_owed_minus_granted_per_item():
    """MAD → JFK cancelled, 1 night needed, meal allowance 35 EUR/day:
    compensation 600 - CASH 250 EUR paid = 350 EUR open; MEAL 35 - 25 granted = 10 EUR open; HOTEL 1 night
    owed, a reservation of 1 night → 0 open; TRANSPORT owed, no ride → open; COMMUNICATION not recorded → null."""
    f = facts(destination="JFK", nights_needed=1, meal_allowance=Money(Decimal("35"), "EUR"))
    grants = [
        Grant("CASH", "urn:nexa:step:c", at=NOW, amount=Money(Decimal("250"), "EUR")),
        Grant("MEAL", "urn:nexa:step:m", at=NOW, amount=Money(Decimal("25"), "EUR")),
        Grant("HOTEL", "urn:nexa:reservation:r", at=NOW, nights=1, detail={"hotelName": "H"}),
    ]
    b = body(f, grants, wallet={"EUR": "250.00"})
    assert b["compensation"]["amount"] == "600.00"
    assert b["open"]["compensation"] == {"amount": "350.00", "currency": "EUR"}
    assert care(b, "MEAL")["openAmount"] == {"amount": "10.00", "currency": "EUR"}
    assert (care(b, "HOTEL")["open"], care(b, "HOTEL")["openNights"]) == (False, 0)
    assert care(b, "TRANSPORT")["open"] is True
    assert care(b, "COMMUNICATION")["open"] is None
    assert b["open"]["care"] == ["MEAL", "TRANSPORT"]
    assert b["granted"]["walletBalances"] == {"EUR": "250.00"}
    assert [g["urn"] for g in b["granted"]["reservations"]] == ["urn:nexa:reservation:r"]


def test_a_grant_in_another_currency_counts_through_its_settled_amount():
    """CASH 270 USD settled as 250.00 EUR → counts 250 against the 250 EUR owed → nothing open."""
    grant = Grant(
        "CASH", "urn:nexa:step:c", amount=Money(Decimal("270"), "USD"), settled=Money(Decimal("250.00"), "EUR")
    )
    b = body(facts(), [grant])
    assert b["open"]["compensation"] == {"amount": "0.00", "currency": "EUR"}


def test_delay_into_the_next_day_owes_a_night():
    """DELAY 5 h from 21:40 local → 02:40 the next day (Art. 6(1)(b)(iii)): HOTEL 1 night and TRANSPORT."""
    b = body(facts(cause="DELAY", delay_minutes=300, delay_crosses_midnight=True))
    assert (care(b, "HOTEL")["owed"], care(b, "HOTEL")["nights"], care(b, "TRANSPORT")["owed"]) == (True, 1, True)


@pytest.mark.parametrize("regulation", [EU261, UK261])
def test_the_body_names_its_basis(regulation):
    b = body(facts(regulation=regulation))
    assert b["compensation"]["basis"]
    assert all(item["basis"].startswith("EC 261/2004 Art. 9") for item in b["care"])
