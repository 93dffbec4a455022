"""Demo hotel reference data, shared by the catalog seed (``booking.hotels_catalog``) and the vendor
simulators (``booking.simulators.hotels``), which must not import Django. Pure data.

Hotels exist only around the airports the demo seeds (MAD, BCN, FRA, MUC, LHR, CDG): everywhere else
every simulated vendor finds nothing, which is how "no rooms anywhere" is demonstrated. Coordinates are
the hotels' real positions (rounded); phone numbers and vendor ids are made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# The hotel vendors, their API shape (booking/simulators/hotels.py) and the currency they quote in.
# Three shapes: "geo-post" (Hotelbeds-like, stay totals in EUR), "rapid" (Expedia-Rapid-like, nightly
# USD), "paged" (IATA search, paginated, GBP minor units).
VENDORS: dict[str, dict[str, str]] = {
    "stayhub": {"shape": "geo-post", "currency": "EUR"},
    "globerooms": {"shape": "rapid", "currency": "USD"},
    "nightbed": {"shape": "paged", "currency": "GBP"},
    "roomrack": {"shape": "geo-post", "currency": "CHF"},
    "bedbank": {"shape": "rapid", "currency": "USD"},
}
DEFAULT_VENDORS = ("stayhub", "globerooms", "nightbed")

# Airport reference points for the simulators (the catalog itself reads airportsdata).
AIRPORTS: dict[str, tuple[float, float]] = {
    "MAD": (40.4719, -3.5626),
    "BCN": (41.2971, 2.0785),
    "FRA": (50.0333, 8.5706),
    "MUC": (48.3538, 11.7861),
    "LHR": (51.4706, -0.4619),
    "CDG": (49.0128, 2.5500),
}


@dataclass(frozen=True)
class DemoHotel:
    key: str  # stable slug, the base of every vendor id
    airport: str
    name: str
    lat: float
    lng: float
    stars: int
    accessible_rooms: int
    rooms: int  # rooms a vendor may sell per night, at most
    base_rate_eur: int  # a typical nightly rate
    address: str
    phone: str
    vendors: tuple[str, ...] = field(default=tuple(VENDORS))


def _h(key, airport, name, lat, lng, stars, accessible, rooms, rate, address, phone, vendors=tuple(VENDORS)):
    return DemoHotel(key, airport, name, lat, lng, stars, accessible, rooms, rate, address, phone, vendors)


HOTELS: tuple[DemoHotel, ...] = (
    # Madrid-Barajas
    _h(
        "mad-melia-barajas",
        "MAD",
        "Meliá Barajas",
        40.4589,
        -3.5903,
        4,
        6,
        40,
        120,
        "Av. de Logroño 305, 28042 Madrid",
        "+34 917 47 77 00",
    ),
    _h(
        "mad-auditorium",
        "MAD",
        "Hotel Auditorium Madrid",
        40.4566,
        -3.5904,
        4,
        12,
        120,
        95,
        "Av. de Aragón 400, 28022 Madrid",
        "+34 914 00 44 00",
        ("stayhub", "globerooms", "nightbed", "roomrack"),
    ),
    _h(
        "mad-hilton-airport",
        "MAD",
        "Hilton Madrid Airport",
        40.4425,
        -3.6005,
        5,
        4,
        30,
        180,
        "Av. de la Hispanidad 2, 28042 Madrid",
        "+34 911 53 10 00",
        ("stayhub", "globerooms", "bedbank"),
    ),
    _h(
        "mad-ibis-barajas",
        "MAD",
        "ibis Madrid Aeropuerto Barajas",
        40.4735,
        -3.5800,
        2,
        3,
        50,
        65,
        "C. de la Ribera del Sena 8, 28042 Madrid",
        "+34 913 29 21 00",
        ("globerooms", "nightbed", "bedbank"),
    ),
    _h(
        "mad-eurobuilding",
        "MAD",
        "NH Collection Madrid Eurobuilding",
        40.4573,
        -3.6898,
        5,
        8,
        60,
        210,
        "C. del Padre Damián 23, 28036 Madrid",
        "+34 913 53 73 00",
    ),
    # Barcelona-El Prat
    _h(
        "bcn-tryp-aeropuerto",
        "BCN",
        "Tryp Barcelona Aeropuerto",
        41.3197,
        2.0952,
        4,
        5,
        40,
        110,
        "Av. Mare de Déu de Bellvitge 1, 08820 El Prat de Llobregat",
        "+34 933 78 10 00",
    ),
    _h(
        "bcn-ibis-aeropuerto",
        "BCN",
        "ibis Barcelona Aeropuerto",
        41.3270,
        2.0960,
        2,
        2,
        45,
        60,
        "C. Pau Casals 15, 08820 El Prat de Llobregat",
        "+34 933 79 86 00",
        ("stayhub", "nightbed", "bedbank"),
    ),
    _h(
        "bcn-crowne-fira",
        "BCN",
        "Crowne Plaza Barcelona Fira Center",
        41.3656,
        2.1270,
        4,
        7,
        50,
        140,
        "Av. de Rius i Taulet 1, 08004 Barcelona",
        "+34 934 26 22 00",
        ("stayhub", "globerooms", "roomrack"),
    ),
    _h(
        "bcn-miramar",
        "BCN",
        "Hotel Miramar Barcelona",
        41.3715,
        2.1670,
        5,
        3,
        20,
        230,
        "Plaça Carlos Ibáñez 3, 08038 Barcelona",
        "+34 932 81 16 00",
        ("globerooms", "nightbed"),
    ),
    # Frankfurt
    _h(
        "fra-hilton-airport",
        "FRA",
        "Hilton Frankfurt Airport",
        50.0520,
        8.5700,
        5,
        6,
        40,
        190,
        "The Squaire, Am Flughafen, 60549 Frankfurt am Main",
        "+49 69 26 01 20 00",
    ),
    _h(
        "fra-sheraton-airport",
        "FRA",
        "Sheraton Frankfurt Airport Hotel",
        50.0507,
        8.5713,
        4,
        10,
        80,
        150,
        "Hugo-Eckener-Ring 15, 60549 Frankfurt am Main",
        "+49 69 69 77 0",
        ("stayhub", "globerooms", "bedbank"),
    ),
    _h(
        "fra-steigenberger",
        "FRA",
        "Steigenberger Airport Hotel",
        50.0596,
        8.5870,
        4,
        5,
        40,
        135,
        "Unterschweinstiege 16, 60549 Frankfurt am Main",
        "+49 69 69 75 0",
        ("nightbed", "roomrack", "stayhub"),
    ),
    _h(
        "fra-moxy-airport",
        "FRA",
        "Moxy Frankfurt Airport",
        50.0331,
        8.5178,
        3,
        4,
        60,
        85,
        "Kelsterbacher Str. 19, 65479 Raunheim",
        "+49 6142 17 87 0",
        ("globerooms", "nightbed", "bedbank"),
    ),
    _h(
        "fra-jumeirah",
        "FRA",
        "Jumeirah Frankfurt",
        50.1149,
        8.6810,
        5,
        2,
        20,
        260,
        "Thurn-und-Taxis-Platz 2, 60313 Frankfurt am Main",
        "+49 69 29 72 37 0",
        ("stayhub", "globerooms"),
    ),
    # Munich
    _h(
        "muc-hilton-airport",
        "MUC",
        "Hilton Munich Airport",
        48.3506,
        11.7862,
        5,
        6,
        40,
        185,
        "Terminalstraße Mitte 20, 85356 München-Flughafen",
        "+49 89 97 82 0",
    ),
    _h(
        "muc-novotel-airport",
        "MUC",
        "Novotel München Airport",
        48.3494,
        11.8310,
        4,
        5,
        60,
        115,
        "Nordallee 29, 85356 Freising",
        "+49 89 97 05 10",
        ("stayhub", "nightbed", "bedbank"),
    ),
    _h(
        "muc-moevenpick",
        "MUC",
        "Mövenpick Hotel Munich Airport",
        48.3635,
        11.8193,
        4,
        4,
        40,
        125,
        "Ludwigstraße 43, 85399 Hallbergmoos",
        "+49 811 88 80",
        ("globerooms", "roomrack", "nightbed"),
    ),
    _h(
        "muc-bayerischer-hof",
        "MUC",
        "Hotel Bayerischer Hof",
        48.1403,
        11.5738,
        5,
        3,
        20,
        320,
        "Promenadeplatz 2-6, 80333 München",
        "+49 89 21 20 0",
        ("stayhub", "globerooms"),
    ),
    # London Heathrow
    _h(
        "lhr-sofitel-t5",
        "LHR",
        "Sofitel London Heathrow",
        51.4727,
        -0.4882,
        5,
        6,
        50,
        210,
        "Terminal 5, Wentworth Dr, Hounslow TW6 2GD",
        "+44 20 8757 7777",
    ),
    _h(
        "lhr-hilton-t4",
        "LHR",
        "Hilton London Heathrow Airport",
        51.4594,
        -0.4484,
        4,
        8,
        60,
        160,
        "Terminal 4, Hounslow TW6 3AF",
        "+44 20 8759 7755",
        ("stayhub", "globerooms", "nightbed", "bedbank"),
    ),
    _h(
        "lhr-renaissance",
        "LHR",
        "Renaissance London Heathrow Hotel",
        51.4810,
        -0.4510,
        4,
        5,
        40,
        140,
        "Bath Rd, Hounslow TW6 2AQ",
        "+44 20 8897 6363",
        ("nightbed", "roomrack", "globerooms"),
    ),
    _h(
        "lhr-premier-inn-bath-road",
        "LHR",
        "Premier Inn London Heathrow Airport (Bath Road)",
        51.4800,
        -0.4280,
        3,
        10,
        120,
        90,
        "15 Bath Rd, Longford, Hounslow TW6 2AB",
        "+44 333 777 4648",
        ("nightbed", "stayhub", "bedbank"),
    ),
    _h(
        "lhr-langham",
        "LHR",
        "The Langham, London",
        51.5181,
        -0.1436,
        5,
        2,
        20,
        420,
        "1C Portland Pl, London W1B 1JA",
        "+44 20 7636 1000",
        ("globerooms", "nightbed"),
    ),
    # Paris-Charles de Gaulle
    _h(
        "cdg-sheraton",
        "CDG",
        "Sheraton Paris Airport Hotel",
        49.0040,
        2.5707,
        4,
        4,
        40,
        170,
        "Tremblay-en-France, 95716 Roissy CDG",
        "+33 1 49 19 70 70",
    ),
    _h(
        "cdg-pullman",
        "CDG",
        "Pullman Paris Roissy CDG Airport",
        48.9967,
        2.5266,
        4,
        6,
        50,
        150,
        "Av. de la Pépinière, 95700 Roissy-en-France",
        "+33 1 34 29 34 00",
        ("stayhub", "globerooms", "bedbank"),
    ),
    _h(
        "cdg-novotel",
        "CDG",
        "Novotel Paris CDG Airport",
        49.0064,
        2.5620,
        3,
        8,
        70,
        110,
        "Roissypôle Ouest, 95700 Roissy-en-France",
        "+33 1 49 19 27 27",
        ("nightbed", "roomrack", "stayhub"),
    ),
    _h(
        "cdg-ibis",
        "CDG",
        "ibis Paris CDG Airport",
        49.0058,
        2.5633,
        2,
        6,
        120,
        70,
        "Roissypôle Ouest, 95700 Roissy-en-France",
        "+33 1 49 19 19 19",
        ("globerooms", "nightbed", "bedbank"),
    ),
    _h(
        "cdg-le-bristol",
        "CDG",
        "Le Bristol Paris",
        48.8717,
        2.3149,
        5,
        2,
        15,
        950,
        "112 Rue du Faubourg Saint-Honoré, 75008 Paris",
        "+33 1 53 43 43 00",
        ("stayhub", "globerooms"),
    ),
)


def vendor_hotel_id(vendor: str, key: str) -> str:
    """The id ``vendor`` gives the demo hotel ``key`` (each vendor has its own id scheme)."""
    index = next(i for i, hotel in enumerate(HOTELS) if hotel.key == key)
    return {
        "stayhub": f"SH{10000 + index * 7}",
        "globerooms": str(300000 + index * 13),
        "nightbed": f"nb-{key}",
        "roomrack": f"RR-{index:04d}",
        "bedbank": f"bb{900 + index}",
    }[vendor]


def vendor_ids(key: str) -> dict[str, str]:
    hotel = next(hotel for hotel in HOTELS if hotel.key == key)
    return {vendor: vendor_hotel_id(vendor, key) for vendor in hotel.vendors}


def great_circle_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance on the mean Earth radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(math.sqrt(a))
