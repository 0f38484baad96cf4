"""The ``cox`` family: the Cox partial likelihood as the loss of a net.

A Cox model has no intercept (it cancels in the partial likelihood) and no per-observation
likelihood: each event contributes its linear predictor against the log of the summed risk of
everyone still at risk. With weights ``w``, risk ``r_j = w_j exp(eta_j)`` and, at each distinct
event time ``t``, ``d`` events ``D`` of total weight ``W_D``, risk-set sum
``S = sum_{j in R(t)} r_j`` and ``S_D = sum_{j in D} r_j``, the log partial likelihood is (R's
``coxph``, for any weights)

* ``ties="breslow"``: ``sum_{i in D} w_i eta_i - W_D log S``;
* ``ties="efron"``: ``sum_{i in D} w_i eta_i - (W_D / d) sum_{l=0}^{d-1} log(S - (l / d) S_D)``,

summed over event times. The risk set ``R(t)`` holds the rows of the event's stratum with
``start < t <= stop`` (:mod:`neurostat.survival.risksets`): right-censored data, counting-process
data (time-varying covariates, delayed entry) and strata are one code path. With competing
risks (event codes ``1..K``) the net has one output per cause and the likelihood is the sum of
the cause-specific partial likelihoods (each cause's events against everyone at risk; events of
other causes count as censored). The training loss is its negative divided by the total weight
of the rows (``sum_i w_i``, i.e. ``n`` unweighted): glmnet's and scikit-survival's
``CoxnetSurvivalAnalysis`` convention, so that ``alpha`` means what it means there. A minibatch
uses the risk sets formed within the batch (as DeepSurv and pycox do), which respect the
intervals and strata of its rows.
"""

import numpy as np
import torch

from ..engine.families import Family
from .risksets import TIES, RiskSets, cause_loglik, partial_loglik  # noqa: F401 (re-exported)
from .target import as_survival_target, columns  # noqa: F401 (re-exported)


class Cox(Family):
    """Cox proportional hazards: ``h_k(t | x) = h0_k(t) exp(eta_k(x))`` by partial likelihood.

    The encoded target is a float array of (time, event) or (start, stop, event, stratum)
    (:mod:`neurostat.survival.target`); times may be replaced by any order-preserving code
    (the estimator trains on dense time ranks, exact in float32). The partial likelihood
    couples the rows through the risk sets (``additive = False``): every method takes all
    rows at once, and the information and score residuals are built from cumulative sums over
    the sorted risk sets in ``O(n p^2)``, never an ``n x n`` matrix.

    Parameters
    ----------
    ties : {"efron", "breslow"}, default="efron"
    n_causes : int, default=1
        Competing causes (event codes ``1..n_causes``); one output of the net per cause.
    """

    name, link = "cox", "log"
    additive = False
    newton = True

    def __init__(self, ties="efron", n_causes=1):
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}; got {ties!r}.")
        self.ties = ties
        self.n_causes = int(n_causes)

    def n_outputs(self, y):
        return self.n_causes

    def validate(self, y):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] not in (2, 4):
            raise ValueError(
                "The cox family needs (time, event) or (start, stop, event, stratum) columns; "
                f"got shape {y.shape}.")

    def initial_intercept(self, y, sample_weight):
        """Zero: a Cox model has no intercept (the estimator freezes the output bias)."""
        return np.zeros(self.n_causes)

    def null_eta(self, y, sample_weight, n_outputs):
        """``eta = 0``: no covariate effect."""
        return torch.zeros(len(y), self.n_causes, dtype=torch.float64)

    # ----------------------------------------------------------------- likelihood
    def _loglik(self, eta, rs):
        eta = eta.reshape(eta.shape[0], -1)
        return sum(cause_loglik(eta[:, k], rs, rs.causes[k], self.ties)
                   for k in range(self.n_causes))

    def loss(self, eta, y, sample_weight=None):
        """Negative log partial likelihood over the rows' own risk sets, divided by
        ``sum_i w_i`` (``n`` unweighted)."""
        ll = self._loglik(eta, RiskSets(y, sample_weight, self.n_causes))
        total = y.shape[0] if sample_weight is None else sample_weight.sum()
        return -ll / total

    def mean(self, eta):
        """The relative hazard (partial hazard) ``exp(eta)`` (one column per cause)."""
        return torch.exp(eta[:, 0] if eta.ndim == 2 and eta.shape[1] == 1 else eta)

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        """The weighted log partial likelihood (``scale`` is ignored: there is no dispersion)."""
        return self._loglik(eta, self._risk_sets(y, sample_weight))

    def _risk_sets(self, y, w):
        # inference asks for the information, the scores and the likelihood of one fixed
        # target many times: keep the sorted structure of the last (y, w) seen
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is y and cached[1] is w:
            return cached[2]
        rs = RiskSets(y, w, self.n_causes)
        self._cache = (y, w, rs)
        return rs

    n_causes = 1  # the class default: one-cause families leave it out of their parameters

    def _params(self):
        params = super()._params()
        if params.get("n_causes") == 1:
            params.pop("n_causes")  # Cox("efron") is Cox("efron", n_causes=1), repr and all
        return params

    def _pieces(self, G, e, rs, ev):
        """Sorted-order quantities shared by the information and the score residuals of one
        cause (``G`` and ``e`` sorted)."""
        w = torch.ones_like(e) if rs.w is None else rs.w
        r = w * torch.exp(e - e.max())  # a common shift cancels in every ratio below
        first = rs.first
        S = rs.risk_sums(r)
        Q = rs.risk_sums(r[:, None] * G)
        c, a = ev.coefficients(self.ties)
        d = ev.d
        n = e.shape[0]
        SD = torch.zeros(n, dtype=e.dtype).index_add_(0, first, d * r)[first]
        QD = torch.zeros_like(G).index_add_(0, first, (d * r)[:, None] * G)[first]
        T = torch.where(d > 0, S - a * SD, torch.ones_like(S))  # one denominator per event
        m = (Q - a[:, None] * QD) / T[:, None]  # risk-set mean of G for each event's term
        h = c / T  # each event term's hazard increment
        Hg = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h)
        tie = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h * a)[first]
        kappa = r * (rs.between(Hg) - d * tie)  # r_j times the hazard while j is at risk
        return w, r, d, c, a, h, m, kappa

    def _sorted(self, G, eta, y, w):
        rs = self._risk_sets(y, w)
        eta = eta.detach().reshape(eta.shape[0], -1)
        for k in range(self.n_causes):
            Gk = G[:, k, :]
            if rs.keep is not None:
                Gk = Gk[rs.keep]
            yield rs, rs.causes[k], Gk[rs.order], rs.sort(eta[:, k])

    def information(self, G, eta, y, sample_weight=None, scale=1.0):
        p = G.shape[2]
        F = torch.zeros(p, p, dtype=torch.float64)
        for rs, ev, Gs, e in self._sorted(G, eta, y, sample_weight):
            _, _, _, c, _, _, m, kappa = self._pieces(Gs, e, rs, ev)
            F += Gs.T @ (kappa[:, None] * Gs) - (c[:, None] * m).T @ m
        return 0.5 * (F + F.T)

    def score_obs(self, G, eta, y, sample_weight=None, scale=1.0):
        """Per-observation score residuals ``w_j s_j`` (Lin & Wei 1989; R's
        ``residuals(fit, "score")`` times the weights), shape (n, p); they sum to the score.
        For (start, stop] data one per interval (R sums them by ``cluster`` for the robust
        variance)."""
        n_rows, p = eta.shape[0], G.shape[2]
        out = torch.zeros(n_rows, p, dtype=torch.float64)
        for rs, ev, Gs, e in self._sorted(G, eta, y, sample_weight):
            w, r, d, c, a, h, m, kappa = self._pieces(Gs, e, rs, ev)
            n, first = e.shape[0], rs.first
            Bg = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, h[:, None] * m)
            Btie = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, (h * a)[:, None] * m)
            B = rs.between(Bg) - d[:, None] * Btie[first]
            # an event is centred by the average of its time's Efron risk-set means
            dg = ev.n_tied.clamp(min=1)
            mbar = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, d[:, None] * m)[first]
            mbar = mbar / dg[:, None]
            s = (w * d)[:, None] * (Gs - mbar) - kappa[:, None] * Gs + r[:, None] * B
            rows = torch.arange(n_rows)
            if rs.keep is not None:
                rows = rows[rs.keep]
            out[rows[rs.order]] += s
        return out

    # ----------------------------------------------------------------- residuals
    def martingale_residuals(self, eta, y, sample_weight=None):
        """``d_i - (H0(stop_i) - H0(start_i)) exp(eta_i)`` with Breslow's ``H0`` of the row's
        stratum (R's ``residuals(fit, "martingale")`` after a Breslow fit), numpy (n,) or
        (n, n_causes)."""
        from .metrics import baseline_hazards, interval_hazard

        y = _np(y)
        eta = _np(eta).reshape(y.shape[0], -1)
        w = None if sample_weight is None else _np(sample_weight)
        times, H = baseline_hazards(y, eta, w, self.n_causes)
        _, _, event, _ = columns(y)
        M = np.column_stack([(event == k + 1) for k in range(self.n_causes)]).astype(float)
        M = M - interval_hazard(times, H, y) * np.exp(eta)
        return M[:, 0] if self.n_causes == 1 else M

    def residuals(self, eta, y, sample_weight=None):
        """``(deviance, martingale)``: the Cox model has no Pearson residual; the deviance
        residual is ``sign(M) sqrt(-2 (M + d log(d - M)))`` of the martingale residual M."""
        m = self.martingale_residuals(eta, y, sample_weight)
        _, _, event, _ = columns(_np(y))
        d = np.column_stack([(event == k + 1) for k in range(self.n_causes)]).astype(float)
        d = d[:, 0] if self.n_causes == 1 else d
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.where(d > 0, np.log(np.where(d > 0, d - m, 1.0)), 0.0)
        dev = np.sign(m) * np.sqrt(np.maximum(-2 * (m + d * inner), 0.0))
        return dev, m

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        """The sum of squared martingale residuals (the Cox model has no Pearson residual)."""
        m = self.martingale_residuals(eta, y, sample_weight)
        w = np.ones(m.shape[0]) if sample_weight is None else _np(sample_weight)
        return float(np.sum(w.reshape(-1, *([1] * (m.ndim - 1))) * m**2))


def _np(a):
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
