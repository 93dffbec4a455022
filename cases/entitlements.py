"""What a passenger is owed, and what is still open: a pure computation (plain data in, plain data out).

The selector (:func:`cases.selectors.subcase_entitlements`) gathers the facts and what was granted; this
module applies the rules and renders the route's body. Every rule names the article it comes from
(Regulation (EC) No 261/2004; UK261 is the same text retained in UK law with sterling amounts,
The Air Passenger Rights and Air Travel Organisers' Licensing (Amendment) (EU Exit) Regulations 2019).

Compensation (Art. 7):

* Art. 7(1) bands by great-circle distance (Art. 7(4)): ≤ 1500 km → 250 EUR; intra-Community > 1500 km
  and 1500-3500 km → 400 EUR; > 3500 km → 600 EUR. UK261: 220 / 350 / 520 GBP (the intra-Community
  rule is not applied under UK261).
* Art. 7(2) the amount is halved when the re-routed passenger arrives no more than 2 h (≤ 1500 km),
  3 h (1500-3500 km and intra-Community > 1500 km) or 4 h (other > 3500 km) after the scheduled arrival.
  The regulation says the airline *may* reduce: the figure here is the minimum owed.
* Art. 5(1)(c)(iii) a cancelled flight owes nothing when the passenger, informed less than 7 days before
  (a disruption is handled on the day), is re-routed arriving less than 2 h late (the re-route leaving
  no more than 1 h early, which an operational re-route never does).
* Art. 5(3) none for extraordinary circumstances (``Case.extraordinary_circumstances``; the cause
  alone cannot tell — a CANCELLATION may be a strike or a technical fault).
* Delays (``DELAY``, and ``DIVERSION``/``MISSED_CONNECTION`` judged by the delay at the final
  destination): compensation when the arrival delay is ≥ 3 h (CJEU C-402/07 *Sturgeon*, reading
  Art. 5-7; C-11/11 *Folkerts* for the final destination), halved under Art. 7(2)(c) for > 3500 km
  between 3 h and 4 h (*Sturgeon* ¶ 63). A re-routed passenger's own arrival delay wins over the flight's.

Care (Art. 9), owed even under extraordinary circumstances (Art. 5(1)(b); CJEU C-12/11 *McDonagh*):

* MEAL — Art. 9(1)(a) meals and refreshments in reasonable relation to the waiting time. For a DELAY,
  only from Art. 6(1)'s thresholds: ≥ 2 h (≤ 1500 km), ≥ 3 h (1500-3500 km / intra-Community),
  ≥ 4 h (other); an unknown distance uses 2 h (the passenger's side of the doubt).
* HOTEL — Art. 9(1)(b) when a stay of one or more nights becomes necessary: the nights the airline
  asked rooms for (a demand wave) or booked, and for a DELAY at least one night when the expected
  departure moves to the next local day (Art. 6(1)(b)(iii)).
* TRANSPORT — Art. 9(1)(c) between the airport and the place of accommodation, whenever HOTEL is owed.
* COMMUNICATION — Art. 9(2) two telephone calls, telex, fax or e-mails, with MEAL; offered at the desk,
  not recorded by Nexa (``open`` is null: unknown).

Other regulations (APPR, DOT, AIRLINE_GOODWILL): no statutory amount is computed; care follows the
airline's policy (MEAL when it sets a ``mealAllowance``, TRANSPORT when ``transport`` is true, HOTEL
when a night is needed).

Amounts: the MEAL allowance is the resolved policy's ``mealAllowance`` summed over its periods, per
day of waiting (the nights, at least one). Open = owed - granted per item, in the item's currency;
grants in another currency count through their settled amount when the run settled in that currency.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from booking.selectors import great_circle_km  # noqa: F401 - re-exported: the flight distance (Art. 7(4), "great circle")

ZERO = Decimal("0")
CENT = Decimal("0.01")

EU261, UK261, AIRLINE_GOODWILL = "EU261", "UK261", "AIRLINE_GOODWILL"

# Where EC 261/2004 applies to departures (Art. 3(1)(a)): the Member States with their outermost
# regions (which airportsdata files under their own codes), extended to the EEA (EEA Agreement, Annex XIII)
# and Switzerland (EU-Swiss Air Transport Agreement, Annex).
# fmt: off
EU261_COUNTRIES = frozenset([
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
    "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    "GP", "MQ", "GF", "RE", "YT", "MF",  # outermost regions (TFEU Art. 349)
    "IS", "LI", "NO", "CH",
])
# fmt: on
UK261_COUNTRIES = frozenset({"GB"})

# Band keys (what the route answers as ``band``).
UP_TO_1500 = "UP_TO_1500_KM"
INTRA_EU_OVER_1500 = "INTRA_EU_OVER_1500_KM"
FROM_1500_TO_3500 = "1500_TO_3500_KM"
OVER_3500 = "OVER_3500_KM"

# Art. 7(1) amounts; UK261's in GBP.
BAND_AMOUNTS = {
    EU261: {
        UP_TO_1500: Decimal("250"),
        INTRA_EU_OVER_1500: Decimal("400"),
        FROM_1500_TO_3500: Decimal("400"),
        OVER_3500: Decimal("600"),
    },
    UK261: {
        UP_TO_1500: Decimal("220"),
        INTRA_EU_OVER_1500: Decimal("350"),
        FROM_1500_TO_3500: Decimal("350"),
        OVER_3500: Decimal("520"),
    },
}
CURRENCIES = {EU261: "EUR", UK261: "GBP"}
# Art. 7(2): re-routed arrival delay (minutes) up to which compensation is halved, per band; the same
# hours are Art. 6(1)'s departure-delay thresholds for care.
BAND_LIMIT_MINUTES = {UP_TO_1500: 120, INTRA_EU_OVER_1500: 180, FROM_1500_TO_3500: 180, OVER_3500: 240}
DELAY_COMPENSATION_MINUTES = 180  # Sturgeon: ≥ 3 h late at the final destination
CANCELLATION_NO_COMPENSATION_BELOW_MINUTES = 120  # Art. 5(1)(c)(iii)

CARE_TYPES = ("MEAL", "HOTEL", "TRANSPORT", "COMMUNICATION")

BASIS = {
    "compensation": "EC 261/2004 Art. 5(1)(c), 5(3), 7",
    "delay-compensation": "EC 261/2004 Art. 6, 7 as read in CJEU C-402/07 Sturgeon",
    "MEAL": "EC 261/2004 Art. 9(1)(a)",
    "HOTEL": "EC 261/2004 Art. 9(1)(b)",
    "TRANSPORT": "EC 261/2004 Art. 9(1)(c)",
    "COMMUNICATION": "EC 261/2004 Art. 9(2)",
    "policy": "the airline's policy",
}


def regulation_for(*, origin_country: str | None) -> str:
    """The regulation of a departure (Art. 3(1)(a)): from the EU/EEA/CH → EU261, from the UK → UK261,
    else the airline's goodwill. Art. 3(1)(b) (arrivals on a Community carrier) needs the carrier's
    licence, which Nexa does not hold: set ``Case.regulation`` for those flights."""
    if origin_country in EU261_COUNTRIES:
        return EU261
    if origin_country in UK261_COUNTRIES:
        return UK261
    return AIRLINE_GOODWILL


def band_for(*, distance_km: float, intra_eu: bool, regulation: str) -> str:
    """Art. 7(1): the band of a flight of ``distance_km`` (boundaries: 1500 km is the first band,
    3500 km the second — "of 1500 kilometres or less", "between 1500 and 3500 kilometres")."""
    if distance_km <= 1500:
        return UP_TO_1500
    if intra_eu and regulation == EU261:
        return INTRA_EU_OVER_1500
    if distance_km <= 3500:
        return FROM_1500_TO_3500
    return OVER_3500


# --- the input ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def as_json(self) -> dict[str, str]:
        return {"amount": str(self.amount.quantize(CENT)), "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Facts:
    """What the computation needs to know about the passenger's disruption."""

    regulation: str
    cause: str  # cases.models.Cause
    extraordinary: bool = False
    distance_km: float | None = None  # None: no destination on the case
    intra_eu: bool = False
    delay_minutes: int | None = None  # the flight's (Case.arrival_delay_minutes)
    rerouted_arrival_delay_minutes: int | None = None  # the passenger's (SubCase)
    nights_needed: int = 0  # from demand waves and reservations (the selector)
    delay_crosses_midnight: bool = False  # DELAY: expected departure on the next local day
    meal_allowance: Money | None = None  # the policy's mealAllowance per day, summed
    policy_transport: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """One thing the passenger received: a completed saga step or an active reservation."""

    type: str  # MEAL, CASH, TRANSPORT, HOTEL
    urn: str
    at: dt.datetime | None = None
    amount: Money | None = None
    settled: Money | None = None  # the amount in the run's settlement currency
    nights: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def in_currency(self, currency: str) -> Decimal | None:
        """This grant's amount in ``currency``: its own, else its settled amount, else unknown."""
        if self.amount is not None and self.amount.currency == currency:
            return self.amount.amount
        if self.settled is not None and self.settled.currency == currency:
            return self.settled.amount
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "urn": self.urn,
            "at": self.at.isoformat().replace("+00:00", "Z") if self.at else None,
            "amount": self.amount.as_json() if self.amount else None,
            "settledAmount": self.settled.as_json() if self.settled else None,
            "nights": self.nights,
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class Granted:
    grants: tuple[Grant, ...] = ()
    wallet_balances: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Grant]:
        return [grant for grant in self.grants if grant.type == kind]


# --- compensation ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compensation:
    status: str  # OWED, NOT_OWED, UNKNOWN
    amount: Decimal | None
    currency: str | None
    full_amount: Decimal | None
    reduced: bool
    reason: str
    basis: str


def compensation_owed(facts: Facts) -> tuple[str | None, Compensation]:
    """(band, compensation) for the facts. See the module docstring for every rule."""
    if facts.regulation not in BAND_AMOUNTS:
        return None, Compensation(
            "NOT_OWED",
            None,
            None,
            None,
            False,
            f"{facts.regulation}: no statutory compensation is computed by Nexa",
            BASIS["policy"],
        )
    currency = CURRENCIES[facts.regulation]
    if facts.distance_km is None:
        return None, Compensation(
            "UNKNOWN", None, currency, None, False, "the case has no destination: the distance is unknown", ""
        )
    band = band_for(distance_km=facts.distance_km, intra_eu=facts.intra_eu, regulation=facts.regulation)
    full = BAND_AMOUNTS[facts.regulation][band]
    limit = BAND_LIMIT_MINUTES[band]

    def owed(amount: Decimal, reduced: bool, reason: str, basis: str) -> tuple[str, Compensation]:
        return band, Compensation("OWED", amount, currency, full, reduced, reason, basis)

    def none(reason: str, basis: str) -> tuple[str, Compensation]:
        return band, Compensation("NOT_OWED", ZERO, currency, full, False, reason, basis)

    if facts.extraordinary:
        return none("extraordinary circumstances (Art. 5(3)): no compensation; care is still owed", "Art. 5(3)")
    rerouted = facts.rerouted_arrival_delay_minutes
    if facts.cause == "CANCELLATION":
        if rerouted is None:
            return owed(full, False, f"cancellation, {band} band", "Art. 5(1)(c), 7(1)")
        if rerouted < CANCELLATION_NO_COMPENSATION_BELOW_MINUTES:
            return none(
                f"re-routed arriving {_hours(rerouted)} late, under 2 h (Art. 5(1)(c)(iii))", "Art. 5(1)(c)(iii)"
            )
        if rerouted <= limit:
            return owed(
                full / 2,
                True,
                f"re-routed arriving {_hours(rerouted)} late, within {_hours(limit)} (Art. 7(2)): halved",
                "Art. 7(1), 7(2)",
            )
        return owed(full, False, f"re-routed arriving {_hours(rerouted)} late, over {_hours(limit)}", "Art. 7(1)")
    # DELAY, DIVERSION, MISSED_CONNECTION: the delay at the final destination decides (Sturgeon, Folkerts).
    delay = rerouted if rerouted is not None else facts.delay_minutes
    if delay is None:
        return band, Compensation(
            "UNKNOWN", None, currency, full, False, "no arrival delay recorded yet", BASIS["delay-compensation"]
        )
    if delay < DELAY_COMPENSATION_MINUTES:
        return none(f"arrival delay {_hours(delay)}, under 3 h (Sturgeon)", BASIS["delay-compensation"])
    if band == OVER_3500 and delay <= BAND_LIMIT_MINUTES[OVER_3500]:
        return owed(
            full / 2,
            True,
            f"arrival delay {_hours(delay)}, within 4 h on > 3500 km (Art. 7(2)(c)): halved",
            "Art. 7(2)(c)",
        )
    return owed(full, False, f"arrival delay {_hours(delay)}, 3 h or more", BASIS["delay-compensation"])


def _hours(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


# --- care -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CareOwed:
    type: str
    owed: bool
    reason: str
    basis: str
    amount: Money | None = None  # MEAL: the allowance over the days of waiting
    nights: int | None = None  # HOTEL
    tracked: bool = True  # COMMUNICATION is not recorded by Nexa


def care_owed(facts: Facts, band: str | None) -> list[CareOwed]:
    """Art. 9 care (or the policy's, outside EU261/UK261), in :data:`CARE_TYPES` order."""
    statutory = facts.regulation in BAND_AMOUNTS
    nights = facts.nights_needed
    if facts.cause == "DELAY":
        limit = BAND_LIMIT_MINUTES[band] if band else BAND_LIMIT_MINUTES[UP_TO_1500]
        waiting = facts.delay_minutes is not None and facts.delay_minutes >= limit
        if facts.delay_crosses_midnight and waiting:
            nights = max(nights, 1)
        if facts.delay_minutes is None:
            meal_reason = "no delay recorded yet"
        elif waiting:
            meal_reason = f"delay {_hours(facts.delay_minutes)}, at least {_hours(limit)} (Art. 6(1))"
        else:
            meal_reason = f"delay {_hours(facts.delay_minutes)}, under {_hours(limit)} (Art. 6(1))"
    else:
        waiting, meal_reason = True, f"{facts.cause.lower().replace('_', ' ')} (Art. 5(1)(b), 9)"
    days = max(nights, 1)
    allowance = (
        Money((facts.meal_allowance.amount * days).quantize(CENT), facts.meal_allowance.currency)
        if facts.meal_allowance
        else None
    )
    hotel_reason = (
        f"{nights} night(s) needed (rooms requested or booked)" if nights else "no overnight stay needed so far"
    )
    if statutory:
        meal = CareOwed("MEAL", waiting, meal_reason, BASIS["MEAL"], amount=allowance if waiting else None)
        hotel = CareOwed("HOTEL", waiting and nights > 0, hotel_reason, BASIS["HOTEL"], nights=nights if waiting else 0)
        transport = CareOwed("TRANSPORT", hotel.owed, "airport ↔ hotel, with the hotel", BASIS["TRANSPORT"])
        communication = CareOwed(
            "COMMUNICATION", waiting, "two calls or e-mails, offered at the desk", BASIS["COMMUNICATION"], tracked=False
        )
    else:
        policy_meal = waiting and allowance is not None
        meal = CareOwed(
            "MEAL",
            policy_meal,
            "the policy's meal allowance" if policy_meal else "the policy sets no meal allowance",
            BASIS["policy"],
            amount=allowance if policy_meal else None,
        )
        hotel = CareOwed("HOTEL", nights > 0, hotel_reason, BASIS["policy"], nights=nights)
        transport = CareOwed(
            "TRANSPORT",
            hotel.owed and facts.policy_transport,
            "the policy grants transport to the hotel" if facts.policy_transport else "the policy grants no transport",
            BASIS["policy"],
        )
        communication = CareOwed("COMMUNICATION", False, "not owed outside EU261/UK261", BASIS["policy"], tracked=False)
    return [meal, hotel, transport, communication]


# --- the body -------------------------------------------------------------------------------------------


def _sum_in(grants: list[Grant], currency: str) -> tuple[Decimal, list[Grant]]:
    """Total of ``grants`` in ``currency`` and the grants that could not be counted (other currency)."""
    total, uncounted = ZERO, []
    for grant in grants:
        value = grant.in_currency(currency)
        if value is None:
            uncounted.append(grant)
        else:
            total += value
    return total, uncounted


def _care_item(care: CareOwed, granted: Granted) -> dict[str, Any]:
    grants = {"MEAL": granted.of("MEAL"), "HOTEL": granted.of("HOTEL"), "TRANSPORT": granted.of("TRANSPORT")}.get(
        care.type, []
    )
    item: dict[str, Any] = {
        "type": care.type,
        "owed": care.owed,
        "reason": care.reason,
        "basis": care.basis,
        "amount": care.amount.as_json() if care.amount else None,
        "nights": care.nights,
        "granted": [grant.as_json() for grant in grants],
        "open": None,
        "openAmount": None,
        "openNights": None,
    }
    if not care.tracked:
        # Offered at the desk, not recorded: Nexa cannot say whether it is still open.
        return item
    if not care.owed:
        item["open"] = False
        return item
    if care.type == "HOTEL":
        got = sum(grant.nights or 0 for grant in grants)
        item["openNights"] = max((care.nights or 0) - got, 0)
        item["open"] = item["openNights"] > 0
    elif care.type == "MEAL" and care.amount is not None:
        got, _ = _sum_in(grants, care.amount.currency)
        remaining = max(care.amount.amount - got, ZERO)
        item["openAmount"] = Money(remaining, care.amount.currency).as_json()
        item["open"] = remaining > 0
    else:
        item["open"] = not grants
    return item


def entitlements(
    *,
    facts: Facts,
    granted: Granted,
    sub_case_urn: str,
    case_urn: str,
    route: dict[str, Any],
    computed_at: dt.datetime,
) -> dict[str, Any]:
    """The route's body (docs/booking.md "Entitlements")."""
    band, compensation = compensation_owed(facts)
    care = [_care_item(item, granted) for item in care_owed(facts, band)]
    cash = granted.of("CASH")
    open_compensation = None
    if compensation.status == "OWED":
        paid, _ = _sum_in(cash, compensation.currency)
        open_compensation = Money(max(compensation.amount - paid, ZERO), compensation.currency).as_json()
    elif compensation.status == "NOT_OWED" and compensation.currency:
        open_compensation = Money(ZERO, compensation.currency).as_json()
    money = lambda value: str(value.quantize(CENT)) if value is not None else None  # noqa: E731
    return {
        "subCaseUrn": sub_case_urn,
        "caseUrn": case_urn,
        "regulation": facts.regulation,
        "cause": facts.cause,
        "route": route,
        "distanceKm": round(facts.distance_km) if facts.distance_km is not None else None,
        "band": band,
        "compensation": {
            "status": compensation.status,
            "amount": money(compensation.amount),
            "currency": compensation.currency,
            "fullAmount": money(compensation.full_amount),
            "reduced": compensation.reduced,
            "reason": compensation.reason,
            "basis": compensation.basis,
        },
        "care": care,
        "granted": {
            "compensation": [grant.as_json() for grant in cash],
            "meals": [grant.as_json() for grant in granted.of("MEAL")],
            "transport": [grant.as_json() for grant in granted.of("TRANSPORT")],
            "reservations": [grant.as_json() for grant in granted.of("HOTEL")],
            "walletBalances": dict(granted.wallet_balances),
        },
        "open": {
            "compensation": open_compensation,
            "care": [item["type"] for item in care if item["open"]],
        },
        "computedAt": computed_at.isoformat().replace("+00:00", "Z"),
    }
