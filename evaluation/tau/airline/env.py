"""Airline: users, direct flights by date, reservations (tau-style airline, our own database and tools)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from toolace_mt.envs.base import ToolFailure, tool

from ...episodes.domain import TauEnv

_AIRPORTS = {"JFK": "New York", "LAX": "Los Angeles", "ORD": "Chicago", "SEA": "Seattle", "MIA": "Miami",
             "DEN": "Denver", "BOS": "Boston", "ATL": "Atlanta"}
_FIRST = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Ines", "Kenji", "Priya", "Lucas", "Sofia", "Ethan",
          "Yara", "Mateo", "Chloe", "Ravi", "Elena", "Hugo"]
_LAST = ["Garcia", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva", "Kim", "Meyer", "Dubois"]
DATES = [f"2024-05-{d:02d}" for d in range(15, 22)]
BAG_PRICE = 50  # dollars per checked bag (policy.md)
INSURANCE_PRICE = 30  # dollars per passenger (policy.md)
CERTIFICATE_PER_PASSENGER = 50  # dollars, for a delayed flight (policy.md)


class AirlineEnv(TauEnv):
    domain = "tau_airline"
    description = "An airline: look up users and reservations, book direct flights, cancel, add bags, edit passengers."
    POLICY_FILE = Path(__file__).with_name("policy.md")
    ENTITIES = {"user_id": "users[].user_id", "reservation_id": "reservations[].reservation_id"}

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        codes = sorted(_AIRPORTS)
        flights: dict[str, Any] = {}
        n = 100
        for o in codes:
            for d in rng.sample([c for c in codes if c != o], 3):
                n += rng.randint(1, 7)
                fn = f"HAT{n:03d}"
                dates = {}
                for day in DATES:
                    dates[day] = {"status": "available",
                                  "prices": {"economy": rng.randint(80, 400), "business": rng.randint(500, 1500)},
                                  "available_seats": {"economy": rng.randint(0, 12), "business": rng.randint(0, 4)}}
                flights[fn] = {"flight_number": fn, "origin": o, "destination": d,
                               "departure_time": f"{rng.randint(6, 21):02d}:{rng.choice(['00', '30'])}",
                               "dates": dates}
        users: dict[str, Any] = {}
        reservations: dict[str, Any] = {}
        fns = sorted(flights)
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        for ui, first in enumerate(_FIRST):
            last = rng.choice(_LAST)
            uid = f"{first.lower()}_{last.lower()}_{2000 + ui}"
            cc = f"credit_card_{rng.randint(1000000, 9999999)}"
            cert = f"certificate_{rng.randint(1000000, 9999999)}"
            pms = {cc: {"id": cc, "source": "credit_card", "last_four": f"{rng.randint(1000, 9999)}"},
                   cert: {"id": cert, "source": "certificate", "amount": rng.choice([100, 150, 250])}}
            res_ids = []
            for k in range(2):
                rid = "".join(rng.choice(letters) for _ in range(6))
                fn = rng.choice(fns)
                f = flights[fn]
                day = DATES[rng.randint(0, 3)]
                cabin = "economy" if k == 0 else rng.choice(["economy", "business"])
                dob = f"19{rng.randint(60, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                pax = [{"first_name": first, "last_name": last, "dob": dob}]
                if rng.random() < 0.5:
                    pax.append({"first_name": rng.choice(_FIRST), "last_name": last,
                                "dob": f"19{rng.randint(60, 99)}-0{rng.randint(1, 9)}-2{rng.randint(0, 8)}"})
                bags = rng.randint(0, 2)
                ins = rng.random() < 0.3
                price = (f["dates"][day]["prices"][cabin] * len(pax) + BAG_PRICE * bags
                         + INSURANCE_PRICE * len(pax) * ins)
                if (ui + k) % 3 == 0:
                    f["dates"][day]["status"] = "delayed"
                reservations[rid] = {"reservation_id": rid, "user_id": uid, "origin": f["origin"],
                                     "destination": f["destination"], "flight_number": fn, "date": day,
                                     "cabin": cabin, "passengers": pax, "total_baggages": bags,
                                     "insurance": ins, "status": "booked",
                                     "payment_history": [{"payment_id": cc, "amount": price}]}
                res_ids.append(rid)
            users[uid] = {"user_id": uid, "name": {"first_name": first, "last_name": last},
                          "email": f"{first.lower()}.{last.lower()}@example.com", "payment_methods": pms,
                          "membership": rng.choice(["regular", "silver", "gold"]), "reservations": res_ids}
        return {"airports": dict(_AIRPORTS), "flights": flights, "users": users, "reservations": reservations,
                "next_reservation": 1}

    # helpers -----------------------------------------------------------------------------------
    def _user(self, user_id: str) -> dict[str, Any]:
        u = self.state["users"].get(user_id)
        if u is None:
            raise ToolFailure("not_found", f"user {user_id} not found")
        return u

    def _res(self, reservation_id: str) -> dict[str, Any]:
        r = self.state["reservations"].get(reservation_id)
        if r is None:
            raise ToolFailure("not_found", f"reservation {reservation_id} not found")
        return r

    def _charge(self, user_id: str, payment_id: str, amount: float) -> dict[str, Any]:
        pm = self._user(user_id)["payment_methods"].get(payment_id)
        if pm is None:
            raise ToolFailure("not_found", f"payment method {payment_id} not found for {user_id}")
        if pm["source"] == "certificate":
            if pm["amount"] < amount:
                raise ToolFailure("conflict", "certificate balance is not enough")
            pm["amount"] -= amount
        return {"payment_id": payment_id, "amount": amount}

    @staticmethod
    def _check_passengers(passengers: list) -> None:
        for p in passengers:
            if not isinstance(p, dict) or set(p) != {"first_name", "last_name", "dob"}:
                raise ToolFailure("invalid_arguments", "each passenger needs exactly first_name, last_name, dob")

    # read tools --------------------------------------------------------------------------------
    @tool(writes=False, consumes={"user_id": "user_id"}, produces={"reservation_id": "reservations[]"})
    def get_user_details(self, user_id: str) -> dict:
        """Get a user's profile: name, email, payment methods, membership and reservation ids.

        Args:
            user_id: The user id, e.g. ava_garcia_2000.
        """
        return self._user(user_id)

    @tool(writes=False, consumes={"reservation_id": "reservation_id"})
    def get_reservation_details(self, reservation_id: str) -> dict:
        """Get a reservation's flight, date, cabin, passengers, bags, insurance, status and payments.

        Args:
            reservation_id: The reservation id, six characters, e.g. 8JX2WO.
        """
        return self._res(reservation_id)

    @tool(writes=False)
    def list_all_airports(self) -> dict:
        """List every airport code with its city."""
        return dict(self.state["airports"])

    @tool(writes=False)
    def search_direct_flight(self, origin: str, destination: str, date: str) -> list:
        """Search direct flights between two airports on a date.

        Args:
            origin: Origin airport code, e.g. JFK.
            destination: Destination airport code, e.g. LAX.
            date: The date, YYYY-MM-DD.
        """
        out = []
        for fn in sorted(self.state["flights"]):
            f = self.state["flights"][fn]
            if f["origin"] == origin and f["destination"] == destination and date in f["dates"]:
                d = f["dates"][date]
                out.append({"flight_number": fn, "origin": origin, "destination": destination, "date": date,
                            "departure_time": f["departure_time"], **d})
        return out

    # write tools -------------------------------------------------------------------------------
    @tool(writes=True, consumes={"user_id": "user_id"}, produces={"reservation_id": "reservation_id"})
    def book_reservation(self, user_id: str, flight_number: str, date: str, cabin: str, passengers: list[dict],
                         payment_id: str, total_baggages: int, insurance: bool) -> dict:
        """Book a one-way direct flight; the total is charged to one payment method of the user.

        Args:
            user_id: The user id.
            flight_number: The flight number, e.g. HAT104.
            date: The date, YYYY-MM-DD.
            cabin: 'economy' or 'business'.
            passengers: Passengers, each {"first_name", "last_name", "dob" (YYYY-MM-DD)}.
            payment_id: The payment method id.
            total_baggages: Number of checked bags (50 dollars each).
            insurance: Whether to buy travel insurance (30 dollars per passenger).
        """
        self._user(user_id)
        f = self.state["flights"].get(flight_number)
        if f is None or date not in f["dates"]:
            raise ToolFailure("not_found", f"flight {flight_number} on {date} not found")
        if cabin not in ("economy", "business"):
            raise ToolFailure("invalid_arguments", "cabin must be economy or business")
        self._check_passengers(passengers)
        d = f["dates"][date]
        if d["status"] != "available" or d["available_seats"][cabin] < len(passengers) or not passengers:
            raise ToolFailure("conflict", "not enough seats available")
        price = d["prices"][cabin] * len(passengers) + BAG_PRICE * total_baggages + \
            INSURANCE_PRICE * len(passengers) * bool(insurance)
        pay = self._charge(user_id, payment_id, price)
        d["available_seats"][cabin] -= len(passengers)
        rid = f"NEW{self.state['next_reservation']:03d}"
        self.state["next_reservation"] += 1
        r = {"reservation_id": rid, "user_id": user_id, "origin": f["origin"], "destination": f["destination"],
             "flight_number": flight_number, "date": date, "cabin": cabin, "passengers": passengers,
             "total_baggages": total_baggages, "insurance": bool(insurance), "status": "booked",
             "payment_history": [pay]}
        self.state["reservations"][rid] = r
        self.state["users"][user_id]["reservations"].append(rid)
        return r

    @tool(writes=True, consumes={"reservation_id": "reservation_id"})
    def cancel_reservation(self, reservation_id: str) -> dict:
        """Cancel a reservation; every payment is refunded to its payment method.

        Args:
            reservation_id: The reservation id.
        """
        r = self._res(reservation_id)
        if r["status"] == "cancelled":
            raise ToolFailure("conflict", "reservation is already cancelled")
        refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in r["payment_history"]]
        r["payment_history"].extend(refunds)
        r["status"] = "cancelled"
        return r

    @tool(writes=True, consumes={"reservation_id": "reservation_id"})
    def update_reservation_baggages(self, reservation_id: str, total_baggages: int, payment_id: str) -> dict:
        """Set the total number of checked bags (only increases); added bags are charged 50 dollars each.

        Args:
            reservation_id: The reservation id.
            total_baggages: The new total number of checked bags.
            payment_id: The payment method id for the added bags.
        """
        r = self._res(reservation_id)
        added = total_baggages - r["total_baggages"]
        if added < 0:
            raise ToolFailure("forbidden", "bags cannot be removed")
        if added:
            r["payment_history"].append(self._charge(r["user_id"], payment_id, BAG_PRICE * added))
        r["total_baggages"] = total_baggages
        return r

    @tool(writes=True, consumes={"reservation_id": "reservation_id"})
    def update_reservation_passengers(self, reservation_id: str, passengers: list[dict]) -> dict:
        """Replace the passengers' details; the number of passengers cannot change.

        Args:
            reservation_id: The reservation id.
            passengers: Passengers, each {"first_name", "last_name", "dob" (YYYY-MM-DD)}.
        """
        r = self._res(reservation_id)
        self._check_passengers(passengers)
        if len(passengers) != len(r["passengers"]):
            raise ToolFailure("forbidden", "the number of passengers cannot change")
        r["passengers"] = passengers
        return r

    @tool(writes=True, consumes={"user_id": "user_id"})
    def send_certificate(self, user_id: str, amount: int) -> str:
        """Send a travel certificate to the user as compensation.

        Args:
            user_id: The user id.
            amount: The certificate amount in dollars.
        """
        u = self._user(user_id)
        cid = f"certificate_comp_{len(u['payment_methods']) + 1}"
        u["payment_methods"][cid] = {"id": cid, "source": "certificate", "amount": amount}
        return f"Certificate {cid} of {amount} dollars added to user {user_id}"
