"""Episodes shared by the tau-style and ACE-style agent suites: the Task record, the turn-by-turn runner
(policy <-> environment <-> simulated user) and the simulated users. Each suite brings its own environments."""
