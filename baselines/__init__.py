"""Baseline pruning methods; importing this package registers them."""
