"""Defect recall of the rule verifier must not drop while it learns to accept natural language.

The rule verifier (`cheap_problems`, checks 1-6) is what keeps hidden corruptions out of the data: a call
argument or a reply value that nothing earlier in the dialogue stated. Teaching it to read values the way an
LLM writes them ("$5,021.31", "May 22, 2024", "three items") widens what it accepts, and every widening risks
letting a wrong value through in the same form. This test guards both sides on real dialogues: rules-engine
dialogues of both methods (`toolace_mt` and `mas`) over all domains, generated here (seeded), of which only
those that pass verification are kept.

Defect families (one value of a passing dialogue made wrong; the verifier must reject it; a case is only made
when the wrong value is stated nowhere earlier, so it is a real hidden corruption):
- arg_id         an id-like call argument with its last digit changed (C473 -> C474): a call on an entity the
                 user never named and no output returned.
- arg_num        a numeric call argument x10 (amount 50 -> 500): an amount nobody asked for.
- free_id        a free-text argument (memo, title, ...) made to cite an id that does not exist: ids inside
                 free text are still grounded.
- reply_id       an id in an assistant reply changed: the reply reports an entity no output showed.
- reply_num      a number in a reply with two digits swapped (5021.31 -> 5012.31): a misreported amount.
- reply_num_fmt  the same wrong number written naturally ("$5,012.31"): the natural-money reader must not turn
                 a wrong value into an accepted one.
- reply_count    "N items" in a reply made N+5 where no list has that length: a miscounted result.
- reply_date     an ISO date in a reply moved one day: a wrong date.
- xnat_date_wrong the same wrong date written naturally ("May 23, 2024"): the natural-date reader must not
                 accept a wrong day.

Natural-form families (a reply value rewritten into a correct natural form; the verifier must NOT reject it):
- nat_money       "5021.31" -> "$5,021.31" (currency sign, thousands separators).
- nat_round1      "5021.31" -> "5021.3" (an amount rounded to one decimal, as people say it).
- nat_date        "2024-05-22" -> "May 22, 2024".
- nat_count_word  "3 items" -> "three items".
- nat_time        "14:00" -> "2:00 PM" (kept from the harness; rules-engine replies rarely state times, so it
                  may have no case).

Asserted: overall defect recall >= 0.99, every defect family with >= 5 cases >= 0.95, and no natural rewrite
rejected. A second test removes the reply check and shows the recall then falls, so the first can fail.
"""
from __future__ import annotations

import copy
import datetime
import json
import re

import pytest

from toolace_mt.generation import mas, pipeline
from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.resolve import id_tokens, mentions_token, numbers_in
from toolace_mt.generation.verify import rules
from toolace_mt.generation.verify.rules import _args

N_PER_METHOD = 60  # x2 methods (~115 pass); ~10 s of generation on one core, ~20 s of checks
CAP = 2  # cases per (dialogue, family): keeps the runtime down and no dialogue dominates a family
FREE = {"memo", "text", "content", "comment", "description", "subject", "resolution", "reason", "title", "body",
        "note"}
DEFECTS = ("arg_id", "arg_num", "free_id", "reply_id", "reply_num", "reply_num_fmt", "reply_count", "reply_date",
           "xnat_date_wrong")
NATURALS = ("nat_money", "nat_round1", "nat_date", "nat_count_word")  # nat_time: optional, see docstring
COUNT_WORDS = "zero one two three four five six seven eight nine ten".split()


def _cfg(method: str):
    return parse_recipe({"name": "recall", "method": method, "engine": "rules", "n_dialogues": N_PER_METHOD,
                         "seed": 1, "domains": "all", "subtasks": [2, 3], "steps": [1, 3], "injections": [1, 2],
                         "progress": False})


@pytest.fixture(scope="module")
def sample():
    out = []
    for method, mod in (("toolace_mt", pipeline), ("mas", mas)):
        out += [d for d in mod.run_batch(_cfg(method), list(range(N_PER_METHOD)))
                if d["meta"]["verification"]["passed"]]
    assert len(out) >= N_PER_METHOD  # most dialogues pass; both methods represented
    assert {d["meta"]["generator"] for d in out} == {"toolace_mt", "mas"}
    return out


# ----------------------------------------------------------------------------------------------- cases


def _earlier(d: dict, i: int) -> str:
    return " ".join((m.get("content") or "") + " " + " ".join(json.dumps(_args(t)) for t in m.get("tool_calls") or [])
                    for m in d["messages"][:i])


def _replies(d: dict) -> list[int]:
    return [i for i, m in enumerate(d["messages"])
            if m["role"] == "assistant" and not m.get("tool_calls") and m.get("content")]


def _perturb_num(s: str) -> str:
    """5021.31 -> 5012.31 (swap two differing adjacent digits), else x10."""
    digs = [k for k, ch in enumerate(s) if ch.isdigit()]
    for a, b in zip(digs, digs[1:]):
        if s[a] != s[b] and b == a + 1 and a > 0:
            return s[:a] + s[b] + s[a] + s[b + 1:]
    return s + "0" if "." not in s else s.replace(".", "0.", 1)


def _lens(v) -> set[int]:
    if isinstance(v, list):
        return {len(v)} | {n for x in v for n in _lens(x)}
    if isinstance(v, dict):
        return {n for x in v.values() for n in _lens(x)}
    return set()


def _natural_date(d: datetime.date) -> str:
    return d.strftime("%B %d, %Y").replace(" 0", " ")


def _corruptions(d: dict):
    msgs = d["messages"]
    # undetectable by design: the deliberately faulty call of an error_simulation injection
    exempt = {r.get("failed_call_id") for r in d["meta"].get("injections") or []}
    for i, m in enumerate(msgs):
        calls = [(t, tc) for t, tc in enumerate(m.get("tool_calls") or []) if tc.get("id") not in exempt]
        if not calls:
            continue
        before = _earlier(d, i)
        ids = [x for x in id_tokens(json.dumps(msgs[:i])) if re.fullmatch(r"[A-Z]+-?\d+", x)]
        for t, tc in calls:
            for p, v in _args(tc).items():
                if isinstance(v, str) and re.search(r"[A-Za-z]", v) and re.search(r"\d$", v):
                    nv = v[:-1] + str((int(v[-1]) + 1) % 10)
                    if not mentions_token(before, nv):
                        yield "arg_id", (i, t, p, nv)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    nv = v * 10 if v else 7
                    if float(nv) not in numbers_in(before):
                        yield "arg_num", (i, t, p, nv)
                if isinstance(v, str) and p in FREE and ids:
                    nv = re.sub(r"\d", "7", ids[0]) + "9"
                    if not mentions_token(before, nv):
                        yield "free_id", (i, t, p, v + " for " + nv)
    for i in _replies(d):
        txt, before = msgs[i]["content"], _earlier(d, i)
        for tok in dict.fromkeys(id_tokens(txt)):
            if re.fullmatch(r"\d+\.\d+|\d{2,}", tok):
                nt = _perturb_num(tok)
                if float(nt) not in numbers_in(before):
                    yield "reply_num", (i, tok, nt)
                    v = float(nt)
                    yield "reply_num_fmt", (i, tok, "$" + (f"{v:,.2f}" if "." in tok else f"{int(v):,}"))
            elif re.search(r"[A-Za-z]", tok) and re.search(r"\d", tok):
                nt = re.sub(r"\d(?=\D*$)", lambda mm: str((int(mm.group()) + 3) % 10), tok)
                if not mentions_token(before, nt):
                    yield "reply_id", (i, tok, nt)
        for tok in dict.fromkeys(re.findall(r"\b\d{4}-\d\d-\d\d\b", txt)):
            nd = datetime.date.fromisoformat(tok) + datetime.timedelta(days=1)
            if nd.isoformat() not in before:
                yield "reply_date", (i, tok, nd.isoformat())
                yield "xnat_date_wrong", (i, tok, _natural_date(nd))
        lens = set()
        for x in msgs[:i]:
            if x["role"] == "tool":
                try:
                    lens |= _lens(json.loads(x["content"]))
                except (json.JSONDecodeError, TypeError):
                    pass
        for n in re.findall(r"\b(\d+) items?\b", txt):
            if int(n) + 5 in lens or float(int(n) + 5) in numbers_in(before):
                continue  # another list of that length: not detectable by a count check
            yield "reply_count", (i, n + " item", str(int(n) + 5) + " item")


def _naturals(d: dict):
    msgs = d["messages"]
    for i in _replies(d):
        txt = msgs[i]["content"]
        for tok in dict.fromkeys(id_tokens(txt)):
            if re.fullmatch(r"\d+\.\d\d", tok):
                v = float(tok)
                yield "nat_money", (i, tok, f"${v:,.2f}")
                yield "nat_round1", (i, tok, f"{v:.1f}")
            if re.fullmatch(r"\d{4}-\d\d-\d\d", tok):
                yield "nat_date", (i, tok, _natural_date(datetime.date.fromisoformat(tok)))
        for n in re.findall(r"\b(\d+) items?\b", txt):
            if int(n) < len(COUNT_WORDS):
                yield "nat_count_word", (i, n + " item", COUNT_WORDS[int(n)] + " item")
        for hh, mm in re.findall(r"\b(\d\d):(\d\d)\b", txt):
            h = int(hh)
            yield "nat_time", (i, f"{hh}:{mm}", f"{h % 12 or 12}:{mm} {'PM' if h >= 12 else 'AM'}")


def _apply(d: dict, kind: str, a: tuple) -> dict:
    """A copy of `d` with one change; only the changed message is copied (the checks only read)."""
    b = dict(d)
    b["messages"] = list(d["messages"])
    i = a[0]
    b["messages"][i] = m = copy.deepcopy(d["messages"][i])
    if kind in ("arg_id", "arg_num", "free_id"):
        _, t, p, nv = a
        fn = m["tool_calls"][t]["function"]
        args = {**_args(m["tool_calls"][t]), p: nv}
        fn["arguments"] = args if isinstance(fn["arguments"], dict) else json.dumps(args)
    else:
        _, old, new = a
        tail = "" if old.endswith(" item") else r"(?![\w])"
        m["content"] = re.sub(rf"(?<![\w.]){re.escape(old)}{tail}", lambda _: new, m["content"], count=1)
    return b


def _rejected(b: dict) -> bool:
    # a problem with the injection records alone is a side effect of the edit, not a catch of the defect
    return any(p[0] != "injections" for p in rules.cheap_problems(b))


@pytest.fixture(scope="module")
def cases(sample):
    out = []
    for d in sample:
        seen: dict[str, int] = {}
        for kind, a in list(_corruptions(d)) + list(_naturals(d)):
            if seen.get(kind, 0) < CAP:
                seen[kind] = seen.get(kind, 0) + 1
                out.append((d, kind, a))
    return out


def _measure(cases) -> tuple[dict[str, int], dict[str, int]]:
    tot: dict[str, int] = {}
    hit: dict[str, int] = {}
    for d, kind, a in cases:
        tot[kind] = tot.get(kind, 0) + 1
        hit[kind] = hit.get(kind, 0) + _rejected(_apply(d, kind, a))
    return tot, hit


def _table(tot, hit) -> str:
    rows = [f"{k:16s} rejected {hit[k]:4d}/{tot[k]:<4d} = {hit[k] / tot[k]:.3f}" for k in sorted(tot)]
    return "\n" + "\n".join(rows)


def _recall(tot, hit) -> float:
    ks = [k for k in tot if k in DEFECTS]
    return sum(hit[k] for k in ks) / max(1, sum(tot[k] for k in ks))


# ----------------------------------------------------------------------------------------------- tests


def test_defects_rejected_and_natural_forms_accepted(sample, cases):
    baseline = [(d["meta"]["domain"], p) for d in sample for p in rules.cheap_problems(d)]
    assert not baseline, baseline  # the untouched dialogues are clean, so every rejection is the change's
    tot, hit = _measure(cases)
    table = _table(tot, hit)
    missing = [k for k in DEFECTS + NATURALS if tot.get(k, 0) < 5]
    assert not missing, f"families without enough cases {missing}: the sample no longer exercises them{table}"
    recall = _recall(tot, hit)
    assert recall >= 0.99, f"defect recall {recall:.4f} < 0.99{table}"
    weak = [k for k in DEFECTS if tot[k] >= 5 and hit[k] / tot[k] < 0.95]
    assert not weak, f"families with recall < 0.95: {weak}{table}"
    nk = [k for k in tot if k.startswith("nat_")]
    false_rejects = sum(hit[k] for k in nk)
    assert false_rejects == 0, f"natural forms rejected: {false_rejects}/{sum(tot[k] for k in nk)}{table}"


def test_recall_falls_without_the_reply_check(sample, cases, monkeypatch):
    """The measurement can fail: with the reply check gone, the reply corruptions pass."""
    few = {id(d) for d in sample[:12]} | {id(d) for d in sample[-12:]}  # both methods
    sub = [c for c in cases if id(c[0]) in few and c[1] in DEFECTS]
    monkeypatch.setattr(rules, "reply_problems", lambda d: [])
    tot, hit = _measure(sub)
    assert _recall(tot, hit) < 0.99, _table(tot, hit)
    assert any(k.startswith("reply_") and tot[k] >= 5 and hit[k] / tot[k] < 0.95 for k in tot), _table(tot, hit)
