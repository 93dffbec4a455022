"""The airport catalog (airportsdata, ~7 800 IATA codes): lookup by code and text search. Its own module so
the contracts and the hotel search reach it without going through ``booking.selectors``, which re-exports it."""

import functools
import unicodedata
from dataclasses import dataclass

import airportsdata

AIRPORT_SEARCH_MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Airport:
    iata: str
    icao: str
    name: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    latitude: float
    longitude: float
    time_zone: str  # IANA, e.g. "Europe/Madrid"


def _fold(text: str) -> str:
    """Lower case without accents, so "sao paulo" finds "São Paulo" and "zurich" "Zürich"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True, slots=True)
class _Entry:
    airport: Airport
    folded_name: str
    folded_city: str
    # " word word …" of city and name: a word starting with q is a hit on " " + q.
    spaced_words: str


@dataclass(frozen=True, slots=True)
class _Catalog:
    by_iata: dict[str, Airport]
    by_icao: dict[str, Airport]
    entries: tuple[_Entry, ...]


@functools.cache
def _catalog() -> _Catalog:
    by_iata: dict[str, Airport] = {}
    by_icao: dict[str, Airport] = {}
    entries: list[_Entry] = []
    for row in airportsdata.load("IATA").values():
        airport = Airport(
            iata=row["iata"],
            icao=row["icao"],
            name=row["name"],
            city=row["city"],
            country=row["country"],
            latitude=float(row["lat"]),
            longitude=float(row["lon"]),
            time_zone=row["tz"],
        )
        by_iata[airport.iata] = airport
        if airport.icao:
            by_icao[airport.icao] = airport
        folded_name, folded_city = _fold(airport.name), _fold(airport.city)
        words = f"{folded_city} {folded_name}".replace("-", " ").replace("/", " ").split()
        entries.append(_Entry(airport, folded_name, folded_city, " " + " ".join(words)))
    # Sorted by city then name, so equally ranked matches come out in a stable, readable order
    # (airports without a city last).
    entries.sort(key=lambda entry: (not entry.folded_city, entry.folded_city, entry.folded_name, entry.airport.iata))
    return _Catalog(by_iata=by_iata, by_icao=by_icao, entries=tuple(entries))


def airport_get(*, iata: str) -> Airport | None:
    """The airport with this IATA code (case-insensitive), or ``None``."""
    return _catalog().by_iata.get(iata.strip().upper())


# Match ranks, best first.
_CITY_OR_NAME_PREFIX = 0
_WORD_PREFIX = 1
_SUBSTRING = 2


def _text_rank(entry: _Entry, folded_query: str) -> int | None:
    if entry.folded_city.startswith(folded_query) or entry.folded_name.startswith(folded_query):
        return _CITY_OR_NAME_PREFIX
    if " " + folded_query in entry.spaced_words:
        return _WORD_PREFIX
    if folded_query in entry.folded_city or folded_query in entry.folded_name:
        return _SUBSTRING
    return None


def airports_search(*, query: str, limit: int = 20) -> list[Airport]:
    """Airports matching ``query``, best first: the exact IATA code, the exact ICAO code, then
    city or name starting with it, a word of them starting with it, and finally containing it
    anywhere. Case- and accent-insensitive; an empty query finds nothing."""
    catalog = _catalog()
    code = query.strip().upper()
    folded_query = _fold(query.strip())
    if not folded_query or limit <= 0:
        return []
    results: list[Airport] = []
    for exact in (catalog.by_iata.get(code), catalog.by_icao.get(code)):
        if exact is not None and exact not in results:
            results.append(exact)
    ranked: list[list[Airport]] = [[], [], []]
    for entry in catalog.entries:
        rank = _text_rank(entry, folded_query)
        if rank is not None and entry.airport not in results:
            ranked[rank].append(entry.airport)
    for bucket in ranked:
        results.extend(bucket)
        if len(results) >= limit:
            break
    return results[:limit]


# --- the passenger wallet ----------------------------------------------------------------------------
