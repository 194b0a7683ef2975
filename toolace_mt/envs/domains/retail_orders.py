"""An online shop: product search, orders, cancellation, returns and shipping addresses."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_PRODUCTS = [("Wireless Mouse", "electronics", 24.99), ("Mechanical Keyboard", "electronics", 89.0),
             ("USB-C Charger 65W", "electronics", 39.5), ("Noise-Cancelling Headphones", "electronics", 199.0),
             ("Running Shoes", "sports", 120.0), ("Yoga Mat", "sports", 35.0), ("Water Bottle 1L", "sports", 18.0),
             ("Cast Iron Skillet", "kitchen", 45.0), ("French Press", "kitchen", 29.0),
             ("Chef's Knife", "kitchen", 64.0), ("Desk Lamp", "home", 42.0), ("Throw Blanket", "home", 55.0)]
_ADDRESSES = ["12 Oak St, Springfield, IL 62704", "450 Market St, San Francisco, CA 94105",
              "77 Elm Ave, Austin, TX 78701", "9 Harbor Rd, Portland, ME 04101"]


@register
class RetailOrdersEnv(Env):
    domain = "retail_orders"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "An online shop: search products, place, track and cancel orders, return items, change address."
    ENTITIES = {"product_id": "products[].product_id", "retail_order_id": "orders[].order_id",
                "return_id": "returns[].return_id"}
    VALUE_POOLS = {
        "query": ["mouse", "shoes", "knife", "lamp", "charger", "mat"],
        "category": ["electronics", "sports", "kitchen", "home"],
        "quantity": [1, 2, 3],
        "address": _ADDRESSES,
        "reason": ["arrived damaged", "wrong size", "no longer needed", "not as described"],
        "max_price": [50.0, 100.0, 250.0],
        "status": ["processing", "shipped", "delivered"],
    }
    LONG_CONTEXT_KEYS = ["orders", "products"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        pids = unique_ids(rng, "P", len(_PRODUCTS), 1000, 10000)
        products = [{"product_id": pid, "name": n, "category": c, "price": round(p * rng.uniform(0.9, 1.1), 2),
                     "stock": rng.randint(0, 25) or 3} for pid, (n, c, p) in zip(pids, _PRODUCTS)]
        orders = []
        for i, oid in enumerate(unique_ids(rng, "R", rng.randint(3, 5), 10000, 100000)):
            items = [{"product_id": p["product_id"], "name": p["name"], "quantity": rng.randint(1, 2),
                      "price": p["price"]} for p in rng.sample(products, rng.randint(1, 3))]
            status = ["processing", "delivered"][i % 2] if i < 2 else rng.choice(["processing", "shipped", "delivered"])
            orders.append({"order_id": oid, "items": items, "status": status, "address": rng.choice(_ADDRESSES),
                           "total": round(sum(it["price"] * it["quantity"] for it in items), 2)})
        it = orders[1]["items"][-1]  # orders[1] is delivered: one of its items is already being returned
        returns = [{"return_id": "RET0900", "order_id": orders[1]["order_id"], "product_id": it["product_id"],
                    "reason": "wrong size", "refund": round(it["price"] * it["quantity"], 2), "status": "refunded"}]
        return {"customer": "jordan.park@example.com", "default_address": _ADDRESSES[0], "products": products,
                "orders": orders, "returns": returns, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old delivered orders of the same customer."""
        taken = {o["order_id"] for o in state["orders"]}
        for oid in unique_ids(rng, "R", n, 100000, 1000000, taken):
            p = rng.choice(state["products"])
            q = rng.randint(1, 3)
            state["orders"].insert(0, {"order_id": oid, "items": [{"product_id": p["product_id"], "name": p["name"],
                                                                   "quantity": q, "price": p["price"]}],
                                       "status": "delivered", "address": rng.choice(_ADDRESSES),
                                       "total": round(p["price"] * q, 2)})
        return state

    def _product(self, pid: str) -> dict[str, Any]:
        for p in self.state["products"]:
            if p["product_id"] == pid:
                return p
        raise ToolFailure("not_found", f"no product with id {pid}")

    def _order(self, oid: str) -> dict[str, Any]:
        for o in self.state["orders"]:
            if o["order_id"] == oid:
                return o
        raise ToolFailure("not_found", f"no order with id {oid}")

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"product_id": "products[].product_id"},
          rules={"query": Rule(max_len=100), "max_price": Rule(ge=0)},
          phrases=["Do you sell any {query}?", "Search the shop for {query}."])
    def search_products(self, query: str, category: Optional[Literal["electronics", "sports", "kitchen", "home"]] = None,
                        max_price: Optional[float] = None) -> dict:
        """Search products by name, optionally within a category and price limit.

        Args:
            query: Words to look for in the product name.
            category: Only this category.
            max_price: Only products at most this price, in USD.
        """
        q = query.lower()
        hits = [dict(p) for p in self.state["products"] if q in p["name"].lower()
                and (category is None or p["category"] == category) and (max_price is None or p["price"] <= max_price)]
        return {"products": hits}

    @tool(writes=False, consumes={"product_id": "product_id"}, produces={"product_id": "product_id"},
          phrases=["Tell me about product {product_id}.", "Is {product_id} in stock, and how much is it?"])
    def get_product(self, product_id: str) -> dict:
        """Get a product's price, category and stock.

        Args:
            product_id: The product's id, e.g. P1234.
        """
        return dict(self._product(product_id))

    @tool(writes=True, consumes={"product_id": "product_id"}, produces={"retail_order_id": "order_id"},
          # chosen: a shop order of more than 100 units is wholesale; an address fits in 200 characters
          rules={"quantity": Rule(ge=1, le=100), "address": Rule(max_len=200)},
          phrases=["Order {quantity} of {product_id}.", "I'd like to buy {quantity} x {product_id}."])
    def place_retail_order(self, product_id: str, quantity: int = 1, address: Optional[str] = None) -> dict:
        """Order a product, shipped to the given address or the default one.

        Args:
            product_id: The product's id.
            quantity: How many, at least 1.
            address: Shipping address; the customer's default address when omitted.
        """
        p = self._product(product_id)
        if quantity < 1:
            raise ToolFailure("invalid_request", "quantity must be at least 1")
        if p["stock"] < quantity:
            raise ToolFailure("conflict", f"only {p['stock']} of {p['name']} in stock")
        p["stock"] -= quantity
        oid = f"RN{self.state['next_id']:04d}"
        self.state["next_id"] += 1
        o = {"order_id": oid, "items": [{"product_id": product_id, "name": p["name"], "quantity": quantity,
                                         "price": p["price"]}], "status": "processing",
             "address": address or self.state["default_address"], "total": round(p["price"] * quantity, 2)}
        self.state["orders"].append(o)
        return {"order_id": oid, "status": "processing", "total": o["total"], "address": o["address"]}

    @tool(writes=False, produces={"retail_order_id": "orders[].order_id"},
          phrases=["Show me my orders.", "What have I ordered recently?"])
    def list_retail_orders(self, status: Optional[Literal["processing", "shipped", "delivered", "cancelled"]] = None) -> dict:
        """List the customer's orders, optionally only those with one status.

        Args:
            status: Only orders with this status.
        """
        return {"orders": [{"order_id": o["order_id"], "status": o["status"], "total": o["total"],
                            "n_items": len(o["items"])}
                           for o in self.state["orders"] if status is None or o["status"] == status]}

    @tool(writes=False, consumes={"order_id": "retail_order_id"}, produces={"product_id": "items[].product_id"},
          phrases=["What's in order {order_id}?", "Where is my order {order_id}?"])
    def get_retail_order(self, order_id: str) -> dict:
        """Get an order's items, status and shipping address.

        Args:
            order_id: The order's id, e.g. R12345.
        """
        o = self._order(order_id)
        return dict(o, items=[dict(i) for i in o["items"]])

    @tool(writes=True, consumes={"order_id": "retail_order_id"},
          phrases=["Cancel my order {order_id}.", "Please cancel order {order_id} before it ships."])
    def cancel_retail_order(self, order_id: str) -> dict:
        """Cancel an order that has not shipped yet; the items go back to stock.

        Args:
            order_id: The order's id.
        """
        o = self._order(order_id)
        if o["status"] != "processing":
            raise ToolFailure("conflict", f"order {order_id} is {o['status']}; only processing orders can be cancelled")
        o["status"] = "cancelled"
        for it in o["items"]:
            for p in self.state["products"]:
                if p["product_id"] == it["product_id"]:
                    p["stock"] += it["quantity"]
        return {"order_id": order_id, "status": "cancelled", "refund": o["total"]}

    @tool(writes=True, consumes={"order_id": "retail_order_id"}, rules={"address": Rule(max_len=200)},
          phrases=["Ship order {order_id} to {address} instead.", "Change the address of {order_id} to {address}."])
    def update_shipping_address(self, order_id: str, address: str) -> dict:
        """Change the shipping address of an order that has not shipped yet.

        Args:
            order_id: The order's id.
            address: The new full shipping address.
        """
        o = self._order(order_id)
        if o["status"] != "processing":
            raise ToolFailure("conflict", f"order {order_id} is {o['status']}; its address can no longer change")
        if o["address"] == address:
            raise ToolFailure("conflict", f"order {order_id} already ships to {address}")
        o["address"] = address
        return {"order_id": order_id, "address": address}

    @tool(writes=True, consumes={"order_id": "retail_order_id", "product_id": "product_id"},
          rules={"reason": Rule(max_len=200)},
          produces={"return_id": "return_id"},
          phrases=["Return {product_id} from order {order_id}, reason: {reason}.",
                   "I want to send back {product_id} of order {order_id}: {reason}."])
    def request_return(self, order_id: str, product_id: str, reason: str) -> dict:
        """Start a return for an item of a delivered order.

        Args:
            order_id: The order's id.
            product_id: The product to return; it must be in the order.
            reason: Why the item is returned.
        """
        o = self._order(order_id)
        if o["status"] != "delivered":
            raise ToolFailure("conflict", f"order {order_id} is {o['status']}; only delivered orders can be returned")
        item = next((i for i in o["items"] if i["product_id"] == product_id), None)
        if item is None:
            raise ToolFailure("not_found", f"product {product_id} is not in order {order_id}")
        if any(r["order_id"] == order_id and r["product_id"] == product_id for r in self.state["returns"]):
            raise ToolFailure("conflict", f"a return for {product_id} of {order_id} already exists")
        rid = f"RET{self.state['next_id']:04d}"
        self.state["next_id"] += 1
        r = {"return_id": rid, "order_id": order_id, "product_id": product_id, "reason": reason,
             "refund": round(item["price"] * item["quantity"], 2), "status": "label_sent"}
        self.state["returns"].append(r)
        return dict(r)

    @tool(writes=False, consumes={"return_id": "return_id"},
          phrases=["What's the status of return {return_id}?", "Has my return {return_id} been processed?"])
    def get_return_status(self, return_id: str) -> dict:
        """Get the status and refund amount of a return.

        Args:
            return_id: The return's id, e.g. RET0001.
        """
        for r in self.state["returns"]:
            if r["return_id"] == return_id:
                return dict(r)
        raise ToolFailure("not_found", f"no return with id {return_id}")
