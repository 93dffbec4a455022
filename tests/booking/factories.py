"""factory_boy factories for the booking domain's reservations (the read side builds on these rows)."""

import datetime as dt
from decimal import Decimal

import factory

from booking.models import Hotel, Reservation, ReservationSource, ReservationStatus, RoomNight
from nexa.platform.urns import parse_urn
from tests.cases.factories import CaseFactory

CHECK_IN = dt.date(2026, 11, 22)


class HotelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hotel

    airline = "IB"
    airport = "MAD"
    name = factory.Sequence(lambda n: f"Hotel Barajas {n}")
    lat = 40.4721
    lng = -3.5610
    distance_km = 2.4
    stars = 4
    accessible_rooms = 2
    address = "Av. de Logroño 305, Madrid"
    phone = "+34913000000"


class ReservationFactory(factory.django.DjangoModelFactory):
    """A CONFIRMED contract reservation of one room for the given ``occupants`` (sub-cases): pass
    ``rooms=[[sub_case, …], …]`` to shape the rooms; room-nights are written for active reservations."""

    class Meta:
        model = Reservation
        skip_postgeneration_save = True

    case = factory.SubFactory(CaseFactory)
    airline = factory.SelfAttribute("case.airline")
    hotel = factory.SubFactory(HotelFactory, airline=factory.SelfAttribute("..airline"))
    hotel_name = factory.LazyAttribute(lambda r: r.hotel.name if r.hotel else "Hotel Fuera de Catálogo")
    source = ReservationSource.CONTRACT
    check_in = CHECK_IN
    nights = 1
    rooms = factory.LazyFunction(list)
    status = ReservationStatus.CONFIRMED
    confirmation_number = factory.Sequence(lambda n: f"CONF-{n:05d}")
    nightly_rate = Decimal("89.00")
    currency = "EUR"
    created_by = "urn:nexa:user:ib-ops"

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        # rooms=[[sub_case, …], …] (or [{"occupants": [sub_case, …], "accessible": …}]) → the stored JSON.
        shaped = []
        for room in kwargs.get("rooms") or []:
            if isinstance(room, dict):
                occupants, accessible = room["occupants"], room.get("accessible", False)
            else:
                occupants, accessible = room, False
            shaped.append(
                {"occupants": [o if isinstance(o, str) else o.urn for o in occupants], "accessible": accessible}
            )
        kwargs["rooms"] = shaped
        return kwargs

    @factory.post_generation
    def room_nights(self, create, extracted, **kwargs):
        if not create or self.status not in (ReservationStatus.HELD, ReservationStatus.CONFIRMED):
            return
        for room in self.rooms:
            for urn in room["occupants"]:
                for night in range(self.nights):
                    RoomNight.objects.create(
                        airline=self.airline,
                        reservation=self,
                        sub_case_id=parse_urn(urn, "subcase").id,
                        night=self.check_in + dt.timedelta(days=night),
                    )
