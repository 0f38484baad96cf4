"""MultiResponseRegressor: several responses of different kinds from one network.

The lecture's "combinations of the above" as one model: shared hidden layers and one output
head per response (the rows of the output layer that response owns), fitted by the joint
negative log-likelihood of :class:`~neurostat.engine.composite.JointFamily`, read per response
by :class:`~neurostat.inference.multi.MultiResponseResults`.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_consistent_length, validate_data

from .._utils import float64_forward
from ..engine.composite import JOINT_MEMBERS, JointFamily
from ..engine.families import Bernoulli
from ..engine.glm_families import REGRESSION_FAMILIES
from ._base import _BaseNeural, _stochastic
from ._design import design_response

__all__ = ["MultiResponseRegressor"]

_FAMILIES = {**REGRESSION_FAMILIES, "bernoulli": Bernoulli}


class MultiResponseRegressor(RegressorMixin, _BaseNeural):
    """One network, several responses: shared hidden layers, one output head per response.

    Each response has its own family (gaussian with its own dispersion, bernoulli 0/1,
    poisson, negative_binomial with its own alpha, gaulss); the network is fitted by the joint
    negative log-likelihood (responses independent given the inputs; each gaussian response's
    variance profiled out, so the units of one response do not weigh it against the others).
    With ``hidden_layer_sizes=()`` nothing is shared and the fit factorizes: each head is the
    GLM of its response (statsmodels' estimates, standard errors and log-likelihood, per
    response).

    Parameters
    ----------
    families : dict, list, str or None, default=None
        ``{"bp": "gaussian", "diabetic": "bernoulli", "visits": "poisson"}``: the family of
        each response, keyed by the columns of Y (a DataFrame; for an array, its columns in
        the dict's order); a list gives them by position, a string one family for every
        column, None "gaussian" for every column. Families: ``JOINT_MEMBERS``.
    hidden_layer_sizes, activation, solver, alpha, l1_ratio, dropout, input_dropout, init, \
batch_size, learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state, tol, \
verbose, warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, \
beta_2, epsilon, n_iter_no_change, max_fun, freeze, device, formula :
        As :class:`~neurostat.NeuralClassifier` (a formula's left-hand side names the
        responses: ``"bp + diabetic + visits ~ age + C(sex)"``). Gaussian responses are not
        standardized for the stochastic solvers: give them a moderate scale.

    Attributes
    ----------
    responses_ : list of str
        The responses, in the order of the heads.
    response_families_ : dict
        Response -> family name.
    family_ : neurostat.engine.composite.JointFamily
    n_outputs_ : int
        The network's outputs (one per response; two for gaulss).
    (others as :class:`~neurostat.NeuralRegressor`.)

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from neurostat.estimators.multi import MultiResponseRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2))
    >>> Y = pd.DataFrame({"bp": 120 + 5 * X[:, 0] + rng.normal(size=500),
    ...                   "visits": rng.poisson(np.exp(0.3 * X[:, 1]))})
    >>> est = MultiResponseRegressor({"bp": "gaussian", "visits": "poisson"},
    ...                              hidden_layer_sizes=(), solver="lbfgs").fit(X, Y)
    >>> est.predict(X[:2]).round(1).columns.tolist()
    ['bp', 'visits']
    """

    _parameter_constraints = {
        **_BaseNeural._parameter_constraints,
        "families": [None, dict, list, tuple, str],
    }
    _supports_offset = False

    def __init__(self, families=None, hidden_layer_sizes=(100,), activation="relu", *,
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
        self.families = families

    # ------------------------------------------------------------------ responses
    def _spec(self, Y):
        """``(names, family names)`` of the responses of Y (a DataFrame or an array)."""
        fams = self.families
        cols = list(map(str, Y.columns)) if isinstance(Y, pd.DataFrame) else None
        n = Y.shape[1] if Y.ndim == 2 else 1
        if isinstance(fams, dict):
            names = [str(k) for k in fams]
            kinds = [fams[k] for k in fams]
            if cols is not None:
                missing = [k for k in names if k not in cols]
                if missing:
                    raise ValueError(f"families names responses {missing} that Y does not "
                                     f"have; Y has the columns {cols}.")
            elif len(names) != n:
                raise ValueError(f"families has {len(names)} responses but Y has {n} columns.")
        else:
            names = cols if cols is not None else [f"y{j}" for j in range(n)]
            kinds = [fams or "gaussian"] * n if fams is None or isinstance(fams, str) \
                else list(fams)
            if len(kinds) != len(names):
                raise ValueError(f"families has {len(kinds)} entries but Y has "
                                 f"{len(names)} columns.")
        bad = [k for k in kinds if k not in JOINT_MEMBERS]
        if bad:
            raise ValueError(f"families {bad} are not among those of a joint model "
                             f"{JOINT_MEMBERS}.")
        return names, kinds

    def _target_matrix(self, Y, names):
        Y = Y[names] if isinstance(Y, pd.DataFrame) else Y
        try:
            Y = np.array(Y, dtype=np.float64)  # a writeable copy
        except (TypeError, ValueError):
            raise ValueError("Every response must be numeric (bernoulli responses coded 0/1 or "
                             "bool).") from None
        Y = Y[:, None] if Y.ndim == 1 else Y
        if not np.all(np.isfinite(Y)):
            raise ValueError("Y contains NaN or infinity.")
        return Y

    def _validate_xy(self, X, Y, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        if Y is None:
            raise ValueError("MultiResponseRegressor requires y to be passed, but the target y "
                             "is None.")
        if not isinstance(Y, pd.DataFrame):
            Y = np.asarray(Y)
        if reset:
            names, kinds = self._spec(Y)
            self.responses_, self.response_families_ = names, dict(zip(names, kinds))
            self._y_frame, self._y_1d = isinstance(Y, pd.DataFrame), Y.ndim == 1
        Y = self._target_matrix(Y, self.responses_)
        check_consistent_length(X, Y)
        return X, Y

    def _encode_target(self, y):
        return y

    def _make_family(self, y_enc):
        kinds = [self.response_families_[n] for n in self.responses_]
        return JointFamily([_FAMILIES[k]() for k in kinds], self.responses_)

    def _inference_target(self, y):
        Y = self._target_matrix(y if isinstance(y, pd.DataFrame) else np.asarray(y),
                                self.responses_)
        self.family_.validate(Y)
        return Y

    def _validation_score(self, module, X, y, w):
        return -self.family_.loss(module(X), y, w)

    # ------------------------------------------------------------------ inference hooks
    def _inference_family(self, X, y, w, offset):
        eta = torch.as_tensor(float64_forward(self.module_, X, self.device_))
        yt = torch.as_tensor(np.array(y, dtype=np.float64))
        wt = None if w is None else torch.as_tensor(w)
        from ..inference.multi import head_df
        return self.family_.with_dispersions(eta, yt, wt, head_df(self.module_, self.family_))

    def _output_labels(self, k):
        labels = []
        for j, name in enumerate(self.responses_):
            fam = self.family_.families[j]
            cols = self.family_.output_columns(j)
            preds = fam.predictors or ("mean",)
            labels += [name] if len(cols) == 1 else [f"{name}:{p}" for p in preds]
        return tuple(labels)

    def _results_class(self):
        from ..inference.multi import MultiResponseResults
        return MultiResponseResults

    def _describe(self):
        return [("Responses:", str(len(self.responses_))), *super()._describe()]

    # ------------------------------------------------------------------ fitting
    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, Y) with the current optimizer state."""
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)

    # ------------------------------------------------------------------ predicting
    def predict(self, X):
        """Mean of each response: a DataFrame with the responses as columns when Y was one
        (an array otherwise, 1-D for a 1-D y)."""
        mu = self._mean(X)
        mu = mu[:, None] if mu.ndim == 1 else mu
        if self._y_frame:
            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(mu, columns=self.responses_, index=index)
        return mu[:, 0] if self._y_1d else mu

    def score(self, X, y=None, sample_weight=None):
        """R^2 averaged over the responses (scikit-learn's multi-output convention)."""
        from sklearn.metrics import r2_score

        y = design_response(self, X, y, required=True)
        pred = self.predict(X)
        Y = self._target_matrix(y if isinstance(y, pd.DataFrame) else np.asarray(y),
                                self.responses_)
        P = np.asarray(pred, dtype=np.float64).reshape(Y.shape)
        return r2_score(Y, P, sample_weight=sample_weight)

    @property
    def coef_(self):
        """Per network output, the coefficients (no hidden layer), shape (n_outputs, d)."""
        self._glm_check("coef_")
        return self.coefs_[0].T

    @property
    def intercept_(self):
        """Per network output, the intercept of a net with no hidden layer: its linear
        predictor at zero inputs.

        Returns
        -------
        ndarray of shape (n_outputs,)
            In the order of :attr:`coef_`'s rows.

        Raises
        ------
        AttributeError
            When the network has hidden layers (use ``intercepts_``).
        """
        self._glm_check("intercept_")
        return self.intercepts_[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        return tags
