"""Retail: users, products with variants, orders (tau-style retail, our own database and tools)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from toolace_mt.envs.base import ToolFailure, tool

from ...episodes.domain import TauEnv

_FIRST = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Ines", "Kenji", "Priya", "Lucas", "Sofia", "Ethan",
          "Yara", "Mateo", "Chloe", "Ravi", "Elena", "Hugo", "Nora", "Felix"]
_LAST = ["Garcia", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva", "Kim", "Meyer", "Dubois", "Lopez",
         "Nguyen", "Ito", "Moreau", "Schmidt"]
_CITIES = [("Austin", "TX"), ("Denver", "CO"), ("Seattle", "WA"), ("Boston", "MA"), ("Phoenix", "AZ"),
           ("Chicago", "IL")]
_STREETS = ["Maple Ave", "Oak St", "Pine Rd", "Cedar Ln", "Elm Dr", "Birch Way", "Lake Blvd"]
_PRODUCTS = {  # product name -> option name -> values
    "T-Shirt": {"color": ["red", "blue", "black"], "size": ["S", "M", "L"]},
    "Water Bottle": {"capacity": ["500ml", "1000ml"], "color": ["green", "black"]},
    "Desk Lamp": {"color": ["white", "black"], "power source": ["battery", "AC adapter"]},
    "Hiking Boots": {"size": ["8", "9", "10"], "material": ["leather", "synthetic"]},
    "Backpack": {"color": ["grey", "navy"], "size": ["small", "large"]},
    "Headphones": {"type": ["over-ear", "in-ear"], "connectivity": ["wired", "wireless"]},
}


def _address(rng: random.Random) -> dict[str, str]:
    city, state = rng.choice(_CITIES)
    return {"address1": f"{rng.randint(10, 999)} {rng.choice(_STREETS)}", "address2": "", "city": city,
            "state": state, "country": "USA", "zip": f"{rng.randint(10000, 99999)}"}


class RetailEnv(TauEnv):
    domain = "tau_retail"
    description = "An online retail store: look up users and orders, cancel, modify, return and exchange items."
    POLICY_FILE = Path(__file__).with_name("policy.md")
    ENTITIES = {"user_id": "users[].user_id", "order_id": "orders[].order_id",
                "product_id": "products[].product_id"}

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        products: dict[str, Any] = {}
        item_no = 1000
        for pi, (pname, opts) in enumerate(_PRODUCTS.items()):
            pid = f"P{100 + pi}"
            variants = {}
            keys = list(opts)
            for a in opts[keys[0]]:
                for b in opts[keys[1]]:
                    item_no += rng.randint(1, 9)
                    iid = str(item_no)
                    variants[iid] = {"item_id": iid, "options": {keys[0]: a, keys[1]: b},
                                     "available": rng.random() > 0.2,
                                     "price": round(rng.uniform(15, 180), 2)}
            products[pid] = {"product_id": pid, "name": pname, "variants": variants}
        users: dict[str, Any] = {}
        orders: dict[str, Any] = {}
        order_no = 5000
        for ui in range(20):
            first, last = _FIRST[ui], rng.choice(_LAST)
            uid = f"{first.lower()}_{last.lower()}_{1000 + ui}"
            addr = _address(rng)
            pms = {f"credit_card_{rng.randint(1000, 9999)}": {"source": "credit_card",
                                                             "last_four": f"{rng.randint(1000, 9999)}"},
                   f"gift_card_{rng.randint(1000, 9999)}": {"source": "gift_card",
                                                           "balance": round(rng.uniform(0, 200), 2)}}
            for k, v in pms.items():
                v["id"] = k
            user_orders = []
            for _ in range(2 + ui % 2):
                order_no += rng.randint(1, 40)
                oid = f"#W{order_no}"
                items = []
                for pid in rng.sample(sorted(products), rng.randint(1, 3)):
                    iid = rng.choice(sorted(products[pid]["variants"]))
                    v = products[pid]["variants"][iid]
                    items.append({"item_id": iid, "product_id": pid, "name": products[pid]["name"],
                                  "options": dict(v["options"]), "price": v["price"]})
                pay = sorted(pms)[0]
                total = round(sum(i["price"] for i in items), 2)
                status = ["pending", "delivered", "processed"][len(user_orders) % 3] if ui % 3 else \
                    ["delivered", "pending", "processed"][len(user_orders) % 3]
                orders[oid] = {"order_id": oid, "user_id": uid, "status": status, "items": items,
                               "address": dict(addr), "payment_history": [
                                   {"transaction_type": "payment", "amount": total, "payment_method_id": pay}]}
                user_orders.append(oid)
            users[uid] = {"user_id": uid, "name": {"first_name": first, "last_name": last}, "address": addr,
                          "email": f"{first.lower()}.{last.lower()}{ui}@example.com", "payment_methods": pms,
                          "orders": user_orders}
        return {"users": users, "products": products, "orders": orders}

    # helpers -----------------------------------------------------------------------------------
    def _order(self, order_id: str) -> dict[str, Any]:
        o = self.state["orders"].get(order_id)
        if o is None:
            raise ToolFailure("not_found", f"order {order_id} not found")
        return o

    def _user(self, user_id: str) -> dict[str, Any]:
        u = self.state["users"].get(user_id)
        if u is None:
            raise ToolFailure("not_found", f"user {user_id} not found")
        return u

    def _variant(self, item_id: str) -> tuple[str, dict[str, Any]]:
        for pid, p in self.state["products"].items():
            if item_id in p["variants"]:
                return pid, p["variants"][item_id]
        raise ToolFailure("not_found", f"item {item_id} not found")

    def _payment(self, user_id: str, payment_method_id: str) -> dict[str, Any]:
        pm = self._user(user_id)["payment_methods"].get(payment_method_id)
        if pm is None:
            raise ToolFailure("not_found", f"payment method {payment_method_id} not found for {user_id}")
        return pm

    # read tools --------------------------------------------------------------------------------
    @tool(writes=False, produces={"user_id": "."})
    def find_user_id_by_email(self, email: str) -> str:
        """Find a user id by email address.

        Args:
            email: The user's email, e.g. ava.garcia0@example.com.
        """
        for u in self.state["users"].values():
            if u["email"].lower() == email.lower():
                return u["user_id"]
        raise ToolFailure("not_found", "user not found")

    @tool(writes=False, produces={"user_id": "."})
    def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip: str) -> str:
        """Find a user id by first name, last name and zip code.

        Args:
            first_name: The user's first name.
            last_name: The user's last name.
            zip: The zip code of the user's address.
        """
        for u in self.state["users"].values():
            n = u["name"]
            if (n["first_name"].lower(), n["last_name"].lower(), u["address"]["zip"]) == \
                    (first_name.lower(), last_name.lower(), zip):
                return u["user_id"]
        raise ToolFailure("not_found", "user not found")

    @tool(writes=False, consumes={"user_id": "user_id"}, produces={"order_id": "orders[]"})
    def get_user_details(self, user_id: str) -> dict:
        """Get a user's profile: name, address, email, payment methods and order ids.

        Args:
            user_id: The user id, e.g. ava_garcia_1000.
        """
        return self._user(user_id)

    @tool(writes=False, consumes={"order_id": "order_id"})
    def get_order_details(self, order_id: str) -> dict:
        """Get an order's status, items, address and payment history.

        Args:
            order_id: The order id, starting with '#', e.g. #W5012.
        """
        return self._order(order_id)

    @tool(writes=False, consumes={"product_id": "product_id"})
    def get_product_details(self, product_id: str) -> dict:
        """Get a product's variants with their options, availability and price.

        Args:
            product_id: The product id, e.g. P100.
        """
        p = self.state["products"].get(product_id)
        if p is None:
            raise ToolFailure("not_found", f"product {product_id} not found")
        return p

    @tool(writes=False, produces={"product_id": "[].product_id"})
    def list_all_product_types(self) -> list:
        """List every product type with its product id."""
        return [{"name": p["name"], "product_id": pid} for pid, p in sorted(self.state["products"].items())]

    # write tools -------------------------------------------------------------------------------
    @tool(writes=True, consumes={"order_id": "order_id"})
    def cancel_pending_order(self, order_id: str, reason: str) -> dict:
        """Cancel a pending order; the payment is refunded to the original payment method.

        Args:
            order_id: The order id, e.g. #W5012.
            reason: Either 'no longer needed' or 'ordered by mistake'.
        """
        o = self._order(order_id)
        if o["status"] != "pending":
            raise ToolFailure("conflict", "non-pending order cannot be cancelled")
        if reason not in ("no longer needed", "ordered by mistake"):
            raise ToolFailure("invalid_arguments", "invalid reason")
        pay = o["payment_history"][0]
        o["status"] = "cancelled"
        o["cancel_reason"] = reason
        o["payment_history"].append({"transaction_type": "refund", "amount": pay["amount"],
                                     "payment_method_id": pay["payment_method_id"]})
        return o

    @tool(writes=True, consumes={"order_id": "order_id"})
    def modify_pending_order_address(self, order_id: str, address1: str, address2: str, city: str, state: str,
                                     country: str, zip: str) -> dict:
        """Change the shipping address of a pending order.

        Args:
            order_id: The order id, e.g. #W5012.
            address1: First address line.
            address2: Second address line (may be empty).
            city: City.
            state: State, e.g. TX.
            country: Country, e.g. USA.
            zip: Zip code.
        """
        o = self._order(order_id)
        if o["status"] != "pending":
            raise ToolFailure("conflict", "non-pending order cannot be modified")
        o["address"] = {"address1": address1, "address2": address2, "city": city, "state": state,
                        "country": country, "zip": zip}
        return o

    @tool(writes=True, consumes={"user_id": "user_id"})
    def modify_user_address(self, user_id: str, address1: str, address2: str, city: str, state: str,
                            country: str, zip: str) -> dict:
        """Change a user's default address (existing orders keep theirs).

        Args:
            user_id: The user id.
            address1: First address line.
            address2: Second address line (may be empty).
            city: City.
            state: State, e.g. TX.
            country: Country, e.g. USA.
            zip: Zip code.
        """
        u = self._user(user_id)
        u["address"] = {"address1": address1, "address2": address2, "city": city, "state": state,
                        "country": country, "zip": zip}
        return u

    @tool(writes=True, consumes={"order_id": "order_id"})
    def return_delivered_order_items(self, order_id: str, item_ids: list[str], payment_method_id: str) -> dict:
        """Return items of a delivered order; the refund goes to the original payment method or a gift card.

        Args:
            order_id: The order id, e.g. #W5012.
            item_ids: The item ids to return.
            payment_method_id: Where the refund goes: the original payment method or a gift card of the user.
        """
        o = self._order(order_id)
        if o["status"] != "delivered":
            raise ToolFailure("conflict", "non-delivered order cannot be returned")
        pm = self._payment(o["user_id"], payment_method_id)
        if pm["source"] != "gift_card" and payment_method_id != o["payment_history"][0]["payment_method_id"]:
            raise ToolFailure("forbidden", "refund must go to the original payment method or a gift card")
        owned = [i["item_id"] for i in o["items"]]
        if not item_ids or any(item_ids.count(x) > owned.count(x) for x in item_ids):
            raise ToolFailure("not_found", "some item ids are not in the order")
        refund = round(sum(next(i["price"] for i in o["items"] if i["item_id"] == x) for x in item_ids), 2)
        o["status"] = "return requested"
        o["return_items"] = sorted(item_ids)
        o["payment_history"].append({"transaction_type": "refund", "amount": refund,
                                     "payment_method_id": payment_method_id})
        return o

    @tool(writes=True, consumes={"order_id": "order_id"})
    def exchange_delivered_order_items(self, order_id: str, item_ids: list[str], new_item_ids: list[str],
                                       payment_method_id: str) -> dict:
        """Exchange items of a delivered order for other available variants of the same products; the price
        difference is charged or refunded on the given payment method.

        Args:
            order_id: The order id, e.g. #W5012.
            item_ids: The item ids to exchange.
            new_item_ids: The new item ids, one per exchanged item, same product, in the same order.
            payment_method_id: Payment method for the price difference.
        """
        o = self._order(order_id)
        if o["status"] != "delivered":
            raise ToolFailure("conflict", "non-delivered order cannot be exchanged")
        self._payment(o["user_id"], payment_method_id)
        if len(item_ids) != len(new_item_ids) or not item_ids:
            raise ToolFailure("invalid_arguments", "item_ids and new_item_ids must have the same length")
        diff = 0.0
        for old, new in zip(item_ids, new_item_ids):
            it = next((i for i in o["items"] if i["item_id"] == old), None)
            if it is None:
                raise ToolFailure("not_found", f"item {old} not in the order")
            pid, v = self._variant(new)
            if pid != it["product_id"] or not v["available"]:
                raise ToolFailure("conflict", f"new item {new} is not an available variant of the same product")
            diff += v["price"] - it["price"]
        diff = round(diff, 2)
        o["status"] = "exchange requested"
        o["exchange_items"] = sorted(item_ids)
        o["exchange_new_items"] = sorted(new_item_ids)
        o["exchange_price_difference"] = diff
        o["payment_history"].append({"transaction_type": "payment" if diff >= 0 else "refund",
                                     "amount": abs(diff), "payment_method_id": payment_method_id})
        return o
