"""What a network estimator hands inference: its fit as a statistical model.

:class:`StatisticalModelMixin` gives every network estimator ``inference()``, ``summary()`` and
``_statistical_model()``, which builds the :class:`~neurostat.inference.StatisticalModel`
(likelihood, penalty, parameter layout, summary header) from the fitted estimator, and the hooks
a subclass overrides: ``_describe`` (its summary header lines), ``_inference_target`` (y
encoded without touching the fit), ``_output_labels``, ``_has_intercept``, ``_results_class``.
Inference itself never reads the estimator's attributes.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import distributed
from .._utils import feature_names
from ..engine.penalties import ElasticNetPenalty
from . import _design


class StatisticalModelMixin:
    """Inference for a fitted network estimator (mixed into ``_BaseNeural``)."""

    # ------------------------------------------------------------------ statistics
    def inference(self, X=None, y=None, cov_type="nonrobust", *, alpha=0.05,
                  sample_weight=None, n_bootstrap=200, n_jobs=None, random_state=None,
                  groups=None, effects="crossfit", n_folds=5, offset=None):
        """Statistical results for the fitted net (see :func:`neurostat.inference.inference`).

        Returns
        -------
        neurostat.inference.InferenceResults
        """
        from ..inference import inference
        return inference(self, X, y, cov_type, alpha=alpha, sample_weight=sample_weight,
                         n_bootstrap=n_bootstrap, n_jobs=n_jobs, random_state=random_state,
                         groups=groups, effects=effects, n_folds=n_folds, offset=offset)

    def summary(self, **kwargs):
        """``self.inference(**kwargs).summary()``: a statsmodels-style table."""
        return self.inference(**kwargs).summary()

    def _statistical_model(self, X=None, y=None, sample_weight=None, groups=None, offset=None):
        """The fitted net as a :class:`neurostat.inference.StatisticalModel` on (X, y, w,
        offset) (default: the training data, kept by reference by ``fit``); ``groups``
        (clusters of the rows, for ``cov_type="cluster"``) default to those given to ``fit``
        with the training data."""
        from ..inference.likelihood import Likelihood
        from ..inference.model import ParameterLayout, StatisticalModel

        if groups is None and X is None:
            groups = getattr(self, "_training_groups", None)
        lik = distributed.chunked_likelihood(self, X, y, sample_weight)  # dask data, else None
        if lik is None:
            offset = self._inference_offset(X, offset)
            X, y, w = self._inference_data(X, y, sample_weight)
            y = self._inference_target(y)
            lik = Likelihood(self.module_, self._inference_family(X, y, w, offset), X, y, w,
                             offset=offset)
        elif offset is not None:
            raise ValueError("offsets with data held in chunks (dask) are not supported; "
                             "fit the offset as a column of X or compute the data first.")
        layout = ParameterLayout.from_likelihood(lik, feature_names(self, lik.X.shape[1]),
                                                 has_intercept=self._has_intercept,
                                                 terms=_design.design_terms(self))
        return StatisticalModel(
            likelihood=lik, penalty=ElasticNetPenalty(self.alpha, self.l1_ratio),
            layout=layout, name=type(self).__name__, header=tuple(self._describe()),
            outputs=self._output_labels(layout.n_outputs),
            classes=getattr(self, "classes_", None) if self._classifier else None,
            converged=bool(getattr(self, "converged_", True)),
            n_iter=int(getattr(self, "n_iter_", 0)), prepare_X=self._validate_X_predict,
            results_class=self._results_class(), groups=groups,
            chunked=distributed.CHUNKED, regime=self._regime(),
            output_level=self._output_level)

    _has_intercept = True
    _classifier = False

    def _results_class(self):
        from ..inference.results import InferenceResults
        return InferenceResults

    def _output_labels(self, k):
        return None if k == 1 else tuple(range(k))

    _architecture = "mlp"
    _output_level = "class"

    def _regime(self):
        """The fit's settings that the calibration study varies (its envelope's keys)."""
        return {"architecture": self._architecture, "hidden": list(self._hidden_sizes()),
                "activation": str(self.activation), "solver": str(self.solver),
                "alpha": float(self.alpha), "dropout": float(self.dropout)}

    def _describe(self):
        """The summary header's lines about this estimator's structure and fit."""
        from ..inference.summary import penalty_text

        hidden = self._hidden_sizes()
        return [
            ("Hidden layers:", str(hidden) if hidden else "none (GLM)"),
            ("Activation:", self.activation if hidden else "-"),
            ("Penalty:", penalty_text(ElasticNetPenalty(self.alpha, self.l1_ratio))),
            ("Dropout:", f"{self.dropout:g} / input {self.input_dropout:g}"),
            ("Solver:", str(self.solver)),
        ]

    def _inference_data(self, X, y, sample_weight):
        """The data to condition on: the training data by default, else validated (X, y, w)."""
        check_is_fitted(self, "module_")
        y = _design.design_response(self, X, y) if X is not None else y
        if (X is None) != (y is None):
            raise ValueError("Pass both X and y, or neither (then the training data are used).")
        if X is None:
            data = getattr(self, "_training_data", None)
            if data is None:
                raise ValueError(
                    "The training data are not available (they are kept by reference after "
                    "fit but not pickled); pass X and y to inference()."
                )
            X, y, sw = data
            if sample_weight is not None:
                sw = self._sample_weight(sample_weight, X, normalize=False)
            return X, y, sw
        X = self._validate_X_predict(X)
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)}.")
        return X, y, self._sample_weight(sample_weight, X, normalize=False)

    def _inference_target(self, y):
        """``y`` encoded as the family expects, without touching the fitted estimator."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity.")
        return y

