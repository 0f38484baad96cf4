"""The joint family of several responses modelled by one network (combined outputs).

:class:`JointFamily` combines one family per response column: the network's outputs are split
into one block (head) per response, the responses are independent given the inputs, and the
log-likelihood is the sum of theirs. With shared hidden layers the heads borrow strength; with
none the joint fit factorizes into the separate GLMs.

A gaussian response has its own dispersion. In the training objective it is profiled out:
``0.5 log(RSS_j / n)`` per gaussian response, the joint negative log-likelihood at the
maximum-likelihood variance (so a response's units do not weigh it against the others), with
its exact gradient. For inference the family carries the dispersions as parameters
(``dispersions``, estimated by the estimator as ``RSS_j / (nobs - df_j)``, statsmodels' OLS
scale): scores and information use them, as a GLM plugs its dispersion in, and the reported
log-likelihood evaluates each gaussian response at its maximum-likelihood variance, as
statsmodels' OLS ``llf``.
"""

import numpy as np
import torch

from .families import AdditiveFamily, _np

#: families a response of a joint model may have, by name
JOINT_MEMBERS = ("gaussian", "bernoulli", "poisson", "negative_binomial", "gaulss")


def _one_d(y):
    return y[:, 0] if y.ndim == 2 else y


class JointFamily(AdditiveFamily):
    """Independent responses, one family each, sharing one network.

    Parameters
    ----------
    families : tuple of Family
        One family per response column (see :data:`JOINT_MEMBERS`), each with one response.
    names : tuple of str
        The responses' names.
    dispersions : tuple of float or None
        Per response, the dispersion used in scores and information (1 for a family without
        one); None before it is estimated (training needs none).

    Notes
    -----
    The linear predictor holds the outputs of every response in order, then the ancillary
    predictors of every response in order (negative binomial ``log alpha``); ``mean`` is
    (n, n_responses).
    """

    name = "joint"
    link = "per response"
    newton = True

    def __init__(self, families, names, dispersions=None):
        self.families = tuple(families)
        self.names = tuple(str(n) for n in names)
        self.dispersions = None if dispersions is None else tuple(float(d) for d in dispersions)
        self._layout()

    def _layout(self):
        k = [f.n_outputs(np.zeros(1)) for f in self.families]
        m = [len(f.ancillary) for f in self.families]
        start_anc = sum(k)
        mean_start = np.cumsum([0] + k[:-1])
        anc_start = start_anc + np.cumsum([0] + m[:-1])
        self._cols = [list(range(a, a + kj)) + list(range(b, b + mj))
                      for a, b, kj, mj in zip(mean_start, anc_start, k, m)]
        self._k, self._m = k, m

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._layout()

    @property
    def ancillary(self):
        """``"response.name"`` of each ancillary parameter (after every response's outputs)."""
        return tuple(f"{n}.{a}" for n, f in zip(self.names, self.families) for a in f.ancillary)

    def ancillary_values(self, raw):
        """Each response's ancillary parameters on its family's scale (NB: alpha)."""
        values, derivs, i = [], [], 0
        for f, m in zip(self.families, self._m):
            v, d = f.ancillary_values(np.asarray(raw[i:i + m]))
            values.append(v)
            derivs.append(d)
            i += m
        return np.concatenate(values), np.concatenate(derivs)

    @property
    def has_dispersion(self):
        """Per response: a dispersion is estimated (gaussian)."""
        return tuple(bool(f.has_scale) for f in self.families)

    def columns(self, j):
        """Indices in eta of response ``j``'s linear predictors (its outputs, then ancillary)."""
        return self._cols[j]

    def output_columns(self, j):
        """Indices of response ``j``'s own outputs (no ancillary) among the network outputs."""
        return self._cols[j][:self._k[j]]

    def _blocks(self, eta, y=None):
        for j, fam in enumerate(self.families):
            yield j, fam, eta[:, self._cols[j]], None if y is None else y[:, j]

    def _disp(self, j, e=None, yj=None, w=None):
        """Response j's dispersion: the stored one, or (training, none stored) a gaussian
        response's maximum-likelihood variance at ``e``: the curvature of its profiled loss
        at the minimum, what the Newton finish needs."""
        if self.dispersions is not None:
            return self.dispersions[j]
        if e is None or not self.families[j].has_scale:
            return 1.0
        r2 = (yj - e[:, 0].detach()) ** 2
        return float((r2.mean() if w is None else (w * r2).sum() / w.sum()).clamp_min(1e-300))

    # ----------------------------------------------------------------- targets and start
    def n_outputs(self, y):
        return sum(self._k)

    def validate(self, y):
        if y.ndim != 2 or y.shape[1] != len(self.families):
            raise ValueError(f"The joint family needs one column per response "
                             f"({len(self.families)}); got y of shape {y.shape}.")
        for j, fam in enumerate(self.families):
            try:
                fam.validate(y[:, j])
            except ValueError as exc:
                raise ValueError(f"response {self.names[j]!r}: {exc}") from None

    def initial_intercept(self, y, sample_weight):
        parts = [np.asarray(f.initial_intercept(y[:, j], sample_weight), dtype=np.float64)
                 for j, f in enumerate(self.families)]
        return np.concatenate([p[:k] for p, k in zip(parts, self._k)]
                              + [p[k:] for p, k in zip(parts, self._k)])

    def offset_eta(self, offset, n_eta):
        raise ValueError("A joint model of several responses takes no offset.")

    # ----------------------------------------------------------------- likelihood
    def loss(self, eta, y, sample_weight=None):
        """Sum over responses of the mean nll; a gaussian response's is profiled over its
        variance: ``0.5 log(sum_i w_i r_i^2 / sum_i w_i)`` (constants dropped)."""
        total = 0.0
        for _, fam, e, yj in self._blocks(eta, y):
            if fam.has_scale:
                r = yj - e[:, 0]
                r2 = r * r if sample_weight is None else sample_weight * r * r
                wsum = yj.shape[0] if sample_weight is None else sample_weight.sum()
                total = total + 0.5 * torch.log(torch.clamp(r2.sum() / wsum, min=1e-300))
            else:
                total = total + fam.loss(e, yj, sample_weight)
        return total

    def nll(self, eta, y):
        return sum(fam.nll(e, yj) / self._disp(j) for j, fam, e, yj in self._blocks(eta, y))

    def loglik_obs(self, eta, y, scale=1.0):
        return sum(fam.loglik_obs(e, yj, self._disp(j))
                   for j, fam, e, yj in self._blocks(eta, y))

    def loglik_by_response(self, eta, y, sample_weight=None):
        """Each response's log-likelihood (a gaussian one at its maximum-likelihood variance,
        ``RSS / nobs``, as statsmodels' OLS ``llf``), numpy."""
        out = []
        for _, fam, e, yj in self._blocks(eta, y):
            scale = 1.0
            if fam.has_scale:
                chi2 = fam.pearson_chi2(e, yj, sample_weight)
                nobs = yj.shape[0] if sample_weight is None else float(sample_weight.sum())
                scale = chi2 / nobs
            out.append(float(fam.loglik(e, yj, sample_weight, scale)))
        return np.array(out)

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        """The reported log-likelihood: the sum of :meth:`loglik_by_response` (``scale`` is not
        used: each gaussian response is at its maximum-likelihood variance)."""
        total = 0.0
        for _, fam, e, yj in self._blocks(eta, y):
            if fam.has_scale:
                r2 = (yj - e[:, 0]) ** 2
                nobs = yj.shape[0] if sample_weight is None else sample_weight.sum()
                s = (r2 if sample_weight is None else sample_weight * r2).sum() / nobs
                total = total + fam.loglik(e, yj, sample_weight, s.detach())
            else:
                total = total + fam.loglik(e, yj, sample_weight)
        return total

    def mean(self, eta):
        return torch.stack([fam.mean(e) for _, fam, e, _ in self._blocks(eta)], 1)

    def variance(self, mu):
        raise ValueError("The joint family has one variance function per response.")

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        u = torch.zeros_like(eta, dtype=eta.dtype)
        for j, fam, e, yj in self._blocks(eta, y):
            s = self._disp(j, e, yj, sample_weight)
            u[:, self._cols[j]] = _as2(fam.score_eta(e, yj, sample_weight, s))
        return u

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        n, k = eta.shape
        W = torch.zeros(n, k, k, dtype=eta.dtype)
        for j, fam, e, yj in self._blocks(eta, y):
            c = torch.as_tensor(self._cols[j])
            W[:, c[:, None], c[None, :]] = fam.information_eta(
                e, yj, sample_weight, self._disp(j, e, yj, sample_weight))
        return W

    # ----------------------------------------------------------------- residuals
    def residuals(self, eta, y, sample_weight=None):
        parts = [fam.residuals(e, yj, sample_weight) for _, fam, e, yj in self._blocks(eta, y)]
        return (np.column_stack([_one_np(p[0]) for p in parts]),
                np.column_stack([_one_np(p[1]) for p in parts]))

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        chi2 = np.array([fam.pearson_chi2(e, yj, sample_weight)
                         for _, fam, e, yj in self._blocks(eta, y)])
        return chi2 if by_output else float(chi2.sum())

    def sample(self, eta, scale, rng, sample_weight=None):
        return np.column_stack([fam.sample(e, self._disp(j), rng, sample_weight)
                                for j, fam, e, _ in self._blocks(eta)])

    def with_dispersions(self, eta, y, sample_weight, df):
        """A copy whose gaussian responses' dispersions are ``chi2_j / (nobs - df[j])``."""
        nobs = y.shape[0] if sample_weight is None else float(sample_weight.sum())
        disp = []
        for j, fam, e, yj in self._blocks(eta, y):
            d = 1.0
            if fam.has_scale:
                d = fam.pearson_chi2(e, yj, sample_weight) / max(nobs - df[j], 1e-300)
            disp.append(d)
        return JointFamily(self.families, self.names, disp)


def _as2(u):
    return u[:, None] if u.ndim == 1 else u


def _one_np(a):
    a = _np(a)
    return a[:, 0] if a.ndim == 2 else a


__all__ = ["JOINT_MEMBERS", "JointFamily"]
