"""NeuralCoxRegressor: the Cox proportional hazards model with a neural network risk score.

The net outputs the log relative hazard ``eta(x)`` (no intercept); the loss is the Cox partial
likelihood (:mod:`neurostat.cox_family`); inference is :mod:`neurostat.cox_inference`; the
survival curves come from Breslow's baseline hazard and ``score`` is Harrell's concordance
(:mod:`neurostat.cox_metrics`).
"""

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from .._compat import StrOptions
from .._utils import feature_names, float64_forward
from ..engine.networks import MLP
from ..estimators._base import _BaseNeural, _stochastic
from .family import TIES, Cox, as_survival_target, partial_loglik
from .metrics import breslow_baseline, concordance_index, step_values

__all__ = ["NeuralCoxRegressor", "concordance_index"]


def _time_ranks(y):
    """(time, event) with times replaced by dense ranks: the partial likelihood only uses their
    order, and ranks stay exact in float32."""
    _, rank = np.unique(y[:, 0], return_inverse=True)
    return np.column_stack([rank.astype(np.float64), y[:, 1]])


class NeuralCoxRegressor(_BaseNeural):
    """Cox proportional hazards regression whose log hazard ratio is a neural network.

    ``h(t | x) = h0(t) exp(eta(x))`` with ``eta`` a multilayer perceptron without output bias,
    fitted by maximizing the Cox partial likelihood. With ``hidden_layer_sizes=()`` it is the
    Cox model of statsmodels' ``PHReg``, R's ``coxph`` and lifelines' ``CoxPHFitter``
    (``solver="lbfgs"`` reproduces their coefficients, standard errors and log partial
    likelihood).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        ``()`` for the linear Cox model.
    activation : str, default="relu"
    ties : {"efron", "breslow"}, default="efron"
        Handling of tied event times (R's default is "efron"; statsmodels' "breslow").
    solver, alpha, l1_ratio, dropout, input_dropout, init, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
    momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
    n_iter_no_change, max_fun, freeze, device, formula :
        As :class:`neurostat.NeuralClassifier` (a formula's right-hand side gives the inputs;
        ``y`` comes from fit, or from plain columns on the left: ``"time + event ~ ..."``).
        Minibatch solvers use each batch's own risk
        sets (DeepSurv, pycox): the batch loss is an estimate of the full one, so use large
        batches (``batch_size`` of several hundred) and "lbfgs" where the data fit in memory.
        With ``early_stopping`` the validation score is the mean log partial likelihood of the
        held-out rows.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Log hazard ratios (only with no hidden layer).
    baseline_times_ : ndarray of shape (n_event_times,)
        Distinct event times of the training data.
    baseline_cumulative_hazard_ : ndarray of shape (n_event_times,)
        Breslow's ``H0`` at ``baseline_times_`` (for ``eta = 0``).
    loss_ : float
        The penalized objective on the full training data at the fitted weights (for minibatch
        solvers too; ``loss_curve_`` holds the per-epoch mean of the minibatch losses).
    family_ : neurostat.cox_family.Cox
    (others as :class:`neurostat.NeuralClassifier`.)

    Notes
    -----
    The objective is

    .. math:: -\\frac{1}{\\sum_i w_i} \\log PL(\\theta) + \\alpha \\left(\\rho \\|W\\|_1
              + \\tfrac{1-\\rho}{2} \\|W\\|_2^2\\right),

    glmnet's Cox objective (also scikit-survival's ``CoxnetSurvivalAnalysis``): ``alpha`` is
    their lambda and ``l1_ratio`` (rho) their alpha. ``PL`` is Breslow's or Efron's partial
    likelihood; with weights, R's ``coxph`` weighted form. Weights are case weights as in R
    (used as given): the log-likelihood and non-robust standard errors are R's, and integer
    weights give those of the repeated rows; robust standard errors follow R's weighted
    dfbeta form (``sum_i w_i^2`` in the meat), which does not depend on the weights' scale.

    The target ``y`` may be a structured array (scikit-survival's ``Surv``), an (n, 2) array or
    DataFrame of (time, event), or 1-D times that are all events (lifelines' convention when
    there is no event column; this also lets scikit-learn's generic checks run). Times must be
    finite and >= 0, events 0 or 1, and at least one event observed.

    References
    ----------
    Cox (1972), Regression models and life-tables. JRSS B 34:187-220.
    Efron (1977), The efficiency of Cox's likelihood function for censored data. JASA 72:557.
    Lin & Wei (1989), The robust inference for the Cox proportional hazards model. JASA 84:1074.
    Katzman et al. (2018), DeepSurv. BMC Med Res Methodol 18:24.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import NeuralCoxRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 2))
    >>> t = rng.exponential(np.exp(-(X @ [1.0, -0.5])))
    >>> c = rng.exponential(2.0, 1000)
    >>> y = np.column_stack([np.minimum(t, c), t <= c])
    >>> cox = NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)
    >>> np.round(cox.coef_, 1).tolist()
    [1.0, -0.5]
    >>> bool(cox.score(X, y) > 0.7)
    True
    >>> cox.predict_survival_function(X[:2], times=[0.5]).round(2).tolist()
    [[0.55], [0.41]]
    """

    _parameter_constraints = {
        **_BaseNeural._parameter_constraints,
        "ties": [StrOptions(set(TIES))],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, ties="efron",
                 solver="adam", alpha=0.0, l1_ratio=0.0, dropout=0.0, input_dropout=0.0,
                 init="glorot_uniform", batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=0, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 freeze=0, device="auto", formula=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, l1_ratio=l1_ratio,
            dropout=dropout, input_dropout=input_dropout, init=init, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, freeze=freeze,
            device=device, formula=formula,
        )
        self.ties = ties

    # ------------------------------------------------------------------ hooks of the base
    def _validate_xy(self, X, y, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        y = as_survival_target(y)
        check_consistent_length(X, y)
        return X, y

    def _encode_target(self, y):
        return _time_ranks(y)

    def _make_family(self, y_enc):
        return Cox(self.ties)

    def _build_module(self, n_features, n_outputs):
        module = MLP(n_features, self._hidden_sizes(), n_outputs, self.activation,
                     self.dropout, self.input_dropout)
        # no intercept: it cancels in the partial likelihood; frozen parameters are excluded
        # from the solvers and from inference
        module.output_layer.bias.requires_grad_(False)
        return module

    def _validation_score(self, module, X, y, w):
        return -self.family_.loss(module(X), y, w)

    def _train(self, X, y_enc, sample_weight, family, penalty, dtype, *args, **kwargs):
        super()._train(X, y_enc, sample_weight, family, penalty, dtype, *args, **kwargs)
        module = self.module_
        with torch.no_grad():
            # L-BFGS moves W m into the first layer's bias to standardize the inputs and back;
            # with no hidden layer that bias is the frozen output bias and keeps a constant
            # (harmless in the partial likelihood, but eta must equal X @ coef_)
            module.output_layer.bias.zero_()
        if self.solver == "lbfgs" and not self._hidden_sizes() and self.alpha == 0:
            with torch.enable_grad():
                self._check_monotone_likelihood(X, y_enc, sample_weight)
        with torch.no_grad():
            if self.solver != "lbfgs":  # report the full-batch objective, not the batch mean
                eta = torch.as_tensor(float64_forward(module, X))
                w = self._tensor(sample_weight, torch.float64)
                loss = float(family.loss(eta, self._tensor(y_enc, torch.float64), w))
                self.loss_ = loss + float(penalty.value(module.penalized_parameters()))

    def _check_monotone_likelihood(self, X, y_enc, sample_weight):
        """R's coxph check after an unpenalized linear fit (the solver's Newton finish has run):
        a Newton step that stays large relative to its coefficient means the partial likelihood
        keeps increasing along it."""
        from ..inference.likelihood import Likelihood

        lik = Likelihood(self.module_, self.family_, X, y_enc, sample_weight)
        grad = -(lik.X.T @ lik.score_eta(lik.eta(lik.theta))[:, 0])
        self._check_infinite(lik, lik.theta, grad)

    def _check_infinite(self, lik, theta, grad):
        """R's coxph check: a Newton step that stays large relative to its coefficient after
        convergence means the partial likelihood keeps increasing (monotone likelihood)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        try:
            step = torch.linalg.solve(lik.curvatures(theta)[0], grad).abs()
        except RuntimeError:
            return
        bad = (step > 1e-9) & (step > 1e-9**0.5 * theta.abs())
        if bool(bad.any()):
            names = feature_names(self, theta.numel())
            which = [str(names[j]) for j in torch.nonzero(bad)[:, 0].tolist()]
            warnings.warn(
                f"The partial likelihood still increases along {which}: the coefficient(s) may "
                "be infinite (monotone likelihood: a covariate orders every risk set, e.g. a "
                "group with no events). Their standard errors are meaningless; drop the "
                "covariate or use alpha > 0.", ConvergenceWarning, stacklevel=4,
            )

    def _fit(self, X, y, sample_weight, incremental):
        super()._fit(X, y, sample_weight, incremental)
        Xd, yd, sw = self._training_data
        self.baseline_times_, self.baseline_cumulative_hazard_ = breslow_baseline(
            yd[:, 0], yd[:, 1], self._eta(Xd), sw)
        return self

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y) with the current optimizer state (scikit-learn's convention).

        The Breslow baseline is re-estimated from this call's data.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)

    # ------------------------------------------------------------------ predictions
    def _eta(self, X):
        """eta for already validated inputs (float64, 1-D)."""
        out = float64_forward(self.module_, X, self.device_)
        return np.zeros(0) if out is None else out[:, 0]

    def predict(self, X):
        """Risk score: the log relative hazard ``eta(x)`` (higher = earlier events)."""
        return self._linear_predictor(X)[:, 0]

    def _times(self, times):
        check_is_fitted(self, "baseline_times_")
        t = self.baseline_times_ if times is None else np.asarray(times, dtype=np.float64)
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError("times must be a 1-D array of finite values.")
        return t

    def predict_cumulative_hazard(self, X, times=None):
        """Cumulative hazard ``H0(t) exp(eta(x))`` (Breslow's baseline).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,), default=None
            Default: the distinct event times of the training data.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
        """
        t = self._times(times)
        h0 = step_values(self.baseline_times_, self.baseline_cumulative_hazard_, t)
        return np.exp(self.predict(X))[:, None] * h0[None, :]

    def predict_survival_function(self, X, times=None):
        """Survival probability ``exp(-H0(t) exp(eta(x)))``, shape (n_samples, n_times)."""
        return np.exp(-self.predict_cumulative_hazard(X, times))

    def score(self, X, y, sample_weight=None):
        """Harrell's concordance index of :meth:`predict` against (time, event) ``y``.

        See :func:`neurostat.cox_metrics.concordance_index`; weights count ``w_i w_j`` per pair.
        """
        y = as_survival_target(y)
        risk = self.predict(X)
        check_consistent_length(risk, y)
        return concordance_index(y[:, 0], y[:, 1], risk, sample_weight)

    def partial_log_likelihood(self, X, y, sample_weight=None):
        """Log partial likelihood of (X, y) under the fitted risk score (float64)."""
        y = as_survival_target(y)
        eta = torch.as_tensor(self.predict(X))
        w = None if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float64))
        return float(partial_loglik(eta, torch.as_tensor(y[:, 0]), torch.as_tensor(y[:, 1]),
                                    w, self.ties))

    @property
    def coef_(self):
        """Log hazard ratios, shape (n_features,) (networks with no hidden layer)."""
        self._glm_check("coef_")
        return self.coefs_[0][:, 0]

    # ------------------------------------------------------------------ statistics
    def inference(self, X=None, y=None, cov_type="nonrobust", *, alpha=0.05,
                  sample_weight=None, n_bootstrap=200, n_jobs=None, random_state=None):
        """Statistical results: log hazard ratios (or effects), standard errors, tests.

        Parameters are those of :func:`neurostat.inference.inference`; ``cov_type`` is
        "nonrobust" (inverse information), "HC0" or its alias "robust" (Lin & Wei's sandwich
        from score residuals, R's ``coxph(robust=TRUE)``; "HC1" is the same, as statsmodels'
        likelihood models) or "bootstrap". ``y`` as in :meth:`fit`.

        Returns
        -------
        CoxInferenceResults
        """
        return super().inference(X, y, "HC0" if cov_type == "robust" else cov_type,
                                 alpha=alpha, sample_weight=sample_weight,
                                 n_bootstrap=n_bootstrap, n_jobs=n_jobs,
                                 random_state=random_state)

    _has_intercept = False  # it cancels in the partial likelihood
    _supports_offset = False

    def _results_class(self):
        from .inference import CoxInferenceResults
        return CoxInferenceResults

    def _describe(self):
        return [("Ties:", self.ties), *super()._describe()]

    def _inference_target(self, y):
        return as_survival_target(y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.positive_only = True  # survival times
        tags.target_tags.single_output = True
        return tags
