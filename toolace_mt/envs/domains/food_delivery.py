"""Food delivery: restaurants, menus, a cart, checkout, order tracking, cancellation, ratings."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_RESTAURANTS = {
    "italian": (["Trattoria Roma", "Luigi's Pizzeria"], [("Margherita Pizza", 13.5), ("Lasagna", 16.0),
                                                         ("Tiramisu", 7.5), ("Caesar Salad", 10.0)]),
    "japanese": (["Sakura Sushi", "Ramen Ichiban"], [("Salmon Nigiri (6)", 14.0), ("Tonkotsu Ramen", 15.5),
                                                    ("Gyoza", 7.0), ("Miso Soup", 4.0)]),
    "mexican": (["El Camino Taqueria", "Casa Verde"], [("Carnitas Tacos", 11.0), ("Chicken Burrito", 12.5),
                                                       ("Guacamole & Chips", 7.5), ("Churros", 6.0)]),
    "indian": (["Spice Route", "Bombay Kitchen"], [("Butter Chicken", 16.5), ("Palak Paneer", 14.0),
                                                  ("Garlic Naan", 4.0), ("Mango Lassi", 5.0)]),
    "vegan": (["Green Bowl", "Plant Power"], [("Buddha Bowl", 13.0), ("Vegan Burger", 14.5),
                                             ("Sweet Potato Fries", 6.0), ("Kombucha", 5.0)]),
}
_ADDRESSES = ["221B Baker St, Apt 3", "1600 Amphitheatre Pkwy", "350 5th Ave, Floor 21", "10 Downing Ln"]

MAX_PORTIONS = 50  # chosen: more than 50 of one dish is catering, not a delivery order


@register
class FoodDeliveryEnv(Env):
    domain = "food_delivery"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "Order food: find restaurants, read menus, fill a cart, check out, track, cancel and rate orders."
    ENTITIES = {"restaurant_id": "restaurants[].restaurant_id", "menu_item_id": "restaurants[].menu[].item_id",
                "food_order_id": "orders[].order_id"}
    VALUE_POOLS = {
        "cuisine": sorted(_RESTAURANTS),
        "quantity": [1, 2, 3],
        "address": _ADDRESSES,
        "tip": [0.0, 2.0, 3.5, 5.0],
        "stars": [3, 4, 5],
        "open_now": [True, False],
        "note": ["no onions please", "extra spicy", "ring the bell twice"],
    }
    LONG_CONTEXT_KEYS = ["orders"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        restaurants = []
        ids = iter(unique_ids(rng, "RS", 2 * len(_RESTAURANTS), 100, 1000))
        mids = iter(unique_ids(rng, "MI", 8 * len(_RESTAURANTS), 1000, 10000))
        for cuisine, (names, menu) in sorted(_RESTAURANTS.items()):
            for name in names:
                restaurants.append({"restaurant_id": next(ids), "name": name, "cuisine": cuisine,
                                    "rating": round(rng.uniform(3.6, 4.9), 1), "open": rng.random() < 0.85,
                                    "delivery_fee": rng.choice([0.0, 1.99, 2.99]),
                                    "menu": [{"item_id": next(mids), "name": n, "price": round(p * rng.uniform(0.95, 1.1), 2)}
                                             for n, p in menu]})
        for c in _RESTAURANTS:  # chosen: at least one open restaurant per cuisine so every search can lead to an order
            same = [r for r in restaurants if r["cuisine"] == c]
            if not any(r["open"] for r in same):
                same[0]["open"] = True
        r = next(x for x in restaurants if x["open"])
        it = r["menu"][0]
        orders = [{"order_id": "FO5001", "restaurant_id": r["restaurant_id"],
                   "items": [{"item_id": it["item_id"], "name": it["name"], "quantity": 1, "price": it["price"]}],
                   "total": round(it["price"] + r["delivery_fee"], 2), "status": "preparing", "address": _ADDRESSES[0],
                   "rating": None}]
        cart: dict[str, Any] = {"restaurant_id": None, "items": []}
        if rng.random() < 0.5:  # chosen: half the sessions start with a half-filled cart left from browsing
            r2 = rng.choice([x for x in restaurants if x["open"]])
            cart = {"restaurant_id": r2["restaurant_id"],
                    "items": [{"item_id": m["item_id"], "name": m["name"], "quantity": rng.randint(1, 2),
                               "price": m["price"]} for m in rng.sample(r2["menu"], 2)]}
        return {"restaurants": restaurants, "cart": cart, "orders": orders, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Past delivered orders from every restaurant."""
        taken = {o["order_id"] for o in state["orders"]}
        for oid in unique_ids(rng, "FO", n, 10000, 1000000, taken):
            r = rng.choice(state["restaurants"])
            it = rng.choice(r["menu"])
            q = rng.randint(1, 3)
            state["orders"].insert(0, {"order_id": oid, "restaurant_id": r["restaurant_id"],
                                       "items": [{"item_id": it["item_id"], "name": it["name"], "quantity": q,
                                                  "price": it["price"]}],
                                       "total": round(it["price"] * q + r["delivery_fee"], 2), "status": "delivered",
                                       "address": rng.choice(_ADDRESSES), "rating": rng.choice([None, 4, 5])})
        return state

    def _restaurant(self, rid: str) -> dict[str, Any]:
        for r in self.state["restaurants"]:
            if r["restaurant_id"] == rid:
                return r
        raise ToolFailure("not_found", f"no restaurant with id {rid}")

    def _order(self, oid: str) -> dict[str, Any]:
        for o in self.state["orders"]:
            if o["order_id"] == oid:
                return o
        raise ToolFailure("not_found", f"no order with id {oid}")

    def _cart_view(self) -> dict[str, Any]:
        cart = self.state["cart"]
        sub = round(sum(i["price"] * i["quantity"] for i in cart["items"]), 2)
        return {"restaurant_id": cart["restaurant_id"], "items": [dict(i) for i in cart["items"]], "subtotal": sub}

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"restaurant_id": "restaurants[].restaurant_id"},
          phrases=["Find {cuisine} restaurants near me.", "I'm craving {cuisine}, what's open?"])
    def search_restaurants(self, cuisine: Literal["italian", "japanese", "mexican", "indian", "vegan"],
                           open_now: bool = True) -> dict:
        """Find restaurants of a cuisine.

        Args:
            cuisine: The kind of food.
            open_now: Only restaurants open right now.
        """
        return {"restaurants": [{k: r[k] for k in ("restaurant_id", "name", "cuisine", "rating", "open", "delivery_fee")}
                                for r in self.state["restaurants"]
                                if r["cuisine"] == cuisine and (r["open"] or not open_now)]}

    @tool(writes=False, consumes={"restaurant_id": "restaurant_id"}, produces={"menu_item_id": "menu[].item_id"},
          phrases=["Show me the menu of {restaurant_id}.", "What can I order from {restaurant_id}?"])
    def get_menu(self, restaurant_id: str) -> dict:
        """Get a restaurant's menu with prices.

        Args:
            restaurant_id: The restaurant's id, e.g. RS123.
        """
        r = self._restaurant(restaurant_id)
        return {"restaurant_id": restaurant_id, "name": r["name"], "open": r["open"],
                "menu": [dict(m) for m in r["menu"]]}

    @tool(writes=True, consumes={"item_id": "menu_item_id"}, produces={"restaurant_id": "restaurant_id"},
          rules={"quantity": Rule(ge=1, le=MAX_PORTIONS)},
          phrases=["Add {quantity} of {item_id} to my cart.", "Put item {item_id} in the basket, {quantity} please."])
    def add_to_cart(self, item_id: str, quantity: int = 1) -> dict:
        """Add a menu item to the cart. A cart holds items of one restaurant only.

        Args:
            item_id: The menu item's id, e.g. MI1234.
            quantity: How many, 1 to 50 (per item in the cart).
        """
        if quantity < 1:
            raise ToolFailure("invalid_request", "quantity must be at least 1")
        for r in self.state["restaurants"]:
            for m in r["menu"]:
                if m["item_id"] == item_id:
                    if not r["open"]:
                        raise ToolFailure("conflict", f"{r['name']} is closed right now")
                    cart = self.state["cart"]
                    if cart["restaurant_id"] not in (None, r["restaurant_id"]):
                        raise ToolFailure("conflict", "the cart holds items of another restaurant; clear it first")
                    cart["restaurant_id"] = r["restaurant_id"]
                    for i in cart["items"]:
                        if i["item_id"] == item_id:
                            if i["quantity"] + quantity > MAX_PORTIONS:
                                raise ToolFailure("invalid_request", f"at most {MAX_PORTIONS} of one item per order "
                                                                     f"({i['quantity']} already in the cart)")
                            i["quantity"] += quantity
                            break
                    else:
                        cart["items"].append({"item_id": item_id, "name": m["name"], "quantity": quantity,
                                              "price": m["price"]})
                    return self._cart_view()
        raise ToolFailure("not_found", f"no menu item with id {item_id}")

    @tool(writes=False, produces={"menu_item_id": "items[].item_id", "restaurant_id": "restaurant_id"},
          phrases=["What's in my cart?", "Show me my basket."])
    def view_cart(self) -> dict:
        """Show the cart's items and subtotal."""
        return self._cart_view()

    @tool(writes=True, phrases=["Empty my cart.", "Clear the basket, I'll start over."])
    def clear_cart(self) -> dict:
        """Remove every item from the cart."""
        if not self.state["cart"]["items"]:
            raise ToolFailure("conflict", "the cart is already empty")
        self.state["cart"] = {"restaurant_id": None, "items": []}
        return self._cart_view()

    @tool(writes=True, produces={"food_order_id": "order_id"},
          # chosen: a courier tip above 1000 USD is a typo; notes and addresses fit in 200 characters
          rules={"tip": Rule(ge=0, le=1000, cents=True), "address": Rule(max_len=200),
                 "note": Rule(max_len=200, allow_empty=True)},
          phrases=["Check out and deliver to {address}.", "Place the order to {address} with a ${tip} tip."])
    def checkout(self, address: str, tip: float = 0.0, note: Optional[str] = None) -> dict:
        """Place an order for the cart's items, delivered to an address; empties the cart.

        Args:
            address: Delivery address.
            tip: Tip for the courier in USD.
            note: Instructions for the restaurant or courier.
        """
        cart = self.state["cart"]
        if not cart["items"]:
            raise ToolFailure("conflict", "the cart is empty")
        if tip < 0:
            raise ToolFailure("invalid_request", "tip cannot be negative")
        r = self._restaurant(cart["restaurant_id"])
        view = self._cart_view()
        oid = f"FON{self.state['next_id']:04d}"
        self.state["next_id"] += 1
        o = {"order_id": oid, "restaurant_id": r["restaurant_id"], "items": view["items"],
             "total": round(view["subtotal"] + r["delivery_fee"] + tip, 2), "status": "preparing",
             "address": address, "rating": None, "note": note or ""}
        self.state["orders"].append(o)
        self.state["cart"] = {"restaurant_id": None, "items": []}
        return {"order_id": oid, "total": o["total"], "status": "preparing", "eta_min": 35}

    @tool(writes=False, consumes={"order_id": "food_order_id"}, produces={"restaurant_id": "restaurant_id"},
          phrases=["Where is my food order {order_id}?", "Track order {order_id}."])
    def track_food_order(self, order_id: str) -> dict:
        """Get the status of a food order.

        Args:
            order_id: The order's id, e.g. FO5001.
        """
        o = self._order(order_id)
        return dict(o, items=[dict(i) for i in o["items"]])

    @tool(writes=True, consumes={"order_id": "food_order_id"},
          phrases=["Cancel food order {order_id}.", "I don't want order {order_id} anymore, cancel it."])
    def cancel_food_order(self, order_id: str) -> dict:
        """Cancel an order that is still being prepared.

        Args:
            order_id: The order's id.
        """
        o = self._order(order_id)
        if o["status"] != "preparing":
            raise ToolFailure("conflict", f"order {order_id} is {o['status']} and can no longer be cancelled")
        o["status"] = "cancelled"
        return {"order_id": order_id, "status": "cancelled", "refund": o["total"]}

    @tool(writes=True, consumes={"order_id": "food_order_id"}, rules={"stars": Rule(ge=1, le=5)},
          phrases=["Rate order {order_id} {stars} stars.", "Give {order_id} a {stars}-star rating."])
    def rate_food_order(self, order_id: str, stars: int) -> dict:
        """Rate an order from 1 to 5 stars.

        Args:
            order_id: The order's id.
            stars: Rating from 1 to 5.
        """
        o = self._order(order_id)
        if not 1 <= stars <= 5:
            raise ToolFailure("invalid_request", "stars must be between 1 and 5")
        if o["status"] == "cancelled":
            raise ToolFailure("conflict", f"order {order_id} was cancelled")
        if o["rating"] == stars:
            raise ToolFailure("conflict", f"order {order_id} already has {stars} stars")
        o["rating"] = stars
        return {"order_id": order_id, "rating": stars}
