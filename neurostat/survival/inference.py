"""Inference results of the neural Cox model.

The partial likelihood's information and Lin & Wei's score residuals are the Cox family's
(:class:`neurostat.survival.family.Cox`); :class:`CoxInferenceResults` reports log hazard ratios (no intercept: it cancels), hazard
ratios with intervals, and counts every estimated coefficient in the degrees of freedom.
"""

from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..inference import InferenceResults, Summary
from ..inference.core import term_names
from ..inference.effects import average_derivatives, delta_cov


class CoxInferenceResults(InferenceResults):
    """Results of a neural Cox model: log hazard ratios (or effects), hazard ratios.

    As :class:`neurostat.inference.InferenceResults` with these differences: there is no
    intercept term; ``df_model`` counts every estimated coefficient (``k_constant = 0``), so
    ``aic = -2 llf + 2 df_model`` as statsmodels' ``PHReg`` and R; ``llnull`` is the log partial
    likelihood at ``eta = 0``; ``fittedvalues`` and ``get_prediction`` give relative hazards
    ``exp(eta)``.
    """

    def __init__(self, est, lik, stats, *, cov_type, alpha=0.05, separated=False):
        super().__init__(est, lik, stats, cov_type=cov_type, alpha=alpha, separated=separated)
        self.k_constant = 0
        self.is_glm = getattr(lik.module, "n_hidden_layers", None) == 0 and lik.names == [
            "layers.0.weight"]

    @classmethod
    def from_results(cls, res):
        return cls(res.model, res.likelihood, res._stats, cov_type=res.cov_type,
                   alpha=res.alpha, separated=res.separated)

    @cached_property
    def _effects(self):
        lik = self.likelihood
        d = lik.X.shape[1]
        if self.is_glm:
            values = lik.theta.numpy().copy()
            D = np.eye(d)
        else:
            values, D = average_derivatives(lik, lik.theta, lik.X.numpy(), intercept=False)
        boot = self._stats.get("bootstrap_params")
        if boot is not None and boot.ndim == 2 and boot.shape[1] in (d, d + 1):
            cov = np.atleast_2d(np.cov(boot[:, -d:], rowvar=False))
        else:
            cov = delta_cov(D, self.cov_theta)
        return values, D, cov

    @cached_property
    def _index(self):
        return pd.Index(term_names(self.model, self.likelihood.X.shape[1])[1:])

    def hazard_ratios(self, alpha=None):
        """``exp(coef)`` with its confidence interval (DataFrame: "exp(coef)", "lower", "upper").

        For a net, ``exp`` of the average effect on the log hazard.
        """
        ci = self.conf_int(alpha)
        return pd.DataFrame({"exp(coef)": np.exp(self.params.values),
                             "lower": np.exp(ci[0].values), "upper": np.exp(ci[1].values)},
                            index=self._index)

    def summary(self, alpha=None):
        return CoxSummary(self, self.alpha if alpha is None else alpha)

    def get_margeff(self, scale="response"):
        """Average marginal effects on the relative hazard ``exp(eta)`` ("response") or on the
        log hazard ("link"), with delta-method standard errors."""
        from ..inference.predictions import MarginalEffects

        if scale not in ("response", "link"):
            raise ValueError(f"scale must be 'response' or 'link'; got {scale!r}.")
        lik = self.likelihood
        transform = (lambda e: torch.exp(e)) if scale == "response" else None
        f, D = average_derivatives(lik, lik.theta, lik.X.numpy(), transform, intercept=False)
        return MarginalEffects(f, delta_cov(D, self.cov_theta), self._index, scale)

    @cached_property
    def resid_martingale(self):
        """Martingale residuals ``d_i - H0(t_i) exp(eta_i)`` (Breslow's H0, as R's
        ``residuals(fit, "martingale")`` after a Breslow fit)."""
        lik = self.likelihood
        with torch.no_grad():
            eta = lik.eta(lik.theta)
        return lik.family.martingale_residuals(eta, lik.y, lik.w)

    @cached_property
    def resid_deviance(self):
        """Deviance residuals ``sign(M) sqrt(-2 (M + d log(d - M)))`` of the martingale M."""
        lik = self.likelihood
        with torch.no_grad():
            eta = lik.eta(lik.theta)
        return lik.family.residuals(eta, lik.y, lik.w)[0]

    def diagnostics(self):
        """Gradient norm, Hessian conditioning, convergence and the Cox residuals:
        ``resid_deviance``, and the martingale residuals in ``resid_pearson`` (the Cox model has
        no Pearson residual)."""
        import warnings

        from ..inference.covariance import InferenceWarning
        from ..inference.diagnostics import GRADIENT_TOL, Diagnostics, objective_gradient

        g = objective_gradient(self)
        gnorm = float(np.max(np.abs(g))) if g.size else 0.0
        if gnorm > GRADIENT_TOL:
            warnings.warn(
                f"The gradient of the objective at the fit has sup-norm {gnorm:.3g} > "
                f"{GRADIENT_TOL:g}: not a stationary point, so the covariance is unreliable. "
                "Refit with solver='lbfgs' and a larger max_iter.", InferenceWarning,
                stacklevel=2)
        A = self._stats.get("A")
        min_eig = cond = np.nan
        if A is not None:
            ev = np.linalg.eigvalsh(0.5 * (A + A.T))
            min_eig = float(ev[0])
            cond = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf
        return Diagnostics(gnorm, gnorm <= GRADIENT_TOL, min_eig, cond, self.converged,
                           int(getattr(self.model, "n_iter_", 0)), self.resid_deviance.copy(),
                           self.resid_martingale.copy())


class CoxSummary(Summary):
    """statsmodels' layout plus ``exp(coef)`` and its interval, as lifelines and R print."""

    def __init__(self, res, alpha=0.05):
        super().__init__(res, alpha)
        hr = res.hazard_ratios(alpha)
        level = f"{100 * (1 - alpha):g}%"
        self.params_table["exp(coef)"] = hr["exp(coef)"]
        self.params_table[f"exp(coef) lower {level}"] = hr["lower"]
        self.params_table[f"exp(coef) upper {level}"] = hr["upper"]
        self._left = [(k, v if k != "Link:" else "log (HR = exp(coef))")
                      for k, v in self._left]
        self._left.insert(2, ("Ties:", res.likelihood.family.ties))
        self.header = pd.DataFrame(self._left + self._right,
                                   columns=["item", "value"]).set_index("item")
        self.tables[0] = self.header
        self.tables[1] = self.params_table
        self.notes.insert(0, "Log partial likelihood; no intercept (it cancels). coef is the "
                             "log hazard ratio per unit of the input.")
