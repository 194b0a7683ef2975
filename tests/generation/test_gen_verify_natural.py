"""The rule verifier reads values written the way an LLM writes them ("$5,021.31", "11:00 AM", "May 22nd",
"2 accounts", a memo around an id) and still rejects the wrong value in the same form. Each accepted form is
paired with its defect."""
from __future__ import annotations

import json

import pytest

from toolace_mt.generation.verify.rules import grounding_problems, reply_problems, request_problems

TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": {
    "type": "object", "properties": p, "required": []}}} for n, p in [
    ("get_balance", {"account_id": {"type": "string"}}),
    ("list_accounts", {}),
    ("get_event", {"event_id": {"type": "string"}}),
    ("pay_payee", {"account_id": {"type": "string"}, "amount": {"type": "number"}, "memo": {"type": "string"}}),
    ("create_event", {"title": {"type": "string"}, "date": {"type": "string", "format": "date"},
                      "start_time": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"}}),
    ("search_contacts", {"query": {"type": "string"}}),
]]


def _dialogue(user: str, calls: list[tuple[str, dict, dict]], reply: str = "Done.") -> dict:
    msgs = [{"role": "user", "content": user}]
    for k, (name, args, output) in enumerate(calls):
        cid = f"call_{k}"
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "name": name, "content": json.dumps(output)})
    msgs.append({"role": "assistant", "content": reply})
    return {"messages": msgs, "tools": TOOLS, "meta": {}}


BALANCE = ("get_balance", {"account_id": "ACC123"}, {"account_id": "ACC123", "balance": 5021.31, "currency": "USD"})
ACCOUNTS = ("list_accounts", {}, {"accounts": [{"account_id": "ACC123", "balance": 100.0},
                                                 {"account_id": "ACC456", "balance": 50.0}]})
EVENT = ("get_event", {"event_id": "EV7"}, {"event_id": "EV7", "start": "2024-05-22T11:00:00", "duration_minutes": 60})


def _reply(reply: str, *calls, user: str = "Check account ACC123 please.") -> list:
    return reply_problems(_dialogue(user, list(calls) or [BALANCE], reply))


@pytest.mark.parametrize("good,bad", [
    ("Your balance is $5,021.31.", "Your balance is $5,012.31."),
    ("Your balance is USD 5,021.31.", "Your balance is USD 5,021.13."),
    ("Your balance is 5021.310 dollars.", "Your balance is 5021.41 dollars."),
    ("Your balance is about $5,021.", "Your balance is about $5,120."),
    ("Your balance is roughly $5,000.", "Your balance is roughly $6,000."),
    ("Your balance is 5021.3.", "Your balance is 5012.3."),
    ("Your balance is \u20ac5,021.31.", "Your balance is \u20ac50,213.10."),
])
def test_money_forms_and_rounding(good, bad):
    assert _reply(good) == []
    assert any("reply" == c for c, _ in _reply(bad)), bad


def test_trailing_zeros_signs_and_percentages():
    out = ("get_balance", {"account_id": "ACC123"}, {"account_id": "ACC123", "change": -25.0, "rate": 0.15})
    assert _reply("It moved by -25.00, a debit of $25, at a rate of 15%.", out) == []
    assert _reply("The rate is 0.15 (15 percent) and the change 25.", out) == []
    assert _reply("It moved by -52.00.", out)
    assert _reply("The rate is 16%.", out)
    assert _reply("It moved by 250.", out)


def test_counts_and_ordinals():
    assert _reply("You have 2 accounts: ACC123 and ACC456.", ACCOUNTS) == []
    assert _reply("You have two accounts; the 2nd one is ACC456.", ACCOUNTS) == []
    bad = _reply("You have 3 accounts: ACC123 and ACC456.", ACCOUNTS)
    assert any("'3'" in why for _, why in bad), bad
    assert _reply("You have 3 items.", ACCOUNTS)  # the strict "N items" check is kept


@pytest.mark.parametrize("good,bad", [
    ("It starts at 11:00.", "It starts at 12:00."),
    ("It starts at 11 am.", "It starts at 11 pm."),
    ("It starts at 11:00 AM on May 22.", "It starts at 11:00 AM on May 23."),
    ("It is on 22 May 2024 at 11am.", "It is on 22 May 2023 at 11am."),
    ("It is on May 22nd, a Wednesday.", "It is on May 21st, a Tuesday."),
    ("It is on 2024-05-22.", "It is on 2024-05-24."),
    ("It is on 05/22/2024.", "It is on 05/25/2024."),
    ("It is a 60-minute meeting.", "It is a 90-minute meeting."),
    ("It lasts 1 hour.", "It lasts 2 hours."),
])
def test_dates_times_and_durations(good, bad):
    assert _reply(good, EVENT, user="Show event EV7.") == []
    assert _reply(bad, EVENT, user="Show event EV7."), bad


def test_computed_totals_with_a_cue_are_accepted():
    assert _reply("Together they hold $150 in total.", ACCOUNTS) == []
    assert _reply("ACC123 has $50 more than ACC456.", ACCOUNTS) == []
    # without a computation word a number must be shown: a typo that happens to be a sum is not excused
    assert _reply("ACC123 holds $150.", ACCOUNTS)
    assert _reply("Together they hold $160 in total.", ACCOUNTS)


def test_ids_and_plain_numbers_are_still_whole_tokens():
    assert _reply("Account ACC12 holds 5021.31.")  # only ACC123 was shown
    assert _reply("Account ACC123 holds 502131.")


def _pay(memo: str, amount=50, user="Pay 50 from ACC123 for the rent.") -> list:
    return grounding_problems(_dialogue(user, [("pay_payee", {"account_id": "ACC123", "amount": amount,
                                                              "memo": memo}, {"status": "paid"})]))


def test_free_text_arguments_are_checked_by_their_entities():
    assert _pay("Rent for ACC123, thanks for everything") == []
    assert _pay("Monthly rent payment of $50.00") == []
    bad = _pay("Rent for ACC999, thanks for everything")
    assert bad and "memo" in bad[0][1]
    assert _pay("Monthly rent payment of $500")
    assert _pay("Rent, contact kim@example.com")  # an e-mail nobody gave
    assert _pay("Rent, contact kim@example.com", user="Pay 50 from ACC123 for rent; kim@example.com asked.") == []


def test_lookup_keys_stay_strict_and_natural_inputs_ground_arguments():
    d = _dialogue("Find Kim Lee.", [("search_contacts", {"query": "Kim Park"}, {"contacts": []})])
    assert grounding_problems(d)  # a query is a key, not prose: an invented name is a grounding defect
    d = _dialogue("Book the dentist on May 22nd, 2024 at 11 am, and pay $5,000 from ACC123.", [
        ("create_event", {"title": "Dentist", "date": "2024-05-22", "start_time": "11:00"}, {"event_id": "EV1"}),
        ("pay_payee", {"account_id": "ACC123", "amount": 5000}, {"status": "paid"})])
    assert grounding_problems(d) == []
    d["messages"][1]["tool_calls"][0]["function"]["arguments"]["date"] = "2024-05-23"
    d["messages"][3]["tool_calls"][0]["function"]["arguments"]["amount"] = 500
    assert len(grounding_problems(d)) == 2


def test_user_dates_and_ordinals_are_not_unanswered_ids():
    d = _dialogue("Book the dentist on May 22nd at 11am for a 60-minute slot, the 3rd option.", [
        ("create_event", {"title": "Dentist", "date": "2024-05-22", "start_time": "11:00"}, {"event_id": "EV1"})])
    assert request_problems(d) == []
    d["messages"][0]["content"] += " Also cancel booking ZX4471."
    assert any("ZX4471" in why for _, why in request_problems(d))


def test_generated_replies_rewritten_naturally_pass_and_misstated_fail():
    """Real rules-engine replies: every 2-decimal amount rewritten as "$x,xxx.xx" passes; the same rewrite
    with two digits swapped (5021.31 -> "$5,012.31") is rejected."""
    import re

    from toolace_mt.generation.config import parse_recipe
    from toolace_mt.generation.pipeline import run_batch
    from toolace_mt.generation.resolve import numbers_in

    cfg = parse_recipe({"name": "nat", "engine": "rules", "n_dialogues": 8, "seed": 1, "progress": False,
                        "domains": ["banking", "trading", "food_delivery"]})
    n = 0
    for d in (d for d in run_batch(cfg, list(range(8))) if d["meta"]["verification"]["passed"]):
        for i, m in enumerate(d["messages"]):
            if m["role"] != "assistant" or m.get("tool_calls") or not m.get("content"):
                continue
            before = " ".join(x.get("content") or "" for x in d["messages"][:i])
            for tok in dict.fromkeys(re.findall(r"(?<![\w.])\d+\.\d\d(?![\w])", m["content"])):
                swapped = tok[:-2] + tok[-1] + tok[-2]
                if tok[-1] == tok[-2] or float(swapped) in numbers_in(before):
                    continue
                for val, ok in ((tok, True), (swapped, False)):
                    bad = json.loads(json.dumps(d))
                    bad["messages"][i]["content"] = m["content"].replace(tok, f"${float(val):,.2f}", 1)
                    assert (reply_problems(bad) == []) is ok, (val, reply_problems(bad))
                n += 1
    assert n >= 5
