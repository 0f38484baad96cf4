"""neurostat on dask collections: a logistic regression with standard errors on data too large
for memory, on a LocalCluster of this machine, beside the dask-native peers.

(a) n rows (default 1e8), p = 20, generated lazily chunk by chunk on the workers (each pass
    regenerates the chunks: 16 GB of float64 at 1e8, never in memory at once):
    ``NeuralClassifier((), solver="lbfgs").fit(X, y).inference().bse``. Wall time, the number of
    passes over the data and the time per pass against the time to generate ("read") the same
    chunks once (the physical floor of a pass), peak RSS of each worker and of the client
    (sampled every 0.25 s with psutil), the client's peak traced numpy/Python allocations.
(b) The same fit by dask-ml's ``LogisticRegression`` (no standard errors) and dask-glm's
    ``newton`` on the same collection (default n 1e7), as ratios to neurostat's wall time.
(c) 1 against 2 workers (n 1e7).
(d) In memory, n = 1e6: neurostat fit + ``bse`` against statsmodels ``Logit(...).fit()`` +
    ``bse`` (``bench_inference.py``'s functions), CPU and wall time.

    python benchmarks/bench_dask.py [--n 100000000] [--n-small 10000000] [--chunk 1000000]
        [--skip-large] [--only-large] [--only-in-memory]
        [--out benchmarks/results/bench_dask.json]

``--only-large`` runs (a) alone and merges it into the existing JSON, keeping (b)-(d);
``--only-in-memory`` does the same for the in-memory comparison at 1e6.
"""

import argparse
import json
import logging
import os
import platform
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

P = 20


def lazy_logistic(n, p=P, chunk=1_000_000, seed=0):
    """``(X, y)`` dask arrays whose chunks are generated on demand (seeded by chunk index), so
    every pass sees the same data and none holds more than a chunk."""
    import dask.array as da

    beta = np.random.default_rng(seed).normal(size=p) * 0.3
    sizes = [min(chunk, n - s) for s in range(0, n, chunk)]

    def gen_x(block_info=None):
        i = block_info[None]["chunk-location"][0]
        rows = block_info[None]["chunk-shape"][0]
        return np.random.default_rng([seed, i]).standard_normal((rows, p))

    def gen_y(xb, block_info=None):
        i = block_info[0]["chunk-location"][0]
        noise = np.random.default_rng([seed, i, 1]).logistic(size=xb.shape[0])
        return (xb @ beta + 0.5 + noise > 0).astype(np.float64)

    X = da.map_blocks(gen_x, chunks=(tuple(sizes), (p,)), dtype=np.float64,
                      meta=np.empty((0, 0)))
    y = X.map_blocks(gen_y, drop_axis=1, dtype=np.float64, meta=np.empty(0))
    return X, y, beta


class Peaks:
    """Peak RSS of the client and of each worker, sampled in a thread while the block runs."""

    def __init__(self, client, every=0.25):
        self.client, self.every = client, every
        self.client_peak, self.worker_peak = 0, {}

    def _sample(self):
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            self.client_peak = max(self.client_peak, me.memory_info().rss)
            try:
                rss = self.client.run(lambda: __import__("psutil").Process().memory_info().rss)
            except Exception:  # noqa: BLE001 - a worker busy past the timeout: sample later
                rss = {}
            for k, v in rss.items():
                self.worker_peak[k] = max(self.worker_peak.get(k, 0), v)
            self._stop.wait(self.every)

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def report(self):
        mb = 1 / 2**20
        return {"client_peak_rss_mb": self.client_peak * mb,
                "worker_peak_rss_mb": sorted(v * mb for v in self.worker_peak.values())}


def make_cluster(n_workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit="4GiB",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(lambda: __import__("neurostat.distributed.likelihood"))
    return cluster, client


def read_once(X, y):
    """One pass that only generates the chunks (and sums them): the floor of any pass."""
    import dask

    t0 = time.perf_counter()
    dask.compute(X.sum(), y.sum())
    return time.perf_counter() - t0


def neurostat_fit(X, y, client):
    from neurostat import NeuralClassifier

    tracemalloc.start()
    with Peaks(client) as peaks:
        t0 = time.perf_counter()
        est = NeuralClassifier((), solver="lbfgs").fit(X, y)
        t1 = time.perf_counter()
        res = est.inference()
        bse = res.bse.values
        t2 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = {"wall_s": t2 - t0, "fit_s": t1 - t0, "inference_s": t2 - t1,
           "n_passes": int(est.n_passes_), "newton_iterations": int(est.n_iter_),
           "converged": bool(est.converged_), "pass_s": (t1 - t0) / est.n_passes_,
           "client_traced_peak_mb": traced / 2**20, "params": res.params.values.tolist(),
           "bse": bse.tolist(), **peaks.report()}
    return out, est, res


def peers(X, y, client, ours_s, admm=False):
    out = {}
    import dask.array as da

    try:
        from dask_ml.linear_model import LogisticRegression

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            m = LogisticRegression(penalty="none", solver="newton", fit_intercept=True,
                                   max_iter=50, tol=1e-8).fit(X, y)
            out["dask_ml_newton"] = {"wall_s": time.perf_counter() - t0,
                                     "coef": np.ravel(m.coef_).tolist()}
            if admm:
                t0 = time.perf_counter()
                m = LogisticRegression(C=1e12).fit(X, y)  # its default solver (admm)
                out["dask_ml_admm_default"] = {"wall_s": time.perf_counter() - t0,
                                               "coef": np.ravel(m.coef_).tolist()}
    except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
        out["dask_ml_error"] = repr(exc)
    try:
        from dask_glm.algorithms import newton

        Z = da.concatenate([X, da.ones((X.shape[0], 1), chunks=(X.chunks[0], 1))], axis=1)
        t0 = time.perf_counter()
        b = newton(Z, y, max_iter=50, tol=1e-8)
        out["dask_glm_newton"] = {"wall_s": time.perf_counter() - t0,
                                  "coef": np.ravel(b).tolist()}
    except Exception as exc:  # noqa: BLE001
        out["dask_glm_error"] = repr(exc)
    for v in out.values():
        if isinstance(v, dict):
            v["ratio_to_neurostat"] = v["wall_s"] / ours_s
    return out


def in_memory(n=1_000_000, repeats=2):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_inference import bench_logistic

    return bench_logistic(n, repeats)


def large_fit(n, chunk, client):
    """(a): the n-row fit with standard errors and its pass/read timings."""
    X, y, _ = lazy_logistic(n, chunk=chunk)
    large = {"n": n, "read_once_s": read_once(X, y)}
    print(f"n={n:.0e}: read once {large['read_once_s']:.1f}s", flush=True)
    large["neurostat"], _, _ = neurostat_fit(X, y, client)
    large["pass_over_read"] = large["neurostat"]["pass_s"] / large["read_once_s"]
    print(f"n={n:.0e}: {large['neurostat']['wall_s']:.1f}s", flush=True)
    return large


def only_large(args, out_path):
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    cluster, client = make_cluster(2)
    try:
        large = large_fit(int(args.n), args.chunk, client)
    finally:
        client.close()
        cluster.close()
    large.update(machine=platform.platform(), chunk_rows=args.chunk,
                 load_average_end=os.getloadavg())
    result["large_2_workers"] = large
    out_path.write_text(json.dumps(result, indent=1))
    return large


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e8)
    ap.add_argument("--n-small", type=float, default=1e7)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--chunk-small", type=int, default=None,
                    help="rows per chunk of the --n-small runs (default --chunk)")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-in-memory", action="store_true")
    ap.add_argument("--only-large", action="store_true",
                    help="only the n=--n fit, merged into the existing --out JSON")
    ap.add_argument("--only-in-memory", action="store_true",
                    help="only the in-memory 1e6 comparison, merged into the existing --out JSON")
    ap.add_argument("--with-admm", action="store_true",
                    help="also dask-ml's default solver (ADMM: many passes; slow)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_dask.json"))
    args = ap.parse_args(argv)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if args.only_large:
        return only_large(args, out_path)
    if args.only_in_memory:
        result = json.loads(out_path.read_text()) if out_path.exists() else {}
        result["in_memory_1e6"] = in_memory()
        out_path.write_text(json.dumps(result, indent=1))
        return result["in_memory_1e6"]
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "p": P,
              "chunk_rows": args.chunk, "load_average_start": os.getloadavg()}

    def save():
        result["load_average_end"] = os.getloadavg()
        out_path.write_text(json.dumps(result, indent=1))

    n_small = int(args.n_small)
    chunk_small = args.chunk_small or args.chunk
    result["chunk_rows_small"] = chunk_small
    cluster, client = make_cluster(2)
    try:
        X, y, beta = lazy_logistic(n_small, chunk=chunk_small)
        small = {"n": n_small, "read_once_s": read_once(X, y)}
        small["neurostat"], est, _ = neurostat_fit(X, y, client)
        small["pass_over_read"] = small["neurostat"]["pass_s"] / small["read_once_s"]
        print(f"n={n_small:.0e} 2 workers: {small['neurostat']['wall_s']:.1f}s, "
              f"{small['neurostat']['n_passes']} passes, read {small['read_once_s']:.1f}s",
              flush=True)
        small["peers"] = peers(X, y, client, small["neurostat"]["wall_s"], args.with_admm)
        print(json.dumps({k: v.get("wall_s") if isinstance(v, dict) else v
                          for k, v in small["peers"].items()}), flush=True)
        ours = np.concatenate([est.intercept_, est.coef_[0]])
        for v in small["peers"].values():
            if isinstance(v, dict):
                c = np.asarray(v["coef"])
                v["max_abs_coef_diff"] = float(np.max(np.abs(
                    (np.r_[c[-1], c[:-1]] if c.size == ours.size else c) - ours[-c.size:])))
        result["small_2_workers"] = small
        save()
        if not args.skip_large:
            result["large_2_workers"] = large_fit(int(args.n), args.chunk, client)
            save()
    finally:
        client.close()
        cluster.close()
    cluster, client = make_cluster(1)
    try:
        X, y, _ = lazy_logistic(n_small, chunk=chunk_small)
        one = {"n": n_small, "read_once_s": read_once(X, y)}
        one["neurostat"], _, _ = neurostat_fit(X, y, client)
        one["speedup_2_over_1_workers"] = (one["neurostat"]["wall_s"]
                                           / result["small_2_workers"]["neurostat"]["wall_s"])
        result["small_1_worker"] = one
        save()
    finally:
        client.close()
        cluster.close()
    if not args.skip_in_memory:
        result["in_memory_1e6"] = in_memory()
        save()
    print(json.dumps({k: v for k, v in result.items() if "worker" in k}, indent=1)[:3000])


if __name__ == "__main__":
    main()
