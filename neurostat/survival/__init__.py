"""Survival outputs: the neural Cox model, its family, its inference and its metrics."""

from .competing import aalen_johansen, fine_gray_data
from .estimator import NeuralCoxRegressor
from .metrics import baseline_hazards, breslow_baseline, concordance_index

__all__ = ["NeuralCoxRegressor", "aalen_johansen", "baseline_hazards", "breslow_baseline",
           "concordance_index", "fine_gray_data"]
