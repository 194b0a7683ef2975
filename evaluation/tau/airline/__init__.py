"""tau-style airline domain: the environment (`env.py`), its policy document and its tasks."""
from .env import AirlineEnv

__all__ = ["AirlineEnv"]
