"""The ``cox`` family: the Cox partial likelihood as the loss of a net, and survival targets.

A Cox model has no intercept (it cancels in the partial likelihood) and no per-observation
likelihood: each event contributes its linear predictor against the log of the summed risk of
everyone still at risk. With weights ``w``, risk ``r_j = w_j exp(eta_j)`` and, at each distinct
event time ``t``, ``d`` events ``D`` of total weight ``W_D``, risk-set sum
``S = sum_{t_j >= t} r_j`` and ``S_D = sum_{j in D} r_j``, the log partial likelihood is (R's
``coxph``, for any weights)

* ``ties="breslow"``: ``sum_{i in D} w_i eta_i - W_D log S``;
* ``ties="efron"``: ``sum_{i in D} w_i eta_i - (W_D / d) sum_{l=0}^{d-1} log(S - (l / d) S_D)``,

summed over event times. Without ties both equal Cox's partial likelihood. The training loss
is its negative divided by the total weight of the rows (``sum_i w_i``, i.e. ``n`` unweighted):
glmnet's and scikit-survival's ``CoxnetSurvivalAnalysis`` convention, so that ``alpha`` means
what it means there. A minibatch uses the risk sets formed within the batch (as DeepSurv and
pycox do).

Everything here is vectorized torch (sort, reverse log-cumsum-exp, scatter-adds), so it runs
on the device for minibatches and in float64 for the L-BFGS fit and for inference.
"""

import numpy as np
import torch

from ..engine.families import Family

TIES = ("efron", "breslow")


# ----------------------------------------------------------------------------- targets
_EVENT_NAMES = ("event", "status", "dead", "death", "died", "observed", "fail", "cens", "delta")


def _is_bool(dtype):
    return np.dtype(dtype) == np.bool_


def _pick_event_field(names, dtypes):
    bools = [k for k, t in zip(names, dtypes, strict=True) if _is_bool(t)]
    if len(bools) == 1:
        return bools[0]
    named = [k for k in names if any(s in str(k).lower() for s in _EVENT_NAMES)]
    if len(named) == 1:
        return named[0]
    return None


def as_survival_target(y):
    """Survival target as a float64 array of shape (n_samples, 2): columns (time, event).

    Accepts a structured array with two fields (scikit-survival's ``Surv``: the boolean field
    is the event indicator; otherwise the field whose name says event/status), a two-column
    array or DataFrame ``(time, event)`` (a boolean column, if exactly one, is the event), or a
    1-D array of times, all of them events (lifelines' convention when no event column is
    given).

    Raises
    ------
    ValueError
        For a missing target, negative or non-finite times, events not in {0, 1}, or no event
        at all.
    """
    if y is None:
        raise ValueError(
            "NeuralCoxRegressor requires y to be passed, but the target y is None. Give "
            "(time, event) pairs: a structured array, a two-column array or DataFrame, or "
            "1-D times (all events)."
        )
    names = getattr(getattr(y, "dtype", None), "names", None)
    if names is not None:
        if len(names) != 2:
            raise ValueError(
                f"A structured survival target needs exactly two fields (event, time); got "
                f"{list(names)}."
            )
        ev = _pick_event_field(names, [y.dtype[k] for k in names])
        if ev is None:
            raise ValueError(
                f"Cannot tell which field of the structured target {list(names)} is the event "
                "indicator: make it boolean (as scikit-survival's Surv) or name it 'event'."
            )
        tm = names[1] if names[0] == ev else names[0]
        time, event = np.asarray(y[tm]), np.asarray(y[ev])
    else:
        if hasattr(y, "columns") and getattr(y, "ndim", 2) == 2:  # DataFrame
            cols = list(y.columns)
            if len(cols) != 2:
                raise ValueError(
                    f"A survival target DataFrame needs two columns (time, event); got {cols}."
                )
            dtypes = list(y.dtypes)
            ev = _pick_event_field(cols, dtypes) if any(_is_bool(t) for t in dtypes) else None
            ev = cols[1] if ev is None else ev
            tm = cols[1] if cols[0] == ev else cols[0]
            time, event = y[tm].to_numpy(), y[ev].to_numpy()
        else:
            arr = np.asarray(y)
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim == 1:
                time, event = arr, np.ones(arr.shape[0])
            elif arr.ndim == 2 and arr.shape[1] == 2:
                time, event = arr[:, 0], arr[:, 1]
            else:
                raise ValueError(
                    f"y must be (time, event) pairs of shape (n_samples, 2), a structured array "
                    f"or 1-D times; got shape {arr.shape}."
                )
    if np.iscomplexobj(time) or np.iscomplexobj(event):
        raise ValueError("Complex data not supported: survival times and events must be real.")
    try:
        time = np.asarray(time, dtype=np.float64)
        event = np.asarray(event, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Survival times and events must be numeric: {exc}") from None
    if not np.all(np.isfinite(time)):
        raise ValueError("Survival times contain NaN or infinity; give finite times >= 0.")
    if np.any(time < 0):
        raise ValueError(
            f"Survival times must be >= 0; got {int((time < 0).sum())} negative time(s) "
            f"(smallest {time.min():g})."
        )
    if not np.all(np.isin(event, (0.0, 1.0))):
        bad = np.unique(event[~np.isin(event, (0.0, 1.0))])[:5]
        raise ValueError(
            f"The event indicator must be 0 (censored) or 1 (event); got values {bad.tolist()}."
        )
    if time.shape[0] and not np.any(event == 1):
        raise ValueError(
            "The data contain no events (every observation is censored): the partial "
            "likelihood is constant and a Cox model cannot be fitted."
        )
    return np.column_stack([time, event])


# ----------------------------------------------------------------------------- likelihood
class RiskSets:
    """Sorted risk-set structure of (time, event) for one fixed target (torch tensors).

    Rows are sorted by ascending time; ``first[i]`` is the position (in sorted order) of the
    first row with the same time, so the risk set of row i is every sorted position from
    ``first[i]`` on. For events, ``rank`` is the 0-based index among the events sharing the
    time and ``n_tied`` their number (Efron's ``l`` and ``d``).
    """

    def __init__(self, time, event, weight=None):
        if weight is not None:
            keep = weight > 0  # zero-weight rows are absent from every risk set
            if not bool(keep.all()):
                self.keep = keep
                time, event, weight = time[keep], event[keep], weight[keep]
            else:
                self.keep = None
        else:
            self.keep = None
        order = torch.argsort(time, stable=True)
        self.order = order
        t = time[order].contiguous()
        self.d = event[order]
        self.w = None if weight is None else weight[order]
        self.first = torch.searchsorted(t, t, side="left")
        n = t.shape[0]
        cs = torch.cumsum(self.d, 0)
        self.rank = (cs - self.d - (cs[self.first] - self.d[self.first])) * self.d
        self.n_tied = torch.zeros(n, dtype=self.d.dtype, device=t.device).index_add_(
            0, self.first, self.d)[self.first]
        wd = self.d if self.w is None else self.w * self.d
        self.wd = wd
        self.w_tied = torch.zeros(n, dtype=wd.dtype, device=t.device).index_add_(
            0, self.first, wd)[self.first]

    def sort(self, eta):
        """``eta`` (n,) or (n, 1) restricted to kept rows and put in sorted order."""
        eta = eta.reshape(-1)
        if self.keep is not None:
            eta = eta[self.keep]
        return eta[self.order]

    def efron_coefficients(self, ties):
        """Per sorted row: ``c`` (weight of its log-denominator term) and ``a`` (Efron's l/d),
        both zero for censored rows."""
        if ties == "breslow":
            return self.wd, torch.zeros_like(self.wd)
        dg = self.n_tied.clamp(min=1)
        return self.d * self.w_tied / dg, self.rank / dg

    def log_risk(self, e):
        """``log S`` of each sorted row's risk set for sorted linear predictor ``e``."""
        a = e if self.w is None else e + torch.log(self.w)
        log_s = torch.flip(torch.logcumsumexp(torch.flip(a, (0,)), 0), (0,))
        return a, log_s[self.first]


def partial_loglik(eta, time, event, weight=None, ties="efron", risk_sets=None):
    """Weighted log partial likelihood (a scalar tensor, differentiable in ``eta``).

    Parameters
    ----------
    eta : tensor of shape (n,) or (n, 1)
    time, event : tensors of shape (n,)
    weight : tensor of shape (n,) or None
    ties : {"efron", "breslow"}
    risk_sets : RiskSets, optional
        Precomputed structure for this (time, event, weight).
    """
    rs = RiskSets(time, event, weight) if risk_sets is None else risk_sets
    e = rs.sort(eta)
    a, log_risk = rs.log_risk(e)
    c, frac = rs.efron_coefficients(ties)
    term = log_risk
    if ties == "efron":
        # S_D / S for each event's time: each event's share r_k / S <= 1, summed per time
        share = rs.d * torch.exp(a - log_risk)
        q = torch.zeros_like(share).index_add_(0, rs.first, share)[rs.first]
        term = log_risk + torch.log1p(-frac * q)
    return (rs.wd * e).sum() - (c * term).sum()


class Cox(Family):
    """Cox proportional hazards: ``h(t | x) = h0(t) exp(eta(x))``, fitted by partial likelihood.

    The encoded target is a float array (n, 2) of (time, event); ``time`` may be replaced by
    any order-preserving code (the estimator trains on dense time ranks, exact in float32).
    The partial likelihood couples the rows through the risk sets (``additive = False``):
    every method takes all rows at once, and the information and score residuals are built
    from cumulative sums over the sorted risk sets in ``O(n p^2)``, never an ``n x n`` matrix.

    Parameters
    ----------
    ties : {"efron", "breslow"}, default="efron"
    """

    name, link = "cox", "log"
    additive = False
    newton = True

    def __init__(self, ties="efron"):
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}; got {ties!r}.")
        self.ties = ties

    def n_outputs(self, y):
        return 1

    def validate(self, y):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != 2:
            raise ValueError(f"The cox family needs (time, event) pairs; got shape {y.shape}.")

    def initial_intercept(self, y, sample_weight):
        """Zero: a Cox model has no intercept (the estimator freezes the output bias)."""
        return np.zeros(1)

    def null_eta(self, y, sample_weight, n_outputs):
        """``eta = 0``: no covariate effect."""
        return torch.zeros(len(y), 1, dtype=torch.float64)

    # ----------------------------------------------------------------- likelihood
    def loss(self, eta, y, sample_weight=None):
        """Negative log partial likelihood over the rows' own risk sets, divided by
        ``sum_i w_i`` (``n`` unweighted)."""
        ll = partial_loglik(eta, y[:, 0], y[:, 1], sample_weight, self.ties)
        total = y.shape[0] if sample_weight is None else sample_weight.sum()
        return -ll / total

    def mean(self, eta):
        """The relative hazard (partial hazard) ``exp(eta)``."""
        return torch.exp(eta[:, 0] if eta.ndim == 2 else eta)

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        """The weighted log partial likelihood (``scale`` is ignored: there is no dispersion)."""
        return partial_loglik(eta, y[:, 0], y[:, 1], sample_weight, self.ties,
                              self._risk_sets(y, sample_weight))

    def _risk_sets(self, y, w):
        # inference asks for the information, the scores and the likelihood of one fixed
        # target many times: keep the sorted structure of the last (y, w) seen
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is y and cached[1] is w:
            return cached[2]
        rs = RiskSets(y[:, 0], y[:, 1], w)
        self._cache = (y, w, rs)
        return rs

    def _pieces(self, G, eta, y, w):
        """Sorted-order quantities shared by the information and the score residuals."""
        rs = self._risk_sets(y, w)
        e = rs.sort(eta.detach())
        G = G[:, 0, :]
        if rs.keep is not None:
            G = G[rs.keep]
        G = G[rs.order]
        w = torch.ones_like(e) if rs.w is None else rs.w
        r = w * torch.exp(e - e.max())  # a common shift cancels in every ratio below
        first = rs.first
        S = torch.flip(torch.cumsum(torch.flip(r, (0,)), 0), (0,))[first]
        Q = torch.flip(torch.cumsum(torch.flip(r[:, None] * G, (0,)), 0), (0,))[first]
        c, a = rs.efron_coefficients(self.ties)
        d = rs.d
        n = e.shape[0]
        SD = torch.zeros(n, dtype=e.dtype).index_add_(0, first, d * r)[first]
        QD = torch.zeros_like(G).index_add_(0, first, (d * r)[:, None] * G)[first]
        T = torch.where(d > 0, S - a * SD, torch.ones_like(S))  # one denominator per event
        m = (Q - a[:, None] * QD) / T[:, None]  # risk-set mean of G for each event's term
        return rs, G, w, r, d, c, a, T, m

    def information(self, G, eta, y, sample_weight=None, scale=1.0):
        rs, G, w, r, d, c, a, T, m = self._pieces(G, eta, y, sample_weight)
        n = r.shape[0]
        first = rs.first
        h = c / T  # each event term's hazard increment
        Hg = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h)
        Hg_own = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h * (1 - a))
        Lam = torch.cumsum(Hg, 0)  # sum over event times <= t_i (group starts come first)
        kappa = r * (Lam - d * (Hg - Hg_own)[first])
        F = G.T @ (kappa[:, None] * G) - (c[:, None] * m).T @ m
        return 0.5 * (F + F.T)

    def score_obs(self, G, eta, y, sample_weight=None, scale=1.0):
        """Per-observation score residuals ``w_j s_j`` (Lin & Wei 1989; R's
        ``residuals(fit, "score")`` times the weights), shape (n, p); they sum to the score."""
        rs, G, w, r, d, c, a, T, m = self._pieces(G, eta, y, sample_weight)
        n, p = G.shape
        first = rs.first
        h = c / T
        Hg = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h)
        Hg_own = torch.zeros(n, dtype=r.dtype).index_add_(0, first, h * (1 - a))
        kappa = r * (torch.cumsum(Hg, 0) - d * (Hg - Hg_own)[first])
        Bg = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, h[:, None] * m)
        Bg_tie = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, (h * a)[:, None] * m)
        B = torch.cumsum(Bg, 0) - d[:, None] * Bg_tie[first]
        # an event is centred by the average of its time's Efron risk-set means
        dg = rs.n_tied.clamp(min=1)
        mbar = torch.zeros(n, p, dtype=r.dtype).index_add_(0, first, d[:, None] * m)[first]
        mbar = mbar / dg[:, None]
        s = (w * d)[:, None] * (G - mbar) - kappa[:, None] * G + r[:, None] * B
        n_rows = eta.shape[0]
        out = torch.zeros(n_rows, p, dtype=torch.float64)
        rows = torch.arange(n_rows)
        if rs.keep is not None:
            rows = rows[rs.keep]
        out[rows[rs.order]] = s
        return out

    # ----------------------------------------------------------------- residuals
    def martingale_residuals(self, eta, y, sample_weight=None):
        """``d_i - H0(t_i) exp(eta_i)`` with Breslow's ``H0`` (R's
        ``residuals(fit, "martingale")`` after a Breslow fit), numpy (n,)."""
        from .metrics import breslow_baseline, step_values

        y = _np(y)
        eta = _np(eta).reshape(-1)
        w = None if sample_weight is None else _np(sample_weight)
        times, h0 = breslow_baseline(y[:, 0], y[:, 1], eta, w)
        return y[:, 1] - step_values(times, h0, y[:, 0]) * np.exp(eta)

    def residuals(self, eta, y, sample_weight=None):
        """``(deviance, martingale)``: the Cox model has no Pearson residual; the deviance
        residual is ``sign(M) sqrt(-2 (M + d log(d - M)))`` of the martingale residual M."""
        m = self.martingale_residuals(eta, y, sample_weight)
        d = _np(y)[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.where(d > 0, np.log(np.where(d > 0, d - m, 1.0)), 0.0)
        dev = np.sign(m) * np.sqrt(np.maximum(-2 * (m + d * inner), 0.0))
        return dev, m

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        """The sum of squared martingale residuals (the Cox model has no Pearson residual)."""
        m = self.martingale_residuals(eta, y, sample_weight)
        w = np.ones_like(m) if sample_weight is None else _np(sample_weight)
        return float(np.sum(w * m**2))


def _np(a):
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
