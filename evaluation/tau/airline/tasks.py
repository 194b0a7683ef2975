"""Deterministic airline tasks: six request templates, each instantiated on three different users of the seeded
database (18 tasks). Amounts in `outputs` come from the database and the tool rules, never written by hand."""
from __future__ import annotations

from typing import Any

from ...episodes.domain import Task, Turn
from .env import BAG_PRICE, CERTIFICATE_PER_PASSENGER, DATES, AirlineEnv


def _a(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kwargs": kw}


def build_tasks() -> list[Task]:
    db = AirlineEnv.fresh().state
    users = [db["users"][k] for k in sorted(db["users"])]
    tasks: list[Task] = []
    used: dict[str, set] = {}

    def res(u) -> list[dict[str, Any]]:
        return [db["reservations"][r] for r in u["reservations"]]

    def pick(kind: str, pred, n: int = 3):
        got = []
        for u in users:
            r = pred(u)
            if r and u["user_id"] not in used.setdefault(kind, set()):
                got.append((u, r))
                used[kind].add(u["user_id"])
            if len(got) == n:
                return got
        raise RuntimeError(f"airline task builder: not enough users for {kind}")

    def add(kind: str, u, instruction: str, script: list[Turn], outputs: list[str] = ()) -> None:
        tasks.append(Task(task_id=f"airline_{len(tasks):03d}_{kind}", domain="airline", user_id=u["user_id"],
                          instruction=instruction, script=script, outputs=list(outputs)))

    def who(u) -> str:
        return f"You are {u['name']['first_name']} {u['name']['last_name']}, user id {u['user_id']}."

    def auth(u, reply: str = "Thank you, I found your profile. Which reservation is it about?") -> Turn:
        return Turn(say=f"My user id is {u['user_id']}.", actions=[_a("get_user_details", user_id=u["user_id"])],
                    reply=reply)

    ask_id = "Sure, I can help with that. What is your user id?"

    # 1. cancel a reservation
    for u, r in pick("cancel", lambda u: res(u)[0]):
        refund = sum(p["amount"] for p in r["payment_history"])
        add("cancel", u, f"{who(u)} You want to cancel reservation {r['reservation_id']} and to know how much "
                         f"will be refunded. Give your user id only when asked.",
            [Turn(say="Hi, I need to cancel a trip.", reply=ask_id), auth(u),
             Turn(say=f"Reservation {r['reservation_id']}. How much will I get back?",
                  actions=[_a("get_reservation_details", reservation_id=r["reservation_id"]),
                           _a("cancel_reservation", reservation_id=r["reservation_id"])],
                  reply=f"Reservation {r['reservation_id']} is cancelled; {refund} dollars will be refunded.")],
            outputs=[str(refund)])

    # 2. add one checked bag
    for u, r in pick("bags", lambda u: res(u)[-1]):
        cc = next(p for p in sorted(u["payment_methods"]) if p.startswith("credit_card"))
        n = r["total_baggages"] + 1
        add("bags", u, f"{who(u)} You want one more checked bag on reservation {r['reservation_id']} (so {n} in "
                       f"total), paid with your credit card {cc}.",
            [Turn(say="Hello, I'd like to add a checked bag to my booking.", reply=ask_id), auth(u),
             Turn(say=f"Reservation {r['reservation_id']}, one more bag please, so {n} in total. Charge my credit "
                      f"card {cc}.",
                  actions=[_a("get_reservation_details", reservation_id=r["reservation_id"]),
                           _a("update_reservation_baggages", reservation_id=r["reservation_id"], total_baggages=n,
                              payment_id=cc)],
                  reply=f"Done: reservation {r['reservation_id']} now has {n} checked bags; {BAG_PRICE} dollars "
                        f"were charged.")],
            outputs=[str(BAG_PRICE)])

    # 3. correct the first passenger's date of birth
    for u, r in pick("passenger", lambda u: res(u)[0]):
        pax = [dict(p) for p in r["passengers"]]
        y, m, d = pax[0]["dob"].split("-")
        pax[0]["dob"] = f"{int(y) + 1}-{m}-{d}"
        add("passenger", u, f"{who(u)} On reservation {r['reservation_id']} the date of birth of "
                            f"{pax[0]['first_name']} {pax[0]['last_name']} is wrong; it should be {pax[0]['dob']}.",
            [Turn(say="Hi, there's a mistake in the passenger details of my reservation.", reply=ask_id), auth(u),
             Turn(say=f"Reservation {r['reservation_id']}: the date of birth of {pax[0]['first_name']} "
                      f"{pax[0]['last_name']} should be {pax[0]['dob']}. Everything else is right.",
                  actions=[_a("get_reservation_details", reservation_id=r["reservation_id"]),
                           _a("update_reservation_passengers", reservation_id=r["reservation_id"], passengers=pax)],
                  reply=f"The passenger details of reservation {r['reservation_id']} are updated.")])

    # 4. book a one-way economy flight for the user alone, no bags, no insurance, credit card
    def bookable(u):
        own = {(r["flight_number"], r["date"]) for r in res(u)}
        for k, fn in enumerate(sorted(db["flights"])):
            f = db["flights"][fn]
            day = DATES[4 + (len(u["user_id"]) + k) % 3]
            dd = f["dates"][day]
            if (fn, day) not in own and dd["status"] == "available" and dd["available_seats"]["economy"] >= 1 \
                    and sum(1 for g in db["flights"].values() if g["origin"] == f["origin"]
                            and g["destination"] == f["destination"]) == 1 and (len(u["user_id"]) + k) % 5 == 0:
                return f, day
        return None

    for u, (f, day) in pick("book", bookable):
        me = next(p for p in res(u)[0]["passengers"] if p["first_name"] == u["name"]["first_name"])
        cc = next(p for p in sorted(u["payment_methods"]) if p.startswith("credit_card"))
        price = f["dates"][day]["prices"]["economy"]
        add("book", u, f"{who(u)} You want a one-way economy flight from {f['origin']} to {f['destination']} on "
                       f"{day}, just for yourself (date of birth {me['dob']}), no bags, no insurance, paid with "
                       f"your credit card {cc}. You want to know the price.",
            [Turn(say=f"Hi, I want to book a flight from {f['origin']} to {f['destination']} on {day}. My user id "
                      f"is {u['user_id']}.",
                  actions=[_a("get_user_details", user_id=u["user_id"]),
                           _a("search_direct_flight", origin=f["origin"], destination=f["destination"], date=day)],
                  reply=f"Flight {f['flight_number']} is available. Which cabin, passengers, bags and payment?"),
             Turn(say=f"Economy, just me ({u['name']['first_name']} {u['name']['last_name']}, born {me['dob']}), no "
                      f"bags, no insurance, my credit card {cc}. What's the price?",
                  actions=[_a("book_reservation", user_id=u["user_id"], flight_number=f["flight_number"], date=day,
                              cabin="economy", passengers=[dict(me)], payment_id=cc, total_baggages=0,
                              insurance=False)],
                  reply=f"You are booked on {f['flight_number']} on {day}; the price is {price} dollars.")],
            outputs=[str(price)])

    # 5. ask what a reservation cost (reads only; the answer is the output)
    for u, r in pick("total", lambda u: res(u)[-1]):
        total = sum(p["amount"] for p in r["payment_history"])
        add("total", u, f"{who(u)} You want to know how much you paid in total for reservation "
                        f"{r['reservation_id']} and which cabin it is in.",
            [Turn(say=f"Hello, my user id is {u['user_id']}. How much did I pay for reservation "
                      f"{r['reservation_id']}?",
                  actions=[_a("get_user_details", user_id=u["user_id"]),
                           _a("get_reservation_details", reservation_id=r["reservation_id"])],
                  reply=f"You paid {total} dollars for reservation {r['reservation_id']}."),
             Turn(say="And which cabin is it?", reply=f"It is in {r['cabin']} class.")],
            outputs=[str(total), r["cabin"]])

    # 6. ask for compensation for a delayed flight
    def delayed(u):
        for r in res(u):
            if db["flights"][r["flight_number"]]["dates"][r["date"]]["status"] == "delayed":
                return r
        return None

    for u, r in pick("delay", delayed):
        amount = CERTIFICATE_PER_PASSENGER * len(r["passengers"])
        add("delay", u, f"{who(u)} Your flight in reservation {r['reservation_id']} is delayed; you are upset and "
                        f"ask for compensation.",
            [Turn(say="My flight is delayed and I'm really upset. I want some compensation.", reply=ask_id),
             auth(u),
             Turn(say=f"Reservation {r['reservation_id']}.",
                  actions=[_a("get_reservation_details", reservation_id=r["reservation_id"]),
                           _a("send_certificate", user_id=u["user_id"], amount=amount)],
                  reply=f"I am sorry about the delay. I sent you a certificate of {amount} dollars.")],
            outputs=[str(amount)])
    return tasks
