"""Diagnostics of a fit: is it a stationary point, is the Hessian invertible, residuals,
calibration."""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

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
        quadrature, for several classes).
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
            f"deviance residuals: sum of squares {np.sum(self.resid_deviance ** 2):.5g}",
        ]
        if self.calibration is not None:
            stat, p = self.hosmer_lemeshow
            lines += ["calibration (Hosmer-Lemeshow chi2 = "
                      f"{stat:.4g}, p = {p:.4g}):", self.calibration.to_string()]
        return "\n".join(lines)


def objective_gradient(res):
    """Gradient of the training objective (mean weighted nll + penalty) at theta."""
    lik, est = res.likelihood, res.model
    old = lik.scale
    lik.scale = 1.0  # the objective's gaussian nll is at unit scale
    try:
        t = lik.theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(-lik.loglik(lik.eta(t)) / lik.nobs, t)
    finally:
        lik.scale = old
    g = g.numpy().copy()
    mask = lik.penalized_mask().numpy()
    theta = lik.theta.numpy()
    l2 = est.alpha * (1 - est.l1_ratio)
    l1 = est.alpha * est.l1_ratio
    g[mask] += l2 * theta[mask]
    if l1 > 0:
        nz = mask & (theta != 0)
        g[nz] += l1 * np.sign(theta[nz])
        z = mask & (theta == 0)
        g[z] = np.sign(g[z]) * np.maximum(np.abs(g[z]) - l1, 0)  # min-norm subgradient
    return g


def residuals(res):
    lik = res.likelihood
    y = lik.y.numpy()
    mu = res.fittedvalues
    name = lik.family.name
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "bernoulli":
            ll = np.where(y > 0, np.log(mu), np.log1p(-mu))
            dev = np.sign(y - mu) * np.sqrt(-2 * ll)
            pear = (y - mu) / np.sqrt(mu * (1 - mu))
        elif name == "poisson":
            term = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
            dev = np.sign(y - mu) * np.sqrt(2 * np.maximum(term, 0))
            pear = (y - mu) / np.sqrt(mu)
        elif name == "categorical":
            onehot = np.eye(mu.shape[1])[y.astype(int)]
            dev = np.sqrt(-2 * np.log(np.sum(onehot * mu, 1)))
            pear = np.sqrt(np.sum((onehot - mu) ** 2 / (mu * (1 - mu)), 1))
        else:
            dev = pear = y - mu
    if lik.w is not None:
        dev, pear = dev * np.sqrt(lik.w.numpy()), pear * np.sqrt(lik.w.numpy())
    return dev, pear


def calibration_table(res, n_bins=10):
    """Decile bins of the predicted probability (of the second class, or of the predicted class
    for several classes) with observed frequencies and the Hosmer-Lemeshow statistic."""
    y = res.likelihood.y.numpy()
    mu = res.fittedvalues
    if mu.ndim == 2:
        pred = mu.argmax(1)
        p, hit = mu.max(1), (pred == y).astype(float)
    else:
        p, hit = mu, y
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(p)))
    rows = []
    for i, b in enumerate(bins):
        rows.append((i + 1, len(b), p[b].mean(), hit[b].mean(), p[b].min(), p[b].max()))
    table = pd.DataFrame(rows, columns=["bin", "n", "mean_predicted", "observed",
                                        "p_min", "p_max"]).set_index("bin")
    e, o, n = table.mean_predicted.values, table.observed.values, table.n.values
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = float(np.nansum(n * (o - e) ** 2 / (e * (1 - e))))
    df = max(len(table) - 2, 1)
    return table, (stat, float(sps.chi2.sf(stat, df)))


def diagnostics(res):
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
    stats = res._stats
    if "A" in stats:
        sp = stats.get("param_scale")
        # back to the objective's (unit-dispersion) sum scale
        A = stats["A"] * (res.scale if sp is None else np.sqrt(np.outer(sp, sp)))
        ev = np.linalg.eigvalsh(0.5 * (A + A.T))
        min_eig = float(ev[0])
        cond = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf
    else:
        min_eig, cond = np.nan, np.nan
    dev, pear = residuals(res)
    est = res.model
    calib, hl = (None, None)
    if res.likelihood.family.name in ("bernoulli", "categorical"):
        calib, hl = calibration_table(res)
    return Diagnostics(gnorm, stationary, min_eig, cond, res.converged,
                       int(getattr(est, "n_iter_", 0)), dev, pear, calib, hl)
