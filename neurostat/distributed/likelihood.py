"""The likelihood of a fitted net over data held in chunks (dask arrays on a cluster).

:class:`ChunkedLikelihood` is the in-memory :class:`~neurostat.inference.likelihood.Likelihood`
with its reductions - curvature, robust meat, log-likelihood, Pearson chi-square, the largest
prediction error - computed as sums over the row chunks on the workers. Each chunk's share is
the in-memory likelihood of that chunk (the same family math, the same closed-form Jacobians
and curvature), so the totals equal the in-memory ones up to the order of summation.

One pass (:func:`chunk_statistics`) computes every statistic inference needs at a parameter
vector, and the likelihood keeps it: ``inference()`` after a chunked Newton fit, whose last
pass computed them at the final parameters, reads the data no more.
"""

import copy

import numpy as np
import torch

from ..engine.solvers.newton import weighted_gram
from ..inference.likelihood import Likelihood
from .chunks import SPLIT_EVERY, map_rows, per_chunk

#: what a pass can compute besides the objective and the total weight: "llf" (log-likelihoods
#: and Pearson chi-square at the fit and at the null model, a classifier's largest error),
#: "grad", "curv" (observed and Fisher information), "meat"
ITEMS = ("llf", "grad", "curv", "meat")


class Packing:
    """Offsets of named statistics in one flat float vector (what a chunk task returns)."""

    def __init__(self, sizes):
        self.sizes = dict(sizes)
        self.offsets, i = {}, 0
        for k, m in self.sizes.items():
            self.offsets[k] = slice(i, i + m)
            i += m
        self.width = i

    def pack(self, values):
        """Lay named statistics out in one flat vector.

        Parameters
        ----------
        values : dict of str to array-like
            Each statistic, raveled into its slice; names absent from ``values`` stay 0.

        Returns
        -------
        ndarray of shape (width,)
        """
        out = np.zeros(self.width)
        for k, v in values.items():
            out[self.offsets[k]] = np.ravel(v)
        return out

    def unpack(self, flat):
        """Read the named statistics back from a flat vector (the inverse of :meth:`pack`).

        Parameters
        ----------
        flat : ndarray of shape (width,)

        Returns
        -------
        dict of str to ndarray
            Each statistic as a 1-d view of ``flat`` (reshape matrices yourself).
        """
        return {k: flat[s] for k, s in self.offsets.items()}


def _sizes(items, p, k_by, classification):
    sizes = {"value": 1, "wsum": 1}
    if "llf" in items:
        sizes.update({"loglik": 1, "chi2": 1, "chi2_by": k_by, "null_loglik": 1,
                      "null_chi2": 1, "null_chi2_by": k_by})
        if classification:
            sizes["maxerr"] = 1
    for item in items:
        if item == "llf":
            continue
        sizes.update({"grad": {"grad": p}, "curv": {"H": p * p, "F": p * p},
                      "meat": {"meat": p * p}}[item])
    return sizes


def _stats_block(X, y, w, *, module, family, theta, b0, items, packing):
    """One chunk's share of every statistic (the in-memory likelihood of the chunk)."""
    lik = Likelihood(module, family, X, y, w)
    theta = torch.tensor(np.asarray(theta, dtype=np.float64))  # a copy: graph data are read-only
    out = {}
    with torch.no_grad():
        eta = lik.eta(theta)
    wt = lik.w
    nll = family.nll(eta, lik.y)
    out["value"] = float(nll.sum() if wt is None else (wt * nll).sum())
    out["wsum"] = float(X.shape[0] if wt is None else wt.sum())
    if "llf" in items:
        out.update(_llf_items(lik, eta, b0, packing))
    if "grad" in items:  # of sum_i w_i nll_i, the training objective's numerator
        t = theta.clone().requires_grad_(True)
        e = lik.eta(t)
        obj = family.nll(e, lik.y)
        (g,) = torch.autograd.grad(obj.sum() if wt is None else (wt * obj).sum(), t)
        out["grad"] = g.numpy()
    linear = lik._linear_in_theta() and lik.n_params == sum(t.numel() for t in module.parameters())
    if "curv" in items:
        if linear:  # no hidden layer: H = F = Z' W Z, the Newton finish's blocked Gram
            H = _glm_gram(lik.X, family.information_eta(eta, lik.y, wt), lik.n_params)
            out["H"] = out["F"] = H
        else:
            H, F = lik.curvatures(theta)
            out["H"], out["F"] = H.numpy(), F.numpy()
    if "meat" in items:
        if linear:  # sum_i w_i u_i u_i' z_i z_i' (u the unweighted score in eta)
            u = family.score_eta(eta, lik.y, wt)
            div = 1.0 if wt is None else torch.where(wt > 0, wt, torch.ones_like(wt))
            outer = u[:, :, None] * u[:, None, :]
            out["meat"] = _glm_gram(lik.X, outer if wt is None else outer / div[:, None, None],
                                    lik.n_params)
        else:
            out["meat"] = lik.meat(theta).numpy()
    return packing.pack(out)


def _llf_items(lik, eta, b0, packing):
    """Log-likelihood, Pearson chi-square (total, per output) at ``eta`` and at the null
    model, and the largest prediction error of a classifier, for one chunk."""
    out = {"loglik": float(lik.loglik(eta)), "chi2": float(lik.pearson_chi2(eta)),
           "chi2_by": lik.pearson_chi2(eta, by_output=True)}
    eta0 = torch.as_tensor(b0, dtype=torch.float64).expand(eta.shape[0], eta.shape[1])
    out.update(null_loglik=float(lik.loglik(eta0)), null_chi2=float(lik.pearson_chi2(eta0)),
               null_chi2_by=lik.pearson_chi2(eta0, by_output=True))
    if "maxerr" in packing.sizes:
        out["maxerr"] = lik.max_prediction_error(eta) if eta.shape[0] else 0.0
    return out


def _glm_gram(X, W, p):
    """``sum_i z_i' W_i z_i`` over theta ``[weight (k x d), bias (k)]`` of one linear layer,
    ``z = [x, 1]``: the blocked Gram of the Newton finish
    (:func:`~neurostat.engine.solvers.newton.weighted_gram`) for each pair of outputs."""
    k, d = W.shape[1], X.shape[1]
    idx = [np.r_[a * d + np.arange(d), k * d + a] for a in range(k)]
    out = np.zeros((p, p))
    for a in range(k):
        for b in range(a, k):
            blk = weighted_gram(X, W[:, a, b].contiguous()).numpy()
            out[np.ix_(idx[a], idx[b])] = blk
            out[np.ix_(idx[b], idx[a])] = blk.T
    return out


def chunk_statistics(X, y, w, module, family, theta, b0, items=()):
    """One pass over the chunks: the statistics of the likelihood at ``theta``.

    Returns a dict of numpy values: ``value`` (``sum_i w_i nll_i``, the training objective
    times the total weight) and ``wsum``, and as ``items`` asks: ``"llf"`` - ``loglik`` (unit
    dispersion), ``chi2`` and ``chi2_by`` (Pearson chi-square, total and per output), the same
    three at the null model of intercept ``b0`` (``null_*``) and ``maxerr`` (classifiers: the
    largest prediction error); ``"grad"`` (of ``value``); ``"curv"`` - ``H`` and ``F``
    (observed and Fisher information); ``"meat"``.
    """
    p = int(sum(t.numel() for t in module.parameters() if t.requires_grad))
    k_by = y.shape[1] if y.ndim == 2 else 1
    packing = Packing(_sizes(items, p, k_by, family.classification))
    module = copy.deepcopy(module).cpu().double().eval()
    S = per_chunk(_stats_block, packing.width, [X, y, w], module=module, family=family,
                  theta=np.asarray(theta, dtype=np.float64), b0=np.asarray(b0, np.float64),
                  items=tuple(items), packing=packing)
    total = S.sum(axis=0, split_every=SPLIT_EVERY)
    if "maxerr" in packing.sizes:
        sl = packing.offsets["maxerr"]
        total, mx = _compute(total, S[:, sl].max(axis=0))
        total[sl] = mx
    else:
        (total,) = _compute(total)
    out = packing.unpack(total)
    for k in ("value", "wsum", "loglik", "chi2", "null_loglik", "null_chi2", "maxerr"):
        if k in out:
            out[k] = float(out[k][0])
    for k in ("H", "F", "meat"):
        if k in out:
            out[k] = out[k].reshape(p, p)
    return out


def _compute(*arrays):
    import dask
    return list(dask.compute(*arrays))


def _eta_block(X, *, module, theta):
    lik_module = module
    params = Likelihood.unflatten(_Params(lik_module), torch.tensor(np.asarray(theta)))
    with torch.no_grad():
        return torch.func.functional_call(lik_module, params, (torch.from_numpy(
            np.ascontiguousarray(X, dtype=np.float64)),)).numpy()


class _Params:
    """The parameter bookkeeping of a module, as :meth:`Likelihood.unflatten` reads it."""

    def __init__(self, module):
        named = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.fixed = {k: p.detach() for k, p in module.named_parameters()
                      if not p.requires_grad}
        self.fixed.update(dict(module.named_buffers()))


def _family_block(*blocks, family, what, scale):
    eta = torch.from_numpy(np.ascontiguousarray(blocks[0], dtype=np.float64))
    y = blocks[1]
    yt = None if y is None else torch.as_tensor(y)
    w = None if blocks[2] is None else torch.as_tensor(blocks[2], dtype=torch.float64)
    if what == "loglik":
        return [float(family.loglik(eta, yt, w, scale))]
    return np.atleast_1d(family.pearson_chi2(eta, yt, w, by_output=(what == "chi2_by")))


def _effects_block(X, w, *, module, theta, m, family=None):
    """Weighted row sums of one chunk: the weight, ``w x``, ``[g, d g / d x]`` and their
    theta-Jacobian, with ``g = eta`` (``family`` None) or the family's mean (``m`` its
    columns; no intercept term)."""
    from ..inference.effects import average_derivatives
    from ..inference.predictions import _mean2d

    n, d = X.shape
    link = family is None
    k = d + 1 if link else d
    if n == 0:
        return np.zeros(1 + d + m * k * (1 + theta.size))
    lik = Likelihood(module, _NoFamily() if link else family, X, np.zeros(n))
    transform = None if link else _mean2d(lik)
    f, D = average_derivatives(lik, torch.tensor(np.asarray(theta)), X, transform,
                               intercept=link, sample_weight=w)
    f, D = f.reshape(m, k), D.reshape(m, k, -1)
    total = float(n) if w is None else float(np.sum(w))
    xbar = X.mean(0) if w is None else np.asarray(w) @ X / total
    if link:
        f[:, 0] += f[:, 1:] @ xbar  # back to the mean of eta
        D[:, 0, :] += np.einsum("mdp,d->mp", D[:, 1:, :], xbar)
    return np.concatenate([[total], total * xbar, total * f.ravel(), total * D.ravel()])


class _NoFamily:
    """A likelihood's family where only the network is used (effects of eta)."""

    additive = True


class ChunkedLikelihood(Likelihood):
    """:class:`~neurostat.inference.likelihood.Likelihood` over dask arrays held in chunks.

    Parameters
    ----------
    module : torch.nn.Module
        The fitted network (copied to float64).
    family : neurostat.engine.families.AdditiveFamily
        Rows must be independent: the statistics are sums over chunks.
    X : dask array (n, d), one column chunk
    y : dask array (n,) or (n, k), encoded target, X's row chunks
    sample_weight : dask array (n,) or None
        Frequency weights.
    null_intercept : callable or array
        The intercept of the null model (computed on first use when a callable).
    cache : dict, optional
        ``{theta bytes: statistics}`` already computed (the last pass of a chunked fit).

    Notes
    -----
    ``eta(theta)`` and ``null_eta()`` are lazy dask arrays; ``loglik``, ``pearson_chi2`` and
    ``max_prediction_error`` of them read the pass's statistics where they exist (unit
    dispersion), else reduce over the chunks. Per-row quantities (``jacobian``,
    ``score_obs``) are not formed: they are of size n.
    """

    def __init__(self, module, family, X, y, sample_weight=None, null_intercept=None,
                 cache=None):
        if not family.additive:
            raise TypeError(
                f"The {family.name} family couples the rows (its likelihood is not a sum over "
                "rows), so it cannot be reduced over chunks; fit it to in-memory data."
            )
        self.module = copy.deepcopy(module).cpu().double().eval()
        self.family = family
        self.X, self.y, self.w = X, y, sample_weight
        self._init_parameters()
        self._null_intercept = null_intercept
        self._cache = dict(cache or {})
        self._etas = {}

    # ------------------------------------------------------------------ the pass
    def statistics(self, theta=None, items=()):
        """The statistics of one pass at ``theta`` (see :func:`chunk_statistics`), computed
        once per parameter vector and kept; ``items`` the large ones needed."""
        theta = self.theta if theta is None else theta
        key = np.asarray(theta, dtype=np.float64).tobytes()
        have = self._cache.get(key)
        need = {"grad": ("grad",), "curv": ("H", "F"), "meat": ("meat",), "llf": ("loglik",)}
        items = ("llf",) + tuple(items)
        missing = [i for i in items if have is None or any(k not in have for k in need[i])]
        if have is None or missing:
            new = chunk_statistics(self.X, self.y, self.w, self.module, self.family,
                                   np.asarray(theta, dtype=np.float64),
                                   self.null_intercept(), missing)
            have = {**(have or {}), **new}
            self._cache[key] = have
        return have

    def null_intercept(self):
        """The null model's intercept (one per output)."""
        if callable(self._null_intercept):
            self._null_intercept = np.asarray(self._null_intercept(), dtype=np.float64)
        return self._null_intercept

    # ------------------------------------------------------------------ sizes
    @property
    def nobs(self):
        """Rows, or with frequency weights their sum (from the pass)."""
        return self.n_rows if self.w is None else self.statistics()["wsum"]

    @property
    def n_rows(self):
        return int(self.X.shape[0])

    # ------------------------------------------------------------------ reductions
    def curvatures(self, theta=None):
        st = self.statistics(theta, ("curv",))
        return torch.from_numpy(st["H"].copy()), torch.from_numpy(st["F"].copy())

    def meat(self, theta=None):
        return torch.from_numpy(self.statistics(theta, ("meat",))["meat"].copy())

    def eta(self, theta, X=None):
        """Linear predictor: a lazy dask array at the data (or dask inputs ``X``); for
        in-memory ``X`` a tensor, as the in-memory likelihood."""
        if X is not None and not hasattr(X, "dask"):
            return super().eta(theta, X)
        from dask.base import tokenize

        X = self.X if X is None else X
        th = np.asarray(theta.detach() if torch.is_tensor(theta) else theta, np.float64)
        name = "neurostat-eta-" + tokenize(X.name, th)
        k = self._n_out()
        out = map_rows(_eta_block, X, (k,), np.float64, module=self.module, theta=th,
                       name=name)
        if X is self.X:
            self._etas[out.name] = ("fit", th.tobytes())
        return out

    def null_eta(self):
        """The null model's linear predictor at every row (a lazy dask array)."""
        from dask.base import tokenize

        b0 = self.null_intercept()
        name = "neurostat-null-eta-" + tokenize(self.X.name, b0)
        out = map_rows(lambda xb, b: np.broadcast_to(b, (xb.shape[0], b.size)).copy(), self.X,
                       (b0.size,), np.float64, b=b0, name=name)
        self._etas[out.name] = ("null", self.theta.numpy().tobytes())
        return out

    def _known(self, eta, what):
        """A statistic of the pass for a registered ``eta`` (None: not known)."""
        tag = self._etas.get(getattr(eta, "name", None))
        if tag is None:
            return None
        kind, key = tag
        st = self.statistics(np.frombuffer(key))
        return st[("null_" + what) if kind == "null" else what]

    def _reduce(self, eta, what, scale=1.0):
        S = per_chunk(_family_block, 1 if what != "chi2_by" else self._k_by(), [eta, self.y,
                      self.w], family=self.family, what=what, scale=scale)
        return S.sum(axis=0, split_every=SPLIT_EVERY).compute()

    def _k_by(self):
        return self.y.shape[1] if self.y.ndim == 2 else 1

    def loglik(self, eta, rows=slice(None), scale=1.0):
        if not hasattr(eta, "dask"):
            raise TypeError("A chunked likelihood evaluates dask linear predictors only.")
        unit = not torch.is_tensor(scale) and np.ndim(scale) == 0 and float(scale) == 1.0
        known = self._known(eta, "loglik") if unit or not self.family.has_scale else None
        if known is not None:
            return float(known)
        return float(self._reduce(eta, "loglik", scale)[0])

    def pearson_chi2(self, eta, by_output=False):
        what = "chi2_by" if by_output else "chi2"
        known = self._known(eta, what)
        value = self._reduce(eta, what) if known is None else np.atleast_1d(known)
        if by_output and self.y.ndim == 2:
            return np.asarray(value, dtype=np.float64)
        return float(value[0])

    def max_prediction_error(self, eta):
        known = self._known(eta, "maxerr")
        if known is None:
            raise ValueError("max_prediction_error is kept for the fitted eta only.")
        return float(known)

    def mean(self, eta):
        """Fitted means: lazy for a dask ``eta``."""
        if not hasattr(eta, "dask"):
            return super().mean(eta)
        fam = self.family
        k = fam.mean(torch.zeros(1, eta.shape[1], dtype=torch.float64)).shape[1:]
        return map_rows(lambda e: fam.mean(torch.from_numpy(np.ascontiguousarray(e))).numpy(),
                        eta, tuple(k), np.float64)

    def residuals(self, eta):
        """``(deviance, pearson)`` residuals at a lazy ``eta``: lazy dask arrays."""
        from .diagnostics import residuals

        return residuals(self, eta)

    def calibration_table(self, mu, n_bins=10):
        """The in-memory calibration bins and Hosmer-Lemeshow test of the fitted
        probabilities ``mu`` (a dask array), reduced over the chunks."""
        from .diagnostics import calibration_table

        return calibration_table(self.y, mu, n_bins)

    # ------------------------------------------------------------------ effects
    chunked = True

    def average_derivatives(self, intercept=True):
        """The covariate effects of :func:`neurostat.inference.effects.average_derivatives` at
        the data, and their Jacobian in theta, reduced over the chunks: each chunk gives its
        (frequency-weighted) row sums of ``eta``, of ``d eta / d x`` and of ``x`` (and their
        Jacobians), the intercept ``mean eta - beta' xbar`` is formed from the totals."""
        d = self.X.shape[1]
        m = self._n_out()
        n, xbar, f, D = self._derivative_sums(m, d + 1, None)
        f[:, 0] -= f[:, 1:] @ xbar
        D[:, 0, :] -= np.einsum("mdp,d->mp", D[:, 1:, :], xbar)
        if not intercept:
            f, D = f[:, 1:], D[:, 1:, :]
        return f.reshape(-1), D.reshape(f.size, -1)

    def mean_derivatives(self):
        """``(f, D)``: the (weighted) average of ``d mu_c / d x_j`` over the data, per mean
        component c and input j (``get_margeff``), and its Jacobian in theta, reduced over
        the chunks."""
        from ..inference.predictions import _mean2d

        d = self.X.shape[1]
        with torch.no_grad():  # the number of mean components (class probabilities)
            m = _mean2d(self)(torch.zeros(1, self._n_out(), dtype=torch.float64)).shape[1]
        _, _, f, D = self._derivative_sums(m, d, self.family)
        return f.reshape(-1), D.reshape(f.size, -1)

    def _derivative_sums(self, m, k, family):
        d, p = self.X.shape[1], self.n_params
        S = per_chunk(_effects_block, 1 + d + m * k * (1 + p), [self.X, self.w],
                      module=self.module, theta=self.theta.numpy(), m=m, family=family)
        tot = S.sum(axis=0, split_every=SPLIT_EVERY).compute()
        n = tot[0]
        f = tot[1 + d:1 + d + m * k].reshape(m, k) / n
        D = tot[1 + d + m * k:].reshape(m, k, p) / n
        return n, tot[1:1 + d] / n, f, D

    # ------------------------------------------------------------------ not over chunks
    def _per_row(self, *args, **kwargs):
        """Not available over chunks: the in-memory likelihood's per-row quantities
        (``jacobian``, ``score_obs``, ``score_eta``, of size n) and its row blocks (``rows``).

        Raises
        ------
        NotImplementedError
            Always; the reductions that inference needs from them (``curvatures``, ``meat``)
            are computed over the chunks instead.
        """
        raise NotImplementedError(
            "Per-row quantities (Jacobians, scores) of data in chunks are of size n and are "
            "not formed; their reductions (curvatures, meat) are."
        )

    jacobian = score_obs = rows = score_eta = _per_row
