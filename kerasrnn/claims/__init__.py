"""Measurements that settle the seeds' SimpleRNN vs LSTM vs GRU claims.

- `params`: closed-form parameter counts (checked against Keras' ``count_params``).
- `measure`: step timings, peak memory and gradient-norm-vs-distance profiles.
- `long_memory`: the ``long_memory`` recipe task (adding / copy problems at several lengths).
- `report`: the Markdown table, plots and per-claim verdicts of ``kerasrnn bench claims``.
"""
