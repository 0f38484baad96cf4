"""Statistical inference for fitted nets: standard errors, effects, tests, summaries.

``inference(est, X=None, y=None, cov_type="nonrobust", *, alpha=0.05, sample_weight=None,
n_bootstrap=200, n_jobs=None, random_state=None)`` (also ``est.inference(...)``) returns an
:class:`InferenceResults` in statsmodels' vocabulary. Everything runs in float64 on a copy of
the fitted network.

Covariances (``cov_type``), with ``H`` the Hessian of the negative log-likelihood (autograd;
closed form for the network's own curvature with one hidden layer), ``s_i`` the per-observation
score contributions and ``A`` the Hessian of the penalized objective on the sum scale
(``H + n * alpha * (1 - l1_ratio)`` on the weights, divided by the dispersion):

* ``"nonrobust"``: ``H^-1`` (the inverse observed information); for a penalized fit the
  sandwich ``A^-1 H A^-1`` (for ridge regression ``sigma^2 (X'X + n alpha I)^-1 X'X
  (X'X + n alpha I)^-1``);
* ``"HC0"``: ``A^-1 (sum_i s_i s_i') A^-1``; ``"HC1"``: the same times ``n / (n - df)`` for
  the gaussian family only - statsmodels' convention (its ``Logit``, ``MNLogit`` and ``GLM``
  report HC1 equal to HC0);
* ``"bootstrap"``: the covariance of warm-started refits on case resamples (joblib, so a Dask
  or Ray backend spreads it over a cluster).

``df_model`` is the effective number of parameters ``trace(H A^-1)`` minus the intercepts (the
rank of ``H`` without penalty); AIC and BIC use it. A singular Hessian gets a pseudo-inverse
and an :class:`InferenceWarning`.

Extension point: new likelihoods
--------------------------------
All of the above is computed from a :class:`Likelihood` (``neurostat.inference.likelihood``).
An estimator whose likelihood is not the default (``family_.loglik`` summed over independent
rows), e.g. the Cox partial likelihood, defines a method

``est._inference_likelihood(X, y_enc, sample_weight) -> Likelihood``

returning a subclass that overrides what differs:

* ``loglik(self, eta, rows=slice(None)) -> scalar tensor``: the total log-likelihood at linear
  predictor ``eta`` (n, k) (autograd differentiates it twice); set the class attribute
  ``additive = False`` when it does not split over rows (then it is always called with all
  rows and ``hessian_eta`` is dense);
* ``score_obs(self, theta=None) -> tensor (n, p)``: per-observation score contributions for the
  robust sandwich (for Cox: Lin & Wei's score residuals, built from ``self.jacobian(theta)``
  (n, k, p) and ``eta``); the default chain rule is only right for additive likelihoods;
* ``hessian_eta(self, eta, rows)`` (optional): ``-d^2 loglik / d eta^2``, (n, k, k) per row if
  additive, else (n*k, n*k); the default uses autograd on ``loglik``;
* ``null_loglik(self) -> float``: the log-likelihood of the null model (for Cox: all eta = 0);
* ``nobs`` (property) and ``mean(self, eta)`` (the response-scale prediction, used by
  ``get_prediction``);
* ``curvatures(self, theta=None) -> (H, F)`` (optional, for speed): the observed information
  ``H`` and the Fisher / Gauss-Newton information ``F``, both (p, p) on the sum scale. The
  default is ``F = G' W G`` and ``H = F - R`` (``G`` the Jacobian of eta from
  ``self.jacobian``, ``W`` from ``hessian_eta``, ``R`` the network's curvature weighted by
  ``d loglik / d eta``), summed in row blocks when ``additive``.

``H`` gives the nonrobust covariance, ``F`` the "meat" of penalized sandwiches and the effective
df, ``score_obs`` the robust sandwich; every effect, test and summary follows unchanged. The
parametric-bootstrap LR test also needs ``family.simulate(mu, scale, rng)`` for families other
than the four built in.
"""

from .core import COV_TYPES, MAX_HESSIAN_PARAMS, inference
from .covariance import InferenceWarning
from .likelihood import Likelihood
from .results import InferenceResults
from .summary import Summary

__all__ = [
    "COV_TYPES",
    "MAX_HESSIAN_PARAMS",
    "InferenceResults",
    "InferenceWarning",
    "Likelihood",
    "Summary",
    "inference",
]
