"""Valid banking dialogues built by executing real tool calls: shared by the training, app and fault tests."""
from __future__ import annotations

import random
from pathlib import Path

from toolace_mt.envs import get_env
from toolace_mt.io import save_dataset
from toolace_mt.schema import Dialogue, check_dialogue


def _call(env, msgs, n, name, args):
    cid = f"call_{n}"
    res = env.execute(name, args)
    msgs.append({"role": "assistant", "content": None,
                 "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]})
    msgs.append({"role": "tool", "tool_call_id": cid, "name": name, "content": res.content()})
    return res


def banking_dialogue(seed: int, turns: int = 3, tool_update: bool = False, tools: list[str] | None = None) -> Dialogue:
    rng = random.Random(seed)
    Env = get_env("banking")
    env = Env(seed=seed)
    initial = tools or ["list_accounts", "get_balance", "transfer_between_accounts", "list_transactions"]
    msgs = [{"role": "system", "content": "You are a helpful banking assistant."}]
    n = 0
    msgs.append({"role": "user", "content": rng.choice(["Which accounts do I have?", "Can you list my bank accounts?"])})
    res = _call(env, msgs, n := n + 1, "list_accounts", {})
    accts = [a["account_id"] for a in res.output["accounts"]]
    msgs.append({"role": "assistant", "content": "You have " + ", ".join(accts) + "."})
    a = rng.choice(accts)
    if turns >= 2:
        msgs.append({"role": "user", "content": f"What is the balance of account {a}?"})
        res = _call(env, msgs, n := n + 1, "get_balance", {"account_id": a})
        msgs.append({"role": "assistant", "content": f"The balance of {a} is {res.output['balance']} USD."})
    if turns >= 3:
        b = rng.choice([x for x in accts if x != a])
        amount = rng.choice([25.0, 40.0, 75.5, 120.0])
        msgs.append({"role": "user", "content": f"Move {amount} dollars from {a} to {b}."})
        res = _call(env, msgs, n := n + 1, "transfer_between_accounts",
                    {"from_account": a, "to_account": b, "amount": amount})
        msgs.append({"role": "assistant", "content": f"Done: transaction {res.output['transaction_id']}."
                     if res.ok else f"The transfer failed: {res.error.message}"})
    meta = {"domain": "banking", "seed": seed}
    if tool_update:
        at = len(msgs)
        msgs.append({"role": "user", "content": "Show me my saved payees."})
        _call(env, msgs, n := n + 1, "list_payees", {})
        msgs.append({"role": "assistant", "content": "Here are your saved payees."})
        meta["tool_updates"] = [{"at": at, "tools": Env.tool_schemas(["list_payees"])}]
    d = Dialogue.model_validate({"id": f"bank-{seed}", "tools": Env.tool_schemas(initial), "messages": msgs,
                                 "meta": meta})
    return check_dialogue(d)


def write_banking_dataset(out: Path, n: int = 24, seed0: int = 0, turns: int = 3, updates: bool = True,
                          tools: list[str] | None = None) -> Path:
    ds = [banking_dialogue(seed0 + i, turns=turns, tool_update=updates and (i % 4 == 3), tools=tools) for i in range(n)]
    save_dataset(ds, out)
    return out
