"""The results object: statsmodels-style params, standard errors, tests and criteria."""

from functools import cached_property

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

from .core import llf_at, term_names
from .effects import delta_cov, effect_params, is_glm


class InferenceResults:
    """Statistical results of a fitted net (float64), in statsmodels' vocabulary.

    Made by :func:`neurostat.inference.inference` / ``est.inference()``. ``params`` are the GLM
    coefficients for a network without hidden layer, else covariate effects (average partial
    derivatives of the linear predictor, see :mod:`neurostat.inference.effects`); ``bse``,
    ``tvalues``, ``pvalues`` and ``conf_int`` derive lazily from ``cov_params()``.

    Attributes
    ----------
    params : Series
        Indexed by term (``"intercept"``, then feature names), or by (class, term) /
        (output, term) for several linear predictors.
    nobs : float
        Rows, or with frequency weights their sum.
    llf, llnull : float
        Log-likelihood of the fit and of the intercept-only model (for the gaussian family at
        the maximum-likelihood scale ``RSS / n``, as statsmodels).
    df_model : float
        Effective degrees of freedom minus the intercepts: ``trace(I A^-1) - k`` (the number of
        slopes for an unpenalized GLM; the trace of the hat matrix minus one for ridge).
    df_resid : float
        ``nobs - trace(I A^-1)``.
    scale : float or ndarray
        Dispersion: ``RSS / df_resid`` for gaussian, 1 otherwise. A gaussian model with several
        outputs and no hidden layer is k separate regressions: one dispersion per output,
        ``RSS_j / (nobs - edf / k)``, and t tests on that df (per-column OLS). With hidden
        layers the outputs share parameters and one pooled dispersion is used.
    cov_type : str
    theta, cov_theta : ndarray
        The network's flat parameter vector and its covariance (NaN rows for weights an L1
        penalty set to zero).
    separated : bool
        Perfect separation was detected: coefficients diverge, standard errors are meaningless.
    """

    def __init__(self, est, lik, stats, *, cov_type, alpha=0.05, separated=False):
        self.model = est
        self.likelihood = lik
        self.cov_type = cov_type
        self.alpha = alpha
        self.separated = separated
        self._stats = stats
        self.nobs = lik.nobs
        scale = np.asarray(stats["scale"], dtype=np.float64)
        self.scale = float(scale) if scale.ndim == 0 else scale
        # t reference distribution: per-regression residual df when the outputs are separate
        self._t_df = None if scale.ndim == 0 else lik.nobs - float(stats["edf"]) / scale.size
        self.edf = float(stats["edf"])
        self.theta = lik.theta.numpy().copy()
        self.cov_theta = stats["cov_theta"]
        self.k_constant = lik.module.output_layer.out_features
        self.use_t = bool(lik.family.has_scale and cov_type == "nonrobust")
        self.is_glm = is_glm(lik)
        self.penalized = bool(stats.get("penalized", False))

    # ------------------------------------------------------------------ parameters
    @cached_property
    def _effects(self):
        X = self.likelihood.X.numpy()
        values, D = effect_params(self.likelihood, X)
        cov = self._stats.get("cov_params")
        if cov is None:
            cov = delta_cov(D, self.cov_theta)
        return values, D, cov

    @cached_property
    def _index(self):
        terms = term_names(self.model, self.likelihood.X.shape[1])
        k = self.k_constant
        if k == 1:
            return pd.Index(terms)
        classes = getattr(self.model, "classes_", None)
        outer = list(classes[1:]) if classes is not None and len(classes) == k + 1 else \
            list(range(k))
        return pd.MultiIndex.from_product([outer, terms], names=["class", "term"])

    @cached_property
    def params(self):
        return pd.Series(self._effects[0], index=self._index, name="coef")

    def cov_params(self):
        """Covariance of ``params`` (DataFrame)."""
        return pd.DataFrame(self._effects[2], index=self._index, columns=self._index)

    @cached_property
    def bse(self):
        v = np.diag(self._effects[2]).copy()
        v[v < 0] = np.nan
        return pd.Series(np.sqrt(v), index=self._index, name="std err")

    @cached_property
    def tvalues(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.Series(self.params.values / self.bse.values, index=self._index, name="z")

    @cached_property
    def pvalues(self):
        t = np.abs(self.tvalues.values)
        p = 2 * (sps.t.sf(t, self._df_t) if self.use_t else sps.norm.sf(t))
        return pd.Series(p, index=self._index, name="P>|z|")

    def _critical(self, alpha):
        if self.use_t:
            return sps.t.isf(alpha / 2, self._df_t)
        return sps.norm.isf(alpha / 2)

    def conf_int(self, alpha=None):
        """Confidence intervals (DataFrame with columns 0 and 1, as statsmodels)."""
        alpha = self.alpha if alpha is None else alpha
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
        q = self._critical(alpha)
        lo = self.params.values - q * self.bse.values
        hi = self.params.values + q * self.bse.values
        return pd.DataFrame({0: lo, 1: hi}, index=self._index)

    # ------------------------------------------------------------------ likelihood
    @cached_property
    def fittedvalues(self):
        """Fitted means (response scale)."""
        lik = self.likelihood
        with torch.no_grad():
            return lik.mean(lik.eta(lik.theta)).numpy()

    @cached_property
    def llf(self):
        """Log-likelihood of the fit (gaussian: at the maximum-likelihood scale ``RSS / n``)."""
        lik = self.likelihood
        with torch.no_grad():
            return llf_at(lik, lik.eta(lik.theta), self.scale)

    @cached_property
    def llnull(self):
        """Log-likelihood of the null model (intercept only; for Cox, ``eta = 0``)."""
        lik = self.likelihood
        return llf_at(lik, lik.null_eta(), self.scale)

    @property
    def df_model(self):
        return self.edf - self.k_constant

    @property
    def df_resid(self):
        return self.nobs - self.edf

    @property
    def _df_t(self):
        return self.df_resid if self._t_df is None else self._t_df

    @property
    def llr(self):
        """Likelihood-ratio statistic against the intercept-only model."""
        return 2 * (self.llf - self.llnull)

    @property
    def llr_pvalue(self):
        return float(sps.chi2.sf(self.llr, self.df_model))

    @property
    def prsquared(self):
        """McFadden's pseudo R-squared ``1 - llf / llnull``."""
        return 1 - self.llf / self.llnull

    @property
    def aic(self):
        return -2 * self.llf + 2 * (self.df_model + self.k_constant)

    @property
    def bic(self):
        return -2 * self.llf + np.log(self.nobs) * (self.df_model + self.k_constant)

    @property
    def converged(self):
        return bool(getattr(self.model, "converged_", True))

    # ------------------------------------------------------------------ reports and tests
    def summary(self, alpha=None):
        """statsmodels-style summary: header, effects table, per-input Wald tests."""
        from .summary import Summary
        return Summary(self, self.alpha if alpha is None else alpha)

    def wald_test_terms(self):
        """Joint Wald chi-square test, per input, that all weights leaving it are zero."""
        from .hypotheses import wald_test_terms
        return wald_test_terms(self)

    def compare_lr_test(self, restricted, method="chi2", *, n_bootstrap=99, n_jobs=None,
                        random_state=None):
        """Likelihood-ratio test of ``restricted`` (nested) against this model.

        See :func:`neurostat.inference.hypotheses.compare_lr_test` for when each ``method`` is
        valid.
        """
        from .hypotheses import compare_lr_test
        return compare_lr_test(self, restricted, method=method, n_bootstrap=n_bootstrap,
                               n_jobs=n_jobs, random_state=random_state)

    def get_prediction(self, X=None):
        """Predicted means with delta-method standard errors (``.summary_frame(alpha)``)."""
        from .predictions import get_prediction
        return get_prediction(self, X)

    def get_margeff(self, scale="response"):
        """Average marginal effects on the response (or link) scale, as statsmodels'
        ``get_margeff(at="overall")``."""
        from .predictions import get_margeff
        return get_margeff(self, scale)

    def diagnostics(self):
        """Gradient norm, Hessian conditioning, convergence, residuals, calibration."""
        from .diagnostics import diagnostics
        return diagnostics(self)

    def __repr__(self):
        return (f"<InferenceResults {type(self.model).__name__} family="
                f"{self.likelihood.family.name} cov_type={self.cov_type} nobs={self.nobs}>")
