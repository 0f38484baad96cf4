"""The shared base of neurostat's network estimators: validation, fitting, prediction.

One base class, ``_BaseNeural``, holds every hyperparameter shared by the public estimators
(:mod:`neurostat.estimators`, :mod:`neurostat.convnet`, :mod:`neurostat.cox`) and the one fit
path over the structure (:mod:`neurostat.networks`), family (:mod:`neurostat.families`),
solver (:mod:`neurostat.training`) and penalty (:mod:`neurostat.penalties`). Subclasses override
a few hooks: ``_validate_xy``, ``_validate_X_predict``, ``_encode_target``, ``_make_family``,
``_build_module`` and ``_validation_score``.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import distributed
from .._compat import HasMethods, Interval, StrOptions, _fit_context
from .._utils import (
    as_tensor,
    check_sample_weight,
    float64_forward,
    is_dask_collection,
    resolve_device,
)
from ..engine.heads import with_ancillary
from ..engine.networks import ACTIVATIONS, INIT_SCHEMES, MLP
from ..engine.penalties import ElasticNetPenalty
from ..engine.solvers import (
    SOLVERS,
    STOCHASTIC_SOLVERS,
    History,
    LBFGSConfig,
    LBFGSSolver,
    MinibatchConfig,
    MinibatchSolver,
)
from . import _design
from ._inputs import _InputsMixin
from ._modules import _module_to_cpu, _n_eta, _set_output_bias, _shifted_score, _transfer
from ._statistics import StatisticalModelMixin


def _stochastic(est):
    if est.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(
            f"partial_fit is only available for stochastic solvers {STOCHASTIC_SOLVERS}, "
            f"not solver={est.solver!r}."
        )
    return True


class _BaseNeural(_InputsMixin, StatisticalModelMixin, BaseEstimator):
    """Shared fit/predict machinery; see :class:`NeuralClassifier` for the parameters."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "init": [StrOptions(set(INIT_SCHEMES)), HasMethods(["fit", "predict"])],
        "freeze": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "formula": [None, str],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0, l1_ratio=0.0, dropout=0.0, input_dropout=0.0,
                 init="glorot_uniform", batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=0, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 freeze=0, device="auto", formula=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.init = init
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.freeze = freeze
        self.device = device
        self.formula = formula

    def __init_subclass__(cls, **kwargs):
        # predict, predict_proba, ... and score map over the chunks of a dask collection
        super().__init_subclass__(**kwargs)
        distributed.map_over_chunks(cls)

    # ------------------------------------------------------------------ hooks for subclasses
    def _make_family(self, y):
        raise NotImplementedError

    def _encode_target(self, y):
        raise NotImplementedError

    def _validation_score(self, module, X, y, w):
        raise NotImplementedError

    # ------------------------------------------------------------------ validation
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(s, Integral) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of positive integers (() for no hidden "
                f"layer); got {self.hidden_layer_sizes!r}."
            )
        return sizes

    def _check_options(self):
        if self.solver == "lbfgs" and (self.dropout > 0 or self.input_dropout > 0):
            raise ValueError(
                "dropout needs a stochastic solver: the L-BFGS line search assumes a "
                "deterministic objective. Use solver='adam' (or 'sgd') with dropout > 0."
            )

    def _sample_weight(self, sample_weight, X, normalize=True):
        """Validated weights; ``normalize`` rescales them to mean 1 (training: the objective is
        a weighted mean, so only their ratios matter). Inference keeps them as given: frequency
        weights, where a weight of 3 counts as three copies of the row."""
        return check_sample_weight(sample_weight, X, normalize=normalize)

    # ------------------------------------------------------------------ fitting
    def _is_initialized(self):
        return hasattr(self, "module_")

    def _build_module(self, n_features, n_outputs):
        """The network (a torch module returning the linear predictor); subclasses override.

        The module provides ``layers``-independent hooks used here: ``reset_parameters(init)``,
        ``output_layer``, ``body_state_dict()``, ``body_layers()`` and
        ``penalized_parameters()``.
        """
        return MLP(n_features, self._hidden_sizes(), n_outputs, self.activation,
                   self.dropout, self.input_dropout)

    def _initialize(self, X, y_enc, family, sample_weight, dtype, offset=None):
        n_out = family.n_outputs(y_enc)
        module = with_ancillary(self._build_module(X.shape[1], n_out), len(family.ancillary))
        init = self.init
        module.reset_parameters("glorot_uniform" if not isinstance(init, str) else init)
        if not isinstance(init, str):
            _transfer(init, module)
        body = module.body_layers()
        if self.freeze > len(body):
            raise ValueError(
                f"freeze={self.freeze} but the network has only {len(body)} layers before the "
                "output layer; freeze at most that many."
            )
        for layer in body[:self.freeze]:
            layer.requires_grad_(False)
        if not body and self.solver == "lbfgs" and isinstance(init, str):
            # a GLM's objective is convex: start at the null model (zero slopes, the intercept
            # below), as IRLS does, so the answer - and an L1 fit's zero pattern - does not
            # depend on random_state
            with torch.no_grad():
                module.output_layer.weight.zero_()
        with torch.no_grad():
            _set_output_bias(module, self._initial_bias(family, y_enc, sample_weight, offset))
        self.module_ = module.to(device=self.device_, dtype=dtype)
        self._target_scaling = self._make_target_scaling(family, y_enc, sample_weight)
        if self._target_scaling is not None:
            # the initialization scheme speaks about standardized units of y
            with torch.no_grad():
                self.module_.output_layer.weight *= self._target_scaling[1]
        self.n_outputs_ = n_out
        self.n_layers_ = len(body) + 2
        self._history = History()
        self._history.init_standardized = self.solver == "lbfgs" and isinstance(init, str)
        self._solver = None

    def _make_target_scaling(self, family, y, sample_weight):
        """``(center, scale)`` of a gaussian target for the stochastic solvers, else None.

        Adam and friends move each weight by about ``learning_rate_init`` per step whatever the
        gradient's size, so a target on the scale of hundreds would need tens of thousands of
        steps. The minibatch solvers therefore fit ``(y - center) / scale`` with the output
        layer rescaled to match and the penalty re-weighted so that the objective is exactly
        ``scale^2`` times the original one (:meth:`ElasticNetPenalty.for_standardized_target`):
        the same minimizer, reached at any scale of y. One scale for all targets keeps the
        equivalence exact for multi-output y.
        """
        if not family.location_scale or self.solver not in STOCHASTIC_SOLVERS:
            return None
        center = np.average(y, axis=0, weights=sample_weight)
        var = np.average((y - center) ** 2, axis=0, weights=sample_weight)
        scale = float(np.sqrt(np.mean(var)))
        if not scale > 1e-12 * (1.0 + float(np.max(np.abs(center)))):
            scale = 1.0
        return np.atleast_1d(center).astype(np.float64), scale

    @torch.no_grad()
    def _rescale_output_(self, center, scale, forward):
        out = self.module_.output_layer
        c = torch.as_tensor(center, dtype=out.bias.dtype, device=out.bias.device)
        if forward:  # original -> standardized coordinates
            out.weight /= scale
            out.bias.copy_((out.bias - c) / scale)
        else:
            out.weight *= scale
            out.bias.copy_(out.bias * scale + c)

    def sample_predictions(self, X, n_samples=100, random_state=None):
        """Monte-Carlo dropout: ``n_samples`` response-scale predictions with dropout active.

        Shape (n_samples, n_obs), or (n_samples, n_obs, n_classes) for classifiers; ``predict``
        keeps the weight-scaling rule. See :func:`neurostat.dropout.sample_predictions`.
        """
        from ..dropout import sample_predictions
        return sample_predictions(self, X, n_samples=n_samples, random_state=random_state)

    def _tensor(self, a, dtype):
        return as_tensor(a, dtype, self.device_)

    def _fit(self, X, y, sample_weight, incremental, offset=None):
        if is_dask_collection(X):  # before validation, which would gather X into memory
            if offset is not None:
                raise ValueError("offsets with data held in chunks (dask) are not supported; "
                                 "compute the data first, or fit without an offset.")
            from ..distributed.estimator import fit_chunked
            return fit_chunked(self, X, y, sample_weight, incremental)
        self._check_options()
        self._hidden_sizes()
        first = not (self._is_initialized() and (self.warm_start or incremental))
        X, y = self._design_fit(X, y, reset=first)
        X, y = self._validate_xy(X, y, reset=first)
        offset = self._check_offset(offset, X)
        raw_weight = self._sample_weight(sample_weight, X, normalize=False)
        sample_weight = self._sample_weight(sample_weight, X)
        y_enc = self._encode_target(y)
        family = self._make_family(y_enc)
        family.validate(y_enc)
        family.check_sample_weight(raw_weight)
        self.family_ = family
        if first:
            self.device_ = resolve_device(self.device)
        dtype = torch.float64 if self.solver == "lbfgs" else torch.float32
        penalty = ElasticNetPenalty(self.alpha, self.l1_ratio)

        # One numpy RandomState per fit sequence: a fresh fit restarts it from random_state (same
        # seed, same model); partial_fit and warm starts draw the next seed from it, so epochs
        # get new shuffles and dropout masks instead of replaying the first call's.
        if first or not hasattr(self, "_seed_sequence"):
            self._seed_sequence = check_random_state(self.random_state)
        seed = self._seed_sequence.randint(np.iinfo(np.int32).max)
        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if first:
                self._initialize(X, y_enc, family, sample_weight, dtype, offset)
            else:
                self.module_.to(dtype=dtype)
            self._train(X, y_enc, sample_weight, family, penalty, dtype, seed, incremental,
                        **({} if offset is None else {"offset": offset}))
        self._training_data = (X, y, raw_weight)
        self._training_offset = offset
        return self

    def _train(self, X, y_enc, sample_weight, family, penalty, dtype, seed, incremental,
               offset=None):
        module = self.module_
        scaling = getattr(self, "_target_scaling", None) if self.solver != "lbfgs" else None
        loss_scale = 1.0
        if scaling is not None:
            center, scale = scaling
            y_enc = (y_enc - (center if y_enc.ndim == 2 else center[0])) / scale
            penalty = penalty.for_standardized_target(scale, len(module.penalized_parameters()))
            loss_scale = scale**2
            self._rescale_output_(center, scale, forward=True)
            offset = None if offset is None else offset / scale
        try:
            self._train_scaled(X, y_enc, sample_weight, family, penalty, dtype, seed,
                               incremental, loss_scale, offset)
        finally:
            if scaling is not None:
                self._rescale_output_(center, scale, forward=False)

    def _train_scaled(self, X, y_enc, sample_weight, family, penalty, dtype, seed, incremental,
                      loss_scale, offset=None):
        module, history = self.module_, self._history
        validation = None
        score_fn = self._validation_score
        if offset is not None:
            offset = self._offset_eta(offset, _n_eta(module), family)
        if self.early_stopping and not incremental and self.solver != "lbfgs":
            stratify = y_enc if isinstance(self, ClassifierMixin) else None
            idx = np.arange(X.shape[0])
            tr, va = train_test_split(idx, test_size=self.validation_fraction,
                                      random_state=seed, stratify=stratify)
            sw_va = None if sample_weight is None else sample_weight[va]
            validation = (self._tensor(X[va], dtype), self._tensor(y_enc[va], dtype),
                          self._tensor(sw_va, dtype))
            if offset is not None:
                score_fn = _shifted_score(score_fn, self._tensor(offset[va], dtype))
                offset = offset[tr]
            X, y_enc = X[tr], y_enc[tr]
            sample_weight = None if sample_weight is None else sample_weight[tr]
            history.best_validation_score = -np.inf
            history.best_state = None
        data = (self._tensor(X, dtype), self._tensor(y_enc, dtype),
                self._tensor(sample_weight, dtype))
        if offset is not None:
            data = (*data, self._tensor(offset, dtype))
        history.no_improvement = 0
        history.converged = False
        if self.solver == "lbfgs":
            config = LBFGSConfig(max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol)
            LBFGSSolver(module, family, penalty, config).solve(data, history)
        else:
            self._train_stochastic(family, penalty, data, history, validation, incremental,
                                   loss_scale, score_fn)
        self._store_history(history, validation)

    def _minibatch_config(self):
        return MinibatchConfig(
            solver=self.solver, learning_rate_init=self.learning_rate_init,
            batch_size=self.batch_size, shuffle=self.shuffle, momentum=self.momentum,
            nesterovs_momentum=self.nesterovs_momentum, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon, learning_rate=self.learning_rate,
            power_t=self.power_t, tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose, name=type(self).__name__)

    def _batch_augmentation(self):
        """A callable applied to every training minibatch, or None (subclasses override)."""
        return None

    def _train_stochastic(self, family, penalty, data, history, validation, incremental,
                          loss_scale=1.0, score_fn=None):
        module = self.module_
        if self._solver is None:
            # kept across partial_fit calls and warm starts: the optimizer state continues
            self._solver = MinibatchSolver(module, family, penalty, self._minibatch_config(),
                                           augment=self._batch_augmentation())
        else:  # this call's family, penalty (target scale) and settings; same optimizer
            self._solver.reconfigure(family, penalty, self._minibatch_config())
        n_epochs = 1 if incremental else self.max_iter
        self._solver.run(data, history, n_epochs, validation, score_fn or self._validation_score,
                         check_stop=not incremental, loss_scale=loss_scale)
        if validation is not None and history.best_state is not None:
            module.load_state_dict(history.best_state)
        if not incremental and not history.converged:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4,
            )

    def _store_history(self, history, validation):
        self.n_iter_ = history.n_iter
        self.t_ = history.t
        self.loss_curve_ = list(history.loss_curve)
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = None if validation is not None else min(self.loss_curve_)
        self.converged_ = bool(history.converged)
        if validation is not None:
            self.validation_scores_ = list(history.validation_scores)
            self.best_validation_score_ = max(history.validation_scores)
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, offset=None):
        """Fit the network to data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or DataFrame
            With ``formula``, the DataFrame of its columns (categorical/string columns are
            one-hot encoded against their first level, with or without a formula).
        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            None when ``formula`` has a left-hand side (the response is read from X).
        sample_weight : array-like of shape (n_samples,), default=None
            Observation weights; the loss is ``sum_i w_i nll_i / sum_i w_i`` (for
            ``family="binomial"`` the number of trials).
        offset : array-like of shape (n_samples,), default=None
            Added to the linear predictor with a fixed coefficient of 1 (glum's name):
            ``eta = f(x) + offset``; ``np.log(exposure)`` makes a log-link model one of rates.

        Returns
        -------
        self : object
        """
        if offset is not None and not self._supports_offset:
            raise ValueError(f"{type(self).__name__} does not take an offset.")
        return self._fit(X, y, sample_weight, incremental=False,
                         **({} if offset is None else {"offset": offset}))

    # ------------------------------------------------------------------ predicting
    def _linear_predictor(self, X, offset=None):
        """``eta`` for X (plus the offset), float64 numpy of shape (n, n_eta)."""
        check_is_fitted(self, "module_")
        X = self._validate_X_predict(X)
        out = float64_forward(self.module_, X, self.device_)
        out = np.zeros((0, _n_eta(self.module_))) if out is None else out
        if offset is not None:
            out = out + self._offset_eta(self._check_offset(offset, X), out.shape[1])
        return out

    def _validate_X_predict(self, X):
        """Validated inputs at predict time (subclasses with other input shapes override)."""
        return validate_data(self, _design.design_transform(self, X), reset=False,
                             dtype=np.float64)

    def _mean(self, X, offset=None):
        eta = torch.from_numpy(self._linear_predictor(X, offset))
        mu = self.family_.mean(eta).numpy()
        if not np.all(np.isfinite(mu)):
            raise FloatingPointError(
                "The fitted network gives non-finite predictions for these inputs (overflow of "
                "the inverse link); check the inputs' scale against the training data."
            )
        return mu

    # ------------------------------------------------------------------ fitted parameters
    @property
    def coefs_(self):
        """Weight matrices, one (n_in, n_out) array per layer, as scikit-learn's MLP."""
        check_is_fitted(self, "module_")
        return [layer.weight.detach().cpu().double().numpy().T.copy()
                for layer in self.module_.layers]

    @property
    def intercepts_(self):
        check_is_fitted(self, "module_")
        return [layer.bias.detach().cpu().double().numpy().copy()
                for layer in self.module_.layers]

    def _glm_check(self, name):
        check_is_fitted(self, "module_")
        if len(self.module_.layers) != 1:
            raise AttributeError(
                f"{name} exists only for a network with no hidden layer "
                "(hidden_layer_sizes=()); use coefs_/intercepts_, or inference() for effects."
            )

    def __sklearn_clone__(self):
        # a fitted estimator passed as ``init`` (transfer learning) is shared, not cloned into
        # an unfitted copy, so GridSearchCV and cross-validation keep the source weights
        from sklearn.base import clone
        params = self.get_params(deep=False)
        params = {k: (v if k == "init" else clone(v, safe=False)) for k, v in params.items()}
        return type(self)(**params)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        state.pop("_training_data", None)  # kept by reference for inference, never pickled
        state.pop("_training_groups", None)
        state.pop("_training_offset", None)
        state.pop("_solver", None)
        if "module_" in state:
            state["module_"] = _module_to_cpu(state["module_"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._solver = None
        if hasattr(self, "module_"):
            dev = getattr(self, "device_", torch.device("cpu"))
            if dev.type == "cuda" and not torch.cuda.is_available():
                dev = torch.device("cpu")
            self.device_ = dev
            self.module_.to(dev)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags
