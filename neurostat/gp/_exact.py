"""Exact float64 GP machinery of :class:`~neurostat.gp.NNGPRegressor`.

The training kernel is filled by row blocks into one preallocated ``n x n`` buffer, only its
upper triangle (row ``i``, columns ``j >= i``; the diagonal square of each block is complete),
which is all that LAPACK reads: half the element-wise work of the full matrix. With the
closed-form activations (relu, erf, identity) the derivatives of the kernel with respect to
``log weight_variance`` and ``log bias_variance`` come out of the same pass (forward mode, by
hand: :func:`_block_forward_mode`), other activations are differentiated by reverse mode, one
block at a time, after the factorization.

On the CPU the factorization is LAPACK's ``potrf``/``potri``/``potrs`` through SciPy, in place
on the buffer (the C-order buffer read as Fortran order is its transpose, which for a symmetric
matrix is itself, so "lower" there is the upper triangle here). On other devices torch's
Cholesky on the symmetrized matrix.

The negative log marginal likelihood of ``y ~ N(0, K + s I)`` and its gradient (Rasmussen and
Williams 2006, eq. 5.9) are

    f = y' a / 2 + sum(log diag L) + n log(2 pi) / 2,    a = (K + s I)^-1 y,
    df/dt = tr(G dK/dt),    G = ((K + s I)^-1 - a a') / 2,

one Cholesky factorization and one inverse from it (``potri``) per gradient; the contraction
uses the upper triangles of ``G`` and ``dK/dt`` only (weights 2 off the diagonal).
:func:`neurostat.gp._optimize.fit_hyperparameters` minimizes ``f / n`` over the log-variances
by BFGS, on nested random subsamples of growing size, each started from the previous one's
answer and inverse Hessian.
"""

import math

import numpy as np
import torch

from ._recursions import gaussian_expectations, resolve_activation

__all__ = ["TrainKernel", "cholesky_solve", "cross_kernel", "factorize", "half_solve"]

_CLOSED = ("relu", "erf", "identity")
_BLOCK_BYTES = 2**19  # per block temporary: 512 KiB (in cache; 2-3x faster than 2 MiB here)
_TWO_PI = 2 * math.pi


# ----------------------------------------------------------------------------------------------
# partial derivatives of the Gaussian expectations (closed forms)
# ----------------------------------------------------------------------------------------------


def _partials(key, k11, k22, k12, derivative):
    """``E, dE/dk11, dE/dk22, dE/dk12`` of ``E = E[phi(u) phi(v)]`` and, with
    ``derivative=True``, the same four for ``E[phi'(u) phi'(v)]`` (else ``None``).

    ``k11`` broadcasts as a column, ``k22`` as a row of the block ``k12``.
    """
    if key == "identity":
        one, zero = torch.ones_like(k12), torch.zeros_like(k12)
        return (k12, zero, zero, one), ((one, zero, zero, zero) if derivative else None)
    if key == "relu":
        a = (k11 * k22).sqrt()
        rho = (k12 / a.clamp_min(torch.finfo(k12.dtype).tiny)).clamp_(-1.0, 1.0)
        theta = torch.arccos(rho)
        sn = (1.0 - rho * rho).clamp_min_(0.0).sqrt_()
        s = a * sn
        e = (s + (math.pi - theta) * k12) / _TWO_PI
        e12 = (math.pi - theta) / _TWO_PI
        c = s / (2 * _TWO_PI)
        out = (e, c / k11, c / k22, e12)
        if not derivative:
            return out, None
        # d/drho of (pi - theta) / (2 pi) is 1 / (2 pi sin theta): capped as in _Arccos, and 0
        # where |rho| = 1 (there the correlation cannot move: the diagonal, duplicate points)
        eps = 100 * torch.finfo(rho.dtype).eps
        inv = torch.where(
            rho.abs() < 1, 1.0 / (1.0 - rho * rho).clamp_min(2 * eps).sqrt(), 0.0
        ) / _TWO_PI
        half = -0.5 * rho * inv
        return out, (e12, half / k11, half / k22, inv / a.clamp_min(torch.finfo(a.dtype).tiny))
    if key == "erf":
        s11, s22 = 1.0 + 2.0 * k11, 1.0 + 2.0 * k22
        den = (s11 * s22).sqrt()
        z = 2.0 * k12 / den
        q = s11 * s22 - 4.0 * k12 * k12  # = (s11 s22) (1 - z^2)
        rq = q.rsqrt()
        e = (2 / math.pi) * torch.asin(z)
        slope = (4 / math.pi) * rq  # dE/dk12 = E[phi' phi'] (Price's theorem)
        out = (e, -slope * k12 / s11, -slope * k12 / s22, slope)
        if not derivative:
            return out, None
        d = -(2 / math.pi) * rq * rq * rq  # d slope / dq
        return out, (slope, d * 2.0 * s22, d * 2.0 * s11, d * (-8.0) * k12)
    raise ValueError(key)


# ----------------------------------------------------------------------------------------------
# the training kernel by blocks
# ----------------------------------------------------------------------------------------------


class TrainKernel:
    """The kernel of fixed inputs ``x`` against themselves, for many hyperparameter values.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d), float64
    depth : int
    activation : str or callable
    ntk : bool
    """

    def __init__(self, x, depth, activation, ntk):
        self.x, self.depth, self.activation, self.ntk = x, int(depth), activation, bool(ntk)
        key, _, _ = resolve_activation(activation)
        self.closed = key if key in _CLOSED else None
        n, d = x.shape
        self.n = n
        self.gram_diag = (x * x).sum(1) / d
        rows = max(16, _BLOCK_BYTES // (8 * max(n, 1)))
        self.blocks = [(s, min(s + rows, n)) for s in range(0, n, rows)]

    def gram(self, s, e):
        """Rows ``s:e``, columns ``s:n`` of ``x x' / d``."""
        return self.x[s:e] @ self.x[s:].T / self.x.shape[1]

    # diagonal recursions: values and log-derivatives, vectors of length n --------------------
    def diagonals(self, w, b, derivatives=False):
        """Per layer ``l = 0..depth``: ``(K_l(x_i, x_i), d/dlog w, d/dlog b)`` and, for the
        NTK, the tangent kernel's diagonal (and its derivatives) at the output."""
        g = self.gram_diag
        k = b + w * g
        kw, kb = w * g, torch.full_like(g, b)
        out = [(k, kw, kb)]
        t, tw, tb = k, kw, kb
        key = self.closed
        for _ in range(self.depth):
            if key is None:
                e = gaussian_expectations(self.activation, k, k, k)[0]
                if self.ntk:
                    de = gaussian_expectations(self.activation, k, k, k, derivative=True)[1]
                knew = b + w * e
                if self.ntk:
                    t = knew + w * de * t
                k = knew
                out.append((k, None, None))
                continue
            (e, e11, e22, e12), dpart = _partials(key, k, k, k, self.ntk)
            slope = e11 + e22 + e12  # d E(k, k, k) / dk along the diagonal
            knew = b + w * e
            kwn = w * e + w * slope * kw
            kbn = b + w * slope * kb
            if self.ntk:
                de, d11, d22, d12 = dpart
                dslope = d11 + d22 + d12
                tnew = knew + w * de * t
                tw = kwn + w * de * t + w * dslope * kw * t + w * de * tw
                tb = kbn + w * dslope * kb * t + w * de * tb
                t = tnew
            k, kw, kb = knew, kwn, kbn
            out.append((k, kw, kb))
        if self.ntk:
            out.append((t, tw, tb))
        return out

    def fill(self, w, b, noise, out, dw=None, db=None):
        """Write ``K + noise I`` (upper blocks) into ``out`` and, if given, ``dK/dlog w`` and
        ``dK/dlog b`` into ``dw`` and ``db`` (closed-form activations only)."""
        derivatives = dw is not None
        if derivatives and self.closed is None:
            raise ValueError("forward-mode derivatives need a closed-form activation")
        with torch.no_grad():
            diags = self.diagonals(w, b, derivatives)
            if derivatives and self.closed == "relu" and not self.ntk:
                self._relu_vectors = [
                    (d.sqrt(), d.rsqrt(), dw_ / (4 * math.pi * d), db_ / (4 * math.pi * d))
                    for d, dw_, db_ in diags[:-1]
                ]
            for s, e in self.blocks:
                if derivatives:
                    k, kw, kb = self._block_forward_mode(s, e, w, b, diags)
                    dw[s:e, s:] = kw
                    db[s:e, s:] = kb
                else:
                    k = self.block_values(s, e, w, b, diags)
                out[s:e, s:] = k
            out.diagonal().add_(noise)

    def _block_forward_mode(self, s, e, w, b, diags):
        """Block ``[s:e, s:n]`` of the output kernel and its two log-derivatives."""
        g = self.gram(s, e)
        k = b + w * g
        kw, kb = w * g, torch.full_like(g, b)
        r = e - s
        diag = torch.arange(r, device=g.device)
        t = tw = tb = None
        if self.ntk:
            t, tw, tb = k, kw, kb
        for layer in range(self.depth):
            dk, dkw, dkb = diags[layer]
            for m, v in ((k, dk), (kw, dkw), (kb, dkb)):
                m[diag, diag] = v[s:e]
            if self.closed == "relu" and not self.ntk:
                vec = self._relu_vectors[layer]
                k, kw, kb = _relu_layer(
                    k, kw, kb, [v[s:e, None] for v in vec], [v[None, s:] for v in vec], w, b
                )
                continue
            c11, c11w, c11b = dk[s:e, None], dkw[s:e, None], dkb[s:e, None]
            c22, c22w, c22b = dk[None, s:], dkw[None, s:], dkb[None, s:]
            (ev, e11, e22, e12), dpart = _partials(self.closed, c11, c22, k, self.ntk)
            dew = e11 * c11w + e22 * c22w + e12 * kw
            deb = e11 * c11b + e22 * c22b + e12 * kb
            knew = b + w * ev
            kwn = w * (ev + dew)
            kbn = b + w * deb
            if self.ntk:
                de, d11, d22, d12 = dpart
                ddw = d11 * c11w + d22 * c22w + d12 * kw
                ddb = d11 * c11b + d22 * c22b + d12 * kb
                tnew = knew + w * de * t
                tw = kwn + w * (de * t + ddw * t + de * tw)
                tb = kbn + w * (ddb * t + de * tb)
                t = tnew
            k, kw, kb = knew, kwn, kbn
        if self.ntk:
            k, kw, kb = t, tw, tb
        dk, dkw, dkb = diags[-1]
        for m, v in ((k, dk), (kw, dkw), (kb, dkb)):
            m[diag, diag] = v[s:e]
        return k, kw, kb

    def block_values(self, s, e, w, b, diags):
        """Block ``[s:e, s:n]`` of the output kernel by the generic recursion (any activation;
        differentiable when ``w`` and ``b`` are tensors that require grad)."""
        g = self.gram(s, e)
        k = b + w * g
        r = e - s
        diag = torch.arange(r, device=g.device)
        t = k if self.ntk else None
        for layer in range(self.depth):
            dk = diags[layer][0]
            k = _set_diagonal(k, diag, dk[s:e])
            ev, dev = gaussian_expectations(
                self.activation, dk[s:e, None], dk[None, s:], k, derivative=self.ntk
            )
            knew = b + w * ev
            if self.ntk:
                t = knew + w * dev * t
            k = knew
        out = t if self.ntk else k
        return _set_diagonal(out, diag, diags[-1][0][s:e])

    def contract_reverse(self, w, b, weights_fn):
        """``(sum(W o dK/dlog w), sum(W o dK/dlog b))`` by reverse mode, block by block;
        ``weights_fn(s, e)`` gives the block of the weights ``W``."""
        like = dict(dtype=self.x.dtype, device=self.x.device)
        lw = torch.tensor(math.log(w), **like, requires_grad=True)
        lb = torch.tensor(math.log(b) if b > 0 else -math.inf, **like, requires_grad=bool(b > 0))
        total_w = torch.zeros((), **like)
        total_b = torch.zeros((), **like)
        with torch.enable_grad():
            wt, bt = lw.exp(), lb.exp()
            diags = [(d[0], None, None) for d in self._diagonals_grad(wt, bt)]
            leaves = [d[0].detach().requires_grad_(True) for d in diags]
            leaf_diags = [(v, None, None) for v in leaves]
            grads_leaves = [torch.zeros_like(v) for v in leaves]
            params = [lw] + ([lb] if b > 0 else [])
            for s, e in self.blocks:
                block = self.block_values(s, e, wt, bt, leaf_diags)
                parts = torch.autograd.grad(
                    block, params + leaves, weights_fn(s, e), allow_unused=True,
                    retain_graph=True,
                )
                total_w = total_w + (parts[0] if parts[0] is not None else 0.0)
                if b > 0 and parts[1] is not None:
                    total_b = total_b + parts[1]
                for acc, part in zip(grads_leaves, parts[len(params):]):
                    if part is not None:
                        acc += part
            ends = torch.autograd.grad(
                [d[0] for d in diags], params, grads_leaves, allow_unused=True
            )
        total_w = total_w + (ends[0] if ends[0] is not None else 0.0)
        if b > 0 and ends[1] is not None:
            total_b = total_b + ends[1]
        return float(total_w), float(total_b)

    def _diagonals_grad(self, w, b):
        g = self.gram_diag
        k = b + w * g
        out = [(k,)]
        t = k
        for _ in range(self.depth):
            e, de = gaussian_expectations(self.activation, k, k, k, derivative=self.ntk)
            knew = b + w * e
            if self.ntk:
                t = knew + w * de * t
            k = knew
            out.append((k,))
        if self.ntk:
            out.append((t,))
        return out


def cross_kernel(x1, x2, depth, activation, ntk, w, b):
    """The output kernel between the rows of ``x1`` and ``x2`` (no grad), by row blocks of
    about ``_BLOCK_BYTES`` (kept in cache: ~2x faster than whole-matrix element-wise ops)."""
    n1, n2 = x1.shape[0], x2.shape[0]
    d = x1.shape[1]
    out = torch.empty(n1, n2, dtype=x1.dtype, device=x1.device)
    rows = max(16, _BLOCK_BYTES // (8 * max(n2, 1)))
    with torch.no_grad():
        diag1 = _diagonal_values(x1, depth, activation, w, b)
        diag2 = _diagonal_values(x2, depth, activation, w, b)
        for s in range(0, n1, rows):
            e = min(s + rows, n1)
            k = b + w * (x1[s:e] @ x2.T / d)
            t = k if ntk else None
            for layer in range(depth):
                ev, dev = gaussian_expectations(
                    activation, diag1[layer][s:e, None], diag2[layer][None, :], k,
                    derivative=ntk,
                )
                knew = ev.mul_(w).add_(b)
                if ntk:
                    t = knew + w * dev * t
                k = knew
            out[s:e] = t if ntk else k
    return out


def _diagonal_values(x, depth, activation, w, b):
    k = b + w * (x * x).sum(1) / x.shape[1]
    out = [k]
    for _ in range(depth):
        k = b + w * gaussian_expectations(activation, k, k, k)[0]
        out.append(k)
    return out


def _relu_layer(k, kw, kb, r, c, w, b):
    """One relu NNGP layer and its log-derivatives, fused and mostly in place.

    ``r`` and ``c`` hold, for the block's rows (columns) and columns (rows), ``sqrt(d)``,
    ``1 / sqrt(d)``, ``d_w / (4 pi d)`` and ``d_b / (4 pi d)`` of the diagonal ``d`` and its
    log-derivatives. With ``s = sqrt(k11 k22 - k12^2)`` and ``e12 = (pi - theta) / (2 pi)``:
    ``E = s / (2 pi) + e12 k12`` and ``dE = s (u_i + u_j) + e12 dk12`` (the partials of
    :func:`_partials` regrouped). ``k``, ``kw``, ``kb`` are consumed.
    """
    rho = k * r[1]
    rho.mul_(c[1]).clamp_(-1.0, 1.0)
    s = torch.addcmul(torch.ones_like(rho), rho, rho, value=-1.0).clamp_min_(0.0).sqrt_()
    s.mul_(r[0]).mul_(c[0])
    e12 = rho.arccos_().mul_(-1.0 / _TWO_PI).add_(0.5)
    ev = torch.addcmul(s / _TWO_PI, e12, k)
    dew = torch.addcmul(s * (r[2] + c[2]), e12, kw)
    deb = torch.addcmul(s.mul_(r[3] + c[3]), e12, kb)
    kw_new = dew.add_(ev).mul_(w)
    kb_new = deb.mul_(w).add_(b)
    k_new = ev.mul_(w).add_(b)
    return k_new, kw_new, kb_new


def _set_diagonal(m, idx, values):
    """``m`` with entries ``(i, i)`` (block coordinates) replaced, out of place if m needs grad."""
    if m.requires_grad or values.requires_grad:
        m = m.clone()
    m[idx, idx] = values
    return m


# ----------------------------------------------------------------------------------------------
# factorization of the buffer
# ----------------------------------------------------------------------------------------------

_CONTROLLER = None


def _blas_threads():
    """SciPy's BLAS limited to torch's thread count (``torch.set_num_threads``) for the call.

    OpenBLAS otherwise starts one spinning thread per core: on a loaded 2-core machine a
    200 x 200 Cholesky took 0.14 s instead of 1.2 ms.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=torch.get_num_threads(), user_api="blas")



def factorize(buf, clean=False):
    """Cholesky factor of the symmetric matrix in the upper triangle of ``buf``, in place.

    Returns ``L`` (a lower-triangular view of ``buf``'s memory on the CPU, else a new tensor)
    or ``None`` if the matrix is not positive definite. With ``clean=True`` the other triangle
    is zeroed.
    """
    if buf.device.type == "cpu":
        from scipy.linalg import lapack

        fview = buf.numpy().T  # Fortran order; its "lower" triangle is buf's upper one
        with _blas_threads():
            c, info = lapack.dpotrf(fview, lower=1, overwrite_a=1, clean=int(clean))
        if info != 0:
            return None
        assert np.shares_memory(c, fview)
        return buf.T  # L in its lower triangle
    sym = buf.triu() + buf.triu(1).T
    L, info = torch.linalg.cholesky_ex(sym)
    return None if bool(info.item()) else L


def cholesky_solve(L, y):
    """``(L L')^-1 y`` for a vector or matrix ``y``."""
    if L.device.type == "cpu":
        from scipy.linalg import lapack

        with _blas_threads():
            x, info = lapack.dpotrs(L.numpy(), y.numpy(), lower=1)
        return torch.from_numpy(np.ascontiguousarray(x))
    return torch.cholesky_solve(y if y.dim() == 2 else y[:, None], L).reshape(y.shape)


def half_solve(L, B):
    """``L^-1 B`` for ``B`` of shape (n, m)."""
    if L.device.type == "cpu":
        from scipy.linalg import solve_triangular

        with _blas_threads():
            return torch.from_numpy(
                solve_triangular(L.numpy(), B.numpy(), lower=True, check_finite=False)
            )
    return torch.linalg.solve_triangular(L, B, upper=False)


def _inverse(L, out):
    """``(L L')^-1`` into ``out`` (upper triangle valid on the CPU, full elsewhere)."""
    if L.device.type == "cpu":
        from scipy.linalg import lapack

        out.copy_(L.T)  # out's upper triangle (C order) = L' ; LAPACK sees it as L
        fview = out.numpy().T
        with _blas_threads():
            c, info = lapack.dpotri(fview, lower=1, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError("potri failed")
        return out
    out.copy_(torch.cholesky_inverse(L))
    return out


# ----------------------------------------------------------------------------------------------
# objective and optimizer
# ----------------------------------------------------------------------------------------------
