"""ACEBench-style evaluation: normal, special and agent categories, on our own tasks and the official items."""
