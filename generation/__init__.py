"""toolace_mt.generation: the ToolACE-MT pipeline (paper §2) and the run driver shared with the MAS baseline.

Modules, one job each:

* ``config``    `GenerateConfig` + `parse_recipe` (recipe ``task: generate``)
* ``plan``      stage 1a: `TaskPlan`, rules planner along `Env.dependency_edges`, `make_plans(cfg, seeds)`
* ``skeleton``  stage 1b: sub-trajectories with REAL tool outputs (rules templates or one LLM call per subtask index)
* ``pool``      schema-only API pools (outputs simulated by the LLM)
* ``inject``    stage 2a: mask-and-extend complexity injection (5 types)
* ``refine``    stage 2b: mask-and-fill reasonability refinement + the stage-2 schedule
* ``verify/``   stage 3: rule checks (``rules``) and model specialists (``model``)
* ``pipeline``  the method module for ``method: toolace_mt``: ``STAGES`` and ``run_stage(stage, cfg, indices, ds, client)``
* ``run``       `run_generation` (run dir, resume, shards), `merge_shards`, `verify_dataset`
* ``card``      dataset card; ``text`` rules-engine text; ``llm_io`` prompts (``prompts/*.jinja``) and answer parsing
* ``work``      the in-flight dialogue dict, message tags, replay; ``cli``/``bench`` commands

A method module (``pipeline`` here, ``mas`` for the baseline) exposes ``STAGES`` and ``run_stage``; the run
driver stores each stage's output per chunk and resumes from it.
"""
