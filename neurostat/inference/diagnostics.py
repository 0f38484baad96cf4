"""Diagnostics of a fit: is it a stationary point, is the Hessian invertible, residuals,
calibration."""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..engine.families import calibration_table as _calibration_table
from .covariance import InferenceWarning

#: sup-norm of the objective's gradient above which inference is flagged (the objective is a
#: mean over observations, so this is per observation; lbfgs stops at 1e-3 * tol = 1e-7)
GRADIENT_TOL = 1e-4


@dataclass
class Diagnostics:
    """What :meth:`InferenceResults.diagnostics` returns.

    Attributes
    ----------
    gradient_norm : float
        Sup-norm of the gradient of the training objective (mean penalized nll) at the fit; for
        L1 penalties the minimum-norm subgradient.
    stationary : bool
        ``gradient_norm <= GRADIENT_TOL``.
    hessian_min_eigenvalue, hessian_condition : float
        Of the Hessian of the (penalized) objective on the sum scale.
    converged, n_iter : bool, int
    resid_deviance, resid_pearson : ndarray of shape (n_samples,)
        As statsmodels' GLM ``resid_deviance`` / ``resid_pearson`` (Pearson per class, summed in
        quadrature, for several classes); lazy dask arrays for data held in chunks.
    calibration : DataFrame or None
        Classifiers: observations binned by predicted probability (deciles): count, mean
        predicted, observed frequency; ``hosmer_lemeshow`` its chi-square statistic and p-value.
    """

    gradient_norm: float
    stationary: bool
    hessian_min_eigenvalue: float
    hessian_condition: float
    converged: bool
    n_iter: int
    resid_deviance: np.ndarray = field(repr=False)
    resid_pearson: np.ndarray = field(repr=False)
    calibration: pd.DataFrame = field(default=None, repr=False)
    hosmer_lemeshow: tuple = None

    def __str__(self):
        lines = [
            f"gradient sup-norm: {self.gradient_norm:.3g} "
            f"({'stationary' if self.stationary else 'NOT a stationary point'})",
            f"Hessian smallest eigenvalue: {self.hessian_min_eigenvalue:.4g}, condition number: "
            f"{self.hessian_condition:.4g}",
            f"converged: {self.converged} after {self.n_iter} iterations",
            f"deviance residuals: sum of squares {float(np.sum(self.resid_deviance ** 2)):.5g}",
        ]
        if self.calibration is not None:
            stat, p = self.hosmer_lemeshow
            lines += ["calibration (Hosmer-Lemeshow chi2 = "
                      f"{stat:.4g}, p = {p:.4g}):", self.calibration.to_string()]
        return "\n".join(lines)


def objective_gradient(res):
    """Gradient of the training objective (mean weighted nll + penalty) at theta."""
    lik, penalty = res.likelihood, res.model.penalty
    if getattr(lik, "chunked", False):  # data in chunks: the gradient of sum_i w_i nll_i
        g = np.array(lik.statistics(lik.theta, ("grad",))["grad"]) / lik.nobs
    else:
        t = lik.theta.clone().requires_grad_(True)
        # the objective's gaussian nll is at unit scale
        (g,) = torch.autograd.grad(-lik.loglik(lik.eta(t), scale=1.0) / lik.nobs, t)
        g = g.numpy().copy()
    mask = lik.penalized_mask().numpy()
    theta = lik.theta.numpy()
    l2, l1 = penalty.l2, penalty.l1
    g[mask] += l2 * theta[mask]
    if l1 > 0:
        nz = mask & (theta != 0)
        g[nz] += l1 * np.sign(theta[nz])
        z = mask & (theta == 0)
        g[z] = np.sign(g[z]) * np.maximum(np.abs(g[z]) - l1, 0)  # min-norm subgradient
    return g


def residuals(res):
    """``(deviance, pearson)`` residuals of the fit, from its family (lazy dask arrays for
    data held in chunks)."""
    lik = res.likelihood
    with torch.no_grad():
        eta = lik.eta(lik.theta)
    if getattr(lik, "chunked", False):
        return lik.residuals(eta)
    return lik.family.residuals(eta, lik.y, lik.w)


def calibration_table(res, n_bins=10):
    """Decile bins of the predicted probability (of the second class, or of the predicted class
    for several classes) with observed frequencies and the Hosmer-Lemeshow statistic (see
    :func:`neurostat.engine.families.calibration_table`; for data in chunks the same bins,
    reduced over them)."""
    if getattr(res.likelihood, "chunked", False):
        return res.likelihood.calibration_table(res.fittedvalues, n_bins)
    return _calibration_table(res.likelihood.y.numpy(), res.fittedvalues, n_bins)


def diagnostics(res):
    """Checks of a fit that inference relies on (what :meth:`InferenceResults.diagnostics`
    returns).

    Is the fit a stationary point of the training objective (sup-norm of its gradient, the
    minimum-norm subgradient under an L1 penalty, against :data:`GRADIENT_TOL`)? Is the
    penalized Hessian positive definite, and how well conditioned (its eigenvalues on the
    active set, on the objective's unit-dispersion sum scale)? Plus the solver's
    convergence, deviance and Pearson residuals, and for classifiers the calibration table
    with the Hosmer-Lemeshow test.

    Parameters
    ----------
    res : InferenceResults

    Returns
    -------
    Diagnostics
        For data held in chunks (dask) the same numbers, reduced over the chunks: the
        gradient from one pass, the residuals lazy dask arrays, the calibration bins exactly
        those in memory (three passes, no global sort;
        :func:`neurostat.distributed.diagnostics.calibration_table`).
        The Hessian's eigenvalue and condition number are NaN where no dense Hessian was
        formed (bootstrap covariances of large nets); the condition number is ``inf`` when
        the smallest eigenvalue is not positive.

    Warns
    -----
    InferenceWarning
        When the gradient's sup-norm exceeds ``GRADIENT_TOL``: the covariance, which assumes
        a stationary point, is then unreliable.
    """
    g = objective_gradient(res)
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    stationary = gnorm <= GRADIENT_TOL
    if not stationary:
        warnings.warn(
            f"The gradient of the objective at the fit has sup-norm {gnorm:.3g} > "
            f"{GRADIENT_TOL:g}: not a stationary point, so the covariance (which assumes one) is "
            "unreliable. Refit with solver='lbfgs' and a larger max_iter.",
            InferenceWarning, stacklevel=3,
        )
    stats = res.statistics
    if stats.A is not None:
        sp = stats.param_scale
        # back to the objective's (unit-dispersion) sum scale
        A = stats.A * (res.scale if sp is None else np.sqrt(np.outer(sp, sp)))
        ev = np.linalg.eigvalsh(0.5 * (A + A.T))
        min_eig = float(ev[0])
        cond = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf
    else:
        min_eig, cond = np.nan, np.nan
    dev, pear = residuals(res)
    calib, hl = (None, None)
    if res.likelihood.family.classification:
        calib, hl = calibration_table(res)
    return Diagnostics(gnorm, stationary, min_eig, cond, res.converged, int(res.model.n_iter),
                       dev, pear, calib, hl)
