"""Deterministic retail tasks: six request templates, each instantiated on three different users of the seeded
database (18 tasks). Amounts in `outputs` are computed by running the gold actions, never written by hand."""
from __future__ import annotations

from typing import Any

from ...episodes.domain import Task, Turn
from .env import RetailEnv

_NEW_ADDRESSES = [
    {"address1": "12 Harbor St", "address2": "Apt 4", "city": "Portland", "state": "OR", "country": "USA",
     "zip": "97201"},
    {"address1": "88 Sunset Blvd", "address2": "", "city": "Miami", "state": "FL", "country": "USA", "zip": "33101"},
    {"address1": "5 Hill Rd", "address2": "Suite 2", "city": "Nashville", "state": "TN", "country": "USA",
     "zip": "37201"},
]


def _a(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kwargs": kw}


def _money(x: float) -> str:
    return f"{x:.2f}"


def _addr_text(a: dict[str, str]) -> str:
    line2 = f" {a['address2']}," if a["address2"] else ""
    return f"{a['address1']},{line2} {a['city']}, {a['state']} {a['zip']}, {a['country']}"


def build_tasks() -> list[Task]:
    env = RetailEnv.fresh()
    db = env.state
    users = [db["users"][k] for k in sorted(db["users"])]

    def orders(u, status):
        return [db["orders"][o] for o in u["orders"] if db["orders"][o]["status"] == status]

    def auth_email(u) -> Turn:
        return Turn(say=f"My email is {u['email']}.",
                    actions=[_a("find_user_id_by_email", email=u["email"]),
                             _a("get_user_details", user_id=u["user_id"])],
                    reply=f"Thank you {u['name']['first_name']}, I found your account. Which order is it about?")

    def auth_zip(u) -> Turn:
        n = u["name"]
        return Turn(say=f"I'm {n['first_name']} {n['last_name']}, zip code {u['address']['zip']}.",
                    actions=[_a("find_user_id_by_name_zip", first_name=n["first_name"], last_name=n["last_name"],
                                zip=u["address"]["zip"]), _a("get_user_details", user_id=u["user_id"])],
                    reply=f"Thank you {n['first_name']}, I found your account. Which order is it about?")

    tasks: list[Task] = []

    def add(kind: str, u, instruction: str, script: list[Turn], outputs: list[str] = ()) -> None:
        tasks.append(Task(task_id=f"retail_{len(tasks):03d}_{kind}", domain="retail", user_id=u["user_id"],
                          instruction=instruction, script=script, outputs=list(outputs)))

    ask_auth = "Sure. To find your account, please give me your email, or your name and zip code."
    used: dict[str, set] = {}

    def pick(kind: str, pred, n: int = 3):
        got = []
        for u in users:
            if u["user_id"] in used.setdefault(kind, set()):
                continue
            r = pred(u)
            if r:
                got.append((u, r))
                used[kind].add(u["user_id"])
            if len(got) == n:
                break
        if len(got) < n:
            raise RuntimeError(f"retail task builder: not enough users for {kind}")
        return got

    # 1. cancel a pending order
    for u, o in pick("cancel", lambda u: (orders(u, "pending") or [None])[0]):
        name = f"{u['name']['first_name']} {u['name']['last_name']}"
        add("cancel", u,
            f"You are {name}, email {u['email']}. You want to cancel your order {o['order_id']} because you no "
            f"longer need it. Give your email only when asked.",
            [Turn(say="Hi, I would like to cancel an order.", reply=ask_auth), auth_email(u),
             Turn(say=f"It's order {o['order_id']}. I no longer need it, please cancel it.",
                  actions=[_a("get_order_details", order_id=o["order_id"]),
                           _a("cancel_pending_order", order_id=o["order_id"], reason="no longer needed")],
                  reply=f"Order {o['order_id']} is cancelled; {_money(o['payment_history'][0]['amount'])} will be "
                        f"refunded to your original payment method.")],
            outputs=[_money(o["payment_history"][0]["amount"])])

    # 2. return one delivered item to the original payment method
    for u, o in pick("return", lambda u: (orders(u, "delivered") or [None])[0]):
        it = o["items"][0]
        n = u["name"]
        pay = o["payment_history"][0]["payment_method_id"]
        add("return", u,
            f"You are {n['first_name']} {n['last_name']}, zip code {u['address']['zip']}. You want to return the "
            f"{it['name']} from order {o['order_id']}, refunded to the original payment method, and you want to "
            f"know the refund amount.",
            [Turn(say="Hello, I need to return something I bought.", reply=ask_auth), auth_zip(u),
             Turn(say=f"Order {o['order_id']}: I want to return the {it['name']}, refund to the original payment "
                      f"method. How much will I get back?",
                  actions=[_a("get_order_details", order_id=o["order_id"]),
                           _a("return_delivered_order_items", order_id=o["order_id"], item_ids=[it["item_id"]],
                              payment_method_id=pay)],
                  reply=f"The return of the {it['name']} is requested; you will get {_money(it['price'])} back.")],
            outputs=[_money(it["price"])])

    # 3. exchange one delivered item for another available variant
    def exch(u):
        for o in orders(u, "delivered"):
            for it in o["items"]:
                p = db["products"][it["product_id"]]
                for iid in sorted(p["variants"]):
                    v = p["variants"][iid]
                    if iid != it["item_id"] and v["available"]:
                        return o, it, v
        return None

    for u, (o, it, v) in pick("exchange", exch):
        opts = ", ".join(f"{k} {val}" for k, val in v["options"].items())
        pay = o["payment_history"][0]["payment_method_id"]
        diff = round(v["price"] - it["price"], 2)
        add("exchange", u,
            f"You are {u['name']['first_name']} {u['name']['last_name']}, email {u['email']}. You want to exchange "
            f"the {it['name']} of order {o['order_id']} for the variant with {opts}, paying or being refunded the "
            f"difference on the original payment method, and to know the price difference.",
            [Turn(say=f"Hi! I'd like to exchange an item. My email is {u['email']}.",
                  actions=[_a("find_user_id_by_email", email=u["email"]),
                           _a("get_user_details", user_id=u["user_id"])],
                  reply="Thanks, I found your account. Which order and item, and what would you like instead?"),
             Turn(say=f"The {it['name']} in order {o['order_id']}. I want the one with {opts}, using the original "
                      f"payment method. What is the price difference?",
                  actions=[_a("get_order_details", order_id=o["order_id"]),
                           _a("get_product_details", product_id=it["product_id"]),
                           _a("exchange_delivered_order_items", order_id=o["order_id"], item_ids=[it["item_id"]],
                              new_item_ids=[v["item_id"]], payment_method_id=pay)],
                  reply=f"The exchange is requested; the price difference is {_money(abs(diff))} "
                        f"({'charged' if diff >= 0 else 'refunded'}).")],
            outputs=[_money(abs(diff))])

    # 4. change the shipping address of a pending order
    for k, (u, o) in enumerate(pick("order_address", lambda u: (orders(u, "pending") or [None])[-1])):
        a = _NEW_ADDRESSES[k % len(_NEW_ADDRESSES)]
        add("order_address", u,
            f"You are {u['name']['first_name']} {u['name']['last_name']}, zip code {u['address']['zip']}. You want "
            f"order {o['order_id']} shipped to {_addr_text(a)} instead.",
            [Turn(say="Hi, can I change where my order is shipped?", reply=ask_auth), auth_zip(u),
             Turn(say=f"Order {o['order_id']}. The new address is {_addr_text(a)}.",
                  actions=[_a("get_order_details", order_id=o["order_id"]),
                           _a("modify_pending_order_address", order_id=o["order_id"], **a)],
                  reply=f"Order {o['order_id']} will now ship to {_addr_text(a)}.")])

    # 5. change the default address of the user
    for k, (u, _) in enumerate(pick("user_address", lambda u: True)):
        a = _NEW_ADDRESSES[(k + 1) % len(_NEW_ADDRESSES)]
        add("user_address", u,
            f"You are {u['name']['first_name']} {u['name']['last_name']}, email {u['email']}. You moved: your new "
            f"default address is {_addr_text(a)}.",
            [Turn(say="Hello, I moved and need to update my address on file.", reply=ask_auth), auth_email(u),
             Turn(say=f"It's not about an order: my new address is {_addr_text(a)}.",
                  actions=[_a("modify_user_address", user_id=u["user_id"], **a)],
                  reply=f"Your default address is now {_addr_text(a)}.")])

    # 6. ask for an order's status and total (reads only; the answer is the output)
    for u, o in pick("order_status", lambda u: db["orders"][u["orders"][-1]]):
        total = _money(o["payment_history"][0]["amount"])
        add("order_status", u,
            f"You are {u['name']['first_name']} {u['name']['last_name']}, email {u['email']}. You want to know the "
            f"status of order {o['order_id']} and how much you paid for it.",
            [Turn(say=f"Hi, what's the status of my order {o['order_id']}? My email is {u['email']}.",
                  actions=[_a("find_user_id_by_email", email=u["email"]), _a("get_user_details", user_id=u["user_id"]),
                           _a("get_order_details", order_id=o["order_id"])],
                  reply=f"Order {o['order_id']} is {o['status']}."),
             Turn(say="And how much did I pay for it?", reply=f"You paid {total} for order {o['order_id']}.")],
            outputs=[o["status"], total])
    return tasks
