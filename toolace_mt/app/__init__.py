"""The application layer: the `toolace-mt` CLI, `reproduce` (generate -> train -> evaluate) and the report.

It is the only package that imports generation, training and evaluation; core (schema, envs, llm, io, runs,
config, registry) imports nothing above it. The app therefore names the recipe kinds the packages define.
"""
from ..config import RECIPE_KINDS

RECIPE_KINDS.register("generate", "toolace_mt.generation.config:parse_recipe")
RECIPE_KINDS.register("train", "toolace_mt.training.config:parse_recipe")
RECIPE_KINDS.register("evaluate", "toolace_mt.evaluation.config:parse_recipe")
RECIPE_KINDS.register("reproduce", "toolace_mt.app.reproduce:parse_recipe")
