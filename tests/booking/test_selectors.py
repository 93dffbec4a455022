"""The airport catalog: exact codes first, then city/name matches, accent- and case-insensitive."""

import dataclasses

import pytest

from booking.selectors import Airport, airport_get, airports_search


def iatas(airports: list[Airport]) -> list[str]:
    return [airport.iata for airport in airports]


def test_airport_get_returns_coordinates_and_time_zone():
    madrid = airport_get(iata="mad")
    assert madrid is not None
    assert (madrid.iata, madrid.icao, madrid.city, madrid.country) == ("MAD", "LEMD", "Madrid", "ES")
    assert madrid.time_zone == "Europe/Madrid"
    assert 40.0 < madrid.latitude < 41.0 and -4.0 < madrid.longitude < -3.0


def test_airport_get_unknown_code_is_none():
    assert airport_get(iata="QQQ") is None
    assert airport_get(iata="") is None


def test_airports_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        airport_get(iata="MAD").name = "changed"


def test_exact_iata_code_ranks_first():
    results = airports_search(query="mad")
    assert results[0].iata == "MAD"
    # Then prefix matches on names/cities ("Madeira", "Madang", …) follow.
    assert len(results) > 1


def test_exact_icao_code_finds_the_airport():
    assert iatas(airports_search(query="EGLL"))[0] == "LHR"
    assert iatas(airports_search(query="lemd")) == ["MAD"]


def test_city_search_lists_every_airport_of_the_city_first():
    london = iatas(airports_search(query="London", limit=20))
    for code in ("LHR", "LGW", "LCY", "STN", "LTN"):
        assert code in london
    # A word-prefix or substring match never outranks a city/name prefix match.
    assert london.index("LHR") < len(london)


def test_name_word_search():
    assert "LHR" in iatas(airports_search(query="heathrow"))
    assert "JFK" in iatas(airports_search(query="Kennedy"))


def test_search_is_accent_insensitive_both_ways():
    assert "ZRH" in iatas(airports_search(query="Zürich"))
    assert "GRU" in iatas(airports_search(query="sao paulo"))
    assert "GRU" in iatas(airports_search(query="São Paulo"))


def _match_kind(airport: Airport, query: str) -> int:
    city, name = airport.city.casefold(), airport.name.casefold()
    if city.startswith(query) or name.startswith(query):
        return 0
    if any(word.startswith(query) for word in f"{city} {name}".replace("-", " ").split()):
        return 1
    return 2


def test_prefix_then_word_prefix_then_substring():
    results = airports_search(query="burg", limit=100)
    kinds = [_match_kind(airport, "burg") for airport in results]
    assert kinds == sorted(kinds)
    assert {0, 2} <= set(kinds)  # "Burgos" … before "Hamburg" …
    assert "HAM" in iatas(results)


def test_limit_and_empty_query():
    assert len(airports_search(query="a", limit=7)) == 7
    assert airports_search(query="   ") == []
    assert airports_search(query="zzzzqqqq") == []


def test_only_airports_with_an_iata_code():
    assert all(airport.iata for airport in airports_search(query="airport", limit=500))
