"""Demo disruptions: realistic, deterministic manifests and the idempotent flow that loads them.

``manage.py seed_demo`` loads :data:`DEMO_DISRUPTIONS` through :func:`demo_disruptions_ensure`;
``bench/manifest_import.py`` and the tests reuse :func:`demo_manifest` to get realistic rows of any
size. Demo data is not part of the cases domain: it lives next to the command that seeds it and
goes through the public ``cases.services`` and ``cases.selectors`` only, like any other caller.

A manifest is a list of rows in the wire format of ``POST /v1/cases/{urn}/manifest`` (see
docs/cases.md), built by a ``random.Random`` seeded from the disruption, so the same disruption
always gives exactly the same passengers. It is made of PNR parties, as a check-in list is:

* families of 2 to 5 sharing a PNR and a surname, some travelling with an infant (``INFANT``);
* solo travellers and couples; corporate bookings of colleagues with different surnames;
* mixed tiers inside some PNRs (one passenger upgraded to BUSINESS, a colleague in PREMIUM_ECONOMY);
* PRM passengers (``WHEELCHAIR``, ``MEDICAL``, ``SERVICE_ANIMAL``), alone or with a companion;
* unaccompanied minors (``UNACCOMPANIED_MINOR``), alone or with a sibling on the same PNR, the
  guardian's contact details on their rows;
* loyalty tiers of the operating airline's programme, more of them in the front cabins;
* languages en/es/de with names to match; contact details on the lead passenger (sometimes on
  every adult), emails at example.com/example.org, phones in ranges reserved or typical for
  fiction (+34 600 000 xxx, +49 30 23125 xxx, +44 7700 900 xxx), all in E.164.

Idempotency (:func:`demo_disruption_ensure`): a demo case is keyed on its airline, fixed flight
number and airport, and the existing non-CLOSED one is reused whatever its flight date, so
re-running on another day adds nothing; missing passengers are appended with
``manifest_append(skip_existing=True)``; passengers are grouped automatically
(``passenger_groups_create``) only when this run added them, so operators' work on the demo case
is never undone by a re-run.
"""

import datetime as dt
import random
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from cases import selectors, services
from cases.models import Case, Cause, SpecialNeed, Tier
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem

Row = dict[str, Any]

# --- what a demo disruption is ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoDisruption:
    """One demo case and the shape of its manifest."""

    airline: str
    flight_number: str  # fixed: the idempotency key with airline and airport
    airport: str
    time_zone: str
    departure_local: dt.time
    cause: str
    note: str
    passengers: int
    seed: int
    languages: tuple[tuple[str, int], ...]  # (language, weight)
    tiers: tuple[tuple[str, int], ...]  # (tier, weight) for a passenger's own booking
    loyalty_tiers: tuple[str, ...]  # lowest first
    onward_flights: tuple[str, ...] = ()
    destination: str = ""  # the flight's destination: the entitlements' distance band (docs/booking.md)
    email_domains: tuple[str, ...] = ("example.com", "example.org")

    def scheduled_departure(self, flight_date: dt.date) -> dt.datetime:
        return dt.datetime.combine(flight_date, self.departure_local, tzinfo=ZoneInfo(self.time_zone))

    def local_today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.time_zone)).date()


DEMO_DISRUPTIONS: tuple[DemoDisruption, ...] = (
    DemoDisruption(
        airline="IB",
        flight_number="IB3190",
        airport="MAD",
        time_zone="Europe/Madrid",
        departure_local=dt.time(21, 40),
        cause=Cause.CANCELLATION,
        note=(
            "IB3190 MAD-BRU cancelled: thunderstorms closed Madrid-Barajas to departures after 21:00 and the "
            "crew is out of duty time. Passengers rebooked on IB3192 tomorrow 07:05; overnight hotel needed."
        ),
        passengers=180,
        seed=3190,
        languages=(("es", 65), ("en", 25), ("de", 10)),
        tiers=((Tier.ECONOMY, 86), (Tier.BUSINESS, 14)),
        loyalty_tiers=("Iberia Plus Clásica", "Iberia Plus Plata", "Iberia Plus Oro", "Iberia Plus Platino"),
        onward_flights=("SN2583", "SN3711", "IB3192"),
        destination="BRU",
    ),
    DemoDisruption(
        airline="LH",
        flight_number="LH1190",
        airport="FRA",
        time_zone="Europe/Berlin",
        departure_local=dt.time(19, 55),
        cause=Cause.DELAY,
        note=(
            "LH1190 FRA-JFK delayed overnight: hydraulic fault found at the gate, replacement aircraft from "
            "MUC departs tomorrow 09:30. Long-haul passengers need rooms, meals and transfers."
        ),
        passengers=300,
        seed=1190,
        languages=(("de", 55), ("en", 35), ("es", 10)),
        tiers=((Tier.ECONOMY, 74), (Tier.PREMIUM_ECONOMY, 11), (Tier.BUSINESS, 12), (Tier.FIRST, 3)),
        loyalty_tiers=("Miles & More", "Frequent Traveller", "Senator", "HON Circle"),
        onward_flights=("UA1532", "B6415", "AA2141", "DL2290"),
        destination="JFK",
    ),
)

# --- names and contact details ------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ADULT_NAMES = {
    "es": _words(
        "María Carmen Lucía Elena Paula Laura Marta Sofía Isabel Cristina Pilar Rocío Ana Beatriz Nuria José "
        "Antonio Manuel Javier Carlos Jesús Miguel Ángel Pablo Sergio Álvaro Jorge Raúl Fernando Iñigo"
    ),
    "de": _words(
        "Anna Julia Katharina Sabine Claudia Stefanie Petra Jana Lena Miriam Ursula Birgit Sandra Jutta Heike "
        "Thomas Michael Andreas Stefan Markus Jürgen Klaus Tobias Matthias Florian Jörg Uwe Ralf Dirk "
        "Sebastian"
    ),
    "en": _words(
        "Emma Olivia Charlotte Sarah Emily Jessica Hannah Rachel Megan Laura Grace Chloe Amy Lucy Sophie "
        "James Oliver William Daniel Thomas George Jack Harry Michael David Samuel Matthew Andrew Ryan Liam"
    ),
}
_CHILD_NAMES = {
    "es": _words("Hugo Martín Leo Mateo Daniel Lucas Alba Martina Valeria Julia Noa Carla Vega Irene Marco Adrián"),
    "de": _words("Ben Paul Finn Jonas Elias Noah Luis Emil Mia Emma Hanna Lina Ella Clara Leni Mila"),
    "en": _words("Alfie Noah Arthur Freddie Theo Archie Isla Ava Freya Poppy Mia Evie Lily Ivy Rosie Florence"),
}
_SURNAMES = {
    "es": _words(
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz Hernández "
        "Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil Ramírez "
        "Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín Sanz Núñez Iglesias"
    ),
    "de": _words(
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
        "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt "
        "Werner Krause Meier Lehmann Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang"
    ),
    "en": _words(
        "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White "
        "Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis James Phillips Mason Mitchell Rose Davis "
        "Rodriguez Cox Alexander Morgan Moore Harris Clark Young Allen King Scott"
    ),
}
# E.164 prefixes of number ranges reserved for (or typical of) fiction, plus the digits that follow.
_PHONE_PREFIX = {"es": ("+34600000", 3), "de": ("+493023125", 3), "en": ("+447700900", 3)}
_PNR_ALPHABET = "".join(sorted(set(string.ascii_uppercase + string.digits) - set("01IO")))
_PRM_NEEDS = (SpecialNeed.WHEELCHAIR, SpecialNeed.MEDICAL, SpecialNeed.SERVICE_ANIMAL)
_FRONT_CABINS = (Tier.BUSINESS, Tier.FIRST)
_LOYALTY_WEIGHTS = (8, 4, 2, 1)  # by programme level, lowest first
_FRONT_LOYALTY_WEIGHTS = (2, 4, 3, 1)


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if char.isascii() and char.isalnum())


@dataclass
class _ManifestBuilder:
    """Builds PNR parties for one disruption from one seeded random generator."""

    disruption: DemoDisruption
    rng: random.Random
    rows: list[Row] = field(default_factory=list)
    pnrs: set[str] = field(default_factory=set)
    phones: int = 0

    # -- pieces --

    def language(self) -> str:
        languages, weights = zip(*self.disruption.languages, strict=True)
        return self.rng.choices(languages, weights)[0]

    def tier(self) -> str:
        tiers, weights = zip(*self.disruption.tiers, strict=True)
        return self.rng.choices(tiers, weights)[0]

    def economy_tier(self) -> str:
        """A tier below BUSINESS (what the rest of a mixed-tier party flies), in the cabin's proportions."""
        tiers, weights = zip(*((t, w) for t, w in self.disruption.tiers if t not in _FRONT_CABINS), strict=True)
        return self.rng.choices(tiers, weights)[0]

    def pnr(self) -> str:
        while True:
            candidate = "".join(self.rng.choices(_PNR_ALPHABET, k=6))
            if candidate not in self.pnrs:
                self.pnrs.add(candidate)
                return candidate

    def loyalty(self, tier: str) -> str:
        chance = {Tier.ECONOMY: 0.3, Tier.PREMIUM_ECONOMY: 0.5, Tier.BUSINESS: 0.8, Tier.FIRST: 1.0}[tier]
        if self.rng.random() >= chance:
            return ""
        levels = self.disruption.loyalty_tiers
        # Most members sit at the bottom of the programme; front-cabin passengers sit higher.
        weights = _FRONT_LOYALTY_WEIGHTS if tier in _FRONT_CABINS else _LOYALTY_WEIGHTS
        return self.rng.choices(levels, weights[: len(levels)])[0]

    def contact(self, first: str, last: str, language: str) -> Row:
        self.phones += 1
        prefix, digits = _PHONE_PREFIX[language]
        number = (self.phones * 37 + self.rng.randrange(10**digits)) % 10**digits
        domain = self.rng.choice(self.disruption.email_domains)
        local = f"{_ascii_slug(first)}.{_ascii_slug(last)}{self.rng.randrange(1, 100)}"
        return {"email": f"{local}@{domain}", "phone": f"{prefix}{number:0{digits}d}"}

    def onward(self) -> str | None:
        if self.disruption.onward_flights and self.rng.random() < 0.12:
            return self.rng.choice(self.disruption.onward_flights)
        return None

    def passenger(
        self,
        *,
        pnr: str,
        first: str,
        last: str,
        language: str,
        tier: str,
        needs: Sequence[str] = (),
        contact: Row | None = None,
        loyalty: bool = True,
        onward: str | None = None,
    ) -> Row:
        row: Row = {"firstName": first, "lastName": last, "pnr": pnr, "tier": str(tier), "language": language}
        if loyalty and (level := self.loyalty(tier)):
            row["loyaltyTier"] = level
        if needs:
            row["specialNeeds"] = [str(need) for need in needs]
        if contact:
            row.update(contact)
        if onward:
            row["onwardFlight"] = onward
        return row

    def adults(self, language: str, count: int) -> list[str]:
        return self.rng.sample(_ADULT_NAMES[language], count)

    def children(self, language: str, count: int) -> list[str]:
        return self.rng.sample(_CHILD_NAMES[language], count)

    def surname(self, language: str) -> str:
        return self.rng.choice(_SURNAMES[language])

    # -- parties (each returns its rows; all share one PNR) --

    def solo(self, needs: Sequence[str] = ()) -> list[Row]:
        language, pnr = self.language(), self.pnr()
        (first,), last = self.adults(language, 1), self.surname(language)
        tier = self.tier()
        return [
            self.passenger(
                pnr=pnr,
                first=first,
                last=last,
                language=language,
                tier=tier,
                needs=needs,
                contact=self.contact(first, last, language),
                onward=self.onward(),
            )
        ]

    def couple(self, *, mixed_tier: bool = False) -> list[Row]:
        language, pnr = self.language(), self.pnr()
        first_a, first_b = self.adults(language, 2)
        last = self.surname(language)
        tier = self.tier()
        other = tier
        if mixed_tier:  # one of them upgraded with miles
            tier, other = Tier.BUSINESS, self.economy_tier()
        onward = self.onward()
        contact = self.contact(first_a, last, language)
        return [
            self.passenger(pnr=pnr, first=first_a, last=last, language=language, tier=tier, contact=contact),
            self.passenger(
                pnr=pnr,
                first=first_b,
                last=last,
                language=language,
                tier=other,
                contact=self.contact(first_b, last, language) if self.rng.random() < 0.4 else None,
                onward=onward,
            ),
        ]

    def family(self, size: int, *, infant: bool = False) -> list[Row]:
        """Parents (one or two) and children; with ``infant`` the youngest is an infant on a lap."""
        language, pnr = self.language(), self.pnr()
        last = self.surname(language)
        tier = self.economy_tier() if self.rng.random() < 0.85 else self.tier()
        parents = 1 if size == 2 or self.rng.random() < 0.2 else 2
        rows = []
        for index, first in enumerate(self.adults(language, parents)):
            contact = self.contact(first, last, language) if index == 0 or self.rng.random() < 0.3 else None
            rows.append(self.passenger(pnr=pnr, first=first, last=last, language=language, tier=tier, contact=contact))
        kids = self.children(language, size - parents)
        for index, first in enumerate(kids):
            needs = [SpecialNeed.INFANT] if infant and index == len(kids) - 1 else []
            rows.append(
                self.passenger(
                    pnr=pnr, first=first, last=last, language=language, tier=tier, needs=needs, loyalty=False
                )
            )
        return rows

    def colleagues(self, size: int) -> list[Row]:
        """A corporate booking: different surnames, the manager in BUSINESS, the team further back."""
        language, pnr = self.language(), self.pnr()
        rows = []
        for index, first in enumerate(self.adults(language, size)):
            last = self.surname(language)
            tier = Tier.BUSINESS if index == 0 else self.economy_tier()
            contact = self.contact(first, last, language)
            rows.append(self.passenger(pnr=pnr, first=first, last=last, language=language, tier=tier, contact=contact))
        return rows

    def prm(self, need: str, *, companion: bool) -> list[Row]:
        """A passenger with reduced mobility or a medical need, alone or with a companion."""
        if not companion:
            return self.solo(needs=[need])
        language, pnr = self.language(), self.pnr()
        first, helper = self.adults(language, 2)
        last = self.surname(language)
        tier = self.tier()
        contact = self.contact(helper, last, language)
        return [
            self.passenger(pnr=pnr, first=first, last=last, language=language, tier=tier, needs=[need]),
            self.passenger(pnr=pnr, first=helper, last=last, language=language, tier=tier, contact=contact),
        ]

    def unaccompanied_minors(self, count: int) -> list[Row]:
        """One child, or siblings, travelling alone; the guardian's contact details on each row."""
        language, pnr = self.language(), self.pnr()
        last = self.surname(language)
        (guardian,) = self.adults(language, 1)
        contact = self.contact(guardian, last, language)
        return [
            self.passenger(
                pnr=pnr,
                first=first,
                last=last,
                language=language,
                tier=Tier.ECONOMY,
                needs=[SpecialNeed.UNACCOMPANIED_MINOR],
                contact=contact,
                loyalty=False,
            )
            for first in self.children(language, count)
        ]

    # -- the manifest --

    def build(self) -> list[Row]:
        total = self.disruption.passengers
        scale = max(total, 30)
        # Parties every realistic manifest has, in proportion to its size.
        parties: list[list[Row]] = []
        for index in range(max(2, scale // 60)):
            parties.append(self.unaccompanied_minors(2 if index == 0 else 1))
        for index in range(max(1, scale // 45)):
            parties.append(self.prm(SpecialNeed.WHEELCHAIR, companion=index % 2 == 0))
        for index in range(max(1, scale // 90)):
            parties.append(self.prm(SpecialNeed.MEDICAL, companion=index % 2 == 1))
        for index in range(max(1, scale // 150)):
            parties.append(self.prm(SpecialNeed.SERVICE_ANIMAL, companion=index % 2 == 1))
        for index in range(max(1, scale // 45)):
            parties.append(self.family(3 + index % 3, infant=True))
        for index in range(max(2, scale // 30)):
            parties.append(self.couple(mixed_tier=True) if index % 2 == 0 else self.colleagues(2 + index % 3))

        count = sum(len(party) for party in parties)
        while count < total:
            left = total - count
            roll = self.rng.random()
            if left == 1 or roll < 0.40:
                party = self.solo()
            elif left == 2 or roll < 0.65:
                party = self.couple()
            elif roll < 0.92:
                party = self.family(self.rng.randint(3, min(5, left)))
            else:
                party = self.colleagues(self.rng.randint(2, min(3, left)))
            parties.append(party)
            count += len(party)

        self.rng.shuffle(parties)  # check-in order, not by kind
        rows = [row for party in parties for row in party]
        return rows[:total]


def demo_manifest(disruption: DemoDisruption, *, passengers: int | None = None) -> list[Row]:
    """The disruption's manifest rows (wire format), the same on every call. ``passengers``
    overrides the size (benchmarks ask for 10 000); every row is valid and every passenger
    (PNR and name) is unique."""
    if passengers is not None:
        disruption = replace(disruption, passengers=passengers)
    return _ManifestBuilder(disruption=disruption, rng=random.Random(disruption.seed)).build()


# --- loading it ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSeedResult:
    disruption: DemoDisruption
    case: Case
    declared: bool  # this run declared the case
    added: int  # passengers this run added
    passengers: int  # sub-cases on the case now
    groups: int
    mixed_tier_groups: int
    grouping_skipped: str = ""  # why this run could not group what it added (a 409 detail), if so

    def summary(self) -> str:
        d, case = self.disruption, self.case
        line = (
            f"{d.flight_number} {d.airport} {case.flight_date} {d.cause} {case.status}: {self.passengers} passengers "
            f"({self.added} new), {self.groups} groups ({self.mixed_tier_groups} mixed-tier) — {case.urn}"
        )
        return line + (f" [grouping skipped: {self.grouping_skipped}]" if self.grouping_skipped else "")


def demo_case_find(*, principal: Principal, disruption: DemoDisruption) -> Case | None:
    """The demo disruption's case that is not CLOSED (any flight date), oldest first."""
    return selectors.case_open_for_flight(
        principal=principal, flight_number=disruption.flight_number, airport=disruption.airport
    )


def demo_disruption_ensure(
    *, principal: Principal, disruption: DemoDisruption, today: dt.date | None = None
) -> DemoSeedResult:
    """Declare the demo case (flight date ``today``, default: today at the airport) unless a
    non-CLOSED one exists, append whichever demo passengers it lacks, and group them. Through the
    services, so everything is validated, audited and published like an operator's work."""
    if principal.airline != disruption.airline:
        raise ValueError(f"{disruption.flight_number} belongs to {disruption.airline}, not {principal.airline}")
    rows = demo_manifest(disruption)
    case = demo_case_find(principal=principal, disruption=disruption)
    declared, added = False, 0
    if case is None:
        flight_date = today or disruption.local_today()
        case = services.case_declare(
            principal=principal,
            airport=disruption.airport,
            flight_number=disruption.flight_number,
            flight_date=flight_date,
            scheduled_departure=disruption.scheduled_departure(flight_date),
            cause=disruption.cause,
            note=disruption.note,
            passengers=rows,
            destination=disruption.destination,
        )
        declared, added = True, len(rows)
    else:
        if selectors.case_manifest_missing_rows(principal=principal, case=case, rows=rows):
            added = len(services.manifest_append(principal=principal, case=case, rows=rows, skip_existing=True))

    grouping_skipped = ""
    if added:
        try:
            services.passenger_groups_create(principal=principal, case=case)
        except Problem as problem:  # e.g. an operator already moved some of them past grouping
            grouping_skipped = problem.detail_text

    case = selectors.case_get(principal=principal, case_urn=case.urn)
    groups = selectors.case_groups(principal=principal, case=case)
    return DemoSeedResult(
        disruption=disruption,
        case=case,
        declared=declared,
        added=added,
        passengers=sum(selectors.case_subcase_counts(principal=principal, case=case).values()),
        groups=len(groups),
        mixed_tier_groups=sum(group.mixed_tier for group in groups),
        grouping_skipped=grouping_skipped,
    )


def demo_disruptions_ensure(
    *, principal_for: Callable[[str], Principal], today: dt.date | None = None
) -> list[DemoSeedResult]:
    """:func:`demo_disruption_ensure` for every disruption in :data:`DEMO_DISRUPTIONS`;
    ``principal_for(airline)`` is who declares (a seeded OPS_SUPERVISOR)."""
    return [
        demo_disruption_ensure(principal=principal_for(disruption.airline), disruption=disruption, today=today)
        for disruption in DEMO_DISRUPTIONS
    ]
