"""The log-likelihood of a fitted net as a function of one flat float64 parameter vector.

:class:`Likelihood` is what every covariance, test and effect of :mod:`neurostat.inference` is
computed from: the network (Jacobians and curvature in theta) and the family (everything in
eta: log-likelihood, scores, information) over the data, in row blocks for an additive family.
A likelihood over data held elsewhere (chunks on a cluster) overrides the reductions
(``curvatures``, ``meat``, ``loglik``).
"""

import copy

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from .closed_forms import glm_information, mlp_curvature, mlp_jacobian

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
        Frequency weights; the log-likelihood is ``sum_i w_i l_i`` (for a family whose
        weights are not frequency weights, as binomial trials, ``nobs`` counts rows).
    offset : ndarray of shape (n_samples,) or None
        Added to the network's output: ``eta = f(x) + offset`` (the family says which linear
        predictors it enters).

    Attributes
    ----------
    theta : tensor of shape (n_params,)
        The fitted parameters, flattened in ``module.named_parameters()`` order.
    names, shapes : lists
        Name and shape of each parameter block of ``theta``.
    offset, offset_input : tensor (n, k) / ndarray (n,) or None
        The offset as added to eta, and as given.
    """

    @property
    def additive(self):
        """The family's log-likelihood is a sum of per-row terms (computed in row blocks)."""
        return self.family.additive

    def __init__(self, module, family, X, y, sample_weight=None, offset=None):
        self.module = copy.deepcopy(module).cpu().double().eval()
        self.family = family
        X = np.asarray(X, dtype=np.float64)
        if not (X.flags.c_contiguous and X.flags.writeable):
            X = np.array(X, order="C")  # torch needs a writeable buffer; never written to
        self.X = torch.from_numpy(X)
        y = np.asarray(y)
        yt = torch.as_tensor(y if y.flags.writeable else y.copy())
        self.y = yt if not yt.is_floating_point() else yt.to(torch.float64)
        self.w = None if sample_weight is None else torch.as_tensor(
            np.array(sample_weight, dtype=np.float64))  # a copy: torch needs it writeable
        self.offset_input = None if offset is None else np.asarray(offset, dtype=np.float64)
        self.offset = None if offset is None else family.offset_eta(
            torch.as_tensor(np.asarray(offset, dtype=np.float64)), self._n_out())
        self._init_parameters()

    def _init_parameters(self):
        """``names``, ``shapes``, the fixed entries and ``theta`` from ``self.module`` (a
        likelihood over data held elsewhere sets its data itself and calls this)."""
        named = [(k, p) for k, p in self.module.named_parameters() if p.requires_grad]
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.fixed = {k: p.detach() for k, p in self.module.named_parameters()
                      if not p.requires_grad}
        self.fixed.update(dict(self.module.named_buffers()))
        self.theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    # ------------------------------------------------------------------ parameters
    @property
    def nobs(self):
        """Number of observations: the rows, or with frequency weights their sum."""
        if self.w is None or not self.family.frequency_weights:
            return self.n_rows
        return float(self.w.sum())

    @property
    def n_rows(self):
        """Number of rows of the data."""
        return self.X.shape[0]

    @property
    def n_params(self):
        """Number of estimated parameters: the length of ``theta`` (frozen ones excluded).

        Returns
        -------
        int
        """
        return self.theta.numel()

    def unflatten(self, theta):
        """The module's parameters at the flat vector ``theta``, for ``functional_call``.

        Parameters
        ----------
        theta : tensor of shape (n_params,)

        Returns
        -------
        dict of str to tensor
            Each estimated parameter as a view of its block of ``theta`` in its own shape
            (gradients flow back to ``theta``), plus the fixed entries (frozen parameters and
            buffers) as they are.
        """
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

    def eta(self, theta, X=None, offset=None):
        """Linear predictor ``(n, k)`` at ``theta`` for inputs X (default: the data, with its
        offset) plus ``offset`` ((n, k) tensor or None)."""
        if X is None:
            X, offset = self.X, self.offset
        out = functional_call(self.module, self.unflatten(theta), (X,))
        return out if offset is None else out + offset

    def offset_rows(self, rows):
        """The offset of ``rows`` ((n_rows, k) tensor) or None."""
        return None if self.offset is None else self.offset[rows]

    def rows(self, block=None):
        """Row slices covering the data in blocks of about ``_BLOCK_ENTRIES`` entries."""
        n = self.n_rows
        if block is None:
            k = max(1, self._n_out())
            block = max(1, _BLOCK_ENTRIES // max(1, self.n_params * k))
        return [slice(s, min(n, s + block)) for s in range(0, n, block)]

    def _n_out(self):
        # the width of eta: the network's outputs and any ancillary predictors
        return (getattr(self.module, "n_linear_predictors", None)
                or self.module.output_layer.out_features)

    def _sub(self, rows):
        w = None if self.w is None else self.w[rows]
        return self.X[rows], self.y[rows], w

    # ------------------------------------------------------------------ the family's math
    def loglik(self, eta, rows=slice(None), scale=1.0):
        """Total (weighted) log-likelihood of ``rows`` at linear predictor ``eta`` (scalar).

        ``eta`` holds the linear predictor of exactly those rows; ``scale`` is the dispersion
        (families without one ignore it). A family that is not additive over rows is only
        ever called with all rows.
        """
        return self.family.loglik(eta, self.y[rows], self._w(rows), scale)

    def pearson_chi2(self, eta, by_output=False):
        """The family's Pearson chi-square at linear predictor ``eta`` of all rows (the
        residual sum of squares for gaussian); with ``by_output`` one per output column."""
        return self.family.pearson_chi2(eta, self.y, self.w, by_output=by_output)

    def max_prediction_error(self, eta):
        """Largest ``|y_i - mu_i|`` over the rows (for classes: one minus the probability of the
        observed class): below 1e-6 for a classifier, the fit predicts perfectly."""
        mu = self.mean(eta)
        if mu.ndim == 1:
            return float((mu - self.y).abs().max())
        return float((1.0 - mu.gather(1, self.y.long()[:, None])[:, 0]).max())

    def _w(self, rows):
        return None if self.w is None else self.w[rows]

    def score_eta(self, eta, rows=slice(None), scale=1.0):
        """``d loglik / d eta``, shape (n_rows, k) (the family's closed form where it has one)."""
        return self.family.score_eta(eta.detach(), self.y[rows], self._w(rows), scale)

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
        "meat" of the sandwich (for the Cox family, Lin & Wei's score residuals).
        """
        theta = self.theta if theta is None else theta
        out = torch.empty(self.n_rows, self.n_params, dtype=torch.float64)
        for r in self._blocks():
            with torch.no_grad():
                e = self.eta(theta, self.X[r], self.offset_rows(r))
            out[r] = self.family.score_obs(self.jacobian(theta, r), e, self.y[r], self._w(r))
        return out

    def meat(self, theta=None):
        """``sum_i w_i s_i s_i'`` (p, p): the robust sandwich's meat for frequency weights.

        ``score_obs`` gives ``w_i s_i``; the meat of ``w_i`` repeated rows is ``w_i s_i s_i'``
        (for a coupled likelihood, the Cox model's, the score residuals as R's ``coxph``).
        Summed in row blocks, never holding all n scores for an additive family.
        """
        theta = self.theta if theta is None else theta
        M = torch.zeros(self.n_params, self.n_params, dtype=torch.float64)
        for r in self._blocks():
            with torch.no_grad():
                e = self.eta(theta, self.X[r], self.offset_rows(r))
            S = self.family.score_obs(self.jacobian(theta, r), e, self.y[r], self._w(r))
            if self.w is not None and self.additive and self.family.frequency_weights:
                w = self.w[r]
                S = S / torch.sqrt(torch.where(w > 0, w, torch.ones_like(w)))[:, None]
            M += S.T @ S
        return M

    def _blocks(self):
        return self.rows() if self.family.additive else [slice(None)]

    def hessian(self, theta=None):
        """Hessian of the negative log-likelihood with respect to ``theta`` (p, p)."""
        return self.curvatures(theta)[0]

    def curvatures(self, theta=None):
        """``(H, F)``: the observed information ``H = F - R`` and the Fisher (Gauss-Newton)
        information ``F = G' W G``, both (p, p) on the sum scale at unit dispersion.

        ``G`` is the Jacobian of eta, ``W = -d^2 l / d eta^2`` (the family's
        :meth:`~neurostat.engine.families.Family.information`) and
        ``R = sum_i u_i' d^2 eta_i / d theta^2`` with ``u = dl/deta`` (zero with no hidden layer;
        closed form for one hidden layer, autograd otherwise). Summed in row blocks for an
        additive family. ``F`` is positive semi-definite even away from a maximum of the
        likelihood (penalized fits). For a family whose ``W`` is the expected information
        (``expected_information``: a non-canonical link), ``H`` uses the observed one.
        """
        theta = self.theta if theta is None else theta
        p = self.n_params
        fam = self.family
        F = glm_information(self, theta)
        if F is not None:  # a GLM's Z' W Z straight from the inputs
            Fo = glm_information(self, theta, observed=True) if fam.expected_information else F
            return 0.5 * (Fo + Fo.T), 0.5 * (F + F.T)
        F = torch.zeros(p, p, dtype=torch.float64)
        R = torch.zeros(p, p, dtype=torch.float64)
        Fo = torch.zeros(p, p, dtype=torch.float64) if fam.expected_information else None
        for r in self._blocks():
            with torch.no_grad():
                e = self.eta(theta, self.X[r], self.offset_rows(r))
            G = self.jacobian(theta, r)
            F += fam.information(G, e, self.y[r], self._w(r))
            if Fo is not None:
                Fo += fam.information(G, e, self.y[r], self._w(r), observed=True)
            if not self._linear_in_theta():
                R += self.curvature(theta, self.score_eta(e, r), r)
        F = 0.5 * (F + F.T)
        H = (F if Fo is None else 0.5 * (Fo + Fo.T)) - 0.5 * (R + R.T)
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

    def null_eta(self):
        """Linear predictor of the family's null model at every row (n, k): with an offset,
        the intercepts fitted by Newton steps on the constant-only model plus the offset."""
        w = None if self.w is None else self.w.numpy()
        eta = self.family.null_eta(self.y.numpy(), w, self._n_out())
        if self.offset is None or not self.additive:
            return eta
        start = eta[0] - (self.offset.mean(0) if self.w is None
                          else self.w @ self.offset / self.w.sum())
        return _constant_fit(self.family, self.y, self.w, self.offset, start) + self.offset

    def null_loglik(self, scale=1.0):
        """Log-likelihood of the null model (intercept only; for Cox, no covariate effect)."""
        return float(self.loglik(self.null_eta(), scale=scale))

    def mean(self, eta):
        """The family's inverse link at ``eta``: the mean of y, or class probabilities.

        Parameters
        ----------
        eta : tensor of shape (n, k)
            Linear predictor, as :meth:`eta` returns it.

        Returns
        -------
        tensor
            Of shape (n,) for one mean per row (a binary classifier: the probability of the
            second class), else (n, k') (a classifier's K class probabilities, several
            targets' means).
        """
        return self.family.mean(eta)


def per_row_grad(fn, theta, X):
    """``d fn(theta, x_i) / d theta`` for scalar ``fn``, shape (n, p) (helper for effects)."""
    return vmap(grad(fn), in_dims=(None, 0))(theta, X)


def _constant_fit(family, y, w, offset, b, max_steps=100):
    """The intercepts ``b`` (k,) maximizing the log-likelihood of ``eta = b + offset``:
    Newton steps (gradient steps where the information is not positive definite), halved
    until the log-likelihood does not fall."""
    def ll(v):
        return float(family.loglik(v.expand_as(offset) + offset, y, w))

    cur = ll(b)
    for _ in range(max_steps):
        e = b.expand_as(offset) + offset
        u = family.score_eta(e, y, w).sum(0)
        W = family.information_eta(e, y, w).sum(0)
        L, info = torch.linalg.cholesky_ex(W)
        step = (torch.cholesky_solve(u[:, None], L)[:, 0] if int(info) == 0
                else u / W.diagonal().abs().clamp_min(1e-12))
        t = 1.0
        while t > 1e-12:
            new = ll(b + t * step)
            if np.isfinite(new) and new >= cur - 1e-13 * abs(cur):
                break
            t /= 2
        b, cur = b + t * step, new
        if float((t * step).abs().max()) <= 1e-13 * (1.0 + float(b.abs().max())):
            break
    return b
