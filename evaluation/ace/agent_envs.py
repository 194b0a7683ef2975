"""Our own ACEBench-style agent environments (phone platform + travel), in our `@tool` Env style.

The state is keyed by "class" like the official scenarios (BaseApi, MessageApi, ReminderApi, FoodPlatform,
Travel), so end-to-end accuracy can compare the saved state of each involved class. Preconditions make the
agent plan: messages need wifi and a logged-in device, the inbox holds at most `INBOX_CAPACITY` messages
(delete one first), food orders need a platform login and enough balance.
"""
from __future__ import annotations

import copy
import random
from typing import Any, ClassVar

from toolace_mt.envs.base import Env, ToolFailure, tool

INBOX_CAPACITY = 6  # chosen: small, so some tasks must delete a message before sending one

CONTACTS = {"Eve": "USR100", "Frank": "USR101", "Grace": "USR102", "Helen": "USR103", "Isaac": "USR104",
            "Jack": "USR105"}
MERCHANTS = {"Pizza Planet": {"Margherita Pizza": 12.5, "Pepperoni Pizza": 14.0, "Garlic Bread": 4.5},
             "Sushi Corner": {"Salmon Roll": 9.0, "Tuna Nigiri": 7.5, "Miso Soup": 3.0},
             "Burger Barn": {"Classic Burger": 10.0, "Veggie Burger": 9.5, "Fries": 3.5}}


def phone_state() -> dict[str, Any]:
    names = list(CONTACTS)
    inbox = {}
    texts = ["Are we still on for Friday?", "Please send me the slides.", "Happy birthday!",
             "The meeting moved to 3 PM.", "Can you pick up milk?"]
    for i, t in enumerate(texts, start=1):
        inbox[str(i)] = {"sender": names[i % 6], "receiver": names[(i + 2) % 6], "message": t}
    return {
        "BaseApi": {"wifi": False, "logged_in": True},
        "MessageApi": {"inbox": inbox, "next_id": len(inbox) + 1},
        "ReminderApi": {"reminders": {"1": {"title": "Dentist", "description": "Checkup at Dr. Lee",
                                            "time": "2025-03-04 10:00"}}, "next_id": 2},
        "FoodPlatform": {"users": {n: {"password": f"{n.lower()}pass", "balance": 40.0 + 15 * i}
                                   for i, n in enumerate(names)},
                         "logged_in_users": [], "orders": []},
    }


class PhoneEnv(Env):
    domain = "ace_phone"
    description = "A phone: wifi and device login, messages, reminders, and a food delivery platform."
    CLASSES: ClassVar[list[str]] = ["BaseApi", "MessageApi", "ReminderApi", "FoodPlatform"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        return phone_state()

    def _online(self) -> None:
        b = self.state["BaseApi"]
        if not b["wifi"]:
            raise ToolFailure("forbidden", "wifi is off")
        if not b["logged_in"]:
            raise ToolFailure("forbidden", "device is not logged in")

    @tool(writes=True)
    def turn_on_wifi(self) -> str:
        """Turn on the phone's wifi."""
        self.state["BaseApi"]["wifi"] = True
        return "wifi is on"

    @tool(writes=True)
    def login_device(self) -> str:
        """Log in to the phone."""
        self.state["BaseApi"]["logged_in"] = True
        return "device logged in"

    @tool(writes=True)
    def send_message(self, sender_name: str, receiver_name: str, message: str) -> dict:
        """Send a text message. Needs wifi and a logged-in device; fails when the inbox is full.

        Args:
            sender_name: The sender's name.
            receiver_name: The receiver's name.
            message: The message text.
        """
        self._online()
        for n in (sender_name, receiver_name):
            if n not in CONTACTS:
                raise ToolFailure("not_found", f"unknown contact {n}")
        m = self.state["MessageApi"]
        if len(m["inbox"]) >= INBOX_CAPACITY:
            raise ToolFailure("conflict", "inbox is full: delete a message first")
        mid = str(m["next_id"])
        m["next_id"] += 1
        m["inbox"][mid] = {"sender": sender_name, "receiver": receiver_name, "message": message}
        return {"message_id": int(mid), "status": "sent"}

    @tool(writes=False)
    def view_messages_between_users(self, sender_name: str, receiver_name: str) -> list:
        """List the messages sent by one user to another.

        Args:
            sender_name: The sender's name.
            receiver_name: The receiver's name.
        """
        return [{"message_id": int(k), **v} for k, v in self.state["MessageApi"]["inbox"].items()
                if v["sender"] == sender_name and v["receiver"] == receiver_name]

    @tool(writes=True)
    def delete_message(self, message_id: int) -> str:
        """Delete a message by id.

        Args:
            message_id: The message id.
        """
        inbox = self.state["MessageApi"]["inbox"]
        if str(message_id) not in inbox:
            raise ToolFailure("not_found", f"no message {message_id}")
        del inbox[str(message_id)]
        return f"message {message_id} deleted"

    @tool(writes=False)
    def get_earliest_message_id(self) -> dict:
        """Get the id of the oldest message in the inbox."""
        inbox = self.state["MessageApi"]["inbox"]
        if not inbox:
            raise ToolFailure("not_found", "inbox is empty")
        return {"message_id": min(int(k) for k in inbox)}

    @tool(writes=False)
    def get_latest_message_id(self) -> dict:
        """Get the id of the newest message in the inbox."""
        inbox = self.state["MessageApi"]["inbox"]
        if not inbox:
            raise ToolFailure("not_found", "inbox is empty")
        return {"message_id": max(int(k) for k in inbox)}

    @tool(writes=True)
    def add_reminder(self, title: str, description: str, time: str) -> dict:
        """Add a reminder.

        Args:
            title: The reminder title.
            description: What to remember.
            time: When, 'YYYY-MM-DD HH:MM'.
        """
        r = self.state["ReminderApi"]
        rid = str(r["next_id"])
        r["next_id"] += 1
        r["reminders"][rid] = {"title": title, "description": description, "time": time}
        return {"reminder_id": int(rid)}

    @tool(writes=False)
    def view_reminder_by_title(self, title: str) -> dict:
        """Find a reminder by its title.

        Args:
            title: The reminder title.
        """
        for rid, r in self.state["ReminderApi"]["reminders"].items():
            if r["title"] == title:
                return {"reminder_id": int(rid), **r}
        raise ToolFailure("not_found", f"no reminder titled {title}")

    @tool(writes=True)
    def login_food_platform(self, username: str, password: str) -> str:
        """Log in to the food delivery platform.

        Args:
            username: The user name.
            password: The password.
        """
        self._online()
        f = self.state["FoodPlatform"]
        u = f["users"].get(username)
        if u is None or u["password"] != password:
            raise ToolFailure("forbidden", "wrong user name or password")
        if username not in f["logged_in_users"]:
            f["logged_in_users"].append(username)
        return f"{username} logged in"

    @tool(writes=False)
    def check_balance(self, username: str) -> dict:
        """Check a food platform user's balance.

        Args:
            username: The user name.
        """
        u = self.state["FoodPlatform"]["users"].get(username)
        if u is None:
            raise ToolFailure("not_found", f"no user {username}")
        return {"username": username, "balance": u["balance"]}

    @tool(writes=False)
    def get_products(self, merchant_name: str) -> list:
        """List a merchant's products and prices.

        Args:
            merchant_name: The merchant's name.
        """
        if merchant_name not in MERCHANTS:
            raise ToolFailure("not_found", f"no merchant {merchant_name}")
        return [{"product": p, "price": v} for p, v in MERCHANTS[merchant_name].items()]

    @tool(writes=True)
    def add_food_delivery_order(self, username: str, merchant_name: str, items: list[dict]) -> dict:
        """Order food for delivery; the total is paid from the user's balance.

        Args:
            username: The user name (logged in to the platform).
            merchant_name: The merchant's name.
            items: Items, each {"product": name, "quantity": n}.
        """
        f = self.state["FoodPlatform"]
        if username not in f["logged_in_users"]:
            raise ToolFailure("forbidden", f"{username} is not logged in to the food platform")
        menu = MERCHANTS.get(merchant_name)
        if menu is None:
            raise ToolFailure("not_found", f"no merchant {merchant_name}")
        lines, total = [], 0.0
        for it in items:
            if not isinstance(it, dict) or it.get("product") not in menu or not isinstance(it.get("quantity"), int) \
                    or it["quantity"] < 1:
                raise ToolFailure("invalid_arguments", f"bad item {it!r}")
            lines.append({"product": it["product"], "quantity": it["quantity"], "price": menu[it["product"]]})
            total += menu[it["product"]] * it["quantity"]
        if f["users"][username]["balance"] < total:
            raise ToolFailure("conflict", "balance is not enough")
        f["users"][username]["balance"] = round(f["users"][username]["balance"] - total, 2)
        order = {"user": username, "merchant": merchant_name, "items": lines, "total": round(total, 2)}
        f["orders"].append(order)
        return order


def travel_state() -> dict[str, Any]:
    return {"Travel": {
        "users": {"U200": {"name": "Olivia", "balance": 900.0, "cards": ["card_7788"]},
                  "U201": {"name": "Marco", "balance": 300.0, "cards": ["card_1234"]},
                  "U202": {"name": "Priya", "balance": 1500.0, "cards": ["card_5555"]}},
        "flights": {"CA101": {"origin": "Beijing", "destination": "Shanghai", "date": "2025-04-02",
                              "prices": {"economy": 180.0, "business": 520.0}, "seats": 5},
                    "CA205": {"origin": "Shanghai", "destination": "Chengdu", "date": "2025-04-03",
                              "prices": {"economy": 150.0, "business": 430.0}, "seats": 2},
                    "MU330": {"origin": "Beijing", "destination": "Chengdu", "date": "2025-04-02",
                              "prices": {"economy": 260.0, "business": 700.0}, "seats": 4}},
        "reservations": {"R9001": {"user_id": "U201", "flight": "CA205", "cabin": "economy", "status": "booked",
                                   "paid": 150.0}},
        "next_reservation": 9002}}


class TravelEnv(Env):
    domain = "ace_travel"
    description = "Flight search, booking and cancellation for registered users."
    CLASSES: ClassVar[list[str]] = ["Travel"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        return travel_state()

    @property
    def _t(self) -> dict[str, Any]:
        return self.state["Travel"]

    @tool(writes=False)
    def get_user_details(self, user_id: str) -> dict:
        """Get a user's name, balance and cards.

        Args:
            user_id: The user id, e.g. U200.
        """
        u = self._t["users"].get(user_id)
        if u is None:
            raise ToolFailure("not_found", f"no user {user_id}")
        return copy.deepcopy(u)

    @tool(writes=False)
    def search_flights(self, origin: str, destination: str) -> list:
        """Search direct flights between two cities.

        Args:
            origin: Origin city.
            destination: Destination city.
        """
        return [{"flight_no": k, **v} for k, v in sorted(self._t["flights"].items())
                if v["origin"] == origin and v["destination"] == destination]

    @tool(writes=True)
    def reserve_flight(self, user_id: str, flight_no: str, cabin: str, payment_method: str) -> dict:
        """Book a seat; pay with 'balance' or one of the user's cards.

        Args:
            user_id: The user id.
            flight_no: The flight number.
            cabin: 'economy' or 'business'.
            payment_method: 'balance' or a card id of the user.
        """
        u = self._t["users"].get(user_id)
        f = self._t["flights"].get(flight_no)
        if u is None or f is None:
            raise ToolFailure("not_found", "unknown user or flight")
        if cabin not in f["prices"] or f["seats"] < 1:
            raise ToolFailure("conflict", "no seat in that cabin")
        price = f["prices"][cabin]
        if payment_method == "balance":
            if u["balance"] < price:
                raise ToolFailure("conflict", "balance is not enough")
            u["balance"] = round(u["balance"] - price, 2)
        elif payment_method not in u["cards"]:
            raise ToolFailure("forbidden", "unknown payment method")
        f["seats"] -= 1
        rid = f"R{self._t['next_reservation']}"
        self._t["next_reservation"] += 1
        self._t["reservations"][rid] = {"user_id": user_id, "flight": flight_no, "cabin": cabin, "status": "booked",
                                        "paid": price}
        return {"reservation_id": rid, "price": price}

    @tool(writes=True)
    def cancel_reservation(self, reservation_id: str) -> dict:
        """Cancel a booked reservation; the price goes back to the user's balance.

        Args:
            reservation_id: The reservation id.
        """
        r = self._t["reservations"].get(reservation_id)
        if r is None or r["status"] != "booked":
            raise ToolFailure("not_found", f"no booked reservation {reservation_id}")
        r["status"] = "cancelled"
        self._t["users"][r["user_id"]]["balance"] = round(self._t["users"][r["user_id"]]["balance"] + r["paid"], 2)
        self._t["flights"][r["flight"]]["seats"] += 1
        return {"reservation_id": reservation_id, "refund": r["paid"]}


AGENT_ENVS = {"phone": PhoneEnv, "travel": TravelEnv}
