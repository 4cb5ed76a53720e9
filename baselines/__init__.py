"""Baseline pruning methods; importing this package registers them.

Tables list a family's methods in registration order, so the modules are imported in table order: the post-training
baselines, then the retraining ones with L1 (the paper's comparison) first.
"""

# isort: off
from baselines import adaprune, gap, neuron_merging  # noqa: F401  (registration side effects)
from baselines import l1, greg, depgraph  # noqa: F401
# isort: on
