"""Survival outputs: the neural Cox model, its family, its inference and its metrics."""

from .estimator import NeuralCoxRegressor
from .metrics import breslow_baseline, concordance_index

__all__ = ["NeuralCoxRegressor", "breslow_baseline", "concordance_index"]
