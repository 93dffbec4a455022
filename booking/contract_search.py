"""Contract allotments as offers of the hotel search (issue 11: "contract allotment is inventory the search
and allocation see first"). ``booking.apps`` registers :func:`contract_offers_for_search` as the search's
contract source; the search ranks them before vendor offers."""

from decimal import Decimal

from booking.contracts.selectors import contract_offers
from booking.hotel_search import ContractOffer, SearchQuery
from booking.models import Hotel
from booking.vendors import Money
from nexa.platform.auth import Principal
from nexa.platform.urns import InvalidUrn, parse_urn


def _hotel_id(hotel_urn: str) -> str | None:
    try:
        return str(parse_urn(hotel_urn, "hotel").id)
    except InvalidUrn:
        return None


def contract_offers_for_search(*, principal: Principal, query: SearchQuery) -> list[ContractOffer]:
    """The airline's current contracts at the search's airport that cover every night of the stay and
    still hold rooms, described with their catalog hotel (a contract whose hotel is not in the catalog
    has no name, stars or distance to rank by, and is left out)."""
    allotments = [
        offer
        for offer in contract_offers(
            airline=principal.airline,
            airport=query.airport,
            check_in=query.check_in,
            nights=query.nights,
            rooms=query.rooms,
        )
        if offer.rooms_available > 0
    ]
    ids = {_hotel_id(offer.hotel_urn) for offer in allotments} - {None}
    hotels = {hotel.urn: hotel for hotel in Hotel.objects.filter(airline=principal.airline, id__in=ids)}
    return [
        ContractOffer(
            contract_urn=offer.contract_urn,
            hotel_urn=offer.hotel_urn,
            name=hotel.name,
            stars=hotel.stars,
            distance_km=hotel.distance_km,
            nightly_rate=Money(Decimal(offer.nightly_rate), offer.currency),
            rooms_available=offer.rooms_available,
            accessible=hotel.accessible_rooms > 0,
        )
        for offer in allotments
        if (hotel := hotels.get(offer.hotel_urn)) is not None
    ]
