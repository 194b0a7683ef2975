"""LLM client layer (ARCHITECTURE.md §5)."""
