"""Teacher-forced exact calls on the gold dialogues of BFCL-layout tasks (a graded metric, not official).

For each task, its gold dialogue (`gold.gold_dialogue`) is rendered as training renders it (one row per tool
list, `training.data.dialogue_to_rows`) with the model's own chat template; one forward pass per row gives,
for every gold assistant message that makes calls, whether the greedy next-token prediction reproduces the
whole message (every ``<tool_call>`` block and the end-of-turn token) given the gold history. An assistant
message that appears in two rows (before a tool update) is counted once, from the first row. This separates
"the model cannot copy the call" from "the model drifted earlier in free play". For a message that is not exact,
``first_miss`` says which part of the call its first wrong token falls in (`miss_part`): a wrong tool name and a
wrong copied value are different failures with different cures.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional


def _render(tok, messages, tools, generation_prompt=False) -> list[int]:
    return list(tok.apply_chat_template(messages, tools=tools or None, tokenize=True, return_dict=True,
                                        add_generation_prompt=generation_prompt)["input_ids"])


MISS_PARTS = ("call_start", "call_frame", "name", "call_order", "arg_key", "arg_value", "structure", "call_count")


def miss_part(prefix: str, predicted: str = "", other_names: tuple[str, ...] = ()) -> str:
    """Which part of a gold call message its first wrong token falls in, from the gold text before that token:
    ``call_start`` (no ``<tool_call>`` opened yet: the model answers in text or opens another way), ``call_frame``
    (the call's fixed opening ``{"name": "``, before the tool's name begins), ``name`` (the tool's name, before its
    arguments), ``call_order`` (a name miss where the predicted token `predicted` continues the name of another call
    of the same message, `other_names`: it begins with another of the message's calls), ``arg_key`` /
    ``arg_value`` (an argument's key or value; the token that opens a string counts for the string it opens),
    ``structure`` (JSON punctuation between them), ``call_count`` (after a closed call: one call too few or too many)."""
    start = prefix.rfind("<tool_call>")
    if start < 0:
        return "call_start"
    block = prefix[start + len("<tool_call>"):]
    if "</tool_call>" in block:
        return "call_count"
    m = next((block.find(k) for k in ('"arguments"', '"parameters"') if k in block), -1)
    if m < 0:
        opened = re.search(r'"name"\s*:\s*"', block)
        if opened is None:
            return "call_frame"
        so_far = block[opened.end():]
        guess = so_far + predicted.strip()
        if predicted.strip() and any(n.startswith(guess) for n in other_names):
            return "call_order"
        return "name"
    # scan the arguments object: inside a string or not, and the last significant character outside strings
    # ('"' once a string has closed: what follows is punctuation)
    in_str, esc, last, opener, stack = False, False, "", "", []
    for ch in block[m:].split(":", 1)[-1]:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str, last = False, '"'
        elif ch == '"':
            in_str, opener = True, last
        elif ch in "{},:[]":
            if ch in "{[":
                stack.append(ch)
            elif ch in "}]" and stack:
                stack.pop()
            # a comma inside a list separates values, inside an object keys
            last = "[" if ch == "," and stack[-1:] == ["["] else ch
    if in_str:
        return "arg_value" if opener in (":", "[") else "arg_key"
    return "arg_value" if last in (":", "[") else "arg_key" if last in ("{", ",") else "structure"


MAX_ORDER_CALLS = 4  # chosen: at most 4! = 24 extra forward passes for one message (the tasks' messages have 1-3 calls)


def _exact_in_other_order(model, tok, msgs, i, tools, a, limit) -> bool:
    """Whether the model reproduces assistant message `i` token for token with its calls in some order other than
    the gold one, given the same history (the official multi-turn checker does not enforce the order of a turn's
    calls: bfcl-eval's ``response_checker`` compares them as an unordered subsequence, since parallel calls can run
    in any order). Only the message's own tokens are scored, as for the gold order."""
    import itertools

    import torch

    calls = msgs[i]["tool_calls"]
    if not 1 < len(calls) <= MAX_ORDER_CALLS:
        return False
    base = _render(tok, msgs[:i], tools, generation_prompt=True)
    for perm in itertools.permutations(range(len(calls))):
        if perm == tuple(range(len(calls))):
            continue
        other = dict(msgs[i], tool_calls=[calls[k] for k in perm])
        seq = _render(tok, msgs[:i] + [other], tools)
        if len(seq) > limit or seq[:a] != base[:a]:
            continue
        with torch.no_grad():
            pred = model(input_ids=torch.tensor([seq])).logits[0].argmax(-1).tolist()
        if all(pred[j - 1] == seq[j] for j in range(a, len(seq))):
            return True
    return False


def score_tasks(model_dir: str, tasks: list[dict[str, Any]], adapter: Optional[str] = None,
                max_tokens: int = 4096) -> list[dict[str, Any]]:
    """Per task: ``{"task_id", "category", "calls", "exact", "exact_any_order", "skipped", "tokens", "tokens_ok",
    "first_miss"}`` (calls = gold call messages; exact_any_order = those reproduced token for token with the
    message's calls in the gold order or in another; tokens = their tokens, tokens_ok = those predicted right: a
    finer learning-curve signal; first_miss = `miss_part` -> count over the messages that are not exact). A task
    with dependent steps (``gt_steps``) adds ``chain_first`` and ``chain_dependent``: [exact, scored] over the first
    and the dependent call messages of those turns, and ``chain_dependent_opened``: the dependent steps where the
    model opens a call (right or wrong) instead of ending the turn in text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolace_mt.training.data import dialogue_to_rows

    from .gold import gold_dialogue

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    limit = min(max_tokens, int(getattr(model.config, "max_position_embeddings", max_tokens) or max_tokens))
    out = []
    for task in tasks:
        d = gold_dialogue(task)
        seen = 0  # assistant messages already counted (rows are prefixes of one another)
        calls = exact = any_order = skipped = tokens = tokens_ok = 0
        first_miss: dict[str, int] = {}
        chained = {int(t) for t in task.get("gt_steps") or {}}  # turns with a dependent second step
        # [exact, scored] per step of those turns; for the dependent step also how often the model opens a call at
        # all (its first wrong token is not the call's start: it does not end the turn in text after the result)
        steps: dict[str, Any] = {"chain_first": [0, 0], "chain_dependent": [0, 0], "chain_dependent_opened": 0}
        for row in dialogue_to_rows(d):
            msgs, tools = row["messages"], json.loads(row["tools"])
            full = _render(tok, msgs, tools)[:limit]
            with torch.no_grad():
                pred = model(input_ids=torch.tensor([full])).logits[0].argmax(-1).tolist()
            k = -1
            for i, m in enumerate(msgs):
                if m["role"] != "assistant":
                    continue
                k += 1
                if k < seen or not m.get("tool_calls"):
                    continue
                a = len(_render(tok, msgs[:i], tools, generation_prompt=True))
                upto = _render(tok, msgs[:i + 1], tools)
                b = len(upto)
                calls += 1
                if b > len(full) or full[:b] != upto[:b] or a < 1:
                    skipped += 1  # cut by the length limit, or the rendering is not prefix-stable here
                    continue
                hits = [pred[j - 1] == full[j] for j in range(a, b)]
                exact += all(hits)
                turn = sum(1 for x in msgs[:i] if x["role"] == "user") - 1
                later = False
                if turn in chained:
                    start = max(j for j in range(i) if msgs[j]["role"] == "user")
                    later = any(x["role"] == "assistant" and x.get("tool_calls") for x in msgs[start:i])
                    cell = steps["chain_dependent" if later else "chain_first"]
                    cell[0] += all(hits)
                    cell[1] += 1
                    steps["chain_dependent_opened"] += later and all(hits)
                any_order += all(hits) or _exact_in_other_order(model, tok, msgs, i, tools, a, limit)
                if not all(hits):
                    j = a + hits.index(False)
                    names = tuple((tc.get("function") or tc).get("name", "") for tc in m["tool_calls"])
                    prefix = tok.decode(full[a:j])
                    # the name of the call being written, so that only the message's other calls count as order
                    current = names[min(prefix.count("<tool_call>"), len(names)) - 1] if names else ""
                    part = miss_part(prefix, tok.decode([pred[j - 1]]), tuple(n for n in names if n != current))
                    first_miss[part] = first_miss.get(part, 0) + 1
                    steps["chain_dependent_opened"] += later and part != "call_start"
                tokens += len(hits)
                tokens_ok += sum(hits)
            seen = k + 1
        out.append({"task_id": task["id"], "category": task.get("category", ""), "calls": calls, "exact": exact,
                    "exact_any_order": any_order, "skipped": skipped, "tokens": tokens, "tokens_ok": tokens_ok,
                    "first_miss": first_miss, **(steps if chained else {})})
    return out
