"""The log-likelihood of a fitted net as a function of one flat float64 parameter vector.

:class:`Likelihood` is the extension point of :mod:`neurostat.inference`: every covariance,
test and effect is computed from its methods, so a family whose log-likelihood is not a sum of
independent per-observation terms (the Cox partial likelihood) subclasses it and overrides
``loglik``, ``score_obs`` and ``hessian_eta`` (see the package docstring).
"""

import copy

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from .mlp_hessian import mlp_curvature, mlp_jacobian

# entries (rows x parameters x outputs) per row block of a per-row Jacobian
_BLOCK_ENTRIES = 1 << 22


class Likelihood:
    """Log-likelihood of a fitted network, float64, for inference.

    Parameters
    ----------
    module : torch.nn.Module
        The fitted network (copied to float64, evaluation mode). Parameters with
        ``requires_grad=False`` (frozen layers) are held fixed, not estimated.
    family : neurostat.families.Family
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Encoded target (0/1, 0..K-1 or numeric), as the family's ``nll`` expects.
    sample_weight : ndarray of shape (n_samples,) or None
        Frequency weights; the log-likelihood is ``sum_i w_i l_i``.

    Attributes
    ----------
    theta : tensor of shape (n_params,)
        The fitted parameters, flattened in ``module.named_parameters()`` order.
    names, shapes : lists
        Name and shape of each parameter block of ``theta``.
    scale : float
        Dispersion used by :meth:`loglik` (1 while computing curvature; see
        :func:`neurostat.inference.inference`).
    """

    #: True when ``loglik`` is a sum of per-row terms, so it may be computed in row blocks and
    #: its Hessian with respect to the linear predictor is block diagonal (one k x k block per row)
    additive = True

    def __init__(self, module, family, X, y, sample_weight=None):
        self.module = copy.deepcopy(module).cpu().double().eval()
        self.family = family
        X = np.asarray(X, dtype=np.float64)
        if not (X.flags.c_contiguous and X.flags.writeable):
            X = np.array(X, order="C")  # torch needs a writeable buffer; never written to
        self.X = torch.from_numpy(X)
        yt = torch.as_tensor(np.asarray(y))
        self.y = yt if not yt.is_floating_point() else yt.to(torch.float64)
        self.w = None if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float64))
        named = [(k, p) for k, p in self.module.named_parameters() if p.requires_grad]
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.fixed = {k: p.detach() for k, p in self.module.named_parameters()
                      if not p.requires_grad}
        self.fixed.update(dict(self.module.named_buffers()))
        self.theta = torch.cat([p.detach().reshape(-1) for _, p in named])
        self.scale = 1.0

    # ------------------------------------------------------------------ parameters
    @property
    def nobs(self):
        """Number of observations: the rows, or with frequency weights their sum."""
        return self.n_rows if self.w is None else float(self.w.sum())

    @property
    def n_rows(self):
        """Number of rows of the data."""
        return self.X.shape[0]

    @property
    def n_params(self):
        return self.theta.numel()

    def unflatten(self, theta):
        out, i = dict(self.fixed), 0
        for k, s in zip(self.names, self.shapes, strict=True):
            m = int(np.prod(s)) if len(s) else 1
            out[k] = theta[i:i + m].view(s)
            i += m
        return out

    def slices(self):
        """``{name: slice}`` of each parameter block in ``theta``."""
        out, i = {}, 0
        for k, s in zip(self.names, self.shapes, strict=True):
            m = int(np.prod(s)) if len(s) else 1
            out[k] = slice(i, i + m)
            i += m
        return out

    def penalized_mask(self, module=None):
        """Boolean mask of the entries of ``theta`` that the penalty acts on (the weights)."""
        pen = {id(p) for p in self.module.penalized_parameters()}
        mask = torch.zeros(self.n_params, dtype=torch.bool)
        sl = self.slices()
        for k, p in self.module.named_parameters():
            if k in sl and id(p) in pen:
                mask[sl[k]] = True
        return mask

    def eta(self, theta, X=None):
        """Linear predictor ``(n, k)`` at ``theta`` for inputs X (default: the data)."""
        X = self.X if X is None else X
        return functional_call(self.module, self.unflatten(theta), (X,))

    def rows(self, block=None):
        """Row slices covering the data in blocks of about ``_BLOCK_ENTRIES`` entries."""
        n = self.n_rows
        if block is None:
            k = max(1, self._n_out())
            block = max(1, _BLOCK_ENTRIES // max(1, self.n_params * k))
        return [slice(s, min(n, s + block)) for s in range(0, n, block)]

    def _n_out(self):
        return self.module.output_layer.out_features

    def _sub(self, rows):
        w = None if self.w is None else self.w[rows]
        return self.X[rows], self.y[rows], w

    # ------------------------------------------------------------------ the extension point
    def loglik(self, eta, rows=slice(None)):
        """Total (weighted) log-likelihood of ``rows`` at linear predictor ``eta`` (scalar).

        ``eta`` holds the linear predictor of exactly those rows. Families whose likelihood is
        not additive over rows (``additive = False``) are only ever called with all rows.
        """
        y = self.y[rows]
        ll = self.family.loglik(eta, y, self.scale)
        return ll.sum() if self.w is None else (self.w[rows] * ll).sum()

    def _closed_form(self, eta, rows):
        """``(u, W)`` of the built-in families in closed form (canonical links: ``u = y - mu``,
        ``W = var(mu)``), or None - then autograd differentiates ``loglik``."""
        if type(self).loglik is not Likelihood.loglik:
            return None
        name = getattr(self.family, "name", None)
        if name not in ("bernoulli", "poisson", "gaussian", "categorical"):
            return None
        y = self.y[rows]
        eta = eta.detach()
        n, k = eta.shape
        if name == "categorical":
            p = self.family.mean(eta)[:, 1:]
            onehot = torch.nn.functional.one_hot(y.long(), k + 1)[:, 1:].to(eta.dtype)
            u = onehot - p
            W = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        else:
            mu = self.family.mean(eta)
            mu = mu[:, None] if mu.ndim == 1 else mu
            yy = y[:, None] if y.ndim == 1 else y
            u = yy - mu
            if name == "bernoulli":
                var = mu * (1 - mu)
            elif name == "poisson":
                var = mu
            else:
                u = u / self.scale
                var = torch.ones_like(mu) / torch.as_tensor(self.scale, dtype=mu.dtype)
            W = torch.diag_embed(var)
        if self.w is not None:
            w = self.w[rows]
            u, W = u * w[:, None], W * w[:, None, None]
        return u, W

    def score_eta(self, eta, rows=slice(None)):
        """``d loglik / d eta``, shape (n_rows, k)."""
        closed = self._closed_form(eta, rows) if self.additive else None
        if closed is not None:
            return closed[0]
        eta = eta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loglik(eta, rows), eta)
        return g

    def hessian_eta(self, eta, rows=slice(None)):
        """``-d^2 loglik / d eta^2``: (n, k, k) per-row blocks when ``additive``, else a dense
        (n*k, n*k) matrix (rows major)."""
        n, k = eta.shape
        closed = self._closed_form(eta, rows) if self.additive else None
        if closed is not None:
            return closed[1]
        if not self.additive:
            f = lambda e: -self.loglik(e.view(n, k), rows)  # noqa: E731
            return torch.func.hessian(f)(eta.detach().reshape(-1))
        eta = eta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loglik(eta, rows), eta, create_graph=True)
        out = torch.empty(n, k, k, dtype=eta.dtype)
        for j in range(k):
            (hj,) = torch.autograd.grad(g[:, j].sum(), eta, retain_graph=j < k - 1)
            out[:, j, :] = -hj
        return out

    def jacobian(self, theta, rows=slice(None), fn=None):
        """Per-row Jacobian ``d fn(x_i) / d theta`` of shape (n_rows, k, n_params).

        ``fn(eta) -> (n, k')`` maps the linear predictor to the quantity differentiated
        (default: eta itself). Rows are independent through the network.
        """
        X = self.X[rows]
        if fn is None:
            G = mlp_jacobian(self, theta, X)
            if G is not None:
                return G
        fn = (lambda e: e) if fn is None else fn

        def one(t, x):
            return fn(self.eta(t, x[None]))[0]

        jac = torch.func.jacrev(one)
        return vmap(jac, in_dims=(None, 0))(theta, X)

    def score_obs(self, theta=None):
        """Per-observation score contributions ``d (w_i l_i) / d theta``, shape (n, n_params).

        Their sum is the gradient of the log-likelihood and their outer products give the
        "meat" of the sandwich. Valid when ``additive``; other likelihoods override it.
        """
        theta = self.theta if theta is None else theta
        out = torch.empty(self.n_rows, self.n_params, dtype=torch.float64)
        for r in self.rows():
            with torch.no_grad():
                e = self.eta(theta, self.X[r])
            u = self.score_eta(e, r)
            G = self.jacobian(theta, r)
            out[r] = torch.einsum("nk,nkp->np", u, G)
        return out

    def hessian(self, theta=None):
        """Hessian of the negative log-likelihood with respect to ``theta`` (p, p)."""
        return self.curvatures(theta)[0]

    def curvatures(self, theta=None):
        """``(H, F)``: the observed information ``H = G' W G - R`` and the Fisher (Gauss-Newton)
        information ``F = G' W G``, both (p, p) on the sum scale.

        ``G`` is the Jacobian of eta, ``W = -d^2 l / d eta^2`` and
        ``R = sum_i u_i' d^2 eta_i / d theta^2`` with ``u = dl/deta`` (zero with no hidden layer;
        closed form for one hidden layer, autograd otherwise). Summed in row blocks. ``F`` is
        positive semi-definite even away from a maximum of the likelihood (penalized fits).
        """
        theta = self.theta if theta is None else theta
        p = self.n_params
        F = torch.zeros(p, p, dtype=torch.float64)
        R = torch.zeros(p, p, dtype=torch.float64)
        if not self.additive:
            with torch.no_grad():
                e = self.eta(theta)
            n, k = e.shape
            G = self.jacobian(theta).reshape(n * k, p)
            F += G.T @ self.hessian_eta(e) @ G
            R += self.curvature(theta, self.score_eta(e), slice(None))
        else:
            for r in self.rows():
                with torch.no_grad():
                    e = self.eta(theta, self.X[r])
                W = self.hessian_eta(e, r)
                G = self.jacobian(theta, r)
                if G.shape[1] == 1 and bool((W >= 0).all()):
                    # symmetric rank-k update: half the flops of g' (W g)
                    gw = (G[:, 0, :] * W[:, 0, 0, None].sqrt()).numpy()
                    F += torch.from_numpy(_syrk(gw))
                elif G.shape[1] == 1:
                    g = G[:, 0, :]
                    F += g.T @ (W[:, 0, 0, None] * g)
                else:
                    F += torch.einsum("nkp,nkl,nlq->pq", G, W, G)
                if not self._linear_in_theta():
                    R += self.curvature(theta, self.score_eta(e, r), r)
        F = 0.5 * (F + F.T)
        H = F - 0.5 * (R + R.T)
        return H, F

    def _linear_in_theta(self):
        return getattr(self.module, "n_hidden_layers", None) == 0

    def curvature(self, theta, u, rows):
        """``R = sum_i u_i' d^2 eta_i / d theta^2`` for ``rows`` (the network's own curvature)."""
        if self._linear_in_theta():
            return torch.zeros(self.n_params, self.n_params, dtype=torch.float64)
        R = mlp_curvature(self, theta, u, rows)
        if R is not None:
            return R
        X = self.X[rows]
        u = u.detach()

        def s(t):
            return (u * self.eta(t, X)).sum()

        return torch.func.hessian(s)(theta)

    def null_loglik(self):
        """Log-likelihood of the intercept-only model (at the fitted scale for gaussian)."""
        y = self.y.numpy()
        w = None if self.w is None else self.w.numpy()
        b0 = torch.as_tensor(self.family.initial_intercept(y, w), dtype=torch.float64)
        eta0 = b0.expand(self.n_rows, b0.numel()).clone()
        return float(self.loglik(eta0))

    def mean(self, eta):
        return self.family.mean(eta)


def _syrk(a):
    """``a' a``: numpy recognises the transposed self-product and calls BLAS syrk (half the
    flops of a general product; torch's matmul does not)."""
    return a.T @ a


def per_row_grad(fn, theta, X):
    """``d fn(theta, x_i) / d theta`` for scalar ``fn``, shape (n, p) (helper for effects)."""
    return vmap(grad(fn), in_dims=(None, 0))(theta, X)
