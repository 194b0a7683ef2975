"""tau-bench-style suite: policy-bound domains (a folder each: environment, policy document, tasks), a simulated
user, reward from the final database state and required outputs, pass^k."""
