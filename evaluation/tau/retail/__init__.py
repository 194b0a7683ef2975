"""tau-style retail domain: the environment (`env.py`), its policy document and its tasks."""
from .env import RetailEnv

__all__ = ["RetailEnv"]
