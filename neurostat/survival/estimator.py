"""NeuralCoxRegressor: the Cox proportional hazards model with a neural network risk score.

The net outputs the log relative hazard ``eta(x)`` (no intercept); the loss is the Cox partial
likelihood (:mod:`neurostat.survival.family`); inference is :mod:`neurostat.survival.inference`; the
survival curves come from Breslow's baseline hazard and ``score`` is Harrell's concordance
(:mod:`neurostat.survival.metrics`).
"""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from .._utils import feature_names, float64_forward
from ..engine.networks import MLP
from ..estimators._base import _BaseNeural, _stochastic
from .competing import aalen_johansen_from_hazards
from .family import TIES, Cox
from .metrics import baseline_hazards, concordance_index, stratified_concordance
from .risksets import RiskSets
from .target import SurvivalArray, as_survival_target, columns, survival_data, time_ranks

__all__ = ["NeuralCoxRegressor", "concordance_index"]


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
    n_causes : int, default=1
        Competing risks: event codes 0 (censored) or ``1..n_causes``; the net gets one output
        (head) per cause on a shared body, and the loss is the sum of the cause-specific
        partial likelihoods (with no hidden layer, separate cause-specific Cox models, as R's
        multi-state ``coxph(Surv(time, factor(status)) ~ x)``).
    solver, alpha, l1_ratio, dropout, input_dropout, init, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, \
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
        Breslow's ``H0`` at ``baseline_times_`` (for ``eta = 0``); with strata or several
        causes of shape (n_strata, n_causes, n_event_times).
    strata_ : ndarray or None
        The stratum labels seen at fit (sorted), or None.
    loss_ : float
        The penalized objective on the full training data at the fitted weights (for minibatch
        solvers too; ``loss_curve_`` holds the per-epoch mean of the minibatch losses).
    family_ : neurostat.survival.family.Cox
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
    DataFrame of (time, event), an (n, 3) one of (start, stop, event) - counting-process data,
    one row per interval ``(start, stop]``, for time-varying covariates and delayed entry
    (left truncation), R's ``Surv(start, stop, event)`` - or 1-D times that are all events
    (lifelines' convention when there is no event column; this also lets scikit-learn's
    generic checks run). Times must be finite (and >= 0 without start times), intervals
    non-empty, events 0 or a cause ``1..n_causes``, and at least one event observed.
    ``fit(X, y, strata=s)`` gives each stratum its own baseline hazard with shared
    coefficients (R's ``strata()``); ``fit(X, y, groups=g)`` records the subject (cluster) of
    each row: its intervals must not overlap, and ``inference(cov_type="cluster")`` sums the
    score residuals by subject (R's ``cluster(id)``).

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
        "n_causes": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, ties="efron",
                 n_causes=1, solver="adam", alpha=0.0, l1_ratio=0.0, dropout=0.0,
                 input_dropout=0.0, init="glorot_uniform", batch_size="auto",
                 learning_rate="constant", learning_rate_init=1e-3, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, freeze=0, device="auto", formula=None):
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
        self.n_causes = n_causes

    # ------------------------------------------------------------------ targets
    def _target(self, y, strata=None, groups=None, fitting=False):
        """The parsed target (a SurvivalArray) with this model's strata coding."""
        if fitting:
            yy, labels = survival_data(y, strata, groups, self.n_causes)
            if labels is None and yy.shape[1] == 4 and strata is None:
                # an already parsed target (the bootstrap's refits): keep the labels seen
                known = getattr(self, "strata_", None)
                top = int(yy[:, 3].max()) if len(yy) else 0
                labels = known if known is not None and len(known) > top else (
                    np.arange(top + 1) if top > 0 else None)
            self.strata_ = labels
            return yy
        if isinstance(y, SurvivalArray):
            return y
        known = getattr(self, "strata_", None)
        if (strata is None) != (known is None):
            raise ValueError(
                "This model was fitted with strata: pass strata= for these rows." if known
                is not None else "This model was fitted without strata; strata= is not used.")
        if strata is not None:
            strata = self._stratum_codes(strata)
        yy, _ = survival_data(y, strata, groups, self.n_causes)
        return yy

    def _stratum_codes(self, strata):
        strata = np.asarray(strata)
        known = self.strata_
        codes = np.searchsorted(known, strata).clip(0, len(known) - 1)
        bad = known[codes] != strata
        if np.any(bad):
            raise ValueError(
                f"Unknown strata {np.unique(strata[bad])[:5].tolist()} (rows "
                f"{np.flatnonzero(bad)[:10].tolist()}); the fit saw {known.tolist()}.")
        return codes

    # ------------------------------------------------------------------ hooks of the base
    def _validate_xy(self, X, y, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        y = self._target(y, fitting=True) if not isinstance(y, SurvivalArray) else y
        check_consistent_length(X, y)
        return X, y

    def _encode_target(self, y):
        return time_ranks(y)

    def _make_family(self, y_enc):
        return Cox(self.ties, self.n_causes)

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
        grad = -(lik.score_eta(lik.eta(lik.theta)).T @ lik.X).reshape(-1)
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
            names = list(feature_names(self, lik.X.shape[1])) * self.n_causes
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
        times, H = baseline_hazards(yd, self._eta(Xd), sw, self.n_causes)
        self.baseline_times_ = times
        self.baseline_cumulative_hazard_ = H[0, 0] if H.shape[:2] == (1, 1) else H
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, strata=None, groups=None, offset=None):
        """Fit the network to survival data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : (time, event) or (start, stop, event) data
            See the class notes for the accepted forms.
        sample_weight : array-like of shape (n_samples,), default=None
            Case weights (R's ``coxph(weights=)``).
        strata : array-like of shape (n_samples,), default=None
            Stratum of each row: separate baseline hazards, shared coefficients.
        groups : array-like of shape (n_samples,), default=None
            Subject (cluster) of each row, kept with the training data for
            ``inference(cov_type="cluster")``; the (start, stop] intervals of one subject must
            not overlap.
        offset : None
            Not supported for the Cox model yet (R's ``coxph`` takes one); a ValueError
            says so.

        Returns
        -------
        self : object
        """
        if offset is not None:
            raise ValueError(f"{type(self).__name__} does not take an offset.")
        y = self._target(y, strata, groups, fitting=True)
        self._training_groups = None if groups is None else np.asarray(groups)
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, *, strata=None):
        """One epoch over (X, y) with the current optimizer state (scikit-learn's convention).

        The Breslow baseline is re-estimated from this call's data.
        """
        self._validate_params()
        first = not hasattr(self, "module_")
        y = self._target(y, strata, fitting=first)
        self._training_groups = None
        return self._fit(X, y, sample_weight, incremental=True)

    # ------------------------------------------------------------------ predictions
    def _eta(self, X):
        """eta for already validated inputs (float64, (n, n_causes))."""
        out = float64_forward(self.module_, X, self.device_)
        return np.zeros((0, self.n_causes)) if out is None else out

    def predict(self, X):
        """Risk score: the log relative hazard ``eta(x)`` (higher = earlier events); shape
        (n_samples,), or (n_samples, n_causes) with competing risks."""
        eta = self._linear_predictor(X)
        return eta[:, 0] if self.n_causes == 1 else eta

    def _times(self, times):
        check_is_fitted(self, "baseline_times_")
        t = self.baseline_times_ if times is None else np.asarray(times, dtype=np.float64)
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError("times must be a 1-D array of finite values.")
        return t

    def _hazards(self, X, times, strata):
        """Cause-specific cumulative hazards (n, n_causes, n_times) and the times."""
        t = self._times(times)
        eta = self._linear_predictor(X)
        H = self.baseline_cumulative_hazard_.reshape(-1, self.n_causes, self.baseline_times_.size)
        if getattr(self, "strata_", None) is None:
            if strata is not None:
                raise ValueError("This model was fitted without strata; strata= is not used.")
            codes = np.zeros(eta.shape[0], np.int64)
        else:
            if strata is None:
                raise ValueError(
                    "This model has one baseline hazard per stratum: pass strata= (one label "
                    f"per row of X, from {self.strata_.tolist()}).")
            codes = self._stratum_codes(strata)
            if codes.shape[0] != eta.shape[0]:
                raise ValueError(f"strata has {codes.shape[0]} entries but X has "
                                 f"{eta.shape[0]} rows.")
        idx = np.searchsorted(self.baseline_times_, t, side="right")
        Hp = np.concatenate([np.zeros(H.shape[:2] + (1,)), H], axis=2)[:, :, idx]
        return Hp[codes] * np.exp(eta)[:, :, None], t

    def predict_cumulative_hazard(self, X, times=None, strata=None):
        """Cumulative hazard ``H0(t) exp(eta(x))`` (Breslow's baseline of the row's stratum).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,), default=None
            Default: the distinct event times of the training data.
        strata : array-like of shape (n_samples,), default=None
            The stratum of each row (required for a stratified model).

        Returns
        -------
        ndarray of shape (n_samples, n_times), or (n_samples, n_causes, n_times) with
        competing risks (the cause-specific cumulative hazards)
        """
        H, _ = self._hazards(X, times, strata)
        return H[:, 0] if self.n_causes == 1 else H

    def predict_survival_function(self, X, times=None, strata=None):
        """Survival probability ``exp(-sum_k H_k(t | x))`` (free of any event), shape
        (n_samples, n_times)."""
        H, _ = self._hazards(X, times, strata)
        return np.exp(-H.sum(1))

    def predict_cumulative_incidence(self, X, times=None, strata=None):
        """Cumulative incidence of each cause from the cause-specific Breslow hazards,
        (n_samples, n_causes, n_times), as R's ``survfit`` of a multi-state ``coxph``.

        ``F_k(t | x) = sum_{u <= t} S(u- | x) dH_k(u | x) (1 - exp(-L_u)) / L_u`` over the
        training event times ``u``, ``L_u = sum_k dH_k(u | x)`` and
        ``S(u | x) = exp(-sum_k H_k(u | x))`` (:meth:`predict_survival_function`): the
        Aalen-Johansen estimator with each step's transition the matrix exponential of its
        hazards (:func:`~neurostat.survival.competing.aalen_johansen_from_hazards`), so that
        ``S + sum_k F_k = 1``.
        """
        check_is_fitted(self, "baseline_times_")
        H, _ = self._hazards(X, None, strata)
        F = aalen_johansen_from_hazards(H, method="exponential")
        t = self._times(times)
        idx = np.searchsorted(self.baseline_times_, t, side="right")
        return np.concatenate([np.zeros(F.shape[:2] + (1,)), F], axis=2)[:, :, idx]

    def score(self, X, y, sample_weight=None, strata=None):
        """Harrell's concordance index of :meth:`predict` against the target ``y``.

        See :func:`neurostat.survival.metrics.concordance_index`; weights count ``w_i w_j`` per
        pair; with strata only pairs within a stratum count (R's ``concordance``; without
        ``strata`` every pair counts, so that model selection works unchanged); with
        competing risks the mean of the cause-specific indices (events of other causes as
        censored); for (start, stop] data the pairs compare the rows' stop times.
        """
        yy = self._target(y, strata) if strata is not None else survival_data(
            y, None, None, self.n_causes)[0]
        risk = self._linear_predictor(X)
        check_consistent_length(risk, yy)
        _, stop, event, stratum = columns(yy)
        return float(np.mean([
            stratified_concordance(stop, event == k + 1, risk[:, k], stratum, sample_weight)
            for k in range(self.n_causes)]))

    def partial_log_likelihood(self, X, y, sample_weight=None, strata=None):
        """Log partial likelihood of (X, y) under the fitted risk score (float64)."""
        yy = self._target(y, strata)
        eta = torch.as_tensor(self._linear_predictor(X))
        w = None if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float64))
        fam = Cox(self.ties, self.n_causes)
        return float(fam._loglik(eta, RiskSets(torch.as_tensor(np.asarray(yy)), w,
                                               self.n_causes)))

    @property
    def coef_(self):
        """Log hazard ratios, shape (n_features,), or (n_causes, n_features) with competing
        risks (networks with no hidden layer)."""
        self._glm_check("coef_")
        c = self.coefs_[0]
        return c[:, 0] if self.n_causes == 1 else c.T

    # ------------------------------------------------------------------ statistics
    def inference(self, X=None, y=None, cov_type="nonrobust", *, alpha=0.05,
                  sample_weight=None, n_bootstrap=200, n_jobs=None, random_state=None,
                  groups=None, strata=None, effects="delta", n_folds=5):
        """Statistical results: log hazard ratios (or effects), standard errors, tests.

        Parameters are those of :func:`neurostat.inference.inference`; ``cov_type`` is
        "nonrobust" (inverse information), "HC0" or its alias "robust" (Lin & Wei's sandwich
        from score residuals, R's ``coxph(robust=TRUE)``; "HC1" is the same, as statsmodels'
        likelihood models), "cluster" (the score residuals summed by ``groups``, default the
        ``groups`` given to ``fit``: R's ``coxph(... + cluster(id))``) or "bootstrap". ``y``
        as in :meth:`fit`, with its ``strata``.

        Returns
        -------
        CoxInferenceResults
        """
        if y is not None:
            y = self._target(y, strata)
        return super().inference(X, y, "HC0" if cov_type == "robust" else cov_type,
                                 alpha=alpha, sample_weight=sample_weight,
                                 n_bootstrap=n_bootstrap, n_jobs=n_jobs,
                                 random_state=random_state, groups=groups,
                                 effects=effects, n_folds=n_folds)

    _has_intercept = False  # it cancels in the partial likelihood
    _supports_offset = False
    _output_level = "cause"  # one head per cause: params indexed by (cause, term)

    def _results_class(self):
        from .inference import CoxInferenceResults
        return CoxInferenceResults

    def _output_labels(self, k):
        return None if k == 1 else tuple(f"cause {j + 1}" for j in range(k))

    def _describe(self):
        lines = [("Ties:", self.ties)]
        if getattr(self, "strata_", None) is not None:
            lines.append(("Strata:", str(len(self.strata_))))
        if self.n_causes > 1:
            lines.append(("Causes:", f"{self.n_causes} (cause-specific hazards)"))
        return [*lines, *super()._describe()]

    def _inference_target(self, y):
        parsed = isinstance(y, SurvivalArray) or (
            getattr(y, "ndim", 0) == 2 and np.shape(y)[1] == 4)
        if getattr(self, "strata_", None) is not None and not parsed:
            raise ValueError("This model was fitted with strata: pass strata= to inference().")
        return np.asarray(self._target(y) if not parsed else as_survival_target(y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.positive_only = True  # survival times
        tags.target_tags.single_output = True
        return tags
