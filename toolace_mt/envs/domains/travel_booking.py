"""Travel booking: search and book flights and hotels, list and cancel bookings."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_CITIES = {"SFO": "San Francisco", "JFK": "New York", "LHR": "London", "CDG": "Paris", "NRT": "Tokyo",
           "LIS": "Lisbon"}
_DATES = ["2024-06-03", "2024-06-04", "2024-06-05"]
TODAY = "2024-06-01"  # chosen: the traveller plans two days before the earliest sampled flight date
_DAY = Rule(date=True, window=True)  # a travel date: a real day, not in the past, within the booking window
_NAME = Rule(max_len=100)  # chosen: a full name fits in 100 characters
_AIRLINES = ["United", "Delta", "British Airways", "Air France", "ANA", "TAP"]
_HOTEL_WORDS = ["Grand", "Harbor", "Central", "Garden", "Riverside", "Plaza"]
_HOTEL_KIND = ["Hotel", "Inn", "Suites", "Lodge"]


@register
class TravelBookingEnv(Env):
    domain = "travel_booking"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "Search and book flights and hotels; list and cancel the traveller's bookings."
    ENTITIES = {"flight_id": "flights[].flight_id", "hotel_id": "hotels[].hotel_id",
                "flight_booking_id": "flight_bookings[].booking_id",
                "hotel_booking_id": "hotel_bookings[].booking_id", "airport_code": "airports[]",
                "city": "hotels[].city"}
    VALUE_POOLS = {
        "date": _DATES,
        "check_in": _DATES,
        "nights": [1, 2, 3, 5],
        "passenger_name": ["Maria Lopez", "John Carter", "Aiko Mori", "Samir Nasser"],
        "guest_name": ["Maria Lopez", "John Carter", "Aiko Mori", "Samir Nasser"],
        "seat_class": ["economy", "business"],
        "max_price": [400.0, 800.0, 1500.0],
        "min_stars": [3, 4],
    }
    LONG_CONTEXT_KEYS = ["flights", "hotels"]

    @classmethod
    def _flight(cls, rng: random.Random, fid: str, o: str, d: str, date: str) -> dict[str, Any]:
        hour = rng.randint(6, 21)
        return {"flight_id": fid, "airline": rng.choice(_AIRLINES), "origin": o, "destination": d, "date": date,
                "departure": f"{hour:02d}:{rng.choice(['00', '15', '30', '45'])}",
                "price": {"economy": float(rng.randint(120, 900)), "business": float(rng.randint(1200, 4000))},
                "seats_left": rng.randint(1, 9)}

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        airports = sorted(rng.sample(sorted(_CITIES), 4))
        pairs = [(o, d) for o in airports for d in airports if o != d]
        fids = iter(unique_ids(rng, "FL", len(pairs) * len(_DATES), 100, 10000))
        # chosen: one flight per route and date so that every (origin, destination, date) search finds one
        flights = [cls._flight(rng, next(fids), o, d, date) for o, d in pairs for date in _DATES]
        hotels = []
        hids = iter(unique_ids(rng, "H", 2 * len(airports), 100, 1000))
        for code in airports:
            for _ in range(2):
                hotels.append({"hotel_id": next(hids), "city": _CITIES[code],
                               "name": f"{rng.choice(_HOTEL_WORDS)} {rng.choice(_HOTEL_KIND)}",
                               "stars": rng.randint(2, 5), "price_per_night": float(rng.randint(70, 380)),
                               "rooms_left": rng.randint(1, 6)})
        f = rng.choice(flights)
        fb = [{"booking_id": "FB1001", "flight_id": f["flight_id"], "passenger_name": "Alex Kim",
               "seat_class": "economy", "price": f["price"]["economy"], "status": "confirmed"}]
        h = rng.choice(hotels)
        hb = [{"booking_id": "HB1001", "hotel_id": h["hotel_id"], "guest_name": "Alex Kim", "check_in": _DATES[0],
               "nights": 2, "total": round(h["price_per_night"] * 2, 2), "status": "confirmed"}]
        return {"today": TODAY, "airports": airports, "flights": flights, "hotels": hotels,
                "flight_bookings": fb, "hotel_bookings": hb, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Extra flights on later dates and extra hotels in the same cities."""
        taken = {f["flight_id"] for f in state["flights"]} | {h["hotel_id"] for h in state["hotels"]}
        ap = state["airports"]
        for fid in unique_ids(rng, "FL", n, 10000, 100000, taken):
            if rng.random() < 0.2:
                hid = unique_ids(rng, "H", 1, 1000, 100000, taken)[0]
                taken.add(hid)
                state["hotels"].append({"hotel_id": hid, "city": _CITIES[rng.choice(ap)],
                                        "name": f"{rng.choice(_HOTEL_WORDS)} {rng.choice(_HOTEL_KIND)}",
                                        "stars": rng.randint(2, 5), "price_per_night": float(rng.randint(70, 380)),
                                        "rooms_left": rng.randint(1, 6)})
            o, d = rng.sample(ap, 2)
            state["flights"].append(cls._flight(rng, fid, o, d, f"2024-07-{rng.randint(1, 28):02d}"))
        return state

    def _find(self, key: str, id_key: str, value: str, what: str) -> dict[str, Any]:
        for x in self.state[key]:
            if x[id_key] == value:
                return x
        raise ToolFailure("not_found", f"no {what} with id {value}")

    def _new_id(self, prefix: str) -> str:
        i = self.state["next_id"]
        self.state["next_id"] += 1
        return f"{prefix}{2000 + i}"

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"airport_code": "airports[].code", "city": "airports[].city"},
          phrases=["Which airports can I fly between?", "What destinations do you serve?"])
    def list_airports(self) -> dict:
        """List the airports served, with their city."""
        return {"airports": [{"code": c, "city": _CITIES[c]} for c in self.state["airports"]]}

    @tool(writes=False, consumes={"origin": "airport_code", "destination": "airport_code"},
          produces={"flight_id": "flights[].flight_id"},
          rules={"date": _DAY, "max_price": Rule(ge=0), "origin": Rule(max_len=10), "destination": Rule(max_len=10)},
          phrases=["Find flights from {origin} to {destination} on {date}.",
                   "I need to fly {origin} to {destination} on {date}, what's available?"])
    def search_flights(self, origin: str, destination: str, date: str, max_price: Optional[float] = None) -> dict:
        """Search flights between two airports on a date.

        Args:
            origin: IATA code of the departure airport, e.g. SFO.
            destination: IATA code of the arrival airport.
            date: Departure date, YYYY-MM-DD.
            max_price: Only flights whose economy fare is at most this, in USD.
        """
        for code in (origin, destination):
            if code not in self.state["airports"]:
                raise ToolFailure("not_found", f"no airport {code} (served: {', '.join(self.state['airports'])})")
        if origin == destination:
            raise ToolFailure("invalid_request", "origin and destination are the same")
        hits = [dict(f, price=dict(f["price"])) for f in self.state["flights"] if f["origin"] == origin and f["destination"] == destination
                and f["date"] == date and (max_price is None or f["price"]["economy"] <= max_price)]
        return {"flights": hits}

    @tool(writes=False, consumes={"flight_id": "flight_id"}, produces={"flight_id": "flight_id"},
          phrases=["Tell me more about flight {flight_id}.", "What are the details of {flight_id}?"])
    def get_flight_details(self, flight_id: str) -> dict:
        """Get the schedule, fares and seats left of one flight.

        Args:
            flight_id: The flight's id, e.g. FL1234.
        """
        f = self._find("flights", "flight_id", flight_id, "flight")
        return dict(f, price=dict(f["price"]))

    @tool(writes=True, consumes={"flight_id": "flight_id"}, produces={"flight_booking_id": "booking_id"},
          rules={"passenger_name": _NAME},
          phrases=["Book flight {flight_id} for {passenger_name} in {seat_class}.",
                   "Reserve a {seat_class} seat on {flight_id} for {passenger_name}."])
    def book_flight(self, flight_id: str, passenger_name: str,
                    seat_class: Literal["economy", "business"] = "economy") -> dict:
        """Book a seat on a flight.

        Args:
            flight_id: The flight's id.
            passenger_name: Full name of the passenger as on the passport.
            seat_class: Cabin class.
        """
        f = self._find("flights", "flight_id", flight_id, "flight")
        if f["seats_left"] <= 0:
            raise ToolFailure("conflict", f"flight {flight_id} is sold out")
        f["seats_left"] -= 1
        bid = self._new_id("FB")
        b = {"booking_id": bid, "flight_id": flight_id, "passenger_name": passenger_name, "seat_class": seat_class,
             "price": f["price"][seat_class], "status": "confirmed"}
        self.state["flight_bookings"].append(b)
        return dict(b)

    @tool(writes=False, produces={"flight_booking_id": "flight_bookings[].booking_id",
                                  "hotel_booking_id": "hotel_bookings[].booking_id"},
          phrases=["What trips do I have booked?", "Show all my bookings."])
    def list_bookings(self) -> dict:
        """List the traveller's flight and hotel bookings."""
        return {"flight_bookings": [dict(b) for b in self.state["flight_bookings"]],
                "hotel_bookings": [dict(b) for b in self.state["hotel_bookings"]]}

    @tool(writes=True, consumes={"booking_id": "flight_booking_id"},
          phrases=["Cancel my flight booking {booking_id}.", "Please cancel flight reservation {booking_id}."])
    def cancel_flight_booking(self, booking_id: str) -> dict:
        """Cancel a flight booking and release the seat.

        Args:
            booking_id: The flight booking's id, e.g. FB2001.
        """
        b = self._find("flight_bookings", "booking_id", booking_id, "flight booking")
        if b["status"] == "cancelled":
            raise ToolFailure("conflict", f"booking {booking_id} is already cancelled")
        b["status"] = "cancelled"
        for f in self.state["flights"]:
            if f["flight_id"] == b["flight_id"]:
                f["seats_left"] += 1
        return {"booking_id": booking_id, "status": "cancelled", "refund": b["price"]}

    @tool(writes=False, consumes={"city": "city"}, produces={"hotel_id": "hotels[].hotel_id"},
          rules={"city": Rule(max_len=100), "min_stars": Rule(ge=1, le=5)},
          phrases=["Find me a hotel in {city}.", "What hotels are there in {city}?"])
    def search_hotels(self, city: str, min_stars: Optional[int] = None) -> dict:
        """Search hotels in a city.

        Args:
            city: City name, e.g. Paris.
            min_stars: Only hotels with at least this many stars.
        """
        hits = [dict(h) for h in self.state["hotels"] if h["city"].lower() == city.lower()
                and (min_stars is None or h["stars"] >= min_stars)]
        return {"hotels": hits}

    @tool(writes=True, consumes={"hotel_id": "hotel_id"}, produces={"hotel_booking_id": "booking_id"},
          # chosen: a stay beyond 30 nights is a long-term rental, not a hotel booking
          rules={"guest_name": _NAME, "check_in": _DAY, "nights": Rule(ge=1, le=30)},
          phrases=["Book {hotel_id} for {guest_name} from {check_in} for {nights} nights.",
                   "Reserve a room at {hotel_id} checking in {check_in}, {nights} nights, name {guest_name}."])
    def book_hotel(self, hotel_id: str, guest_name: str, check_in: str, nights: int) -> dict:
        """Book a hotel room.

        Args:
            hotel_id: The hotel's id, e.g. H123.
            guest_name: Name the room is booked under.
            check_in: Check-in date, YYYY-MM-DD.
            nights: Number of nights, 1 to 30.
        """
        h = self._find("hotels", "hotel_id", hotel_id, "hotel")
        if nights < 1:
            raise ToolFailure("invalid_request", "nights must be at least 1")
        if h["rooms_left"] <= 0:
            raise ToolFailure("conflict", f"hotel {hotel_id} has no rooms left")
        h["rooms_left"] -= 1
        bid = self._new_id("HB")
        b = {"booking_id": bid, "hotel_id": hotel_id, "guest_name": guest_name, "check_in": check_in,
             "nights": nights, "total": round(h["price_per_night"] * nights, 2), "status": "confirmed"}
        self.state["hotel_bookings"].append(b)
        return dict(b)

    @tool(writes=True, consumes={"booking_id": "hotel_booking_id"},
          phrases=["Cancel hotel booking {booking_id}.", "I won't need the room {booking_id} anymore, cancel it."])
    def cancel_hotel_booking(self, booking_id: str) -> dict:
        """Cancel a hotel booking.

        Args:
            booking_id: The hotel booking's id, e.g. HB2002.
        """
        b = self._find("hotel_bookings", "booking_id", booking_id, "hotel booking")
        if b["status"] == "cancelled":
            raise ToolFailure("conflict", f"booking {booking_id} is already cancelled")
        b["status"] = "cancelled"
        for h in self.state["hotels"]:
            if h["hotel_id"] == b["hotel_id"]:
                h["rooms_left"] += 1
        return {"booking_id": booking_id, "status": "cancelled"}
