"""Replicates on the cluster: the bootstrap and the parametric-bootstrap LR test run through
joblib, so ``joblib.parallel_backend("dask")`` spreads them over the LocalCluster's worker
processes, with the same results as in the client."""

import os
import time

import joblib
import numpy as np
from distributed import get_task_stream

from neurostat import NeuralClassifier
from neurostat.inference.bootstrap import run_parallel


def _pid(i):
    time.sleep(0.2)
    return os.getpid()


def test_run_parallel_on_the_dask_backend_runs_on_the_workers(client):
    workers = set(client.run(os.getpid).values())
    with joblib.parallel_backend("dask"):
        pids = run_parallel(_pid, [(i,) for i in range(8)], None, "pids")
    assert set(pids) == workers and os.getpid() not in pids


def test_bootstrap_and_lr_bootstrap_spread_over_the_workers_with_equal_results(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] - 0.5 * X[:, 1] + rng.logistic(size=300) > 0).astype(int)
    full = NeuralClassifier((), solver="lbfgs").fit(X, y)
    small = NeuralClassifier((), solver="lbfgs").fit(X[:, :1], y)
    local = full.inference(cov_type="bootstrap", n_bootstrap=6, random_state=1)
    lr_local = full.inference().compare_lr_test(small.inference(), method="bootstrap",
                                               n_bootstrap=5, random_state=2)
    with get_task_stream(client) as ts, joblib.parallel_backend("dask"):
        remote = full.inference(cov_type="bootstrap", n_bootstrap=6, random_state=1)
        lr_remote = full.inference().compare_lr_test(small.inference(), method="bootstrap",
                                                    n_bootstrap=5, random_state=2)
    assert len({t["worker"] for t in ts.data}) == 2  # both worker processes ran replicates
    np.testing.assert_allclose(remote.bse.values, local.bse.values, rtol=1e-10)
    np.testing.assert_allclose(lr_remote.null_distribution, lr_local.null_distribution,
                               rtol=1e-8)
    assert lr_remote.pvalue == lr_local.pvalue
