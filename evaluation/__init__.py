"""toolace_mt.evaluation: harnesses, policies (model adapters), scoring and reports.

* `policy` -- the contract (`PolicyInput`/`PolicyOutput`/`Policy.act(batch)`); `policies` -- `make_policy(cfg)`
  for oracle, null, transformers, openai, vllm;
* `suites` -- the suite registry and contract (load_tasks / run / pure score / summarize);
* `config` -- `EvaluateConfig` + `parse_recipe`; `run` -- `run_evaluation(cfg, out_dir, restart)` and `rescore`;
* `bfcl` -- BFCL-v3-style multi-turn suite (own task sets + the official entries, cross-checked);
  `tau`, `ace` -- tau-style and ACE-style suites;
* `cli` -- `toolace-mt evaluate | rescore | crosscheck | bfcl-tasks | bench evaluation`.
"""
