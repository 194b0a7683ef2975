"""Seeded, bounded fuzzing of the tool environments with adversarial arguments (shared by test_env_fuzz.py;
`python tests/core/env_fuzz.py` prints the per-class counts as JSON).

Every tool is called with one argument replaced by an adversarial value (NaN, infinity, 1e308, negative
numbers, wrong types, 200k-character and empty strings, impossible and past dates, unknown ids), every write
is repeated once, and random sequences of valid and invalid calls run against each domain's invariants.

Counted per class:
* ``crashed``: an exception escaped `execute`, an ``internal_error`` came back, the tool message was not
  strict JSON (NaN/Infinity), a failed call changed `state_hash()`, or the state stopped being strict JSON;
* ``wrongly_accepted``: a call that the oracle below says must be refused succeeded, or a call left a
  domain invariant broken.

The oracle is written here, independently of the environments' own declarations, so that it can judge the
code before and after the validation was added.
"""
from __future__ import annotations

import json
import math
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__":  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from toolace_mt.envs import all_envs  # noqa: E402

HUGE = "x" * 200_000  # chosen: far beyond any cap a tool argument may have
DATE_PARAMS = {"date", "check_in", "due_date"}
# Dates that must be today or later (a booking, a new event, a due date); filters may look at the past.
FUTURE_ONLY = {("travel_booking", "book_hotel", "check_in"), ("travel_booking", "search_flights", "date"),
               ("calendar_reminders", "create_event", "date"), ("calendar_reminders", "reschedule_event", "date"),
               ("calendar_reminders", "create_reminder", "due_date")}
# String parameters where an empty value is a legal answer (an optional note, an empty file).
EMPTY_OK = {("banking", "pay_payee", "memo"), ("file_system", "write_file", "content"),
            ("support_tickets", "create_ticket", "description"), ("food_delivery", "checkout", "note"),
            ("calendar_reminders", "create_event", "location")}
# Consumed parameters that are filters (an unknown value finds nothing) rather than references to an entity.
FILTERS = {("travel_booking", "search_hotels", "city"), ("calendar_reminders", "list_events", "date"),
           ("vehicle_control", "start_navigation", "destination")}
# A repeat of the identical successful call must be refused (the thing is already cancelled, added, set ...).
NOT_REPEATABLE_PREFIXES = ("cancel_", "delete_", "complete_", "close_", "block_", "reopen_", "remove_", "add_payee",
                           "add_contact", "add_attendee", "add_to_watchlist", "make_directory", "set_", "rate_",
                           "assign_")
CREDIT_LIMIT_FALLBACK = 5000.0  # the oracle's limit for credit accounts of states that declare none


# ----------------------------------------------------------------------------------------------- helpers
def strict_json(obj: Any) -> bool:
    try:
        json.dumps(obj, allow_nan=False)
        return True
    except (ValueError, TypeError):
        return False


def _numbers(obj: Any):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


def value_sources(env, spec, param, extra=None):
    """Candidate values for one parameter: chained outputs, entities in the state, pools, enums."""
    kind = spec.consumes.get(param)
    if kind is not None:
        vals = list((extra or {}).get(kind, [])) + env.entity_values(kind)
        if vals:
            return vals
    if param in env.VALUE_POOLS:
        return list(env.VALUE_POOLS[param])
    enum = spec.parameters["properties"][param].get("enum")
    return [v for v in enum if v is not None] if enum else []


def valid_args(env, spec, rng, extra=None, optional=0.5, any_enum=False) -> dict[str, Any]:
    """Arguments drawn from entities, produced values and pools (required ones, optional ones at random);
    `any_enum`: sometimes any value of an enum instead of the pool (a sell where the pool only buys)."""
    extra = extra or {}
    out = {}
    for p, ps in spec.parameters["properties"].items():
        if p not in spec.required and rng.random() > optional:
            continue
        vals = value_sources(env, spec, p, extra)
        if any_enum and ps.get("enum") and rng.random() < 0.5:
            vals = [v for v in ps["enum"] if v is not None]
        if vals:
            out[p] = rng.choice(vals)
    return out


def _ptype(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t}


def adversarial(domain: str, name: str, param: str, schema: dict[str, Any], spec) -> list[tuple[str, Any, bool]]:
    """(class, value, must_refuse) for one parameter."""
    t = _ptype(schema)
    key = (domain, name, param)
    out: list[tuple[str, Any, bool]] = []
    for v in (float("nan"), float("inf"), float("-inf")):
        out.append(("nan_inf", v, True))
    for v in (1e308, -1e308, 1e30, 2 ** 63):
        out.append(("huge_number", v, True))
    if t & {"number", "integer"}:
        out.append(("negative", -1, True))
        out.append(("negative", -0.5, True))
        out.append(("zero", 0, False))
        if "integer" in t:
            out.append(("wrong_type", 2.5, True))
    out += [("wrong_type", v, True) for v in ([], {}, [1, 2], {"a": 1})]
    if "boolean" not in t:
        out.append(("wrong_type", True, True))
    if "null" not in t:
        out.append(("wrong_type", None, True))
    if "string" in t:
        if "enum" in schema:
            out.append(("wrong_type", "not-a-choice", True))
        else:
            out.append(("huge_string", HUGE, True))
            out.append(("empty_string", "", key not in EMPTY_OK))
            out.append(("empty_string", "   ", key not in EMPTY_OK))
            out.append(("control_chars", "a\x00b", True))
            out.append(("control_chars", "lone \ud800 surrogate", True))
        if param in DATE_PARAMS:
            for v in ("not a date", "2024-02-31", "2024-13-01", "2024-6-3", "20240603", "2024-06-03T10:00"):
                out.append(("bad_date", v, True))
            out.append(("past_date", "2001-01-01", key in FUTURE_ONLY))
            out.append(("past_date", "9999-12-31", key in FUTURE_ONLY))
        if param in spec.consumes and key not in FILTERS:
            out.append(("unknown_id", "ZZ-0000-unknown", True))
    else:
        out.append(("wrong_type", "12", True))
    return out


# -------------------------------------------------------------------------------------------- invariants
def _generic_invariants(state: dict[str, Any]) -> list[str]:
    errs = []
    if not strict_json(state):
        errs.append("state is not strict JSON")
    if any(isinstance(x, float) and not math.isfinite(x) for x in _numbers(state)):
        errs.append("non-finite number in state")
    if any(abs(x) > 1e12 for x in _numbers(state)):
        errs.append("a number beyond 1e12 in state")
    return errs


def _banking(before: dict, state: dict) -> list[str]:
    errs = []
    old_tx = {t["transaction_id"] for t in before["transactions"]}
    new_amounts = sum(t["amount"] for t in state["transactions"] if t["transaction_id"] not in old_tx)
    delta = sum(a["balance"] for a in state["accounts"]) - sum(a["balance"] for a in before["accounts"])
    if not math.isfinite(delta) or abs(delta - new_amounts) > 0.005:
        errs.append(f"money not conserved: balances moved {delta}, transactions {new_amounts}")
    for a in state["accounts"]:
        floor = -a.get("credit_limit", CREDIT_LIMIT_FALLBACK) if a["kind"] == "credit" else 0.0
        if not a["balance"] >= floor - 1e-9:
            errs.append(f"{a['account_id']} ({a['kind']}) balance {a['balance']} below {floor}")
    for t in state["transactions"]:
        if t["transaction_id"] not in old_tx and round(t["amount"], 2) != t["amount"]:
            errs.append(f"transaction {t['transaction_id']} is not in whole cents: {t['amount']}")
    return errs


def _trading(before: dict, state: dict) -> list[str]:
    errs = []
    open_orders = [o for o in state["orders"] if o["status"] == "open"]
    reserved = sum(o["quantity"] * o["limit_price"] for o in open_orders
                   if o["side"] == "buy" and o["order_type"] == "limit")
    if not state["cash"] >= -1e-9:
        errs.append(f"cash {state['cash']} is negative")
    if not state["cash"] + 0.005 >= reserved:
        errs.append(f"open limit buys commit {reserved:.2f} but cash is {state['cash']}")
    held = {p["symbol"]: p["shares"] for p in state["positions"]}
    for p in state["positions"]:
        if not (isinstance(p["shares"], int) and p["shares"] > 0):
            errs.append(f"position {p['symbol']} has {p['shares']} shares")
    selling: dict[str, int] = defaultdict(int)
    for o in open_orders:
        if o["side"] == "sell":
            selling[o["symbol"]] += o["quantity"]
    for sym, q in selling.items():
        if q > held.get(sym, 0):
            errs.append(f"open sells of {q} {sym} but only {held.get(sym, 0)} held")
    return errs


def _travel(before: dict, state: dict) -> list[str]:
    errs = [f"flight {f['flight_id']} seats_left {f['seats_left']}" for f in state["flights"] if f["seats_left"] < 0]
    errs += [f"hotel {h['hotel_id']} rooms_left {h['rooms_left']}" for h in state["hotels"] if h["rooms_left"] < 0]
    for b in state["hotel_bookings"]:
        if not (isinstance(b["nights"], int) and 1 <= b["nights"] <= 365):
            errs.append(f"hotel booking {b['booking_id']} for {b['nights']} nights")
    return errs


def _food(before: dict, state: dict) -> list[str]:
    errs = []
    for i in (state.get("cart") or {}).get("items", []):
        if not (isinstance(i["quantity"], int) and 1 <= i["quantity"] <= 1000):
            errs.append(f"cart item {i['item_id']} quantity {i['quantity']}")
    for o in state["orders"]:
        if not o["total"] >= 0:
            errs.append(f"order {o['order_id']} total {o['total']}")
    return errs


def _retail(before: dict, state: dict) -> list[str]:
    errs = [f"product {p['product_id']} stock {p['stock']}" for p in state["products"] if p["stock"] < 0]
    for o in state["orders"]:
        for it in o["items"]:
            if not (isinstance(it["quantity"], int) and it["quantity"] >= 1):
                errs.append(f"order {o['order_id']} item quantity {it['quantity']}")
    return errs


def _vehicle(before: dict, state: dict) -> list[str]:
    errs = []
    if not 0 <= state["fuel_liters"] <= state["tank_capacity"]:
        errs.append(f"fuel {state['fuel_liters']} outside [0, {state['tank_capacity']}]")
    c = state["climate"]
    if not 16 <= c["temperature_c"] <= 30 or not 0 <= c["fan_speed"] <= 5:
        errs.append(f"climate out of range: {c}")
    return errs


INVARIANTS: dict[str, Callable[[dict, dict], list[str]]] = {
    "banking": _banking, "trading": _trading, "travel_booking": _travel, "food_delivery": _food,
    "retail_orders": _retail, "vehicle_control": _vehicle,
}


def invariant_errors(domain: str, before: dict, state: dict) -> list[str]:
    errs = _generic_invariants(state)
    if not errs and domain in INVARIANTS:
        try:
            errs = INVARIANTS[domain](before, state)
        except Exception as e:  # a malformed state (a string where a number belongs) breaks the invariant code
            errs = [f"invariant check failed: {type(e).__name__}: {e}"]
    return errs


# ------------------------------------------------------------------------------------------------- fuzz
class Tally:
    def __init__(self):
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tried": 0, "crashed": 0, "wrongly_accepted": 0})
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, cls: str, crashed: str = "", wrong: str = "") -> None:
        c = self.counts[cls]
        c["tried"] += 1
        for what, msg in (("crashed", crashed), ("wrongly_accepted", wrong)):
            if msg:
                c[what] += 1
                if len(self.examples[f"{cls}/{what}"]) < 8:
                    self.examples[f"{cls}/{what}"].append(msg)

    def totals(self) -> dict[str, int]:
        t = {"tried": 0, "crashed": 0, "wrongly_accepted": 0}
        for c in self.counts.values():
            for k in t:
                t[k] += c[k]
        return t


def run_call(env, name: str, args: Any) -> tuple[Any, str]:
    """(result or None, crash description or '')."""
    h = env.state_hash()
    try:
        r = env.execute(name, args)
    except Exception as e:
        return None, f"{name}({_short(args)}) raised {type(e).__name__}: {e}"
    try:
        json.loads(r.content())
        json.dumps(json.loads(r.content()), allow_nan=False)
    except Exception as e:
        return r, f"{name}({_short(args)}) tool message is not strict JSON: {e}"
    if not r.ok and r.error.kind == "internal_error":
        return r, f"{name}({_short(args)}) internal_error: {r.error.message[:120]}"
    try:
        h2 = env.state_hash()
    except Exception as e:
        return r, f"{name}({_short(args)}) left a state that cannot be hashed: {type(e).__name__}"
    if not r.ok and h2 != h:
        return r, f"{name}({_short(args)}) failed ({r.error.kind}) but changed the state"
    if not strict_json(env.state):
        return r, f"{name}({_short(args)}) left a state that is not strict JSON"
    return r, ""


def _short(args: Any) -> str:
    s = repr(args)
    return s if len(s) < 140 else s[:140] + "..."


def fuzz(seeds=range(3), sequence_steps: int = 120, rng_seed: int = 0) -> Tally:
    tally = Tally()
    for domain, cls in all_envs().items():
        for seed in seeds:
            rng = random.Random(f"{rng_seed}/{domain}/{seed}")
            base_env = cls(seed=seed)
            for name, spec in sorted(cls.tool_specs().items()):
                base = valid_args(base_env, spec, rng, optional=1.0)
                for param, schema in spec.parameters["properties"].items():
                    for klass, value, must_refuse in adversarial(domain, name, param, schema, spec):
                        env = cls(state=base_env.state)
                        before = env.snapshot()
                        r, crash = run_call(env, name, dict(base, **{param: value}))
                        wrong = ""
                        if not crash and r is not None and r.ok:
                            if must_refuse:
                                wrong = f"{name}({param}={_short(value)}) accepted"
                            else:
                                errs = invariant_errors(domain, before, env.state)
                                wrong = f"{name}({param}={_short(value)}): {errs[0]}" if errs else ""
                        tally.add(klass, crash, wrong)
                # duplicate operation: the same successful write twice
                if spec.writes:
                    env = cls(state=base_env.state)
                    for _ in range(20):
                        args = valid_args(env, spec, rng)
                        snap = env.snapshot()
                        r, crash = run_call(env, name, args)
                        if crash or (r is not None and r.ok):
                            break
                        env.restore(snap)
                    if r is not None and r.ok and not crash:
                        r2, crash = run_call(env, name, args)
                        wrong = ""
                        if not crash and r2.ok and name.startswith(NOT_REPEATABLE_PREFIXES):
                            wrong = f"{name}({_short(args)}) succeeded twice"
                        tally.add("duplicate", crash, wrong)
                    elif crash:
                        tally.add("duplicate", crash)
            # random sequences of valid and invalid calls against the domain invariants
            env = cls(seed=seed)
            start = env.snapshot()
            produced: dict[str, list[Any]] = defaultdict(list)
            names = sorted(cls.tool_specs())
            for _ in range(sequence_steps):
                name = rng.choice(names)
                spec = cls.tool_specs()[name]
                args = valid_args(env, spec, rng, extra=produced, any_enum=True)
                props = spec.parameters["properties"]
                if props and rng.random() < 0.35:
                    p = rng.choice(sorted(props))
                    _, v, _ = rng.choice(adversarial(domain, name, p, props[p], spec))
                    args[p] = v
                elif "amount" in props and rng.random() < 0.3:
                    args["amount"] = rng.choice([0.01, 999.99, 5000.0, 12000.0, 0.001])
                elif "quantity" in props and rng.random() < 0.3:
                    args["quantity"] = rng.choice([1, 3, 50, 500, 5000])
                    if "limit_price" in props and rng.random() < 0.5:
                        args["order_type"], args["limit_price"] = "limit", rng.choice([1.0, 100.0, 900.0, 5000.0])
                r, crash = run_call(env, name, args)
                wrong = ""
                if not crash and r is not None and r.ok:
                    from toolace_mt.envs import extract

                    for kind, path in spec.produces.items():
                        produced[kind].extend(v for v in extract(r.output, path) if isinstance(v, str))
                    errs = invariant_errors(domain, start, env.state)
                    if errs:
                        wrong = f"{name}({_short(args)}): {errs[0]}"
                        env.state = copy_back(start)  # report each broken invariant once, from a clean state
                        start = env.snapshot()
                if crash:  # go on from the last good state
                    env.state = copy_back(start)
                tally.add("sequence", crash, wrong)
    scenarios(tally, seeds)
    return tally


def scenarios(tally: Tally, seeds=range(3)) -> None:
    """Scripted double commitments and limit breaches: the last call of each script must be refused."""
    envs = all_envs()
    for seed in seeds:
        scripts: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
        tr = envs["trading"](seed=seed)
        pos = tr.state["positions"][0]
        sym, shares = pos["symbol"], pos["shares"]
        price = next(s["price"] for s in tr.state["stocks"] if s["symbol"] == sym)
        cash = tr.state["cash"]
        sell_all = {"symbol": sym, "side": "sell", "quantity": shares, "order_type": "limit",
                    "limit_price": round(price * 2, 2)}
        scripts += [
            ("trading", [("place_order", sell_all), ("place_order", sell_all)]),  # the same shares twice
            ("trading", [("place_order", sell_all), ("place_order", dict(sell_all, order_type="market"))]),
            ("trading", [("place_order", {"symbol": sym, "side": "buy", "quantity": int(cash // 10) + 1,
                                          "order_type": "limit", "limit_price": 10.0})]),  # beyond cash
            ("trading", [("place_order", {"symbol": sym, "side": "buy", "quantity": int(cash * 0.8 // 10),
                                          "order_type": "limit", "limit_price": 10.0}),
                         ("place_order", {"symbol": sym, "side": "buy", "quantity": int(cash * 0.5 // price) + 1})]),
        ]
        bk = envs["banking"](seed=seed)
        accs = bk.state["accounts"]
        debit = accs[0]["account_id"]  # sampled kinds start checking, savings, credit
        payee = bk.state["payees"][0]["payee_id"]
        scripts.append(("banking", [("transfer_between_accounts", {"from_account": debit,
                                                                   "to_account": accs[1]["account_id"],
                                                                   "amount": 0.001})]))  # rounds away: not cents
        for a in accs:
            if a["kind"] == "credit":
                scripts += [
                    ("banking", [("transfer_between_accounts", {"from_account": a["account_id"], "to_account": debit,
                                                                "amount": round(a["balance"] + 20000, 2)})]),
                    ("banking", [("pay_payee", {"account_id": a["account_id"], "payee_id": payee, "amount": 1e308})]),
                ]
        tb = envs["travel_booking"](seed=seed)
        hotel = tb.state["hotels"][0]["hotel_id"]
        book = {"hotel_id": hotel, "guest_name": "Maria Lopez", "check_in": "2024-06-03", "nights": 2}
        scripts += [
            ("travel_booking", [("book_hotel", dict(book, check_in="not a date"))]),
            ("travel_booking", [("book_hotel", dict(book, nights=10 ** 30))]),
            ("travel_booking", [("book_hotel", dict(book, check_in="2024-02-31"))]),
            ("travel_booking", [("book_hotel", dict(book, check_in="2020-01-01"))]),  # in the past
        ]
        for domain, script in scripts:
            env = envs[domain](seed=seed)
            ok_before = True
            for name, args in script[:-1]:
                r, crash = run_call(env, name, args)
                if crash or not (r is not None and r.ok):
                    ok_before = False
                    tally.add("scenario_setup", crash)  # a step before the checked call was refused
                    break
            if not ok_before:
                continue
            name, args = script[-1]
            r, crash = run_call(env, name, args)
            wrong = f"{domain}: {' then '.join(n for n, _ in script)} ({_short(args)}) accepted" if (
                not crash and r is not None and r.ok) else ""
            tally.add("scenario", crash, wrong)


def other_env_walks(max_tasks: int = 6) -> list[tuple[str, Callable[[], Any], list[dict[str, Any]]]]:
    """(label, fresh env, gold actions) of the tau-style and ACE agent tasks: environments elsewhere on the same
    `Env` base. Their gold calls are valid arguments to mutate along a real walk through the state."""
    from toolace_mt.evaluation.ace.agent_envs import AGENT_ENVS
    from toolace_mt.evaluation.ace.agent_tasks import build_agent_tasks
    from toolace_mt.evaluation.tau.domains import DOMAINS, own_tasks

    out = []
    for name, (cls, _) in sorted(DOMAINS.items()):
        for t in own_tasks([name])[:max_tasks]:
            out.append((f"tau/{name}", cls.fresh, t.actions))
    seen: dict[str, int] = defaultdict(int)
    for t in build_agent_tasks():
        if seen[t["env"]] < max_tasks:
            seen[t["env"]] += 1
            out.append((f"ace/{t['env']}", AGENT_ENVS[t["env"]], t["actions"]))
    return out


def fuzz_crashes_only(walks, rng_seed: int = 0) -> Tally:
    """Replay each walk's gold calls; before each, try it with one argument made adversarial (on the same
    state). Only crashes are counted: these environments have their own semantics, so the oracle above does
    not apply to them."""
    tally = Tally()
    for label, make, actions in walks:
        env = make()
        for a in actions:
            spec = env.tool_specs().get(a["name"])
            for param, schema in (spec.parameters["properties"].items() if spec else []):
                for klass, value, _ in adversarial(label, a["name"], param, schema, spec):
                    snap = env.snapshot()
                    _, crash = run_call(env, a["name"], dict(a["kwargs"], **{param: value}))
                    env.restore(snap)
                    tally.add(f"{label.split('/')[0]}:{klass}", crash)
            env.execute(a["name"], a["kwargs"])
    return tally


def copy_back(snap: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(snap))


if __name__ == "__main__":
    import time

    t0 = time.time()
    t = fuzz()
    o = fuzz_crashes_only(other_env_walks())
    print(json.dumps({"classes": dict(sorted(t.counts.items())), "total": t.totals(),
                      "other_envs_crash_only": {"classes": dict(sorted(o.counts.items())), "total": o.totals(),
                                                "examples": dict(sorted(o.examples.items()))},
                      "seconds": round(time.time() - t0, 1),
                      "examples": dict(sorted(t.examples.items()))}, indent=1, ensure_ascii=True))
