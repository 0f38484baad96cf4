"""Statistical inference for fitted nets: standard errors, effects, tests, summaries.

``inference(est, X=None, y=None, cov_type="nonrobust", *, alpha=0.05, sample_weight=None,
n_bootstrap=200, n_jobs=None, random_state=None)`` (also ``est.inference(...)``) returns an
:class:`InferenceResults` in statsmodels' vocabulary. Everything runs in float64 on a copy of
the fitted network.

How it is put together
----------------------
The estimator hands inference a :class:`StatisticalModel` (``model.py``): a
:class:`Likelihood` (``likelihood.py``: the network as a function of one flat parameter vector
``theta``, the family, the data), the training penalty, the :class:`ParameterLayout` of theta
and the summary header's description. The family owns the math in eta (derivatives, the
information ``G' W G`` for a Jacobian ``G``, per-row scores, residuals, simulation:
:mod:`neurostat.engine.families`), so a new family needs no change here; the Cox family's
risk-set structure is its own business. :func:`~neurostat.inference.statistics.curvature_statistics`
and :func:`~neurostat.inference.statistics.with_covariance` turn the model into a frozen
:class:`FitStatistics`; the results object derives everything from the model and it.

Covariances (``cov_type``), with ``H`` the observed information (the Hessian of the negative
log-likelihood: autograd, closed form for the network's own curvature with one hidden layer),
``F = sum_i G_i' W_i G_i`` the Fisher (generalized Gauss-Newton) information, ``s_i`` the
per-observation scores and ``A`` the Hessian of the penalized objective on the sum scale
(``H + N * alpha * (1 - l1_ratio)`` on the weights, ``N = sum_i w_i``), all divided by the
dispersion:

* ``"nonrobust"``: ``H^-1`` (the inverse observed information); for a penalized fit the
  sandwich ``A^-1 F A^-1`` (for ridge regression ``sigma^2 (X'X + N alpha I)^-1 X'X
  (X'X + N alpha I)^-1``). ``F`` rather than ``H`` in the middle: it is positive
  semi-definite, where the observed information of a penalized net need not be;
* ``"HC0"``: ``A^-1 (sum_i s_i s_i') A^-1``; ``"HC1"``: the same times ``n / (n - df)`` for
  the gaussian family only - statsmodels' convention (its ``Logit``, ``MNLogit`` and ``GLM``
  report HC1 equal to HC0);
* ``"bootstrap"``: the covariance of warm-started refits on case resamples (joblib, so a Dask
  or Ray backend spreads it over a cluster).

``df_model`` is the effective number of parameters ``trace(F A^-1)`` minus the intercepts (the
rank of ``H`` without penalty); AIC and BIC use it. A singular Hessian gets a pseudo-inverse
and an :class:`InferenceWarning`.

Where things go: a new covariance is a function of the model returning a
:class:`FitStatistics` (``statistics.py``); a new test takes an :class:`InferenceResults`
(``hypotheses.py``); a new estimator implements ``_statistical_model``.
"""

from .api import COV_TYPES, inference
from .covariance import MAX_HESSIAN_PARAMS, InferenceWarning
from .likelihood import Likelihood
from .model import ParameterLayout, StatisticalModel
from .results import InferenceResults
from .statistics import FitStatistics
from .summary import Summary

__all__ = [
    "COV_TYPES",
    "MAX_HESSIAN_PARAMS",
    "FitStatistics",
    "InferenceResults",
    "InferenceWarning",
    "Likelihood",
    "ParameterLayout",
    "StatisticalModel",
    "Summary",
    "inference",
]
