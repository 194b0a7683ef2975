"""Teacher-forced exact calls on the gold dialogues of BFCL-layout tasks (a graded metric, not official).

For each task, its gold dialogue (`gold.gold_dialogue`) is rendered as training renders it (one row per tool
list, `training.data.dialogue_to_rows`) with the model's own chat template; one forward pass per row gives,
for every gold assistant message that makes calls, whether the greedy next-token prediction reproduces the
whole message (every ``<tool_call>`` block and the end-of-turn token) given the gold history. An assistant
message that appears in two rows (before a tool update) is counted once, from the first row. This separates
"the model cannot copy the call" from "the model drifted earlier in free play".
"""
from __future__ import annotations

import json
from typing import Any, Optional


def _render(tok, messages, tools, generation_prompt=False) -> list[int]:
    return list(tok.apply_chat_template(messages, tools=tools or None, tokenize=True, return_dict=True,
                                        add_generation_prompt=generation_prompt)["input_ids"])


def score_tasks(model_dir: str, tasks: list[dict[str, Any]], adapter: Optional[str] = None,
                max_tokens: int = 4096) -> list[dict[str, Any]]:
    """Per task: ``{"task_id", "category", "calls", "exact", "skipped", "tokens", "tokens_ok"}`` (calls = gold
    call messages; tokens = their tokens, tokens_ok = those predicted right: a finer learning-curve signal)."""
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
        calls = exact = skipped = tokens = tokens_ok = 0
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
                tokens += len(hits)
                tokens_ok += sum(hits)
            seen = k + 1
        out.append({"task_id": task["id"], "category": task.get("category", ""), "calls": calls, "exact": exact,
                    "skipped": skipped, "tokens": tokens, "tokens_ok": tokens_ok})
    return out
