"""Baseline pruning methods; importing this package registers them."""

from baselines import adaprune, depgraph, gap, greg, l1, neuron_merging  # noqa: F401  (registration side effects)
