"""toolace-mt: the ToolACE-MT pipeline (generation), LoRA SFT (training) and BFCL/tau/ACE-style evaluation.

The core package holds what every part shares: the dialogue schema, tool environments, LLM clients, recipes
and run directories. Importing it is cheap: torch, transformers and vllm are imported only where used.
"""
from .schema import Dialogue, DialogueError, Message, Problem, Tool, ToolCall, check_dialogue, validate_dialogue

__version__ = "0.1.0"
__all__ = ["Dialogue", "DialogueError", "Message", "Problem", "Tool", "ToolCall", "check_dialogue",
           "validate_dialogue", "__version__"]
