"""Inference for the neural Cox model: the partial likelihood as a :class:`Likelihood`.

:class:`CoxLikelihood` plugs the Cox partial likelihood into :mod:`neurostat.inference` (its
extension point for non-additive likelihoods) with closed forms that scale to large n:

* the information ``G' W G`` (``G`` the Jacobian of eta, ``W = -d^2 l / d eta^2``) from
  cumulative sums over the sorted risk sets, ``O(n p^2)`` - never the dense ``n x n`` ``W``;
* the per-observation score residuals of Lin & Wei (1989) for the robust sandwich
  (``cov_type="HC0"``, alias ``"robust"``), with Efron's ties and weights as R's ``coxph``
  (``robust=TRUE``) computes them: they sum to the score.

:class:`CoxInferenceResults` reports log hazard ratios (no intercept: it cancels), hazard
ratios with intervals, and counts every estimated coefficient in the degrees of freedom.
"""

from functools import cached_property

import numpy as np
import pandas as pd
import torch

from .family import RiskSets, partial_loglik
from ..inference import InferenceResults, Summary
from ..inference.core import term_names
from ..inference.effects import average_derivatives, delta_cov
from ..inference.likelihood import Likelihood


class CoxLikelihood(Likelihood):
    """Weighted Cox log partial likelihood of a fitted net (float64).

    ``y`` is (n, 2): time, event. ``ties`` is "efron" or "breslow".
    """

    additive = False

    def __init__(self, module, family, X, y, sample_weight=None):
        super().__init__(module, family, X, y, sample_weight)
        self.ties = family.ties
        self.risk_sets = RiskSets(self.y[:, 0], self.y[:, 1], self.w)

    def loglik(self, eta, rows=slice(None)):
        if rows != slice(None):
            raise ValueError("The Cox partial likelihood is only defined over all rows.")
        return partial_loglik(eta, self.y[:, 0], self.y[:, 1], self.w, self.ties,
                              self.risk_sets)

    def null_loglik(self):
        """Log partial likelihood at ``eta = 0`` (no covariate effect)."""
        return float(self.loglik(torch.zeros(self.n_rows, 1, dtype=torch.float64)))

    def mean(self, eta):
        """Relative hazard ``exp(eta)``."""
        return torch.exp(eta[:, 0] if eta.ndim == 2 else eta)

    # ------------------------------------------------------------------ closed forms
    def _design(self, theta):
        """Jacobian of eta (n, p): the inputs themselves for a network without hidden layer."""
        if getattr(self.module, "n_hidden_layers", None) == 0 and self.names == [
                "layers.0.weight"]:
            return self.X
        return self.jacobian(theta)[:, 0, :]

    def _pieces(self, theta):
        """Sorted-order quantities shared by the information and the score residuals."""
        rs = self.risk_sets
        with torch.no_grad():
            e = rs.sort(self.eta(theta))
        G = self._design(theta)
        if rs.keep is not None:
            G = G[rs.keep]
        G = G[rs.order]
        w = torch.ones_like(e) if rs.w is None else rs.w
        r = w * torch.exp(e - e.max())  # a common shift cancels in every ratio below
        first = rs.first
        S = torch.flip(torch.cumsum(torch.flip(r, (0,)), 0), (0,))[first]
        Q = torch.flip(torch.cumsum(torch.flip(r[:, None] * G, (0,)), 0), (0,))[first]
        c, a = rs.efron_coefficients(self.ties)
        d = rs.d
        n = e.shape[0]
        SD = torch.zeros(n, dtype=e.dtype).index_add_(0, first, d * r)[first]
        QD = torch.zeros_like(G).index_add_(0, first, (d * r)[:, None] * G)[first]
        T = torch.where(d > 0, S - a * SD, torch.ones_like(S))  # one denominator per event
        m = (Q - a[:, None] * QD) / T[:, None]  # risk-set mean of G for each event's term
        return rs, G, w, r, d, c, a, T, m

    def curvatures(self, theta=None):
        theta = self.theta if theta is None else theta
        rs, G, w, r, d, c, a, T, m = self._pieces(theta)
        n = r.shape[0]
        first = rs.first
        h = c / T  # each event term's hazard increment
        Hg = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h)
        Hg_own = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h * (1 - a))
        Lam = torch.cumsum(Hg, 0)  # sum over event times <= t_i (group starts come first)
        kappa = r * (Lam - d * (Hg - Hg_own)[first])
        F = G.T @ (kappa[:, None] * G) - (c[:, None] * m).T @ m
        F = 0.5 * (F + F.T)
        if getattr(self.module, "n_hidden_layers", None) == 0:
            return F, F
        with torch.no_grad():
            eta = self.eta(theta)
        R = self.curvature(theta, self.score_eta(eta), slice(None))
        return F - 0.5 * (R + R.T), F

    def score_obs(self, theta=None):
        """Per-observation score residuals ``w_j s_j`` (Lin & Wei; R's ``residuals(fit,
        "score")`` times the weights), shape (n, p); they sum to the score."""
        theta = self.theta if theta is None else theta
        rs, G, w, r, d, c, a, T, m = self._pieces(theta)
        n, p = G.shape
        first = rs.first
        h = c / T
        Hg = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h)
        Hg_own = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h * (1 - a))
        kappa = r * (torch.cumsum(Hg, 0) - d * (Hg - Hg_own)[first])
        Bg = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, h[:, None] * m)
        Bg_tie = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, (h * a)[:, None] * m)
        B = torch.cumsum(Bg, 0) - d[:, None] * Bg_tie[first]
        # an event is centred by the average of its time's Efron risk-set means
        dg = rs.n_tied.clamp(min=1)
        mbar = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, d[:, None] * m)[first]
        mbar = mbar / dg[:, None]
        s = (w * d)[:, None] * (G - mbar) - kappa[:, None] * G + r[:, None] * B
        out = torch.zeros(self.n_rows, p, dtype=torch.float64)
        rows = torch.arange(self.n_rows)
        if rs.keep is not None:
            rows = rows[rs.keep]
        out[rows[rs.order]] = s
        return out


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
        from .metrics import breslow_baseline, step_values

        lik = self.likelihood
        y = lik.y.numpy()
        with torch.no_grad():
            eta = lik.eta(lik.theta)[:, 0].numpy()
        w = None if lik.w is None else lik.w.numpy()
        times, h0 = breslow_baseline(y[:, 0], y[:, 1], eta, w)
        return y[:, 1] - step_values(times, h0, y[:, 0]) * np.exp(eta)

    @cached_property
    def resid_deviance(self):
        """Deviance residuals ``sign(M) sqrt(-2 (M + d log(d - M)))`` of the martingale M."""
        m = self.resid_martingale
        d = self.likelihood.y.numpy()[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.where(d > 0, np.log(np.where(d > 0, d - m, 1.0)), 0.0)
        return np.sign(m) * np.sqrt(np.maximum(-2 * (m + d * inner), 0.0))

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
        self._left.insert(2, ("Ties:", res.likelihood.ties))
        self.header = pd.DataFrame(self._left + self._right,
                                   columns=["item", "value"]).set_index("item")
        self.tables[0] = self.header
        self.tables[1] = self.params_table
        self.notes.insert(0, "Log partial likelihood; no intercept (it cancels). coef is the "
                             "log hazard ratio per unit of the input.")
