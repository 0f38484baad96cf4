"""Predictions with delta-method standard errors, marginal effects and partial dependence."""

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps
from torch.func import jacrev, vmap

from .._utils import is_dask_collection
from .effects import average_derivatives, delta_cov


def _data(res, X):
    if X is None:
        return res.likelihood.X
    X = res.model.prepare_X(X)
    return torch.as_tensor(np.array(X, dtype=np.float64, order="C"))


def _mean2d(lik):
    def mean(e):
        m = lik.mean(e)
        return m[:, None] if m.ndim == 1 else m
    return mean


def _row_jacobian(lik, X, fn):
    """(n, m, p) Jacobian of fn(eta(x_i)) with respect to theta, in row blocks."""
    theta = lik.theta

    def one(t, x):
        return fn(lik.eta(t, x[None]))[0]

    out, block = [], max(1, (1 << 22) // max(1, lik.n_params * 4))
    for s in range(0, X.shape[0], block):
        out.append(vmap(jacrev(one), in_dims=(None, 0))(theta, X[s:s + block]).detach())
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


def _jacobian(res, Xt, fn):
    """(n, m, p) Jacobian of fn(eta) in theta, or of the output layer's entries only for a net
    whose covariance is that of its output layer (``fn=None``: eta itself)."""
    lik = res.likelihood
    if res.cov_theta is not None:
        return _row_jacobian(lik, Xt, (lambda e: e) if fn is None else fn)
    from .lastlayer import design

    G = design(res.model, Xt)
    if fn is None:
        return G
    with torch.no_grad():
        eta = lik.eta(lik.theta, Xt)
    D = torch.func.vmap(torch.func.jacrev(lambda e: fn(e[None])[0]))(eta)  # (n, m, k)
    return torch.einsum("nmk,nkq->nmq", D, G)


class PredictionResults:
    """Predicted means with standard errors; ``summary_frame(alpha)`` as statsmodels'.

    For one linear predictor with a monotone link the interval is computed on the link scale
    and mapped through the inverse link (statsmodels' GLM convention); ``mean_se`` is the delta
    method on the response scale. For several classes the intervals are ``mean +- q se``
    clipped to [0, 1]. For a gaussian response ``summary_frame(obs=True)`` adds observation
    intervals ``mean +- q sqrt(mean_se^2 + scale)`` (statsmodels' OLS ``obs_ci_lower`` /
    ``obs_ci_upper``).
    """

    def __init__(self, predicted_mean, se_mean, linpred, se_linpred, index, use_t, df, link,
                 obs_scale=None):
        self.predicted_mean = predicted_mean
        self.se_mean = se_mean
        self.linpred = linpred
        self.se_linpred = se_linpred
        self.obs_scale = obs_scale
        self._index, self._use_t, self._df, self._link = index, use_t, df, link

    def _q(self, alpha):
        return sps.t.isf(alpha / 2, self._df) if self._use_t else sps.norm.isf(alpha / 2)

    def conf_int(self, alpha=0.05):
        q = self._q(alpha)
        if self.linpred is not None:
            lo = self._link(self.linpred - q * self.se_linpred)
            hi = self._link(self.linpred + q * self.se_linpred)
            return np.column_stack([np.minimum(lo, hi), np.maximum(lo, hi)])
        lo = np.clip(self.predicted_mean - q * self.se_mean, 0, 1)
        hi = np.clip(self.predicted_mean + q * self.se_mean, 0, 1)
        return np.column_stack([lo, hi])

    def summary_frame(self, alpha=0.05, obs=False):
        """``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` (and with ``obs``, the
        observation intervals ``obs_ci_lower``, ``obs_ci_upper``)."""
        ci = self.conf_int(alpha)
        frame = pd.DataFrame({"mean": self.predicted_mean, "mean_se": self.se_mean,
                              "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1]},
                             index=self._index)
        if obs:
            if self.obs_scale is None:
                raise ValueError(
                    "Observation intervals need a gaussian (location-scale) response: for "
                    "counts and classes the predictive distribution is the family's own, "
                    "with the predicted mean (use family.simulate or its quantiles).")
            half = self._q(alpha) * np.sqrt(self.se_mean**2 + np.ravel(self.obs_scale))
            frame["obs_ci_lower"] = self.predicted_mean - half
            frame["obs_ci_upper"] = self.predicted_mean + half
        return frame


def get_prediction(res, X=None):
    """Predicted means at X (default: the data) with delta-method standard errors from the
    parameter covariance (:class:`PredictionResults`)."""
    lik = res.likelihood
    if is_dask_collection(X) or (X is None and is_dask_collection(lik.X)):
        if res.model.chunked is None:
            raise TypeError(f"{res.model.name} does not predict on dask collections.")
        return res.model.chunked.get_prediction(res, X)  # dask results, chunk by chunk
    fam = lik.family
    use_t = bool(fam.has_scale and res.cov_type == "nonrobust")
    obs_scale = res.scale if fam.location_scale else None
    Xt = _data(res, X)
    with torch.no_grad():
        eta = lik.eta(lik.theta, Xt)
        mu = _mean2d(lik)(eta)
    n, m = mu.shape
    cov = _theta_cov(res)
    if eta.shape[1] == 1 and m == 1:
        G = _jacobian(res, Xt, None)
        se_eta = np.sqrt(_quadratic(G, cov))[:, 0]
        e = eta[:, 0].detach().requires_grad_(True)
        (dmu,) = torch.autograd.grad(_mean2d(lik)(e[:, None]).sum(), e)
        link = lambda v: _mean2d(lik)(torch.as_tensor(v)[:, None])[:, 0].numpy()  # noqa: E731
        return PredictionResults(mu[:, 0].numpy(), np.abs(dmu.numpy()) * se_eta,
                                 eta[:, 0].numpy(), se_eta, pd.RangeIndex(n), use_t,
                                 res.df_resid, link, obs_scale)
    G = _jacobian(res, Xt, _mean2d(lik))
    se = np.sqrt(_quadratic(G, cov))
    classes = res.model.classes if res.model.classes is not None else np.arange(m)
    index = pd.MultiIndex.from_product([range(n), list(classes)[:m]], names=["row", "class"])
    obs = None if obs_scale is None else np.broadcast_to(obs_scale, (n, m)).ravel()
    return PredictionResults(mu.numpy().ravel(), se.ravel(), None, None, index, use_t,
                             res.df_resid, None, obs)


class MarginalEffects:
    """Average marginal effects; ``summary_frame(alpha)`` with statsmodels' column names."""

    def __init__(self, margeff, cov, index, scale):
        self.margeff = margeff
        self.margeff_cov = cov
        self.margeff_se = np.sqrt(np.clip(np.diag(cov), 0, None))
        self.scale = scale
        self._index = index

    def summary_frame(self, alpha=0.05):
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
        keep = np.array([t != "intercept" for t in res.params.index.get_level_values(-1)])
        f, cov = debiased.params[keep], debiased.cov[np.ix_(keep, keep)]
    else:
        transform = _mean2d(lik) if scale == "response" else None
        f, D = average_derivatives(lik, lik.theta, lik.X.numpy(), transform, intercept=False,
                                   sample_weight=None if lik.w is None else lik.w.numpy())
        cov = delta_cov(D, res.cov_theta)
    m = f.size // len(terms)
    if m == 1:
        index = pd.Index(terms)
    else:
        classes = res.model.classes
        outer = list(classes) if scale == "response" and classes is not None \
            else list(res.model.outputs)
        index = pd.MultiIndex.from_product([outer, terms], names=["class", "term"])
    return MarginalEffects(f, cov, index, scale)


def partial_dependence(res, feature, grid, scale="response", max_rows=1000, random_state=0):
    """Partial dependence ``mean_i g(x_i with x_feature = v)`` over ``grid`` with pointwise
    delta-method standard errors. Returns ``(values (len(grid), m), se (len(grid), m))``."""
    lik = res.likelihood
    X = lik.X
    if X.shape[0] > max_rows:
        idx = np.random.default_rng(random_state).choice(X.shape[0], max_rows, replace=False)
        X = X[torch.as_tensor(np.sort(idx))]
    fn = _mean2d(lik) if scale == "response" else (lambda e: e)

    def pd_curve(t):
        vals = []
        for v in grid:
            Xv = X.clone()
            Xv[:, feature] = float(v)
            vals.append(fn(lik.eta(t, Xv)).mean(0))
        return torch.stack(vals)  # (g, m)

    with torch.no_grad():
        values = pd_curve(lik.theta).numpy()
    J = jacrev(pd_curve)(lik.theta).detach()  # (g, m, p)
    se = np.sqrt(_quadratic(J, _theta_cov(res)))
    return values, se
