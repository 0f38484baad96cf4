"""The solvers: objects with explicit inputs (the module, the data, the family, the penalty and a
small config), never the estimator.

* :class:`MinibatchSolver` (``minibatch.py``) - sgd, adam, adamw, rmsprop, adagrad in one
  explicit loop; its schedules, stopping rule and iterate averaging are in ``schedules.py``;
  the private fused-Adam kernel calls are quarantined in ``_fused.py``.
* :class:`LBFGSSolver` (``lbfgs.py``) - full-batch float64 L-BFGS-B with standardized inputs
  and split L1 variables.
* :class:`NewtonFinish` (``newton.py``) - the one Newton finish of GLMs and the Cox model.
"""

from .base import SOLVERS, STOCHASTIC_SOLVERS, DivergenceError, History, has_dropout
from .lbfgs import LBFGSConfig, LBFGSSolver
from .minibatch import MinibatchConfig, MinibatchSolver, make_optimizer
from .newton import LinearNewton, NewtonFinish, NewtonResult

__all__ = [
    "SOLVERS",
    "STOCHASTIC_SOLVERS",
    "DivergenceError",
    "History",
    "LBFGSConfig",
    "LBFGSSolver",
    "LinearNewton",
    "MinibatchConfig",
    "MinibatchSolver",
    "NewtonFinish",
    "NewtonResult",
    "has_dropout",
    "make_optimizer",
]
