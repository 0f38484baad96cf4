"""The results object: statsmodels-style params, standard errors, tests and criteria."""

from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import diagnostics as _diagnostics
from . import hypotheses as _hypotheses
from . import predictions as _predictions
from .effects import delta_cov, effect_params
from .envelope import assess, regime_of
from .statistics import llf_at
from .summary import Summary


class InferenceResults:
    """Statistical results of a fitted net (float64), in statsmodels' vocabulary.

    Made by :func:`neurostat.inference.inference` / ``est.inference()``. ``params`` are the GLM
    coefficients for a network without hidden layer, else covariate effects (average partial
    derivatives of the linear predictor, see :mod:`neurostat.inference.effects`); ``bse``,
    ``tvalues``, ``pvalues`` and ``conf_int`` derive lazily from ``cov_params()``.

    Parameters
    ----------
    model : neurostat.inference.model.StatisticalModel
    statistics : neurostat.inference.statistics.FitStatistics
    estimator : fitted estimator
        The estimator the model came from (refits for the bootstrap use it).
    cov_type : str
    alpha : float, default=0.05
        Default level of intervals.
    separated : bool, default=False

    Attributes
    ----------
    model : StatisticalModel
        The statistical model (as statsmodels' ``results.model``).
    estimator : estimator
        The fitted estimator.
    statistics : FitStatistics
        Curvature, effective df, dispersion and covariance the results derive from.
    nobs : float
        Rows, or with frequency weights their sum.
    scale : float or ndarray
        Dispersion: ``RSS / df_resid`` for gaussian, 1 otherwise. A gaussian model with several
        outputs and no hidden layer is k separate regressions: one dispersion per output,
        ``RSS_j / (nobs - edf / k)``, and t tests on that df (per-column OLS). With hidden
        layers the outputs share parameters and one pooled dispersion is used. A net with
        cross-fitted effects and no residual df (``edf >= nobs``) gets the dispersion of the
        held-out residuals instead (``statistics.scale_df`` is then ``nobs``, the df of its
        prediction intervals' t quantiles).
    edf : float
        Effective number of parameters (``trace(F A^-1)`` for a penalized fit).
    cov_type : str
    theta, cov_theta : ndarray
        The network's flat parameter vector and its covariance (NaN rows for weights an L1
        penalty set to zero).
    use_t : bool
        t (not normal) reference distributions: a dispersion was estimated, nonrobust.
    is_glm : bool
        No hidden layer: ``params`` are the coefficients.
    penalized : bool
    separated : bool
        Perfect separation was detected: coefficients diverge, standard errors are meaningless.
    """

    def __init__(self, model, statistics, *, estimator=None, cov_type="nonrobust", alpha=0.05,
                 separated=False):
        lik = model.likelihood
        self.model = model
        self.estimator = estimator
        self.statistics = statistics
        self.cov_type = cov_type
        self.alpha = alpha
        self.separated = separated
        self.nobs = lik.nobs
        scale = np.asarray(statistics.scale, dtype=np.float64)
        self.scale = float(scale) if scale.ndim == 0 else scale
        # t reference distribution: per-regression residual df when the outputs are separate
        self._t_df = None if scale.ndim == 0 else lik.nobs - statistics.edf / scale.size
        self.edf = float(statistics.edf)
        self.theta = lik.theta.numpy().copy()
        self.cov_theta = statistics.cov_theta
        self.k_constant = model.k_constant
        # t references for a dispersion estimated with a model's residual df (the family
        # says, as statsmodels does); the effects of a net are smooth functionals with normal
        # limits
        self.use_t = bool(lik.family.use_t and cov_type == "nonrobust"
                          and statistics.effects is None)
        self.is_glm = model.layout.is_glm
        self.penalized = bool(statistics.penalized)

    @cached_property
    def calibration(self):
        """Where this fit lies in the calibration study's measured envelope
        (:class:`~neurostat.inference.envelope.Assessment`; its ``note()`` is the summary's
        line), or None for a GLM (exact inference) or without a shipped envelope."""
        regime = regime_of(self)
        return None if regime is None else assess(regime)

    @property
    def likelihood(self):
        """The model's :class:`~neurostat.inference.likelihood.Likelihood`."""
        return self.model.likelihood

    # ------------------------------------------------------------------ parameters
    @cached_property
    def _effects(self):
        debiased = self.statistics.effects
        if debiased is not None:
            params, cov = self._with_ancillary(debiased.params, debiased.cov)
            return params, None, cov
        values, D = effect_params(self.model)
        cov = self.statistics.cov_params
        if cov is None:
            cov = delta_cov(D, self.cov_theta)
        return values, D, cov

    def _with_ancillary(self, params, cov):
        """Debiased effects followed by the family's ancillary parameters (NB's alpha) with
        their model-based variance (delta method on the parameter covariance; NaN where only
        the output layer's covariance is formed). Their covariance with the effects is taken
        as zero: the cross-fitted influence functions are not those of the ancillary fit."""
        anc = self.model.layout.ancillary
        if not anc:
            return params, cov
        idx = np.array([i for _, i in anc])
        v, dv = self.model.family.ancillary_values(self.likelihood.theta.numpy()[idx])
        ct = self.cov_theta
        va = (np.full((idx.size, idx.size), np.nan) if ct is None
              else dv[:, None] * ct[np.ix_(idx, idx)] * dv[None, :])
        k = params.size
        full = np.zeros((k + idx.size, k + idx.size))
        full[:k, :k], full[k:, k:] = cov, va
        return np.concatenate([params, v]), full

    @cached_property
    def _index(self):
        terms = self.model.layout.term_names
        outputs = self.model.outputs
        extra = [name for name, _ in self.model.layout.ancillary or ()]
        if outputs is None:
            return pd.Index(terms + extra)
        index = pd.MultiIndex.from_product([list(outputs), terms],
                                           names=[self.model.output_level, "term"])
        return index.append(pd.MultiIndex.from_tuples([(n, n) for n in extra])) if extra \
            else index

    @cached_property
    def params(self):
        """Coefficients (GLM) or average-derivative effects, indexed by term."""
        return pd.Series(self._effects[0], index=self._index, name="coef")

    def cov_params(self):
        """Covariance of ``params`` (DataFrame)."""
        return pd.DataFrame(self._effects[2], index=self._index, columns=self._index)

    @cached_property
    def bse(self):
        """Standard errors of ``params``."""
        v = np.diag(self._effects[2]).copy()
        v[v < 0] = np.nan
        return pd.Series(np.sqrt(v), index=self._index, name="std err")

    @cached_property
    def tvalues(self):
        """``params / bse``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.Series(self.params.values / self.bse.values, index=self._index, name="z")

    @cached_property
    def pvalues(self):
        """Two-sided p-values of ``tvalues`` (t on ``df_resid`` when ``use_t``, else normal)."""
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
        """Fitted means (response scale); a lazy dask array for data held in chunks."""
        mu = self.likelihood.mean(self.model.eta())
        return mu if hasattr(mu, "dask") else mu.numpy()

    @cached_property
    def llf(self):
        """Log-likelihood of the fit (gaussian: at the maximum-likelihood scale ``RSS / n``)."""
        return llf_at(self.likelihood, self.model.eta(), self.scale)

    @cached_property
    def llnull(self):
        """Log-likelihood of the null model (intercept only; for Cox, ``eta = 0``)."""
        lik = self.likelihood
        return llf_at(lik, lik.null_eta(), self.scale)

    @property
    def df_model(self):
        """Effective degrees of freedom minus the intercepts: ``edf - k_constant``."""
        return self.edf - self.k_constant

    @property
    def df_resid(self):
        """``nobs - edf``; a family's ancillary parameters (the negative binomial's alpha)
        are not counted, as statsmodels does not."""
        return self.nobs - self.edf + len(self.model.layout.ancillary or ())

    @property
    def _df_t(self):
        return self.df_resid if self._t_df is None else self._t_df

    @property
    def llr(self):
        """Likelihood-ratio statistic against the null model: ``2 (llf - llnull)``."""
        return 2 * (self.llf - self.llnull)

    @property
    def llr_pvalue(self):
        """Chi-square p-value of :attr:`llr` on ``df_model`` degrees of freedom."""
        return float(sps.chi2.sf(self.llr, self.df_model))

    @property
    def prsquared(self):
        """McFadden's pseudo R-squared ``1 - llf / llnull``."""
        return 1 - self.llf / self.llnull

    @property
    def aic(self):
        """``-2 llf + 2 edf`` (effective df for a penalized fit)."""
        return -2 * self.llf + 2 * (self.df_model + self.k_constant)

    @property
    def bic(self):
        """``-2 llf + log(nobs) edf``."""
        return -2 * self.llf + np.log(self.nobs) * (self.df_model + self.k_constant)

    @property
    def converged(self):
        """Whether the fit converged."""
        return bool(self.model.converged)

    # ------------------------------------------------------------------ reports and tests
    def summary(self, alpha=None):
        """statsmodels-style summary: header, effects table, per-input Wald tests."""
        return Summary(self, self.alpha if alpha is None else alpha)

    def wald_test_terms(self):
        """Joint Wald chi-square test, per input, that all weights leaving it are zero."""
        return _hypotheses.wald_test_terms(self)

    def compare_lr_test(self, restricted, method="chi2", *, n_bootstrap=99, n_jobs=None,
                        random_state=None):
        """Likelihood-ratio test of ``restricted`` (nested) against this model.

        See :func:`neurostat.inference.hypotheses.compare_lr_test` for when each ``method`` is
        valid.
        """
        return _hypotheses.compare_lr_test(self, restricted, method=method,
                                           n_bootstrap=n_bootstrap, n_jobs=n_jobs,
                                           random_state=random_state)

    def get_prediction(self, X=None, offset=None):
        """Predicted means with delta-method standard errors (``.summary_frame(alpha)``; for
        a gaussian response ``summary_frame(alpha, obs=True)`` adds prediction intervals) at
        X (default: the data) with its ``offset``."""
        return _predictions.get_prediction(self, X, offset)

    def get_margeff(self, scale="response"):
        """Average marginal effects on the response (or link) scale, as statsmodels'
        ``get_margeff(at="overall")``."""
        return _predictions.get_margeff(self, scale)

    def diagnostics(self):
        """Gradient norm, Hessian conditioning, convergence, residuals, calibration."""
        return _diagnostics.diagnostics(self)

    def __repr__(self):
        return (f"<InferenceResults {self.model.name} family={self.likelihood.family.name} "
                f"cov_type={self.cov_type} nobs={self.nobs}>")
