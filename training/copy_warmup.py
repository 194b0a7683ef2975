"""Copy warm-up: a phase of synthetic copy sequences before a from-scratch model sees the tool data.

Every BFCL-style argument on the CPU tier is a verbatim copy of a value in the user's text (``ACC27``, ``C38``,
``Omar``, ``250``), and a tiny model trained from scratch on tool calls learns to name the tool long before it
learns to copy the value (recipes/reproduce/README.md). Copying identical tokens from earlier in the context is
the job of induction heads, which small transformers learn on sequences whose later spans repeat earlier ones.
This phase trains exactly that, in the model's own tokenizer and in the value shapes of the run's own data:

* values: every argument value of the rows' tool calls, split into words; a word with digits keeps its letters
  and gets fresh random digits (``ACC27`` -> ``ACC`` + 2 random digits), so the phase cannot be solved by
  memorising the data's ids; a word without digits (names, tickers, currencies) is drawn as it is;
* a row: lines ``v1 v2 ... vk | v1 v2 ... vk`` (k drawn from ``span``) until ``length`` tokens; the loss is on
  the repeated half and the line end only (the first half is random: there is nothing to learn there);
* everything is drawn from ``random.Random(seed)``: the same data, tokenizer and seed give the same rows.

`copy_exact` is the probe: held-out lines of four id-shaped values, teacher-forced; a line counts when every
token of the repeat (and the line end) is the greedy prediction, i.e. exactly what greedy decoding would write
after ``v1 v2 v3 v4 | ``. `run_copy_warmup` trains with the transformers `Trainer` (no hand-written loop) and
records the probe at a few points of the phase.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

SEP = "|"  # chosen: one byte-level token that no argument value of the tier contains
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class ValueShapes:
    """The words of the data's argument values: with digits (id / number shapes) and without (names, tickers)."""

    with_digits: tuple[str, ...]
    plain: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.with_digits or self.plain)


def _argument_values(args: Any) -> Iterable[Any]:
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return
    if isinstance(args, dict):
        for v in args.values():
            yield from _argument_values(v) if isinstance(v, (dict, list)) else (v,)
    elif isinstance(args, list):
        for v in args:
            yield from _argument_values(v) if isinstance(v, (dict, list)) else (v,)


def value_shapes(rows: list[dict[str, Any]]) -> ValueShapes:
    """The argument values of every tool call in `rows` (TRL conversational rows), split into words."""
    digits, plain = set(), set()
    for r in rows:
        for m in r.get("messages") or []:
            for c in m.get("tool_calls") or []:
                fn = c.get("function", c) if isinstance(c, dict) else {}
                for v in _argument_values(fn.get("arguments")):
                    if isinstance(v, bool) or v is None:
                        continue
                    for w in str(v).split():
                        if SEP in w:
                            continue
                        (digits if _DIGITS.search(w) else plain).add(w)
    return ValueShapes(tuple(sorted(digits)), tuple(sorted(plain)))


def fresh_value(shape: str, rng: random.Random) -> str:
    """`shape` with every digit redrawn (a leading digit of a digit run stays non-zero when it was)."""
    out, prev_digit = [], False
    for ch in shape:
        if ch.isdigit():
            lo = 1 if (not prev_digit and ch != "0") else 0
            out.append(str(rng.randint(lo, 9)))
            prev_digit = True
        else:
            out.append(ch)
            prev_digit = False
    return "".join(out)


def draw_values(shapes: ValueShapes, k: int, rng: random.Random, ids_only: bool = False) -> list[str]:
    """k values, half id/number shapes and half plain words (chosen: names are as much a copy target as ids,
    and uniform over distinct words would let the many names crowd the few id prefixes out)."""
    out = []
    for _ in range(k):
        use_digits = shapes.with_digits and (ids_only or not shapes.plain or rng.random() < 0.5)
        out.append(fresh_value(rng.choice(shapes.with_digits), rng) if use_digits else rng.choice(shapes.plain))
    return out


def copy_line(values: list[str]) -> tuple[str, str]:
    """(source, target): ``'v1 v2 | '`` and ``'v1 v2\\n'``: the target is what the model must produce (it starts
    at a word, so no token straddles the two: the pre-tokenizer keeps `` | `` in one piece)."""
    return " ".join(values) + " " + SEP + " ", " ".join(values) + "\n"


def _encode(tok, text: str, targets: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of `text` and labels: the id where the token starts inside a target character range, else -100."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, labels, t = enc["input_ids"], [], 0
    for (start, _end), i in zip(enc["offset_mapping"], enc["input_ids"]):
        while t < len(targets) and start >= targets[t][1]:
            t += 1
        labels.append(i if t < len(targets) and targets[t][0] <= start < targets[t][1] else -100)
    return ids, labels


def make_rows(tok, shapes: ValueShapes, n_rows: int, span: tuple[int, int], length: int,
              seed: int) -> list[dict[str, list[int]]]:
    """`n_rows` training rows ``{"input_ids", "labels"}`` of at most `length` tokens (see module doc)."""
    if not shapes:
        raise ValueError("copy warm-up: the data's tool calls carry no argument value to build copy lines from")
    rng = random.Random(seed)
    rows = []
    for _ in range(n_rows):
        text, targets = "", []
        while True:
            values = draw_values(shapes, rng.randint(*span), rng)
            src, tgt = copy_line(values)
            cand = text + src + tgt
            while not text and len(values) > 1 and len(tok(cand, add_special_tokens=False)["input_ids"]) > length:
                values = values[:-1]  # a row holds at least one whole line: fewer values when one is too long
                src, tgt = copy_line(values)
                cand = src + tgt
            if text and len(tok(cand, add_special_tokens=False)["input_ids"]) > length:
                break
            targets.append((len(text) + len(src), len(cand)))
            text = cand
            if len(tok(text, add_special_tokens=False)["input_ids"]) >= length:
                break
        ids, labels = _encode(tok, text, targets)
        rows.append({"input_ids": ids[:length], "labels": labels[:length]})
    return rows


def probe_lines(shapes: ValueShapes, n: int = 100, k: int = 4, seed: int = 12345) -> list[tuple[str, str]]:
    """`n` held-out lines of `k` id-shaped values (their own seed: fresh digits, not the training rows)."""
    rng = random.Random(seed)
    return [copy_line(draw_values(shapes, k, rng, ids_only=True)) for _ in range(n)]


def copy_exact(model, tok, lines: list[tuple[str, str]], batch_size: int = 50) -> dict[str, Any]:
    """Share of `lines` whose target the model reproduces exactly (teacher-forced greedy = greedy decoding)."""
    import torch

    was_training = model.training
    model.eval()
    exact = tokens = tokens_ok = 0
    try:
        for b in range(0, len(lines), batch_size):
            encs = [_encode(tok, s + t, [(len(s), len(s) + len(t))]) for s, t in lines[b:b + batch_size]]
            width = max(len(ids) for ids, _ in encs)
            pad = tok.pad_token_id if tok.pad_token_id is not None else 0
            ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in encs])
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in encs])
            with torch.no_grad():
                pred = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.argmax(-1)
            for row, (_, labels) in enumerate(encs):
                pos = [p for p, lab in enumerate(labels) if lab != -100 and p > 0]
                ok = [int(pred[row, p - 1]) == labels[p] for p in pos]
                tokens += len(ok)
                tokens_ok += sum(ok)
                exact += bool(ok) and all(ok)
    finally:
        model.train(was_training)
    return {"lines": len(lines), "exact": exact, "exact_rate": exact / len(lines) if lines else None,
            "token_accuracy": tokens_ok / tokens if tokens else None}


@dataclass
class WarmupSpec:
    steps: int
    lr: float
    batch_size: int
    span: tuple[int, int]
    length: int
    rows: int
    seed: int
    probe_points: int = 4  # copy probe at this many evenly spaced steps (and at the end)
    target: Optional[float] = None  # stop once the probe's exact rate reaches this (`steps` is then the cap)

    def probe_every(self) -> int:
        # chosen: with a target, 12 probes over the cap (a 100-line probe is ~1 s on CPU, ~1% of a 3000-step
        # phase), so the phase ends within 1/12 of the cap after the transition
        return max(1, self.steps // (12 if self.target is not None else max(1, self.probe_points)))


def run_copy_warmup(model, tok, rows: list[dict[str, Any]], spec: WarmupSpec, out_dir: Path,
                    probe_lines_n: int = 100) -> dict[str, Any]:
    """Train `model` in place on copy rows built from `rows`' value shapes; save it to out_dir/model; return the
    summary (also out_dir/summary.json) with the copy probe before, during and after the phase."""
    import time

    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from toolace_mt.runs import atomic_write_json

    t0 = time.time()
    shapes = value_shapes(rows)
    data = make_rows(tok, shapes, spec.rows, spec.span, spec.length, spec.seed)
    probe = probe_lines(shapes, probe_lines_n)
    curve = [{"step": 0, **copy_exact(model, tok, probe)}]
    every = spec.probe_every()

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step % every == 0 or state.global_step == spec.steps:
                curve.append({"step": state.global_step, **copy_exact(kw["model"], tok, probe)})
                if spec.target is not None and (curve[-1]["exact_rate"] or 0.0) >= spec.target:
                    control.should_training_stop = True  # the copy is learned: the rest of the cap is not needed

    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"), max_steps=spec.steps, learning_rate=spec.lr,
        per_device_train_batch_size=spec.batch_size, lr_scheduler_type="cosine",
        warmup_steps=max(1, spec.steps // 20),  # chosen: 5% linear warm-up, as the tier's base training
        weight_decay=0.0, logging_steps=max(1, spec.steps // 20), save_strategy="no", report_to="none",
        seed=spec.seed, data_seed=spec.seed, use_cpu=not _cuda(), dataloader_pin_memory=_cuda(),
        disable_tqdm=True, remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(data),
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
                      callbacks=[Probe()])
    result = trainer.train()
    model.save_pretrained(str(out_dir / "model"))
    tok.save_pretrained(str(out_dir / "model"))
    runtime = float(result.metrics.get("train_runtime") or 0.0)
    ran = int(trainer.state.global_step)
    summary = {"steps": spec.steps, "lr": spec.lr, "batch_size": spec.batch_size, "span": list(spec.span),
               "length": spec.length, "rows": spec.rows, "seed": spec.seed,
               "value_shapes": {"with_digits": len(shapes.with_digits), "plain": len(shapes.plain)},
               "example": tok.decode(data[0]["input_ids"])[:200],
               "copy_probe": curve, "copy_exact_rate": curve[-1]["exact_rate"],
               **({"target": spec.target, "steps_run": ran, "target_reached": (curve[-1]["exact_rate"] or 0.0)
                   >= spec.target} if spec.target is not None else {}),
               "log": trainer.state.log_history, "train_runtime_s": round(runtime, 2),
               "s_per_step": round(runtime / ran, 4) if ran else None,
               "wall_time_s": round(time.time() - t0, 2)}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def load_probe(model_dir: str | Path, rows: Optional[list[dict[str, Any]]] = None, n: int = 100):
    """(model, tokenizer, probe lines) for `toolace-mt bench copy`: the lines come from `rows`' value shapes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    return model, tok, probe_lines(value_shapes(rows or []), n)
