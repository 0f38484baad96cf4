"""Predictions with delta-method standard errors, marginal effects and partial dependence."""

import warnings

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps
from torch.func import jacrev, vmap

from .._utils import check_offset, is_dask_collection
from .covariance import InferenceWarning
from .effects import average_derivatives, delta_cov


def _data(res, X, offset=None):
    """``(X, offset)`` as tensors: the data's, or validated new inputs and their offset."""
    lik = res.likelihood
    if X is None:
        if offset is not None:
            raise ValueError("Pass X with the offset (without X the data's own offset is used).")
        return lik.X, lik.offset
    X = res.model.prepare_X(X)
    Xt = torch.as_tensor(np.array(X, dtype=np.float64, order="C"))
    if offset is None:
        return Xt, None
    o = torch.as_tensor(check_offset(offset, Xt.shape[0]))
    return Xt, lik.family.offset_eta(o, lik._n_out())


def _mean2d(lik):
    def mean(e):
        m = lik.mean(e)
        return m[:, None] if m.ndim == 1 else m
    return mean


def _row_jacobian(lik, X, fn, offset=None):
    """(n, m, p) Jacobian of fn(eta(x_i)) with respect to theta, in row blocks."""
    theta = lik.theta
    offset = torch.zeros(X.shape[0], lik._n_out(), dtype=X.dtype) if offset is None else offset

    def one(t, x, o):
        return fn(lik.eta(t, x[None], o[None]))[0]

    out, block = [], max(1, (1 << 22) // max(1, lik.n_params * 4))
    for s in range(0, X.shape[0], block):
        out.append(vmap(jacrev(one), in_dims=(None, 0, 0))(
            theta, X[s:s + block], offset[s:s + block]).detach())
    return torch.cat(out) if out else torch.zeros(0, 1, lik.n_params, dtype=torch.float64)


def _quadratic(G, cov):
    """Per-row ``G_i C G_i'`` diagonal: (n, m) variances, skipping NaN (fixed) entries.

    ``cov`` is the (p, p) covariance of theta, or ``(index, cov)`` of a subspace of it (the
    output layer of a large net), with ``G`` (n, m, p) or already restricted to ``index``.
    """
    if isinstance(cov, tuple):
        idx, cov = cov
        if G.shape[-1] != len(idx):
            G = G[:, :, torch.as_tensor(idx)]
    ok = ~np.isnan(np.diag(cov))
    C = torch.as_tensor(cov[np.ix_(ok, ok)])
    Gk = G[:, :, torch.as_tensor(ok)]
    return torch.einsum("nmp,pq,nmq->nm", Gk, C, Gk).clamp_min(0).numpy()


def _theta_cov(res):
    """The covariance of theta, or ``(index, cov)`` of its output-layer subspace."""
    return res.cov_theta if res.cov_theta is not None else res.statistics.cov_subspace


def _jacobian(res, Xt, fn, offset=None):
    """(n, m, p) Jacobian of fn(eta) in theta, or of the output layer's entries only for a net
    whose covariance is that of its output layer."""
    lik = res.likelihood
    if res.cov_theta is not None:
        return _row_jacobian(lik, Xt, fn, offset)
    from .lastlayer import design

    G = design(res.model, Xt)
    with torch.no_grad():
        eta = lik.eta(lik.theta, Xt, offset)
    D = torch.func.vmap(torch.func.jacrev(lambda e: fn(e[None])[0]))(eta)  # (n, m, k)
    return torch.einsum("nmk,nkq->nmq", D, G)


class PredictionResults:
    """Predicted means with standard errors; ``summary_frame(alpha)`` as statsmodels'.

    For one linear predictor with a monotone link the interval is computed on the link scale
    and mapped through the inverse link (statsmodels' GLM convention); ``mean_se`` is the delta
    method on the response scale (several responses: each on its own link scale). For several
    classes the intervals are ``mean +- q se`` clipped to [0, 1]. For a gaussian response
    (``obs_var``, the variance of a new observation: the dispersion, or ``sigma(x)^2`` of the
    heteroscedastic gaussian)
    ``summary_frame(obs=True)`` adds prediction intervals ``mean +- q sqrt(se^2 + obs_var)``,
    statsmodels' ``obs_ci_lower`` / ``obs_ci_upper``.
    """

    def __init__(self, predicted_mean, se_mean, linpred, se_linpred, index, use_t, df, link,
                 obs_var=None, obs_total=False):
        self.predicted_mean = predicted_mean
        self.se_mean = se_mean
        self.linpred = linpred
        self.se_linpred = se_linpred
        self.obs_var = obs_var
        #: ``obs_var`` is already the whole prediction-error variance (held-out residuals)
        self.obs_total = obs_total
        self._index, self._use_t, self._df, self._link = index, use_t, df, link

    def _q(self, alpha):
        return sps.t.isf(alpha / 2, self._df) if self._use_t else sps.norm.isf(alpha / 2)

    def conf_int(self, alpha=0.05):
        """Confidence intervals of the predicted means (of ``E[y | x]``, not of a new y).

        For one linear predictor the interval is ``linpred +- q se_linpred`` on the link scale
        mapped through the inverse link (so it stays inside the mean's range and is not
        symmetric about it), as statsmodels' GLM ``get_prediction``; several responses, each
        the inverse link of its own linear predictor, get the same per response. Class
        probabilities get ``predicted_mean +- q se_mean``, the delta method on the response
        scale, clipped to [0, 1]. ``q`` is the ``1 - alpha / 2`` quantile of
        the t distribution on the residual df where the family uses t (``Family.use_t``: an
        estimated dispersion) and the covariance is nonrobust, else of the standard normal.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the pointwise coverage.

        Returns
        -------
        ndarray of shape (n, 2)
            Lower and upper bounds, one row per entry of ``predicted_mean``.
        """
        q = self._q(alpha)
        if self.linpred is not None:
            lo = self._link(self.linpred - q * self.se_linpred)
            hi = self._link(self.linpred + q * self.se_linpred)
            return np.column_stack([np.minimum(lo, hi), np.maximum(lo, hi)])
        lo = np.clip(self.predicted_mean - q * self.se_mean, 0, 1)
        hi = np.clip(self.predicted_mean + q * self.se_mean, 0, 1)
        return np.column_stack([lo, hi])

    def summary_frame(self, alpha=0.05, obs=False):
        """The predictions as a table with statsmodels' column names.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage of the intervals.
        obs : bool, default=False
            Add prediction intervals for a new observation, ``obs_ci_lower`` /
            ``obs_ci_upper`` = ``mean +- q sqrt(mean_se^2 + obs_var)``: the mean's uncertainty
            plus the noise variance (gaussian responses only). For a net with no residual df
            (see :func:`get_prediction`) ``mean +- q sqrt(obs_var)``, ``obs_var`` being the
            held-out prediction error's variance.

        Returns
        -------
        DataFrame
            ``mean``, ``mean_se`` (delta-method standard error on the response scale),
            ``mean_ci_lower``, ``mean_ci_upper`` (:meth:`conf_int`), and with ``obs`` the
            prediction interval; one row per input row (per row and class for several
            classes).

        Raises
        ------
        ValueError
            ``obs=True`` for a response without a gaussian noise variance.
        """
        ci = self.conf_int(alpha)
        frame = pd.DataFrame({"mean": self.predicted_mean, "mean_se": self.se_mean,
                              "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1]},
                             index=self._index)
        if obs:
            if self.obs_var is None:
                raise ValueError("obs=True (prediction intervals for a new observation) needs "
                                 "a gaussian response: family 'gaussian' or 'gaulss'.")
            var = self.obs_var if self.obs_total else self.se_mean**2 + self.obs_var
            half = self._q(alpha) * np.sqrt(var)
            frame["obs_ci_lower"] = self.predicted_mean - half
            frame["obs_ci_upper"] = self.predicted_mean + half
        return frame


def link_scale_prediction(lik, Xt, eta, columns, family, cov_theta, use_t, df, scale,
                          jacobian=None):
    """The prediction of one response whose mean is ``family.mean(eta[:, columns])`` and
    depends on the first of those columns only (any other is ancillary or of the noise: the
    negative binomial's log alpha, the heteroscedastic gaussian's log sd): the interval on
    that linear predictor mapped through the inverse link. ``jacobian(fn)``: the (n, m, p)
    Jacobian of fn(eta) in theta (default: by rows over every parameter)."""
    c0 = columns[0]
    pick = lambda e: e[:, c0:c0 + 1]  # noqa: E731
    G = _row_jacobian(lik, Xt, pick) if jacobian is None else jacobian(pick)
    se_eta = np.sqrt(_quadratic(G, cov_theta))[:, 0]
    block = eta[:, columns].detach()
    rest = block[:, 1:]

    def mean_of(v):
        m = family.mean(torch.cat([v[:, None], rest], 1))
        return m[:, 0] if m.ndim == 2 else m

    e = block[:, 0].clone().requires_grad_(True)
    (dmu,) = torch.autograd.grad(mean_of(e).sum(), e)
    n = block.shape[0]
    vr = getattr(family, "response_variance", None)
    return PredictionResults(mean_of(block[:, 0]).detach().numpy(),
                             np.abs(dmu.numpy()) * se_eta, block[:, 0].numpy(), se_eta,
                             pd.RangeIndex(n), use_t, df,
                             lambda v: mean_of(torch.as_tensor(v)).detach().numpy(),
                             None if vr is None else np.asarray(vr(block, scale)).reshape(n))


def get_prediction(res, X=None, offset=None):
    """Predicted means at X (default: the data) with delta-method standard errors from the
    parameter covariance (:class:`PredictionResults`).

    A net with as many effective parameters as rows has no residual df: its training
    residuals estimate neither the dispersion nor, through a Hessian that is singular along
    its unidentified directions, the uncertainty of the mean (the calibration study's
    unpenalized (64,) net at n=300 had delta-method mean SEs 10-20 times the response's SD).
    Its cross-fitted results carry the held-out residuals' mean square instead, the
    expected squared error of a net fitted without the row - noise plus the net's own error -,
    and the prediction is then reported as what that estimates: ``mean_se`` and the mean's
    interval NaN (with an :class:`InferenceWarning`) and the observation interval
    ``mean +- z sqrt(held-out mean square)``, a cross-validated prediction interval.
    """
    lik = res.likelihood
    if is_dask_collection(X) or (X is None and is_dask_collection(lik.X)):
        if res.model.chunked is None:
            raise TypeError(f"{res.model.name} does not predict on dask collections.")
        if offset is not None:
            raise ValueError("offsets with data held in chunks (dask) are not supported.")
        return res.model.chunked.get_prediction(res, X)  # dask results, chunk by chunk
    fam = lik.family
    # t quantiles where the family's dispersion is estimated with the residual df
    use_t = bool(fam.use_t and res.cov_type == "nonrobust")
    Xt, off = _data(res, X, offset)
    with torch.no_grad():
        eta = lik.eta(lik.theta, Xt, off)
        mu = _mean2d(lik)(eta)
    n, m = mu.shape
    cov = _theta_cov(res)
    if _held_out_df(res) is not None and fam.location_scale and m == 1:
        return _held_out_prediction(res, eta, mu)
    if m == 1:
        return link_scale_prediction(lik, Xt, eta, list(range(eta.shape[1])), fam, cov, use_t,
                                     _scale_df(res), res.scale,
                                     lambda fn: _jacobian(res, Xt, fn, off))
    G = _jacobian(res, Xt, _mean2d(lik), off)
    se = np.sqrt(_quadratic(G, cov))
    classes = res.model.classes if res.model.classes is not None else np.arange(m)
    index = pd.MultiIndex.from_product([range(n), list(classes)[:m]], names=["row", "class"])
    obs = (np.broadcast_to(np.asarray(res.scale, dtype=np.float64), (n, m)).ravel()
           if fam.location_scale else None)
    linpred = se_linpred = link = None
    if not fam.classification and eta.shape[1] == m:
        # several responses, each the inverse link of its own linear predictor: intervals on
        # each link scale, mapped back (class probabilities keep mean +- q se in [0, 1])
        se_linpred = np.sqrt(_quadratic(_jacobian(res, Xt, lambda e: e, off), cov)).ravel()
        linpred = eta.numpy().ravel()
        link = lambda v: _mean2d(lik)(torch.as_tensor(v).reshape(-1, m)).numpy().ravel()  # noqa: E731
    return PredictionResults(mu.numpy().ravel(), se.ravel(), linpred, se_linpred, index, use_t,
                             _scale_df(res), link, obs)


def _held_out_prediction(res, eta, mu):
    """The prediction of a net without residual df (see :func:`get_prediction`)."""
    warnings.warn(
        "The fit has no residual df: the uncertainty of its mean is not estimable from the "
        "training fit (mean_se and the mean's interval are NaN); the observation interval is "
        "mean +- z sqrt(s2) with s2 the cross-fitted held-out residuals' mean square "
        f"({float(res.scale):.4g}), a cross-validated prediction interval.",
        InferenceWarning, stacklevel=3)
    n = mu.shape[0]
    nan = np.full(n, np.nan)
    fam = res.likelihood.family
    return PredictionResults(
        mu.numpy().ravel(), nan, eta[:, 0].numpy(), nan, pd.RangeIndex(n), False,
        _scale_df(res), lambda v: fam.mean(torch.as_tensor(v)).numpy(),
        np.full(n, float(res.scale)), obs_total=True)


def _held_out_df(res):
    """The df of a held-out dispersion, or None (also for the stand-in of the results that
    the chunked predictions pass, which has no ``statistics``)."""
    return getattr(getattr(res, "statistics", None), "scale_df", None)


def _scale_df(res):
    """The t reference's df: the residual df, or that of a held-out dispersion."""
    df = _held_out_df(res)
    return res.df_resid if df is None else df


class MarginalEffects:
    """Average marginal effects; ``summary_frame(alpha)`` with statsmodels' column names."""

    def __init__(self, margeff, cov, index, scale):
        self.margeff = margeff
        self.margeff_cov = cov
        self.margeff_se = np.sqrt(np.clip(np.diag(cov), 0, None))
        self.scale = scale
        self._index = index

    def summary_frame(self, alpha=0.05):
        """The average marginal effects with delta-method standard errors, Wald z tests and
        normal intervals, as statsmodels' ``get_margeff().summary_frame()``.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage of the intervals.

        Returns
        -------
        DataFrame
            One row per input (per class and input for several classes): ``dy/dx``,
            ``Std. Err.``, ``z`` (``dy/dx / Std. Err.``), ``Pr(>|z|)`` (two-sided normal
            p-value of no average effect), ``Conf. Int. Low`` and ``Cont. Int. Hi.`` (sic,
            statsmodels' spelling) = ``dy/dx -+ z_{1-alpha/2} Std. Err.``.
        """
        q = sps.norm.isf(alpha / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.margeff / self.margeff_se
        return pd.DataFrame({
            "dy/dx": self.margeff, "Std. Err.": self.margeff_se, "z": z,
            "Pr(>|z|)": 2 * sps.norm.sf(np.abs(z)),
            "Conf. Int. Low": self.margeff - q * self.margeff_se,
            "Cont. Int. Hi.": self.margeff + q * self.margeff_se,  # sic, as statsmodels
        }, index=self._index)


def get_margeff(res, scale="response"):
    """Average over the data of ``d mean(x_i) / d x_i`` ("response") or ``d eta / d x``
    ("link"), with delta-method covariance; equals statsmodels' ``get_margeff(at="overall")``
    for a GLM. For several classes every class (reference included) gets a row per input."""
    if scale not in ("response", "link"):
        raise ValueError(f"scale must be 'response' or 'link'; got {scale!r}.")
    lik = res.likelihood
    terms = list(res.model.layout.input_names)
    debiased = res.statistics.effects
    if debiased is not None and scale == "response":
        f, cov = debiased.margeff, debiased.margeff_cov
    elif debiased is not None:  # the link-scale effects are the params without intercepts
        names = res.params.index[:debiased.params.size].get_level_values(-1)
        keep = np.array([t != "intercept" for t in names])
        f, cov = debiased.params[keep], debiased.cov[np.ix_(keep, keep)]
    else:
        k = res.model.layout.n_outputs  # the network's outputs (not ancillary predictors)
        if getattr(lik, "chunked", False):  # data in chunks: reduced over them
            f, D = lik.mean_derivatives() if scale == "response" else \
                lik.average_derivatives(intercept=False)
        else:
            transform = _mean2d(lik) if scale == "response" else (
                None if lik._n_out() == k else (lambda e: e[:, :k]))
            f, D = average_derivatives(lik, lik.theta, lik.X.numpy(), transform,
                                       intercept=False,
                                       sample_weight=None if lik.w is None else lik.w.numpy())
        cov = delta_cov(D, res.cov_theta)
    m = f.size // len(terms)
    if m == 1:
        index = pd.Index(terms)
    else:
        classes = res.model.classes
        outer = list(classes) if scale == "response" and classes is not None \
            else list(res.model.outputs)
        index = pd.MultiIndex.from_product([outer, terms],
                                           names=[res.model.output_level, "term"])
    return MarginalEffects(f, cov, index, scale)


def partial_dependence(res, feature, grid, scale="response", max_rows=1000, random_state=0):
    """Partial dependence ``mean_i g(x_i with x_feature = v)`` over ``grid`` with pointwise
    delta-method standard errors. Returns ``(values (len(grid), m), se (len(grid), m))``.

    The mean over rows is weighted by the fit's frequency weights (scikit-learn's
    ``partial_dependence(..., sample_weight=w)``; integer weights equal repeated rows). Over
    ``max_rows`` rows, a uniform subsample of rows (with their weights) is averaged.
    """
    lik = res.likelihood
    X, w = lik.X, lik.w
    if X.shape[0] > max_rows:
        idx = torch.as_tensor(np.sort(np.random.default_rng(random_state).choice(
            X.shape[0], max_rows, replace=False)))
        X, w = X[idx], (None if w is None else w[idx])
    fn = _mean2d(lik) if scale == "response" else (lambda e: e)

    def average(values):  # (n, m) -> (m,)
        return values.mean(0) if w is None else (w[:, None] * values).sum(0) / w.sum()

    def pd_curve(t):
        vals = []
        for v in grid:
            Xv = X.clone()
            Xv[:, feature] = float(v)
            vals.append(average(fn(lik.eta(t, Xv))))
        return torch.stack(vals)  # (g, m)

    with torch.no_grad():
        values = pd_curve(lik.theta).numpy()
    J = jacrev(pd_curve)(lik.theta).detach()  # (g, m, p)
    se = np.sqrt(_quadratic(J, _theta_cov(res)))
    return values, se
