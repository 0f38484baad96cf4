"""NeuralClassifier and NeuralRegressor: thin public estimators over one shared base.

A net is structure (:mod:`neurostat.networks`) + family (:mod:`neurostat.families`) + solver
(:mod:`neurostat.training`) + penalty (:mod:`neurostat.penalties`). Parameter names follow
scikit-learn's ``MLPClassifier``/``MLPRegressor`` where the concept exists.
"""

import copy

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import validate_data

from .._compat import StrOptions
from ..engine.families import Family, classification_family
from ..engine.glm_families import REGRESSION_FAMILIES
from ._base import _BaseNeural, _stochastic
from ._design import design_response as _design_response

__all__ = ["NeuralClassifier", "NeuralRegressor"]

#: the widest range of integer labels that :func:`_integer_labels` counts with ``bincount``
_BINCOUNT_RANGE = 1 << 16


def _integer_labels(y):
    """``(classes, codes)`` of a 1-D integer (or bool) ``y`` whose labels span fewer than
    65,536 values, in one O(n) pass (``bincount``) - ``np.unique``, ``unique_labels`` and
    ``LabelEncoder`` sort the labels, about 0.15 s at a million rows -; None otherwise."""
    if y.ndim != 1 or y.dtype.kind not in "biu" or y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    if hi - lo >= _BINCOUNT_RANGE:
        return None
    shifted = y.astype(np.int64) - lo
    present = np.flatnonzero(np.bincount(shifted))
    lookup = np.zeros(hi - lo + 1, dtype=np.int64)
    lookup[present] = np.arange(present.size)
    return (present + lo).astype(y.dtype), lookup[shifted]


class NeuralClassifier(ClassifierMixin, _BaseNeural):
    """A neural network classifier that is also a statistical model.

    Bernoulli likelihood for two classes (one logit), categorical for K > 2 classes (K-1 logits
    against the first class, as statsmodels' ``MNLogit``). With ``hidden_layer_sizes=()`` it is
    logistic (or multinomial logit) regression.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Units per hidden layer; ``()`` for no hidden layer (a GLM).
    activation : {"relu", "tanh", "sigmoid", "elu", "gelu", "softplus", "erf", "identity"}
    solver : {"adam", "adamw", "sgd", "rmsprop", "adagrad", "lbfgs"}, default="adam"
        "lbfgs" is full-batch L-BFGS-B in float64 (the right choice for GLMs and small data);
        the others are minibatch solvers in float32. "adamw" applies the ridge part of the
        penalty as decoupled weight decay.
    alpha : float, default=0.0
        Penalty strength; the objective is
        ``mean_i w_i nll_i + alpha * (l1_ratio ||W||_1 + 0.5 (1 - l1_ratio) ||W||_2^2)``
        on the weights only (never the biases).
    l1_ratio : float in [0, 1], default=0.0
        Elastic-net mixing; ``l1_ratio > 0`` gives exact zeros (soft thresholding after each
        stochastic step, bound-constrained split variables with "lbfgs").
    dropout, input_dropout : float in [0, 1), default=0.0
        Inverted-dropout rates on hidden units and on inputs (stochastic solvers only).
    init : str or fitted neurostat estimator, default="glorot_uniform"
        Weight initialization: glorot_uniform, glorot_normal, he_uniform, he_normal,
        lecun_normal, normal, truncated_normal, uniform, orthogonal, zeros (every weight 0: gradient
        descent from the origin; hidden units never break symmetry). Biases start at zero, the
        output bias at the link of the mean response. A fitted estimator with the same inputs
        and hidden layers: its layers before the output layer are copied, the output layer is
        initialized anew (transfer learning as initialization).
    freeze : int, default=0
        Keep the first ``freeze`` hidden layers fixed during fitting (at most as many as there
        are); their parameters are then held fixed, not estimated, by inference too.
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for "auto".
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedules as in scikit-learn: invscaling (sgd only) sets the step to
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, t samples seen; adaptive
        divides it by 5 whenever ``n_iter_no_change`` epochs fail to improve by ``tol``.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, \
n_iter_no_change, max_fun :
        As in scikit-learn's ``MLPClassifier``. ``max_iter`` counts epochs (iterations for
        lbfgs); ``verbose`` shows a progress bar with the loss.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        "auto" trains on CUDA when present. A model fitted on a GPU pickles and predicts on a
        CPU-only machine.
    formula : str or None, default=None
        A Wilkinson formula (formulaic), e.g. ``"y ~ age + C(region) + np.log(income)"``: then
        ``fit(df)`` and ``predict(df)`` take a DataFrame; the design's spec is kept from fit
        (``model_spec_``: levels, transforms) and inference groups each term's columns (a
        categorical term is one joint Wald test). Without a formula, a DataFrame's categorical
        and string columns are one-hot encoded against their first level the same way.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_, intercepts_ : list of ndarray
        Weights (n_in, n_out) and biases per layer.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Only with no hidden layer; for K > 2 classes the first (reference) row is zero.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    loss_curve_ : list of float
        Penalized objective per epoch (per iteration for lbfgs).
    validation_scores_ : list of float or None
        Validation accuracy per epoch with ``early_stopping``; the best weights are restored.
    n_iter_ : int
    converged_ : bool
    module_ : torch.nn.Module
    family_ : neurostat.families.Family
    feature_names_in_ : ndarray of str
        When X has string column names (with a formula or categorical columns, the design's
        column names, statsmodels' spelling: ``C(region)[T.north]``).
    model_spec_ : formulaic.ModelSpec
        With a formula or categorical columns: the design's spec, reused at predict time.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from neurostat import NeuralClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(),
    ...                       NeuralClassifier((16,), max_iter=50, random_state=0)).fit(X, y)
    >>> bool(model.score(X, y) > 0.95)
    True
    """

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        if not (y.ndim == 1 and y.dtype.kind in "biu"):  # 1-D integer labels are classes
            check_classification_targets(y)
        return X, y

    def _encode_target(self, y):
        fresh = not hasattr(self, "classes_") or not (self.warm_start or self._partial)
        fast = _integer_labels(y)
        if fresh:
            self.classes_ = unique_labels(y) if fast is None else fast[0]
        if len(self.classes_) < 2:
            raise ValueError(
                f"The target has only one class ({self.classes_[0]!r}); a classifier needs at "
                "least 2 classes."
            )
        if fast is not None and fresh:
            yi = fast[1]
        elif fast is not None and np.isin(fast[0], self.classes_).all():
            yi = np.searchsorted(self.classes_, fast[0])[fast[1]]
        elif np.isin(y, self.classes_).all():
            yi = LabelEncoder().fit(self.classes_).transform(y)
        else:
            raise ValueError(
                f"y contains labels not seen in classes_ {self.classes_.tolist()}; pass all "
                "classes to the first partial_fit (classes=...) or refit."
            )
        return yi.astype(np.float64) if len(self.classes_) == 2 else yi.astype(np.int64)

    def _make_family(self, y_enc):
        return classification_family(len(self.classes_))

    _classifier = True

    def _output_labels(self, k):
        return None if k == 1 else tuple(self.classes_[1:])

    def _inference_target(self, y):
        """Class indices of the labels ``y`` in ``classes_`` (the fitted classes kept)."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional for a classifier; got shape {y.shape}.")
        classes = self.classes_
        idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        if not np.all(classes[idx] == y):
            raise ValueError(f"y contains labels not in the fitted classes_ {classes.tolist()}.")
        return idx.astype(np.float64) if len(classes) == 2 else idx.astype(np.int64)

    def _validation_score(self, module, X, y, w):
        eta = module(X)
        if eta.shape[1] == 1:
            pred = (eta[:, 0] > 0).to(y.dtype)
        else:
            pred = self.family_.logits(eta).argmax(1).to(y.dtype)
        hit = (pred == y).to(X.dtype)
        return hit.mean() if w is None else (w * hit).sum() / w.sum()

    _partial = False

    def fit(self, X, y=None, sample_weight=None, offset=None):
        self._partial = False
        return super().fit(X, y, sample_weight, offset)

    fit.__doc__ = _BaseNeural.fit.__doc__

    @available_if(_stochastic)
    def partial_fit(self, X, y, classes=None, sample_weight=None, offset=None):
        """One epoch over (X, y) with the current optimizer state (scikit-learn's convention).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call.
        sample_weight, offset : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        first = not self._is_initialized()
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(
                f"classes={list(classes)} differs from the classes of the first partial_fit "
                f"call {self.classes_.tolist()}."
            )
        self._validate_params()
        self._partial = True
        return self._fit(X, y, sample_weight, incremental=True, offset=offset)

    def decision_function(self, X, offset=None):
        """Linear predictor: the logit (n,) for two classes, the K logits (n, K) otherwise."""
        eta = self._linear_predictor(X, offset)
        if eta.shape[1] == 1:
            return eta[:, 0]
        return np.hstack([np.zeros((eta.shape[0], 1)), eta])

    def predict_proba(self, X, offset=None):
        """Class probabilities, shape (n_samples, n_classes)."""
        mu = self._mean(X, offset)
        return np.column_stack([1 - mu, mu]) if mu.ndim == 1 else mu

    def predict_log_proba(self, X, offset=None):
        """Log of the class probabilities of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        offset : array-like of shape (n_samples,), default=None
            Added to the linear predictor, as in fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log P(y = classes_[j] | x)``; ``-inf`` where a probability underflows to 0.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, offset))

    def predict(self, X, offset=None):
        """Most probable class."""
        d = self.decision_function(X, offset)
        idx = (d > 0).astype(int) if d.ndim == 1 else d.argmax(1)
        return self.classes_[idx]

    def score(self, X, y=None, sample_weight=None, offset=None):
        """Accuracy of :meth:`predict` (``y`` from the formula's response when None)."""
        y = _design_response(self, X, y, required=True)
        return accuracy_score(y, self.predict(X, offset), sample_weight=sample_weight)

    @property
    def coef_(self):
        """The logistic (or multinomial logit) regression coefficients of a net with no hidden
        layer.

        The weights of the single linear layer, on the scale of the inputs passed to ``fit``
        (the design's columns with a formula; the L-BFGS solver's internal standardization is
        undone): row ``j`` is the change in the log-odds of ``classes_[j]`` against
        ``classes_[0]`` per unit of each input.

        Returns
        -------
        ndarray of shape (1, n_features) or (n_classes, n_features)
            One row (the log-odds of ``classes_[1]``) for two classes; for K > 2 classes one
            row per class, the first (the reference) zero.

        Raises
        ------
        AttributeError
            When the network has hidden layers (its weights are not coefficients: use
            ``coefs_``, or ``inference()`` for the inputs' effects).
        """
        self._glm_check("coef_")
        w = self.coefs_[0].T
        return w if w.shape[0] == 1 else np.vstack([np.zeros((1, w.shape[1])), w])

    @property
    def intercept_(self):
        """The intercepts of the logistic (or multinomial logit) regression of a net with no
        hidden layer: the log-odds of each class against ``classes_[0]`` at zero inputs.

        Returns
        -------
        ndarray of shape (1,) or (n_classes,)
            For K > 2 classes the first (the reference) is zero.

        Raises
        ------
        AttributeError
            When the network has hidden layers (use ``intercepts_``).
        """
        self._glm_check("intercept_")
        b = self.intercepts_[0]
        return b if b.shape[0] == 1 else np.concatenate([[0.0], b])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class NeuralRegressor(RegressorMixin, _BaseNeural):
    """A neural network regression model with a GLM family (or a distributional one).

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, l1_ratio, dropout, input_dropout, init, \
batch_size, learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state, tol, \
verbose, warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, \
beta_2, epsilon, n_iter_no_change, max_fun, freeze, device, formula :
        As in :class:`NeuralClassifier` (``early_stopping`` scores R^2 on the held-out part).
    family : {"gaussian", "poisson", "binomial", "gamma", "negative_binomial", "tweedie", \
"gaulss"} or Family, default="gaussian"
        The likelihood of the output layer; with no hidden layer and ``solver="lbfgs"`` each
        is its GLM (statsmodels' estimates, standard errors and log-likelihood):

        * "gaussian": identity link (nll ``0.5 (y - mu)^2``; the scale is estimated after the
          fit) - OLS / the elastic net;
        * "poisson": counts ``y >= 0``, log link;
        * "binomial": a proportion ``y`` in [0, 1] with ``sample_weight`` the number of
          trials, logit link (``GLM(Binomial)`` on successes and failures);
        * "gamma": ``y > 0``, log link, dispersion Pearson chi2 / df (``GLM(Gamma(Log()))``);
        * "negative_binomial": NB2 counts, ``Var = mu + alpha mu^2`` with ``alpha`` estimated
          by maximum likelihood and reported as the row ``alpha`` of ``params``
          (statsmodels' ``NegativeBinomial``);
        * "tweedie": compound Poisson-gamma ``y >= 0`` (zeros and positive values), log
          link, power 1.5; another power with a family object,
          ``family=neurostat.engine.glm_families.Tweedie(power=1.3)``;
        * "gaulss": heteroscedastic gaussian, the net outputs the mean and the log standard
          deviation (mgcv's ``gaulss``); ``predict`` gives the mean, and
          ``inference().get_prediction(X).summary_frame(obs=True)`` intervals that widen
          where the noise does.

        Use ``offset=np.log(exposure)`` in fit/predict for rates.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Only with no hidden layer.
    intercept_ : float or ndarray of shape (n_targets,)
    (others as :class:`NeuralClassifier`; ``validation_scores_`` holds R^2.)

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import NeuralRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    >>> ols = NeuralRegressor(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)
    >>> np.round(ols.coef_, 1).tolist()
    [1.0, -2.0, 0.5]
    """

    _parameter_constraints = {
        **_BaseNeural._parameter_constraints,
        "family": [StrOptions(set(REGRESSION_FAMILIES)), Family],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, family="gaussian",
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
        self.family = family

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, multi_output=True,
                             y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        return X, y.astype(np.float64)

    def _encode_target(self, y):
        return y

    def _make_family(self, y_enc):
        if isinstance(self.family, Family):  # a family object with its parameters
            return copy.deepcopy(self.family)
        return REGRESSION_FAMILIES[self.family]()

    def _output_labels(self, k):
        names = getattr(self.family_, "predictors", None)
        return names if names is not None and len(names) == k else super()._output_labels(k)

    def _validation_score(self, module, X, y, w):
        mu = self.family_.mean(module(X))
        w = torch.ones_like(y if y.ndim == 1 else y[:, 0]) if w is None else w
        wcol = w if y.ndim == 1 else w[:, None]
        ybar = (wcol * y).sum(0) / w.sum()
        ss_res = (wcol * (y - mu) ** 2).sum(0)
        ss_tot = (wcol * (y - ybar) ** 2).sum(0)
        return (1 - ss_res / torch.clamp(ss_tot, min=1e-300)).mean()

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, offset=None):
        """One epoch over (X, y) with the current optimizer state (scikit-learn's convention)."""
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True, offset=offset)

    def predict(self, X, offset=None):
        """Mean response ``E[y | x]`` (with ``offset=np.log(exposure)``: the expected count of
        that exposure; without, per unit exposure)."""
        return self._mean(X, offset)

    def score(self, X, y=None, sample_weight=None, offset=None):
        """R^2 of :meth:`predict` (``y`` from the formula's response when None)."""
        y = _design_response(self, X, y, required=True)
        return r2_score(y, self.predict(X, offset), sample_weight=sample_weight)

    @property
    def coef_(self):
        """The GLM coefficients of a net with no hidden layer.

        The weights of the single linear layer, on the scale of the inputs passed to ``fit``
        (the design's columns with a formula; the solvers' internal standardization of the
        inputs and of a gaussian target is undone): the change in the linear predictor (the
        mean for gaussian, the log-mean for the log-link families) per unit of each input. An
        ancillary parameter (the negative binomial's ``alpha``) is not among them: it is a row
        of ``inference().params``.

        Returns
        -------
        ndarray of shape (n_features,) or (n_outputs, n_features)
            One row per linear predictor for several (one per target; ``gaulss``: the mean,
            then the log standard deviation).

        Raises
        ------
        AttributeError
            When the network has hidden layers (its weights are not coefficients: use
            ``coefs_``, or ``inference()`` for the inputs' effects).
        """
        self._glm_check("coef_")
        w = self.coefs_[0].T
        return w[0] if w.shape[0] == 1 else w

    @property
    def intercept_(self):
        """The GLM intercept of a net with no hidden layer: the linear predictor at zero
        inputs (without offset).

        Returns
        -------
        float or ndarray of shape (n_outputs,)
            One per linear predictor when there are several (as :attr:`coef_`'s rows).

        Raises
        ------
        AttributeError
            When the network has hidden layers (use ``intercepts_``).
        """
        self._glm_check("intercept_")
        b = self.intercepts_[0]
        return float(b[0]) if b.shape[0] == 1 else b

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        family = self.family if isinstance(self.family, Family) else \
            REGRESSION_FAMILIES.get(self.family)
        tags.target_tags.positive_only = bool(family and family.nonnegative_target)
        return tags
