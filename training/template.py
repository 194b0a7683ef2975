"""Chat templates for training: which one to use, and checks that the assistant-only loss is what we think.

Choice (``chat_template: auto``): the model's own template when it has ``{% generation %}`` markers; else
TRL's bundled training variant when the model's template is one TRL knows (Qwen2.5/3, Llama 3, ...); else, for
a Llama 3.x template TRL cannot patch (3.1), the project's `llama3_1_training.jinja`; else the project's
template (`chat_template.jinja`, Hermes / Qwen2.5 wire format). A built-in name (``project``, ``llama3_1``,
``compact``: the project wire format with tools listed as signature lines, for tiny models trained from scratch)
or a ``.jinja`` path forces a template.

Checks (`check_template`), each with a reason a failed run would otherwise hide:
* generation markers exist (else the mask is empty and TRL fails deep inside dataset preparation);
* the masked spans decode to the assistant content: every reply text, tool name and argument value sits inside
  a span, and no user / tool text does (catches markers in the wrong place);
* the prompt rendered with ``add_generation_prompt`` is a token prefix of the full conversation (inference
  sees what training saw);
* the end-of-turn token is inside the mask (else the model never learns to stop).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")
# named templates shipped with the project (recipe key `chat_template: <name>`)
BUILTIN_TEMPLATES = {
    "project": PROJECT_TEMPLATE_PATH,  # Hermes / Qwen2.5 wire format (<tool_call> JSON)
    "llama3_1": Path(__file__).with_name("llama3_1_training.jinja"),  # Llama 3.1 JSON calls (llama3_json parser)
    # the project wire format with tools listed as one signature line each (for tiny models trained from scratch)
    "compact": Path(__file__).with_name("compact_chat_template.jinja"),
}


def project_template() -> str:
    return PROJECT_TEMPLATE_PATH.read_text(encoding="utf-8")


def builtin_template(name: str) -> str:
    return BUILTIN_TEMPLATES[name].read_text(encoding="utf-8")


class TemplateCheckError(ValueError):
    """The chat template cannot give a correct assistant-only loss; the message says what is wrong."""


def has_generation_markers(template: str | None) -> bool:
    from trl.chat_template_utils import has_generation_markers as _h

    return bool(template) and _h(template)


def select_template(tokenizer, choice: str = "auto") -> tuple[str, str]:
    """(template text, source) where source is model | trl | a built-in name | file."""
    if choice in BUILTIN_TEMPLATES:
        return builtin_template(choice), choice
    if choice != "auto":
        p = Path(choice)
        if not p.is_file():
            raise FileNotFoundError(f"chat_template: {p} does not exist")
        return p.read_text(encoding="utf-8"), "file"
    own = tokenizer.chat_template
    if isinstance(own, dict):
        own = own.get("default")
    if own and has_generation_markers(own):
        return own, "model"
    if own:
        from trl.chat_template_utils import get_training_chat_template

        try:
            tt = get_training_chat_template(tokenizer)
        except ValueError:  # not a template TRL knows how to patch
            tt = None
        if tt:
            return tt, "trl"
        if "<|start_header_id|>" in own and "<|eot_id|>" in own:  # a Llama 3.x template TRL cannot patch (3.1)
            return builtin_template("llama3_1"), "llama3_1"
    return project_template(), "project"


# ------------------------------------------------------------------------------------------------ mask
def assistant_spans(ids: list[int], mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, m in enumerate(list(mask) + [0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _arg_needles(arguments: Any) -> list[str]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return [arguments]
    out = []
    for v in (arguments or {}).values():
        if isinstance(v, str):
            if v:
                out.append(v)
        elif isinstance(v, (bool, int, float)) or v is None:
            out.append(json.dumps(v))
    return out


def mask_problems(tokenizer, messages: list[dict], tools: list[dict] | None, template: str | None = None,
                  encoded: dict | None = None) -> list[str]:
    """Compare the decoded assistant-mask spans with the assistant messages (empty list = consistent)."""
    if encoded is None:
        encoded = tokenizer.apply_chat_template(messages, tools=tools or None, chat_template=template, tokenize=True,
                                                return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    spans = assistant_spans(ids, mask)
    if not spans:
        return ["no token is in the assistant mask: the template has no (working) {% generation %} markers"]
    masked = [tokenizer.decode(ids[a:b]) for a, b in spans]
    all_masked = "\n".join(masked)
    problems = []
    # a weight-0 message (a failed call, `DataArguments.train_on_failed_calls`) is context, outside the mask
    asst = [m for m in messages if m.get("role") == "assistant" and m.get("weight") != 0]
    if len(spans) != len(asst):
        problems.append(f"{len(spans)} masked span(s) for {len(asst)} assistant message(s)")
    for k, m in enumerate(asst):
        span = masked[k] if len(spans) == len(asst) else all_masked
        if m.get("content") and m["content"].strip() not in span:
            problems.append(f"assistant message {k}: content {m['content'][:60]!r} is not inside its masked span")
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function", tc)
            if fn.get("name") not in span:
                problems.append(f"assistant message {k}: tool call {fn.get('name')!r} is not inside its masked span")
            for needle in _arg_needles(fn.get("arguments")):
                if needle not in span:
                    problems.append(f"assistant message {k}: argument value {needle[:40]!r} of "
                                    f"{fn.get('name')!r} is not inside its masked span")
    said = "\n".join((m.get("content") or "") + json.dumps(m.get("tool_calls") or [], ensure_ascii=False)
                     for m in asst)
    for m in messages:
        if m.get("role") in ("user", "tool") and m.get("content") and len(m["content"]) >= 12:
            # flagged only when the assistant did not itself say this text (a reply may quote a tool result)
            if m["content"] in all_masked and m["content"] not in said:
                problems.append(f"{m['role']} text {m['content'][:40]!r} is inside the assistant mask")
    return problems


# ------------------------------------------------------------------------------------------------ checks
@dataclass
class TemplateReport:
    source: str
    generation_markers: bool
    mask_ok: bool
    prefix_preserving: bool
    stop_token_trained: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_PROBE_TOOLS = [{"type": "function", "function": {"name": "get_balance", "description": "Balance of an account.",
                 "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}},
                                "required": ["account_id"]}}}]
_PROBE = [
    {"role": "system", "content": "You are a careful banking assistant."},
    {"role": "user", "content": "What is the balance of my account ACC12345 please?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_balance", "arguments": {"account_id": "ACC12345"}}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "get_balance", "content": '{"balance": 1520.75, "currency": "USD"}'},
    {"role": "assistant", "content": "Your balance is 1520.75 USD."},
    {"role": "user", "content": "Thanks, that is all I needed today."},
    {"role": "assistant", "content": "Glad to help, goodbye."},
]


def check_template(tokenizer, template: str, source: str = "given",
                   samples: list[tuple[list[dict], list[dict] | None]] | None = None) -> TemplateReport:
    """Run every check on a probe conversation (and `samples`); never raises (see `require_ok`)."""
    problems: list[str] = []
    markers = has_generation_markers(template)
    if not markers:
        problems.append("the template has no {% generation %} markers, so no assistant-only loss mask can be built")
    mask_ok = False
    if markers:
        mask_ok = True
        for msgs, tools in [(_PROBE, _PROBE_TOOLS)] + list(samples or []):
            try:
                ps = mask_problems(tokenizer, msgs, tools, template)
            except Exception as e:  # a template that cannot render our messages is a finding, not a crash
                ps = [f"rendering failed: {type(e).__name__}: {e}"]
            if ps:
                mask_ok = False
                problems += ps[:5]
    # prefix preservation: prompt (+generation prompt) ids are a prefix of the full conversation ids
    prefix_ok = True
    for cut in (2, 4, 6):
        try:
            full = tokenizer.apply_chat_template(_PROBE[:cut + 1], tools=_PROBE_TOOLS, chat_template=template,
                                                 tokenize=True, return_dict=True)["input_ids"]
            prompt = tokenizer.apply_chat_template(_PROBE[:cut], tools=_PROBE_TOOLS, chat_template=template,
                                                   tokenize=True, return_dict=True,
                                                   add_generation_prompt=True)["input_ids"]
        except Exception as e:
            problems.append(f"rendering failed: {type(e).__name__}: {e}")
            prefix_ok = False
            break
        if list(full[:len(prompt)]) != list(prompt):
            prefix_ok = False
            problems.append(f"prompt of the first {cut} messages with add_generation_prompt is not a prefix "
                            "of the conversation: inference would see a context training never saw")
            break
    stop_ok = False
    if markers:
        from trl.chat_template_utils import is_chat_template_stop_token_trained

        stop_ok = bool(is_chat_template_stop_token_trained(tokenizer, chat_template=template))
        if not stop_ok:
            problems.append("the end-of-turn token is outside the assistant mask: the model would not learn to stop")
    return TemplateReport(source, markers, mask_ok, prefix_ok, stop_ok, problems)


def require_ok(report: TemplateReport) -> None:
    if report.problems:
        raise TemplateCheckError(f"chat template ({report.source}) fails the training checks:\n  - "
                                 + "\n  - ".join(report.problems))
