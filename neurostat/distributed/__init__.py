"""Estimators on data that outgrow one machine: dask arrays and DataFrames over a cluster.

A neurostat estimator handed a dask collection never gathers it. Every statistic is a
reduction over the collection's row chunks, computed where the chunks live (the workers of a
``dask.distributed`` cluster, or dask's local scheduler), with only parameter-sized results
(``p x p`` at most) reaching the client:

* a network without hidden layer fitted with ``solver="lbfgs"`` is fitted by chunked Newton
  (IRLS): each iteration is one pass over the chunks reducing the objective, its gradient and
  the information ``X' W X`` (:mod:`~neurostat.distributed.glm`); a ridge adds its curvature,
  a lasso makes the steps proximal Newton steps (coordinate descent on the reduced Gram);
* networks fitted with a stochastic solver stream minibatches from the chunks, chunk order and
  rows within a chunk reshuffled each epoch, the next chunks fetched while the trainer works
  (:mod:`~neurostat.distributed.stream`);
* ``predict``, ``predict_proba``, ``decision_function`` map over the chunks (a dask array
  back), ``score`` is a chunked reduction;
* ``inference()`` reads a :class:`~neurostat.distributed.likelihood.ChunkedLikelihood`, whose
  curvature, robust meat, log-likelihoods and Pearson chi-square are reductions over the
  chunks (one pass computes all of them; after a chunked Newton fit, none);
  ``get_prediction`` returns dask results for dask inputs.

Replicates (bootstrap, cross-fitting, the calibration study, the parametric-bootstrap LR test)
run through joblib, so ``with joblib.parallel_backend("dask"):`` spreads them over the same
cluster. Dask is an optional dependency (``pip install "neurostat[dask]"``); this package
imports it only when a dask collection is passed, so ``import neurostat`` never does.
"""

import functools

from .._utils import is_dask_collection

__all__ = ["CHUNKED", "chunked_likelihood", "is_dask_collection", "map_over_chunks"]

#: estimator methods that map over the chunks of a dask collection
CHUNKED_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                   "score")


def _on_chunks(method):
    if getattr(method, "_chunked", False):
        return method

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if is_dask_collection(X):
            from .estimator import map_method
            return map_method(self, method.__name__, X, *args, **kwargs)
        return method(self, X, *args, **kwargs)

    wrapper._chunked = True
    return wrapper


def map_over_chunks(cls):
    """Make ``cls``'s prediction methods and ``score`` map over the chunks of dask inputs.

    Called for every estimator class (``_BaseNeural.__init_subclass__``); numpy and pandas
    inputs go to the method unchanged.
    """
    for name in CHUNKED_METHODS:
        if name in cls.__dict__ or (name == "score" and hasattr(cls, name)):
            setattr(cls, name, _on_chunks(getattr(cls, name)))
    return cls


def chunked_likelihood(est, X=None, y=None, sample_weight=None):
    """The :class:`~neurostat.distributed.likelihood.ChunkedLikelihood` of ``est`` on dask data
    (``X`` or, with ``X=None``, the training data), or None when the data are in memory."""
    if X is None:
        data = getattr(est, "_training_data", None)
        if data is None or not is_dask_collection(data[0]):
            return None
    elif not is_dask_collection(X):
        return None
    from .estimator import likelihood_on_chunks
    return likelihood_on_chunks(est, X, y, sample_weight)


class _Chunked:
    """What inference asks of data held in chunks (``StatisticalModel.chunked``)."""

    def get_prediction(self, res, X=None):
        """Predictions with standard errors as dask arrays (see
        :func:`neurostat.distributed.predictions.get_prediction`)."""
        from .predictions import get_prediction
        return get_prediction(res, X)

    def __repr__(self):
        return "neurostat.distributed.CHUNKED"


#: the operations on chunked inputs that inference reaches through the model
CHUNKED = _Chunked()
