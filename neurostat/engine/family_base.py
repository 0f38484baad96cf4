"""The family interface (:class:`Family`) and the small array helpers the family modules
share; the families themselves are in :mod:`neurostat.engine.families` (module docstring: the
conventions)."""

import numpy as np
import torch


def _as_2d(a):
    return a[:, None] if a.ndim == 1 else a


def _squeeze(eta):
    return eta[:, 0] if eta.ndim == 2 and eta.shape[1] == 1 else eta


def _weighted(total_per_row, w):
    return total_per_row.sum() if w is None else (w * total_per_row).sum()


def _wmean(y, w):
    return np.average(y, axis=0, weights=w)


def _np(a):
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


def _syrk(a):
    """``a' a``: numpy recognises the transposed self-product and calls BLAS syrk (half the
    flops of a general product; torch's matmul does not)."""
    return a.T @ a


class Family:
    """The interface every family provides (see the module docstring).

    Class attributes
    ----------------
    name : str
        Shown in summaries; also the ``family=`` string of the estimators.
    link : str
        Name of the link, shown in summaries.
    has_scale : bool
        A dispersion is estimated after the fit (gaussian): standard errors scale with it and
        t rather than normal reference distributions apply.
    additive : bool
        The log-likelihood is a sum of independent per-observation terms.
    newton : bool
        With no hidden layer the objective is convex in the parameters and the family gives
        its exact information: L-BFGS may stop early and hand over to Newton steps.
    location_scale : bool
        Fitting ``(y - c) / s`` with the output layer rescaled back is an exact
        reparametrization of the objective (gaussian with identity link): the stochastic
        solvers standardize such a target internally.
    nonnegative_target : bool
        The target must be >= 0 (counts).
    canonical : bool
        The link is canonical (observed and expected information agree; ``A''(eta) = V(mu)``).
    classification : bool
        The outcomes are classes: predicted probabilities are calibrated against them.
    frequency_weights : bool
        ``sample_weight`` counts repeated rows (``nobs = sum w``, robust meat
        ``sum_i w_i s_i s_i'``); False where it is part of the response (binomial trials,
        statsmodels' ``var_weights``: ``nobs`` is the number of rows).
    expected_information : bool
        :meth:`AdditiveFamily.information_eta` is the expected (Fisher) information and
        differs from the observed one (a non-canonical link): inference then reports the
        inverse Fisher information as the nonrobust covariance (statsmodels' IRLS convention)
        and uses the observed information in the robust sandwich.
    use_t : bool
        t rather than normal reference distributions for nonrobust inference (the default:
        ``has_scale``).
    ancillary : tuple of str
        Names of parameters of the distribution estimated beside the network, each an
        intercept-only linear predictor appended after the network's outputs (negative
        binomial: ``("alpha",)``); reported on the scale of :meth:`ancillary_values`.
    predictors : tuple of str or None
        Names of the linear predictors when a response has several (``("mean", "log_sd")``).
    """

    name = None
    link = None
    has_scale = False
    additive = True
    newton = False
    location_scale = False
    nonnegative_target = False
    canonical = False
    classification = False
    frequency_weights = True
    expected_information = False
    ancillary = ()
    predictors = None

    @property
    def use_t(self):
        """Whether nonrobust inference uses t (not normal) reference distributions.

        Returns
        -------
        bool
            ``has_scale`` by default: a family whose dispersion is estimated after the fit
            (gaussian) gets t tests and intervals on the residual df, as statsmodels' OLS.
            A family may override it (gamma and tweedie: normal, statsmodels' GLM default).
        """
        return self.has_scale

    # ----------------------------------------------------------------- targets and start
    def n_outputs(self, y):
        """Number of linear predictors the network must output for encoded target ``y``."""
        return 1 if y.ndim == 1 else y.shape[1]

    def validate(self, y):
        """Raise ValueError when ``y`` (encoded, numeric, finite) is outside the support."""

    def check_sample_weight(self, sample_weight):
        """Raise ValueError when the (validated) weights do not suit the family."""

    def offset_eta(self, offset, n_eta):
        """The offset (tensor of shape (n,)) as the (n, n_eta) tensor added to eta: to every
        output of the network, not to the ancillary predictors."""
        out = torch.zeros(offset.shape[0], n_eta, dtype=offset.dtype, device=offset.device)
        out[:, :n_eta - len(self.ancillary)] = offset[:, None]
        return out

    def ancillary_values(self, raw):
        """``(values, d values / d raw)`` of the ancillary parameters from their linear
        predictors ``raw`` (numpy); the identity by default."""
        return raw, np.ones_like(raw)

    def initial_intercept(self, y, sample_weight):
        """Output bias of the null (intercept-only) model: numpy, one value per output."""
        raise NotImplementedError

    def null_eta(self, y, sample_weight, n_outputs):
        """Linear predictor of the null model at every row, float64 tensor (n, n_outputs)."""
        b0 = torch.as_tensor(self.initial_intercept(np.asarray(y), sample_weight),
                             dtype=torch.float64)
        return b0.expand(len(y), n_outputs).clone()

    # ----------------------------------------------------------------- likelihood
    def loss(self, eta, y, sample_weight=None):
        """The training loss: a weighted mean over rows (scalar tensor, differentiable)."""
        raise NotImplementedError

    def mean(self, eta):
        """Inverse link: the mean of y (class probabilities for classifiers)."""
        raise NotImplementedError

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        """Total weighted log-likelihood with all constants (scalar tensor)."""
        raise NotImplementedError

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        """``d loglik / d eta``, shape (n, k) (weights included)."""
        eta = eta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loglik(eta, y, sample_weight, scale), eta)
        return g

    def information(self, G, eta, y, sample_weight=None, scale=1.0):
        """Gauss-Newton (Fisher) information ``G' W G`` of the parameters, (p, p).

        ``G`` is the Jacobian ``d eta / d theta`` of shape (n, k, p) at the rows of ``eta``
        and ``W = -d^2 loglik / d eta^2``; with no hidden layer this is the observed
        information of the parameters.
        """
        raise NotImplementedError

    def score_obs(self, G, eta, y, sample_weight=None, scale=1.0):
        """Per-observation contributions to the score ``d loglik / d theta``, (n, p): the
        rows of the robust sandwich's meat. They sum to the score."""
        raise NotImplementedError

    # ----------------------------------------------------------------- residuals
    def residuals(self, eta, y, sample_weight=None):
        """``(deviance, pearson)`` residuals, numpy arrays of shape (n,) (or (n, k)).

        As statsmodels' ``resid_deviance`` / ``resid_pearson``: frequency weights do not scale
        them (a row's copies share its residual); ``pearson_chi2`` and the deviance weight
        each row's square by its weight.
        """
        raise NotImplementedError

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        """``sum_i w_i (y_i - mu_i)^2 / V(mu_i)``; with ``by_output`` one per output column."""
        raise NotImplementedError

    def llf_scale(self, pearson_chi2, nobs, n_outputs, scale):
        """The dispersion at which the reported log-likelihood is evaluated (1 without one)."""
        return 1.0

    # ----------------------------------------------------------------- simulation
    def simulate(self, mu, scale, rng):
        """A response drawn from the fitted means ``mu`` (numpy), encoded as ``y``."""
        raise ValueError(
            f"The {self.name} family has no generative model to simulate from, so the "
            "parametric bootstrap does not apply; use compare_lr_test(method='chi2') or "
            "cov_type='bootstrap' (case resampling)."
        )

    def sample(self, eta, scale, rng, sample_weight=None):
        """A response drawn at linear predictor ``eta`` (the parametric bootstrap):
        :meth:`simulate` at the means by default; a family whose draw needs more (binomial
        trials in ``sample_weight``, ancillary predictors in ``eta``) overrides it."""
        return self.simulate(_np(self.mean(eta)), scale, rng)

    def _params(self):
        # the family's parameters (ties, n_classes, ...); underscored attributes are caches
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __eq__(self, other):
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self._params().items()))))

    def __getstate__(self):
        return self._params()  # caches are not pickled

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"
