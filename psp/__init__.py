"""psp-bench: a reproducibility suite for post-training structured pruning (PSP and its baselines)."""

__version__ = "0.1.0"
