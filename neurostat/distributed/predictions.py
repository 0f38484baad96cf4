"""Predictions with standard errors for inputs held in chunks: dask arrays back.

Each chunk's predictions are the in-memory ones
(:func:`neurostat.inference.predictions.get_prediction` on that chunk, with the fit's
covariance), so they equal the in-memory results row for row; nothing of size n reaches the
client until the caller computes it.
"""

from types import SimpleNamespace

import numpy as np
import torch

from ..inference.likelihood import Likelihood
from ..inference.predictions import PredictionResults
from ..inference.predictions import get_prediction as _in_memory
from .chunks import ChunkedData, map_rows


def _chunk_prediction(xb, *, module, family, cov, cov_type, scale, df, classes):
    lik = Likelihood(module, family, xb, np.zeros(xb.shape[0]))
    res = SimpleNamespace(likelihood=lik, cov_theta=cov, cov_type=cov_type, scale=scale,
                          df_resid=df, model=SimpleNamespace(classes=classes, chunked=None))
    pr = _in_memory(res, None)
    if pr.linpred is not None:
        return np.column_stack([pr.predicted_mean, pr.se_mean, pr.linpred, pr.se_linpred])
    m = pr.predicted_mean.size // max(1, xb.shape[0])
    return np.column_stack([pr.predicted_mean.reshape(-1, m), pr.se_mean.reshape(-1, m)])


class ChunkedPredictionResults(PredictionResults):
    """:class:`~neurostat.inference.predictions.PredictionResults` whose arrays are dask
    arrays (one linear predictor: ``predicted_mean``, ``se_mean``, ``linpred``,
    ``se_linpred`` of shape (n,); several classes: (n, K) means and standard errors).

    ``conf_int(alpha)`` is a lazy (n, 2) dask array (one linear predictor) and
    ``summary_frame(alpha)`` a dask DataFrame with statsmodels' columns.
    """

    def __init__(self, table, n_classes, use_t, df, link_family):
        self.table, self.n_classes = table, n_classes
        one = n_classes is None
        k = 1 if one else n_classes
        self.predicted_mean = table[:, 0] if one else table[:, :k]
        self.se_mean = table[:, 1] if one else table[:, k:]
        self.linpred = table[:, 2] if one else None
        self.se_linpred = table[:, 3] if one else None
        self._use_t, self._df, self._family = use_t, df, link_family
        self._index = None

    def _link(self, v):
        eta = torch.as_tensor(np.asarray(v, dtype=np.float64))[:, None]
        m = self._family.mean(eta)
        return (m if m.ndim == 1 else m[:, 0]).numpy()

    def conf_int(self, alpha=0.05):
        """Confidence intervals of the predicted means, lazily, chunk by chunk.

        As the in-memory :meth:`PredictionResults.conf_int` for one linear predictor: the
        interval ``linpred +- q se_linpred`` on the link scale mapped through the inverse
        link, ``q`` the ``1 - alpha / 2`` quantile of the results' reference distribution
        (t on the residual df when they use t, else normal).

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage.

        Returns
        -------
        dask array of shape (n, 2)
            Lower and upper bounds.

        Raises
        ------
        NotImplementedError
            For several classes; their intervals are in :meth:`summary_frame`.
        """
        if self.linpred is None:
            raise NotImplementedError(
                "conf_int of several classes on chunks: use summary_frame(alpha).")
        q = self._q(alpha)

        def block(t):
            lo, hi = self._link(t[:, 2] - q * t[:, 3]), self._link(t[:, 2] + q * t[:, 3])
            return np.column_stack([np.minimum(lo, hi), np.maximum(lo, hi)])

        return self.table.map_blocks(block, chunks=(self.table.chunks[0], (2,)),
                                     dtype=np.float64)

    def summary_frame(self, alpha=0.05):
        """The predictions as a lazy table with statsmodels' column names.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage of the intervals.

        Returns
        -------
        dask DataFrame
            Columns ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``: one row per
            input row (one linear predictor, intervals from :meth:`conf_int`), or per input
            row and class, rows major (several classes: ``mean +- q mean_se`` clipped to
            [0, 1]).
        """
        import dask.dataframe as dd

        cols = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
        if self.linpred is not None:
            ci = self.conf_int(alpha)
            import dask.array as da
            arr = da.concatenate([self.table[:, :2], ci], axis=1)
            return dd.from_dask_array(arr, columns=cols)
        q, k = self._q(alpha), self.n_classes

        def block(t):
            mu, se = t[:, :k].ravel(), t[:, k:].ravel()
            return np.column_stack([mu, se, np.clip(mu - q * se, 0, 1),
                                    np.clip(mu + q * se, 0, 1)])

        arr = self.table.map_blocks(block, chunks=(tuple(c * k for c in self.table.chunks[0]),
                                                   (4,)), dtype=np.float64)
        return dd.from_dask_array(arr, columns=cols)


def get_prediction(res, X=None):
    """Predicted means with delta-method standard errors for dask inputs ``X`` (default: the
    data of a chunked likelihood), as :class:`ChunkedPredictionResults`."""
    lik = res.likelihood
    if X is None:
        Xd = lik.X
    else:
        data = ChunkedData(X)
        est = getattr(res, "estimator", None)
        if est is not None:
            from .estimator import _check_inputs
            _check_inputs(est, data, reset=False)
        Xd = data.X
    module = lik.module
    k = module.output_layer.out_features
    with torch.no_grad():
        m = lik.family.mean(torch.zeros(1, k, dtype=torch.float64))
    n_classes = None if m.ndim == 1 and k == 1 else m.shape[1]
    width = 4 if n_classes is None else 2 * n_classes
    classes = res.model.classes
    table = map_rows(_chunk_prediction, Xd, (width,), np.float64, module=module,
                     family=lik.family, cov=res.cov_theta, cov_type=res.cov_type,
                     scale=res.scale,
                     df=res.df_resid, classes=classes)
    return ChunkedPredictionResults(table, n_classes, res.use_t, res.df_resid, lik.family)
