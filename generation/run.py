"""`run_generation`: a generation run directory that resumes, shards and merges exactly.

Layout of ``out/``::

    recipe.yaml                       resolved recipe (a changed recipe is refused with a diff)
    stages/<stage>/chunk-00000.jsonl  each stage's output per chunk of `batch_size` dialogue indices
    dataset/train.jsonl|.parquet      the kept (verified) dialogues, TRL-ready
    rejected.jsonl                    the rejected ones, with their reasons
    card.json, card.md                dataset card;  usage.json  LLM usage (dialogues + client ledger)
    requests.jsonl                    with llm.log_requests: every request's messages, tools and raw answer
    summary.json                      card counts + timings + paths

A chunk's stage file is written atomically once the stage is done for the whole chunk, so a run killed at
any point resumes from the last finished (chunk, stage) and, every dialogue's randomness being derived from
(seed, index), yields exactly the uninterrupted output. ``shard=i/N`` runs the chunks c with c % N == i;
`merge_shards` joins shard directories into the single-run dataset and card.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

from toolace_mt.config import RecipeError, to_plain
from toolace_mt.runs import atomic_write_json, atomic_write_jsonl, atomic_write_text, prepare_run_dir, read_jsonl

from .card import build_card, card_markdown
from .config import GenerateConfig, method_module, parse_shard
from .dialogue import Verification, WorkDialogue

STAGE_DIR = "stages"


def chunks_of(cfg: GenerateConfig, shard: Optional[str] = None) -> list[tuple[int, list[int]]]:
    """(chunk number, dialogue indices) this process runs."""
    n, b = cfg.n_dialogues, cfg.batch_size
    out = [(c, list(range(c * b, min(n, (c + 1) * b)))) for c in range((n + b - 1) // b)]
    if shard:
        i, k = parse_shard(shard)
        out = [(c, idx) for c, idx in out if c % k == i]
    return out


def _client(cfg: GenerateConfig, out: Path):
    if cfg.engine != "llm":
        return None
    from toolace_mt.llm.client import make_client

    return make_client(cfg.llm, cache_dir=out / "llm_cache")


def run_generation(cfg: GenerateConfig, out_dir: Path, restart: bool = False, shard: Optional[str] = None,
                   client=None, hook: Optional[Callable[[str, int], None]] = None) -> dict[str, Any]:
    """Generate, verify and export. `client` overrides the recipe's LLM (tests); `hook(stage, chunk)` is called
    after each (stage, chunk) is written (tests use it to simulate a kill)."""
    from toolace_mt.envs.base import use_id_style

    with use_id_style(cfg.id_style):  # the recipe's id style reaches every env sampler of this run
        return _run_generation(cfg, out_dir, restart, shard, client, hook)


def _run_generation(cfg: GenerateConfig, out_dir: Path, restart: bool, shard: Optional[str], client,
                    hook: Optional[Callable[[str, int], None]]) -> dict[str, Any]:
    if shard is not None:
        cfg.shard = shard
    out = Path(out_dir)
    resolved = to_plain(cfg)
    prepare_run_dir(out, resolved, restart=restart, ignore_keys=("progress",))
    method = method_module(cfg.method)
    if client is None:
        client = _client(cfg, out)
    reqlog = None
    if client is not None and getattr(cfg.llm, "log_requests", False):
        from .reqlog import RequestLog

        reqlog = RequestLog(out)
        reqlog.wrap(client)
    # the ledger file sums every process that worked on this run directory: a resumed run adds its own requests
    # to what the interrupted ones recorded (saved after each stage file), instead of replacing them
    ledger_file = out / "llm_ledger.json"
    earlier = _earlier_ledger(ledger_file)

    def save_ledger() -> None:
        led = getattr(client, "ledger", None)
        if led is not None and hasattr(led, "summary"):
            atomic_write_json(ledger_file, (earlier.plus(led) if earlier is not None else led).summary())

    t0 = time.time()
    todo = chunks_of(cfg, cfg.shard)
    from tqdm import tqdm

    bar = tqdm(total=len(todo) * len(method.STAGES), desc=f"generate {cfg.name}", unit="stage",
               disable=not cfg.progress)
    for c, idx in todo:
        ds = None
        for stage in method.STAGES:
            path = out / STAGE_DIR / stage / f"chunk-{c:05d}.jsonl"
            if path.exists():
                ds = None  # loaded lazily: only the last finished stage's file is needed
            else:
                if ds is None and stage != method.STAGES[0]:
                    prev = method.STAGES[method.STAGES.index(stage) - 1]
                    ds = read_jsonl(out / STAGE_DIR / prev / f"chunk-{c:05d}.jsonl")
                ds = method.run_stage(stage, cfg, idx, ds, client)
                if reqlog is not None:  # before the stage file: a kill in between logs, never loses, the requests
                    reqlog.flush()
                atomic_write_jsonl(path, ds)
                save_ledger()
                if hook is not None:
                    hook(stage, c)
            bar.update(1)
    bar.close()
    gen_s = time.time() - t0
    save_ledger()
    summary = export(out, [c for c, _ in todo], cfg, method.STAGES[-1])
    summary["timing"] = {"generate_s": round(gen_s, 2), "total_s": round(time.time() - t0, 2)}
    atomic_write_json(out / "summary.json", summary)
    return summary


def _earlier_ledger(path: Path):
    """The usage ledger earlier processes saved in this run directory, or None (none yet, or unreadable: a
    ledger is a record of cost, never a reason to stop a run; the file is then rewritten from this process)."""
    if not path.is_file():
        return None
    from toolace_mt.llm.ledger import UsageLedger

    try:
        return UsageLedger.load(path)
    except (ValueError, OSError, TypeError, AttributeError):
        return None


def export(out: Path, chunk_ids: list[int], cfg: GenerateConfig, last_stage: str,
           sources: Optional[list[Path]] = None) -> dict[str, Any]:
    """Dataset (kept), rejected rows, card and usage from the final stage's chunk files."""
    from toolace_mt.io import save_dataset
    from toolace_mt.schema import Dialogue

    rows: list[dict[str, Any]] = []
    for c in sorted(chunk_ids):
        path = None
        for src in sources or [out]:
            p = src / STAGE_DIR / last_stage / f"chunk-{c:05d}.jsonl"
            if p.exists():
                path = p
                break
        if path is None:
            raise RecipeError(f"chunk {c} has no {last_stage} output in {[str(s) for s in sources or [out]]}")
        rows.extend(read_jsonl(path))
    ds = [WorkDialogue.read(r) for r in rows]  # tolerant: a hand-edited chunk file is rejected, not a traceback
    kept, rejected = [], []
    for d in ds:
        row = d.to_dict()
        if d.verification.passed if d.verification is not None else "verification" not in d.unreadable():
            try:
                kept.append(Dialogue.model_validate(row))
                continue
            except Exception as e:  # cannot be exported: reject it with the reason rather than crash
                d.verification = Verification(False, [f"format: not exportable: {e}"], {"format": False})
                row = d.to_dict()
        rejected.append(row)
    paths = save_dataset(kept, out / "dataset")
    atomic_write_jsonl(out / "rejected.jsonl", rejected)
    card = build_card(ds, cfg.name, cfg.method, cfg.engine)
    atomic_write_json(out / "card.json", card)
    atomic_write_text(out / "card.md", card_markdown(card))
    atomic_write_json(out / "usage.json", card["cost"])
    return {"out": str(out), "counts": card["counts"], "dataset": paths, "card": str(out / "card.json"),
            "chunks": len(chunk_ids)}


def merge_shards(shard_dirs: list[Path], out_dir: Path) -> dict[str, Any]:
    """Join shard run directories (same recipe apart from `shard`) into one dataset + card."""
    import yaml

    from .config import parse_recipe

    recipes = []
    for s in shard_dirs:
        rf = Path(s) / "recipe.yaml"
        if not rf.exists():
            raise RecipeError(f"{s}: not a run directory (no recipe.yaml)")
        r = yaml.safe_load(rf.read_text())
        r.pop("shard", None)
        r.pop("progress", None)
        recipes.append(r)
    if any(r != recipes[0] for r in recipes[1:]):
        raise RecipeError("shards were run with different recipes; refusing to merge")
    cfg = parse_recipe(dict(recipes[0]))
    method = method_module(cfg.method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "recipe.yaml", yaml.safe_dump(to_plain(cfg), sort_keys=True))
    all_chunks = [c for c, _ in chunks_of(cfg)]
    summary = export(out, all_chunks, cfg, method.STAGES[-1], sources=[Path(s) for s in shard_dirs])
    summary["merged_from"] = [str(s) for s in shard_dirs]
    atomic_write_json(out / "summary.json", summary)
    return summary


def load_rows_tolerant(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(valid rows, refused records with their line and reason, reader notes): the project's one dataset reader
    (`toolace_mt.io.read_dataset`); one bad record never hides the others."""
    from toolace_mt.io import read_dataset

    got = read_dataset(path)
    bad = [dict(r, reason="format: " + r["reason"]) for r in got.rejected]
    return [d.to_dict() for d in got.dialogues], bad, got.notes


def verify_dataset(data: Path, out_dir: Path, model_verifiers: Optional[list[str]] = None, client=None,
                   llm_cfg=None, batch_size: int = 64, progress: bool = True) -> dict:
    """Re-verify any dataset in our format; write it back annotated (all rows) with a card.

    Rule checks always run; with `model_verifiers` and a `client` the model specialists judge the rows that
    pass the rules, one batched call per `batch_size` rows, and the client's usage ledger goes to usage.json."""
    from toolace_mt.io import save_dataset
    from toolace_mt.schema import Dialogue

    from .verify import verify_batch

    got, malformed, notes = load_rows_tolerant(Path(data))
    rows = [WorkDialogue.read(r) for r in got]
    if not rows:  # nothing to verify is an input error, not a run that "kept 0"
        from toolace_mt.io import DataFileError

        why = f"; first: {malformed[0]['reason']}" if malformed else ""
        raise DataFileError(f"{data}: no record could be read as a dialogue ({len(malformed)} malformed{why})")
    use_model = bool(model_verifiers) and client is not None
    starts = range(0, len(rows), max(1, batch_size))
    if progress and use_model:
        from tqdm import tqdm

        starts = tqdm(starts, desc="verify", unit="batch")
    for s in starts:
        # chosen: the verify command asks each specialist separately (its own view of the dialogue); generation
        # runs batch them per dialogue (recipe key batch_specialists)
        verify_batch(rows[s:s + batch_size], model_verifiers if use_model else None, client, llm_cfg, batched=False)
    out = Path(out_dir)
    save_dataset([Dialogue.model_validate(r.to_dict()) for r in rows], out)
    card = build_card(rows, Path(data).name, "verify", "llm" if use_model else "rules")
    atomic_write_json(out / "card.json", card)
    atomic_write_text(out / "card.md", card_markdown(card))
    res = {"data": str(data), "out": str(out), "counts": card["counts"], "rejection_reasons": card["rejection_reasons"],
           "model_verifiers": list(model_verifiers) if use_model else []}
    if notes:
        res["reader_notes"] = notes
    if malformed:  # rejected with their reasons; the other records were verified
        atomic_write_jsonl(out / "malformed.jsonl", malformed)
        res["malformed"] = {"count": len(malformed), "file": str(out / "malformed.jsonl"),
                            "reasons": [m["reason"] for m in malformed[:20]]}
        res["counts"] = dict(res["counts"], malformed=len(malformed))
    if use_model and getattr(client, "ledger", None) is not None:
        usage = client.ledger.summary()
        atomic_write_json(out / "usage.json", usage)
        res["llm_usage"] = usage.get("total", usage)
    atomic_write_json(out / "verify_summary.json", res)
    return res
