"""Projection pursuit regression (Friedman & Stuetzle 1981): the estimator, its smoothers and its
ridge-function display."""

from .display import RidgeFunctionDisplay
from .estimator import ProjectionPursuitRegressor, RidgeFunction

__all__ = ["ProjectionPursuitRegressor", "RidgeFunction", "RidgeFunctionDisplay"]
