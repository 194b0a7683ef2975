"""Tool environments under adversarial arguments: the seeded fuzz run of env_fuzz.py finds no crash and no
wrongly accepted call, and the semantic rules (bounds, dates against the state's today, credit limits,
reserved cash and shares) behave as declared."""
from __future__ import annotations

import json
import math

import pytest

from env_fuzz import fuzz, fuzz_crashes_only, other_env_walks
from toolace_mt.envs import Env, Rule, all_envs, get_env, tool
from toolace_mt.envs.base import DEFAULT_MAX_LEN, MAX_NUMBER

ENVS = all_envs()


@pytest.fixture(scope="module")
def tally():
    # chosen: 2 sampled states per domain and 80-step sequences, about 10 s on one core
    return fuzz(seeds=range(2), sequence_steps=80)


def test_fuzz_no_crash_and_no_wrong_acceptance(tally):
    totals = tally.totals()
    assert totals["tried"] > 5000, totals
    bad = {k: v for k, v in tally.examples.items()}
    assert totals["crashed"] == 0 and totals["wrongly_accepted"] == 0, json.dumps(bad, indent=1)[:4000]


def test_fuzz_covers_every_class(tally):
    for klass in ("nan_inf", "huge_number", "negative", "wrong_type", "huge_string", "empty_string",
                  "control_chars", "bad_date", "past_date", "unknown_id", "duplicate", "sequence", "scenario"):
        assert tally.counts[klass]["tried"] > 0, klass
    assert "scenario_setup" not in tally.counts, "a scripted scenario could not reach its checked call"


def test_other_envs_on_the_base_do_not_crash():
    """The tau-style and ACE agent environments share the base: its checks keep them crash-free too."""
    t = fuzz_crashes_only(other_env_walks(max_tasks=3))
    assert t.totals()["tried"] > 500
    assert t.totals()["crashed"] == 0, json.dumps(dict(t.examples), indent=1)[:4000]


# ----------------------------------------------------------------------------------------- base rules
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e308, MAX_NUMBER * 10])
def test_non_finite_and_huge_numbers_are_refused_everywhere(value):
    env = get_env("vehicle_control")(seed=0)
    h = env.state_hash()
    r = env.execute("refuel", {"liters": value})
    assert not r.ok and r.error.kind == "invalid_arguments", r
    json.loads(r.content())  # strict JSON
    assert env.state_hash() == h


def test_integral_float_is_passed_as_int_and_fractions_refused():
    env = get_env("travel_booking")(seed=0)
    hotel = env.state["hotels"][0]["hotel_id"]
    args = {"hotel_id": hotel, "guest_name": "Aiko Mori", "check_in": env.state["today"], "nights": 2.0}
    r = env.execute("book_hotel", args)
    assert r.ok and isinstance(r.output["nights"], int) and r.output["nights"] == 2
    r = env.execute("book_hotel", dict(args, nights=2.5))
    assert not r.ok and r.error.kind == "invalid_arguments"


def test_schema_advertises_declared_rules():
    tb = get_env("travel_booking").tool_specs()["book_hotel"].parameters["properties"]
    assert tb["nights"]["minimum"] == 1 and tb["nights"]["maximum"] == 30
    assert tb["check_in"]["format"] == "date" and tb["guest_name"]["maxLength"] == 100
    amount = get_env("banking").tool_specs()["transfer_between_accounts"].parameters["properties"]["amount"]
    assert amount["exclusiveMinimum"] == 0
    iban = get_env("banking").tool_specs()["add_payee"].parameters["properties"]["iban"]
    assert iban["pattern"].startswith("^")


def test_strings_capped_cleaned_and_nonempty():
    env = get_env("messaging")(seed=0)
    h = env.state_hash()
    for bad in ("", "   ", "x" * (DEFAULT_MAX_LEN + 1), "nul\x00byte", "lone \ud800"):
        r = env.execute("search_contacts", {"query": bad})
        assert not r.ok and r.error.kind == "invalid_arguments", (bad, r)
    r = env.execute("search_contacts", {"query": "Ava", "\ud800": 1})  # a bad key, before the schema's own check
    assert not r.ok and "key" in r.error.message
    assert env.state_hash() == h
    assert env.execute("search_contacts", {"query": "line\twith tab"}).ok


def test_foreign_env_keeps_empty_strings_and_rules_must_name_parameters():
    class Tiny(Env):
        domain = "tiny_for_test"

        @classmethod
        def sample_state(cls, rng):
            return {"log": []}

        @tool(writes=True, phrases=["log {text}", "write {text}"])
        def log(self, text: str) -> dict:
            """Log a line.

            Args:
                text: The line.
            """
            self.state["log"].append(text)
            return {"n": len(self.state["log"])}

    env = Tiny(seed=0)
    assert env.execute("log", {"text": ""}).ok  # NONEMPTY_STRINGS is off by default
    assert not env.execute("log", {"text": float("nan")}).ok
    with pytest.raises(TypeError, match="unknown parameters"):
        tool(writes=False, rules={"nope": Rule(ge=0)})(Tiny.log)


# ------------------------------------------------------------------------------------------- dates
@pytest.mark.parametrize("domain", ["travel_booking", "calendar_reminders"])
def test_sampled_state_has_a_today_before_its_dates(domain):
    env = ENVS[domain](seed=3)
    today = env.today()
    assert today is not None and env.state["today"] == today.isoformat()
    assert all(d >= env.state["today"] for d in ENVS[domain].VALUE_POOLS["date"])


@pytest.mark.parametrize("check_in,kind", [("not a date", "invalid_arguments"), ("2024-02-31", "invalid_arguments"),
                                           ("2024-6-3", "invalid_arguments"), ("2024-05-31", "invalid_request"),
                                           ("2027-01-01", "invalid_request")])
def test_book_hotel_refuses_bad_and_past_dates(check_in, kind):
    env = get_env("travel_booking")(seed=0)
    h = env.state_hash()
    r = env.execute("book_hotel", {"hotel_id": env.state["hotels"][0]["hotel_id"], "guest_name": "John Carter",
                                   "check_in": check_in, "nights": 1})
    assert not r.ok and r.error.kind == kind, r
    assert env.state_hash() == h


def test_calendar_filters_may_look_back_but_new_events_may_not():
    env = get_env("calendar_reminders")(seed=0)
    assert env.execute("list_events", {"date": "2024-04-02"}).ok
    r = env.execute("create_event", {"title": "Retro", "date": "2024-04-02", "start_time": "09:00"})
    assert not r.ok and "past" in r.error.message
    assert env.execute("create_reminder", {"text": "call the bank", "due_date": env.state["today"]}).ok


# ------------------------------------------------------------------------------------ domain invariants
def _credit_env():
    for seed in range(20):
        env = get_env("banking")(seed=seed)
        credit = [a for a in env.state["accounts"] if a["kind"] == "credit"]
        if credit:
            return env, credit[0]
    raise AssertionError("no sampled state with a credit account")


def test_credit_account_stops_at_its_limit():
    env, acc = _credit_env()
    other = next(a for a in env.state["accounts"] if a["account_id"] != acc["account_id"])
    room = round(acc["balance"] + acc["credit_limit"], 2)
    h = env.state_hash()
    r = env.execute("transfer_between_accounts", {"from_account": acc["account_id"],
                                                  "to_account": other["account_id"], "amount": round(room + 0.01, 2)})
    assert r.error.kind == "insufficient_funds" and env.state_hash() == h
    r = env.execute("transfer_between_accounts", {"from_account": acc["account_id"],
                                                  "to_account": other["account_id"], "amount": room})
    assert r.ok and math.isclose(r.output["from_balance"], -acc["credit_limit"])


def test_money_in_whole_cents_only():
    env = get_env("banking")(seed=0)
    a, b = env.state["accounts"][:2]
    r = env.execute("transfer_between_accounts", {"from_account": a["account_id"], "to_account": b["account_id"],
                                                  "amount": 0.001})
    assert not r.ok and "cents" in r.error.message


def test_open_orders_reserve_cash_and_shares():
    env = get_env("trading")(seed=0)
    pos = env.state["positions"][0]
    sell = {"symbol": pos["symbol"], "side": "sell", "quantity": pos["shares"], "order_type": "limit",
            "limit_price": 9999.0}
    first = env.execute("place_order", sell)
    assert first.ok
    again = env.execute("place_order", sell)
    assert again.error.kind == "insufficient_funds", "the same shares were committed twice"
    assert not env.execute("place_order", dict(sell, order_type="market")).ok
    assert env.execute("cancel_order", {"order_id": first.output["order_id"]}).ok
    assert env.execute("place_order", sell).ok  # cancelling releases the shares
    # cash: a limit buy commits quantity x limit price; the rest stays available
    port = env.execute("get_portfolio", {}).output
    qty = int(port["available_cash"] // 100.0)
    buy = {"symbol": pos["symbol"], "side": "buy", "quantity": qty, "order_type": "limit", "limit_price": 100.0}
    assert env.execute("place_order", buy).ok
    assert env.execute("get_portfolio", {}).output["available_cash"] < 100.0
    r = env.execute("place_order", dict(buy, quantity=1))
    assert r.error.kind == "insufficient_funds"


def test_hotel_nights_and_portions_bounded():
    env = get_env("travel_booking")(seed=0)
    args = {"hotel_id": env.state["hotels"][0]["hotel_id"], "guest_name": "John Carter",
            "check_in": env.state["today"], "nights": 31}
    assert env.execute("book_hotel", args).error.kind == "invalid_arguments"
    assert env.execute("book_hotel", dict(args, nights=30)).ok
    food = get_env("food_delivery")
    for seed in range(10):
        env = food(seed=seed)
        item = next((m["item_id"] for r in env.state["restaurants"] if r["open"] for m in r["menu"]), None)
        if item and env.execute("add_to_cart", {"item_id": item, "quantity": 50}).ok:
            h = env.state_hash()
            r = env.execute("add_to_cart", {"item_id": item, "quantity": 1})
            assert r.error.kind == "invalid_request" and env.state_hash() == h
            return
    pytest.fail("no food state where a cart could be filled")


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_every_pooled_value_satisfies_its_rules(domain):
    """The rules engine draws argument values from VALUE_POOLS: none of them may be refused by a rule."""
    cls = ENVS[domain]
    env = cls(seed=0)
    for spec in cls.tool_specs().values():
        for p in spec.parameters["properties"]:
            for v in cls.VALUE_POOLS.get(p, []):
                _, errs = env._apply_rules(spec, {p: v})
                assert not errs and not env._date_window_error(spec, {p: v}), (spec.name, p, v, errs)
