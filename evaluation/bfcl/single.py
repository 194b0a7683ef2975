"""BFCL single-turn categories (non-live and live AST, irrelevance, relevance), scored by bfcl-eval's own code.

Data: the official ``BFCL_<v3|v4>_<category>.json`` entries and ``possible_answer/`` files (`official.data_dir`).
Play: one step per entry; the policy sees the entry's messages and its functions with BFCL's language hints
(`_func_doc_language_specific_pre_processing`); an FC-style (structured) policy gets them as BFCL gives them to
OpenAI-style FC models (`convert_to_tool`: ``.`` in names becomes ``_``, types mapped to JSON schema), a
prompting-style (pythonic) policy gets the hinted docs as they are. The trajectory keeps the answer as BFCL's
result file would hold it (``result``: FC -> ``[{name: arguments-json}]``, or the text when no call was made;
prompting -> the text), so scoring, export and replay of official result files all go through one path.

Scoring (`official_single_verdict`), as bfcl-eval's ``eval_runner`` does per entry: the answer is decoded with
BFCL's decoder (prompting: `default_decode_ast_prompting` in the category's language; FC: the FC handlers'
``decode_ast``, ``[{name: json.loads(arguments)}]``); AST categories then need `is_function_calling_format_output`
and bfcl-eval's own `ast_checker`; relevance categories use its rule: an answer "contains a call" iff it decodes
and `is_empty_output` is false (irrelevance passes without one, relevance with one). The checker module is
imported from the installed package with a stand-in for `bfcl_eval.constants.model_config` (that module imports
every vendor SDK; the checker only reads ``underscore_to_dot`` from it, which is True for FC answers here, as for
the OpenAI-style FC models whose tool names had ``.`` replaced, and False for prompting answers).
"""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
import types
from functools import lru_cache
from typing import Any, Optional

from ..policy import PolicyInput, PolicyOutput
from ..suites import save_trajectory

# paper §4 / BFCL v3 leaderboard: Non-Live and Live single-turn categories (our names = the V4 file names)
NON_LIVE = ["simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
            "irrelevance"]
LIVE = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
        "live_relevance"]
SINGLE_CATEGORIES = NON_LIVE + LIVE
RELEVANCE = {"irrelevance", "live_irrelevance", "live_relevance"}
FC_MODEL, PROMPT_MODEL = "toolace-mt-fc", "toolace-mt-prompting"  # names the checker's model lookup sees


def language(category: str) -> str:
    return "java" if category == "simple_java" else "javascript" if category == "simple_javascript" else "python"


def _jsonl(path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@lru_cache(maxsize=None)
def _load(category: str, data_version: str) -> tuple[dict, ...]:
    from . import official

    data = official.data_dir(data_version)
    name = official.data_file(category, data_version)
    entries = _jsonl(data / name)
    gts: dict[str, Any] = {}
    if category not in RELEVANCE:
        gts = {g["id"]: g["ground_truth"] for g in _jsonl(data / "possible_answer" / name)}
    out = []
    for e in entries:
        if category not in RELEVANCE and e["id"] not in gts:
            raise ValueError(f"{name}: entry {e['id']} has no ground truth")
        out.append({"id": e["id"], "category": category, "backend": "single", "single_turn": True,
                    "question": e["question"], "function": e["function"], "ground_truth": gts.get(e["id"], []),
                    "data_version": data_version})
    return tuple(out)


def load_tasks(categories: list[str], data_version: str = "v4") -> list[dict[str, Any]]:
    bad = [c for c in categories if c not in SINGLE_CATEGORIES]
    if bad:
        raise ValueError(f"unknown BFCL single-turn categories {bad}; known: {SINGLE_CATEGORIES}")
    return [copy.deepcopy(t) for c in categories for t in _load(c, data_version)]


# ------------------------------------------------------------------------------------ bfcl-eval's own code
class _ModelConfigs(dict):
    """What `ast_checker.convert_func_name` reads from the model config table: ``underscore_to_dot``."""

    def __missing__(self, name: str) -> Any:
        return types.SimpleNamespace(underscore_to_dot=name == FC_MODEL)


def _load_without_vendor_sdks(parts: tuple[str, ...], name: str) -> types.ModuleType:
    """Load one module file of the installed bfcl-eval with its model-config table replaced by a stand-in, only
    while it loads: the real table imports every vendor SDK, which the `--no-deps` install does not have."""
    from . import official

    official.ensure_project_root()
    key = "bfcl_eval.constants.model_config"
    saved = sys.modules.get(key)
    stub = types.ModuleType(key)
    stub.MODEL_CONFIG_MAPPING = _ModelConfigs()
    spec = importlib.util.spec_from_file_location(name, official.package_dir().joinpath(*parts))
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bfcl_eval.constants", importlib.import_module("bfcl_eval.constants"))
    try:
        sys.modules[key] = stub
        spec.loader.exec_module(mod)
    finally:
        if saved is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = saved
    return mod


@lru_cache(maxsize=1)
def bfcl() -> types.SimpleNamespace:
    """bfcl-eval's checker, decoder and doc helpers (the installed, pinned package)."""
    from . import official

    checker = _load_without_vendor_sdks(("eval_checker", "ast_eval", "ast_checker.py"), "toolace_mt_bfcl_ast_checker")
    try:
        from bfcl_eval.constants.enums import Language, ModelStyle, ReturnFormat
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.model_handler.utils import convert_to_tool, default_decode_ast_prompting
        from bfcl_eval.utils import (_func_doc_language_specific_pre_processing, is_empty_output,
                                     is_function_calling_format_output)
    except ImportError as e:
        raise official.BFCLUnavailable(f"bfcl-eval's decoder is not importable ({e}): pip install -e "
                                       "\".[bfcl-decoder]\"") from None
    return types.SimpleNamespace(
        ast_checker=checker.ast_checker, java_type_converter=checker.java_type_converter,
        js_type_converter=checker.js_type_converter, Language=Language, ReturnFormat=ReturnFormat, ModelStyle=ModelStyle,
        GORILLA_TO_OPENAPI=GORILLA_TO_OPENAPI, convert_to_tool=convert_to_tool,
        decode_ast_prompting=default_decode_ast_prompting, hint=_func_doc_language_specific_pre_processing,
        is_empty_output=is_empty_output, is_function_calling_format_output=is_function_calling_format_output)


@lru_cache(maxsize=1)
def bfcl_helper() -> types.SimpleNamespace:
    """bfcl-eval's leaderboard aggregation functions (``eval_runner_helper``), loaded like the checker."""
    mod = _load_without_vendor_sdks(("eval_checker", "eval_runner_helper.py"), "toolace_mt_bfcl_eval_runner_helper")
    return types.SimpleNamespace(calculate_unweighted_accuracy=mod.calculate_unweighted_accuracy,
                                 calculate_weighted_accuracy=mod.calculate_weighted_accuracy,
                                 calculate_percentage_weighted_accuracy=mod.calculate_percentage_weighted_accuracy)


def available() -> Optional[str]:
    """None when the single-turn path can run, else why not."""
    from . import official

    if not official.available():
        return "bfcl-eval is not installed"
    try:
        bfcl()
    except Exception as e:  # noqa: BLE001 - reported as the reason
        return str(e)
    return None


# ------------------------------------------------------------------------------------------------- play
def fc_name(name: str) -> str:
    return name.replace(".", "_")  # as BFCL's convert_to_tool for OpenAI-style FC models


def tools_for(task: dict[str, Any], fc: bool) -> list[dict[str, Any]]:
    """The functions as BFCL shows them to the model (language hints; FC: converted as for OpenAI FC models)."""
    b = bfcl()
    funcs = b.hint(copy.deepcopy(task["function"]), task["category"])
    if fc:
        funcs = b.convert_to_tool(funcs, b.GORILLA_TO_OPENAPI, b.ModelStyle.OPENAI_COMPLETIONS)
    # convert_to_tool already returns OpenAI tools ({"type": "function", "function": {...}}); wrapping them again
    # sent nameless tools to the live endpoint (found by the live check of 2026-12-07)
    return [f if f.get("type") == "function" and isinstance(f.get("function"), dict) else {"type": "function", "function": f}
            for f in funcs]


_OMIT = object()


def _first(options: Any, required: bool = True) -> Any:
    """An acceptable value from a possible-answer option list: omitted when ``""`` (= may be omitted) is an
    option of a parameter the function does not require, else the first other option."""
    if not isinstance(options, list) or not options:
        return _OMIT
    if "" in options and not required:
        return _OMIT
    for v in options:
        if v != "":
            return _materialize(v)
    return _OMIT


def _materialize(v: Any) -> Any:
    if isinstance(v, dict):  # a nested dict answer: each key holds an option list
        out = {}
        for k, opts in v.items():
            got = _first(opts, required=False) if isinstance(opts, list) else opts
            if got is not _OMIT:
                out[k] = got
        return out
    if isinstance(v, list):
        return [_materialize(x) if isinstance(x, dict) else x for x in v]
    return v


def _literal(v: Any, lang: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x, lang) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_literal(x, lang)}" for k, x in v.items()) + "}"
    return str(v)


def _scalar_cands(v: Any) -> list[str]:
    if isinstance(v, bool):
        return ["true" if v else "false"]
    if isinstance(v, int):
        return [str(v), f"{v}L", f"{v}n"]
    if isinstance(v, float):
        return [repr(v), f"{v}f", f"{v}F"]
    if isinstance(v, str):
        return [v, json.dumps(v)]
    return [_literal(v, "")]


def _source_text(v: Any, lang: str, typ: str, nested: Optional[str]) -> Any:
    """Java / JavaScript answers are strings of source code (BFCL's hint says so): the oracle's string for a
    value is the first rendering that bfcl-eval's own type converter reads back as that value."""
    if isinstance(v, str) and typ in ("String", "any", "string"):
        return v
    b = bfcl()
    conv = b.java_type_converter if lang == "java" else b.js_type_converter

    def reads_back(c: str, t: str, n: Optional[str], want: Any) -> bool:
        try:
            return conv(c, t, n) == want
        except Exception:  # noqa: BLE001 - a rendering the converter cannot read
            return False

    cands: list[str] = []
    if isinstance(v, list):
        def typed(x: Any) -> str:  # an element as its declared element type reads it back
            return next((c for c in _scalar_cands(x) if nested and reads_back(c, nested, None, x)), _literal(x, lang))
        t = {"integer": "int", "String": "String", "float": "float", "double": "double", "long": "long",
             "boolean": "boolean"}.get(nested or "", nested or "Object")
        for elem in (lambda x: _literal(x, lang), typed, str):
            items = ", ".join(elem(x) for x in v)
            cands += [f"new ArrayList<>(Arrays.asList({items}))", f"new {t}[]{{{items}}}", f"[{items}]"]
    elif isinstance(v, dict):
        put = " ".join(f"put({json.dumps(str(k))}, {_literal(x, lang)});" for k, x in v.items())
        cands = [f"new HashMap<String, String>() {{{{ {put} }}}}", _literal(v, lang),
                 "{" + ", ".join(f"{k}: {_literal(x, lang)}" for k, x in v.items()) + "}"]
    else:
        cands = _scalar_cands(v)
    return next((c for c in cands if reads_back(c, typ, nested, v)), _UNREADABLE)


_UNREADABLE = "<no source text reads back as the expected value>"


def gold(task: dict[str, Any], fc: bool) -> list[dict[str, Any]] | str:
    """The oracle's answer: an acceptable value of every parameter of every expected call; relevance
    categories: a call to the first function (live_relevance) or no call (irrelevance)."""
    cat = task["category"]
    if cat in ("irrelevance", "live_irrelevance"):
        return ""
    if cat == "live_relevance":  # any call counts: the first function, its required parameters as strings
        f = task["function"][0]
        args = {p: "x" for p in f.get("parameters", {}).get("required", [])}
        return [{"name": fc_name(f["name"]) if fc else f["name"], "arguments": args}]
    lang = language(cat)
    docs = {f["name"]: f for f in task["function"]}
    calls = []
    for call in task["ground_truth"]:
        (name, params), = call.items()
        doc = docs.get(name, {}).get("parameters", {})
        required, props = set(doc.get("required", [])), doc.get("properties", {})
        args = {}
        for p, opts in params.items():
            v = _first(opts, required=p in required)
            if v is _OMIT:
                continue
            if lang != "python" and p in props:
                v = _source_text(v, lang, props[p].get("type", "any"), (props[p].get("items") or {}).get("type"))
            args[p] = v
        calls.append({"name": fc_name(name) if fc else name, "arguments": args})
    return calls


def data_defects(task: dict[str, Any]) -> list[str]:
    """Why no answer can pass this entry under BFCL's own rules (a defect of the official data), or []: an
    expected parameter the function does not declare, a required parameter whose only option is omission, an
    empty option list."""
    if task["category"] in RELEVANCE:
        return []
    docs = {f["name"]: f for f in task["function"]}
    out = []
    for call in task["ground_truth"]:
        (name, params), = call.items()
        doc = docs.get(name, {}).get("parameters", {})
        props, required = doc.get("properties", {}), doc.get("required", [])
        out += [f"{name}: expected parameter {p!r} is not in the function's parameters" for p in params
                if p not in props]
        out += [f"{name}: required parameter {p!r} may only be omitted" for p in required
                if p in params and all(o == "" for o in params[p])]
        out += [f"{name}: parameter {p!r} has no acceptable value" for p, o in params.items()
                if isinstance(o, list) and not o]
        out += [f"{name}: required parameter {p!r} is not expected" for p in required if p not in params]
        out += [f"{name}: parameter {p!r} expects a dict whose values are not option lists" for p, o in params.items()
                if isinstance(o, list) and o and isinstance(o[0], dict) and not all(isinstance(x, list)
                                                                                    for x in o[0].values())]
    lang = language(task["category"])
    if lang != "python" and not out:
        for call in gold(task, fc=True):
            out += [f"{call['name']}: no {lang} source text for {p!r} reads back (bfcl-eval's converter) as the "
                    "expected value" for p, v in call["arguments"].items() if v == _UNREADABLE]
    return out


def recorded_result(out: PolicyOutput, fc: bool) -> Any:
    """The answer as BFCL's result file would hold it."""
    if out.recorded is not None:
        return out.recorded
    if fc:
        if out.tool_calls:
            return [{c["name"]: json.dumps(c.get("arguments") or {}, ensure_ascii=False)} for c in out.tool_calls]
        return out.content or ""
    return out.raw or out.content or ""


def play_single(policy, tasks: list[dict[str, Any]], fc: bool, out_dir=None, trial: int = 0,
                max_parallel: int = 256, progress: bool = True) -> list[dict[str, Any]]:
    from tqdm import tqdm

    name = getattr(policy, "name", type(policy).__name__)
    out = []
    bar = tqdm(total=len(tasks), desc=f"bfcl single {name}", disable=not progress, leave=False)
    for i in range(0, len(tasks), max_parallel):
        chunk = tasks[i:i + max_parallel]
        inputs = [PolicyInput(messages=[dict(m) for m in t["question"][0]], tools=tools_for(t, fc),
                              gold=gold(t, fc), task_id=t["id"], turn=0, step=0) for t in chunk]
        outs = policy.act(inputs)
        if len(outs) != len(chunk):
            raise RuntimeError(f"policy {name} answered {len(outs)} of {len(chunk)} inputs")
        for t, o in zip(chunk, outs):
            step_fc = fc if o.recorded is None else o.call_format == "fc"
            traj = {"task_id": t["id"], "category": t["category"], "trial": trial, "backend": "single",
                    "policy": name, "call_format": "structured" if step_fc else "pythonic",
                    "turns": [[{"content": o.content, "tool_calls": o.tool_calls, "raw": o.raw,
                                "parse_errors": o.parse_errors}]],
                    "result": recorded_result(o, step_fc), "fc": step_fc, "force_quit": bool(o.stop),
                    "n_steps": 1, "prompt_tokens": o.prompt_tokens, "completion_tokens": o.completion_tokens}
            save_trajectory(out_dir, traj)
            out.append(traj)
            bar.update(1)
    bar.close()
    return out


# ----------------------------------------------------------------------------------------------- score
def fc_decode_ast(result: Any) -> list[dict[str, Any]]:
    """The FC handlers' ``decode_ast`` (OpenAI-style: ``[{name: json.loads(arguments)}]``); raises where it
    raises (a text answer). Lives in the vendor handler modules, which import vendor SDKs: these lines mirror it."""
    return [{list(call.keys())[0]: json.loads(call[list(call.keys())[0]])} for call in result]


def official_single_verdict(task: dict[str, Any], result: Any, fc: bool) -> dict[str, Any]:
    """bfcl-eval's per-entry verdict on one recorded answer: {"valid", "error_type", "error"}."""
    b = bfcl()
    cat = task["category"]
    lang = language(cat)
    try:
        if fc:
            decoded = fc_decode_ast(result)
        else:
            decoded = b.decode_ast_prompting(result, b.ReturnFormat(lang), False)
        err = None
    except Exception as e:  # noqa: BLE001 - a decoding failure is the verdict's input, as in BFCL
        decoded, err = None, e
    if cat in RELEVANCE:
        has_call = err is None and not b.is_empty_output(decoded)
        if "irrelevance" in cat:
            return {"valid": not has_call, "error_type": None if not has_call else "irrelevance_error:decoder_success",
                    "error": []}
        return {"valid": has_call, "error_type": None if has_call else "relevance_error:decoder_failed",
                "error": [] if has_call else [f"Failed to decode AST when it should have. {err or ''}".strip()]}
    if err is not None:
        return {"valid": False, "error_type": "ast_decoder:decoder_failed",
                "error": [f"Invalid syntax. Failed to decode AST. {err}"]}
    if not b.is_function_calling_format_output(decoded):
        return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format",
                "error": ["Did not output in the specified format."]}
    res = b.ast_checker(task["function"], decoded, task["ground_truth"], b.Language(lang), cat,
                        FC_MODEL if fc else PROMPT_MODEL)
    return {"valid": bool(res["valid"]), "error_type": res.get("error_type"), "error": res.get("error", [])}


def score_single(task: dict[str, Any], traj: dict[str, Any]) -> dict[str, Any]:
    v = official_single_verdict(task, traj.get("result", ""), bool(traj.get("fc")))
    return {"task_id": task["id"], "category": task["category"], "trial": traj.get("trial", 0),
            "correct": v["valid"], "score": 1.0 if v["valid"] else 0.0, "error_type": v["error_type"],
            "reasons": [str(e)[:300] for e in v["error"]][:4], "force_quit": bool(traj.get("force_quit"))}
