"""What every solver shares: the solver names, the fit history and the divergence error."""

from dataclasses import dataclass, field

import numpy as np

STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SOLVERS = STOCHASTIC_SOLVERS + ("lbfgs",)


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss."""


def diverged(epoch, solver, lr):
    """The :class:`DivergenceError` of a fit whose loss became non-finite at ``epoch``."""
    return DivergenceError(
        f"Training diverged: the loss became non-finite at epoch {epoch}. Lower "
        f"learning_rate_init (now {lr:g}) for solver={solver!r}, standardize the inputs, or add "
        "a penalty (alpha > 0)."
    )


def unpack(data):
    """``(X, y, w, offset)`` from a solver's data, ``(X, y, w)`` or ``(X, y, w, offset)``;
    the offset is None or an (n, k) tensor added to the module's output (``eta = f(X) + o``)."""
    return (*data, None) if len(data) == 3 else tuple(data)


def shifted(eta, offset):
    """``eta + offset`` (``eta`` itself without an offset)."""
    return eta if offset is None else eta + offset


def has_dropout(module):
    """True when the network applies dropout (to hidden units or inputs) in training mode."""
    return any(float(getattr(module, name, 0.0) or 0.0) > 0
               for name in ("dropout", "input_dropout"))


@dataclass
class History:
    """What a fit leaves behind: loss curve, validation scores and the stopping state.

    One History lives as long as the estimator's fit sequence (``partial_fit`` and warm starts
    continue it). Each solver documents the fields it sets.
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = np.inf
    best_validation_score: float = -np.inf
    best_state: dict = None
    no_improvement: int = 0
    n_iter: int = 0
    t: int = 0  # samples seen, for the invscaling schedule
    converged: bool = False
    averaging: bool = False  # iterates are averaged (dropout); see MinibatchSolver
    averaged_change: float = None  # change of the average over the last block of epochs
    # lbfgs: the first layer holds a fresh initialization, which the solver reads as weights on
    # the standardized inputs (see LBFGSSolver); cleared after the first run
    init_standardized: bool = False
    lbfgs_result: object = None
