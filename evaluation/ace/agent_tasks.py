"""Our own ACEBench-style agent tasks on `agent_envs`: ``agent_multi_step`` (the whole request at once, no
user) and ``agent_multi_turn`` (a simulated user reveals it turn by turn). Gold actions are the milestones; the
gold final state is what replaying them on a fresh environment gives. Built deterministically."""
from __future__ import annotations

from typing import Any

from ..episodes.domain import Task, Turn
from .agent_envs import CONTACTS, INBOX_CAPACITY, MERCHANTS, AGENT_ENVS, phone_state


def _a(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kwargs": kw}


def _msg_goal(sender: str, receiver: str, text: str, n_sent_before: int = 0, wifi_on: bool = False):
    """Actions to send one message from the initial phone state after `n_sent_before` earlier sends."""
    acts = [] if wifi_on else [_a("turn_on_wifi")]
    inbox = len(phone_state()["MessageApi"]["inbox"]) + n_sent_before
    if inbox >= INBOX_CAPACITY:
        acts += [_a("get_earliest_message_id"), _a("delete_message", message_id=1 + n_sent_before - (
            INBOX_CAPACITY - len(phone_state()["MessageApi"]["inbox"])))]
    acts.append(_a("send_message", sender_name=sender, receiver_name=receiver, message=text))
    return acts


def _food_goal(user: str, merchant: str, items: list[tuple[str, int]], wifi_on: bool = False):
    acts = [] if wifi_on else [_a("turn_on_wifi")]
    acts += [_a("login_food_platform", username=user, password=f"{user.lower()}pass"),
             _a("get_products", merchant_name=merchant),
             _a("add_food_delivery_order", username=user, merchant_name=merchant,
                items=[{"product": p, "quantity": q} for p, q in items])]
    total = sum(MERCHANTS[merchant][p] * q for p, q in items)
    return acts, total


def _specs() -> list[dict[str, Any]]:
    """Goal specs: env, involved classes, the full request, the turn split, the actions per turn."""
    names = list(CONTACTS)
    specs: list[dict[str, Any]] = []
    texts = ["Lunch at noon tomorrow?", "I'll be ten minutes late.", "Can you call me tonight?",
             "Thanks for the book!"]
    for i in range(2):
        s, r, t = names[i], names[i + 2], texts[i]
        specs.append({"env": "phone", "classes": ["BaseApi", "MessageApi"],
                      "request": f"I am {s}. Send {r} the message '{t}'.",
                      "turns": [(f"Hi, I need to send a message. I am {s}.", []),
                                (f"Send it to {r}, saying '{t}'.", _msg_goal(s, r, t))]})
    s, r1, r2 = names[4], names[0], names[1]
    acts = _msg_goal(s, r1, texts[2]) + _msg_goal(s, r2, texts[3], n_sent_before=1, wifi_on=True)
    specs.append({"env": "phone", "classes": ["BaseApi", "MessageApi"],
                  "request": f"I am {s}. Send {r1} '{texts[2]}' and then send {r2} '{texts[3]}'. If the inbox is "
                             f"full, delete the oldest message first.",
                  "turns": [(f"I am {s}. Please send {r1} '{texts[2]}'.", _msg_goal(s, r1, texts[2])),
                            (f"Now send {r2} '{texts[3]}'. If the inbox is full, delete the oldest message.",
                             _msg_goal(s, r2, texts[3], n_sent_before=1, wifi_on=True))]})
    for user, merchant, items in [("Grace", "Pizza Planet", [("Margherita Pizza", 1), ("Garlic Bread", 2)]),
                                  ("Isaac", "Sushi Corner", [("Salmon Roll", 2)]),
                                  ("Jack", "Burger Barn", [("Veggie Burger", 1), ("Fries", 1)])]:
        acts, total = _food_goal(user, merchant, items)
        what = " and ".join(f"{q} {p}" for p, q in items)
        specs.append({"env": "phone", "classes": ["BaseApi", "FoodPlatform"],
                      "request": f"I am {user} (food platform password {user.lower()}pass). Order {what} from "
                                 f"{merchant}.",
                      "turns": [(f"Hi, I want to order food from {merchant}. I'm {user}.", []),
                                (f"{what}, please. My password is {user.lower()}pass.", acts)]})
    user, merchant, items = "Helen", "Burger Barn", [("Classic Burger", 2)]
    acts, total = _food_goal(user, merchant, items)
    rem = _a("add_reminder", title="Food spending", description=f"Spent {total} on food", time="2025-03-01 20:00")
    specs.append({"env": "phone", "classes": ["BaseApi", "ReminderApi", "FoodPlatform"],
                  "request": f"I am {user} (password {user.lower()}pass). Order 2 Classic Burger from {merchant}, "
                             f"then add a reminder titled 'Food spending' with description 'Spent <total> on "
                             f"food' at 2025-03-01 20:00, where <total> is what the order cost.",
                  "turns": [(f"I'm {user}, password {user.lower()}pass. Order 2 Classic Burger from {merchant}.", acts),
                            (f"Add a reminder titled 'Food spending' saying 'Spent <total> on food' (the order "
                             f"total) for 2025-03-01 20:00.", [rem])]})
    specs.append({"env": "phone", "classes": ["ReminderApi"],
                  "request": "Add a reminder titled 'Gym' with description 'Leg day' at 2025-03-02 07:00.",
                  "turns": [("I'd like a reminder for tomorrow morning.", []),
                            ("Title 'Gym', description 'Leg day', at 2025-03-02 07:00.",
                             [_a("add_reminder", title="Gym", description="Leg day", time="2025-03-02 07:00")])]})
    specs.append({"env": "travel", "classes": ["Travel"],
                  "request": "I am user U200. Book the cheapest economy seat from Beijing to Shanghai, paid from "
                             "my balance.",
                  "turns": [("I need a flight from Beijing to Shanghai. My user id is U200.",
                             [_a("get_user_details", user_id="U200"),
                              _a("search_flights", origin="Beijing", destination="Shanghai")]),
                            ("Economy, paid from my balance.",
                             [_a("reserve_flight", user_id="U200", flight_no="CA101", cabin="economy",
                                 payment_method="balance")])]})
    specs.append({"env": "travel", "classes": ["Travel"],
                  "request": "I am user U201. Cancel my reservation R9001.",
                  "turns": [("Hi, I want to cancel a booking.", []),
                            ("User U201, reservation R9001.", [_a("cancel_reservation", reservation_id="R9001")])]})
    specs.append({"env": "travel", "classes": ["Travel"],
                  "request": "I am user U202. Book a business seat from Beijing to Chengdu with my card card_5555.",
                  "turns": [("Book me a flight from Beijing to Chengdu, user U202.",
                             [_a("search_flights", origin="Beijing", destination="Chengdu")]),
                            ("Business class, pay with card card_5555.",
                             [_a("reserve_flight", user_id="U202", flight_no="MU330", cabin="business",
                                 payment_method="card_5555")])]})
    return specs


def _check(task: Task, env_name: str) -> None:
    env = AGENT_ENVS[env_name]()
    for a in task.actions:
        r = env.execute(a["name"], a["kwargs"])
        if not r.ok:
            raise RuntimeError(f"ACE agent task builder: gold action fails in {task.task_id}: {a} -> {r.error}")


def build_agent_tasks() -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(_specs()):
        acts = [a for _, aa in s["turns"] for a in aa]
        step = Task(task_id=f"own_agent_multi_step_{i}", domain=s["env"], user_id="",
                    instruction=s["request"], script=[Turn(say=s["request"], actions=acts, reply="Done.")])
        turn = Task(task_id=f"own_agent_multi_turn_{i}", domain=s["env"], user_id="",
                    instruction=s["request"] + " Reveal one detail at a time when asked.",
                    script=[Turn(say=say, actions=aa,
                                 reply="Done. Anything else?" if aa else "Sure, could you give me the details?")
                            for say, aa in s["turns"]])
        for t, cat in ((step, "agent_multi_step"), (turn, "agent_multi_turn")):
            _check(t, s["env"])
            out.append({"id": t.task_id, "category": cat, "source": "own", "env": s["env"],
                        "involved_classes": s["classes"], **t.to_dict()})
    return out
