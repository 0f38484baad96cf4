"""A real dask.distributed cluster for the tests of neurostat.distributed: a scheduler and two
worker processes started in this process, one thread each, closed at the end of the session.

The worker processes are forked from the test process (which has torch and neurostat imported
already) rather than spawned: a spawned worker re-imports torch, scikit-learn and neurostat,
40 s on a loaded 2-core machine against 3 s forked. They are still separate processes that
receive their tasks and send their results over TCP, serialized, as on a cluster.
"""

import logging

import pytest


@pytest.fixture(scope="session")
def client():
    import dask
    from distributed import Client, LocalCluster

    import neurostat.distributed.likelihood  # noqa: F401 (imported before the fork)

    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit="2GiB",
                               silence_logs=logging.ERROR)
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
