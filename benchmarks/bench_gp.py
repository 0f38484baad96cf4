"""Exact GP regression: NNGPRegressor beside scikit-learn's GaussianProcessRegressor (and the
scale of neurostat's exact and iterative paths).

Speed (default): n in {1000, 2000, 5000}, p = 5 (make_friedman1, standardized inputs), 1,000
test points. Each arm fits its hyperparameters by the marginal likelihood and predicts means
and standard deviations. One process, one thread for torch and BLAS, the arms interleaved in
each repeat; reported per n: median wall times, their ratio (neurostat / scikit-learn), test
RMSE, and each arm's latent-variance error against a textbook float64 GP (scipy Cholesky)
with that arm's own fitted hyperparameters (so only the solver is judged), plus, for
neurostat, the largest gradient of the per-observation log marginal likelihood at its answer.

Arms
----
neurostat_nngp  NNGPRegressor(depth=2) (relu NNGP, 3 hyperparameters), defaults
sklearn_gpr     GaussianProcessRegressor(ConstantKernel() * RBF() + WhiteKernel(),
                normalize_y=True), defaults (L-BFGS-B, no restarts)

Scale (``--scale``): each (path, n) in a fresh process (its peak resident memory is read from
/proc): neurostat's exact path (hyperparameters on 5,000 random rows, then one in-place
Cholesky of all n), its iterative path (the same hyperparameters, CG) and, where it fits,
scikit-learn's GPR; writes benchmarks/results/bench_gp_scale.json. ``--check-iterative N``:
the iterative path's predictive means and variances against the exact ones at n = N.

Usage: python benchmarks/bench_gp.py [--quick] [--repeats 3] [--sizes 1000 2000 5000]
       python benchmarks/bench_gp.py --scale [--scale-sizes 5000 10000 20000]
       python benchmarks/bench_gp.py --check-iterative 5000 [--device cuda]

One thread is the default: on a shared 2-core machine, 2-thread runs were up to 10x slower.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg as sl
import sklearn
import torch
from sklearn.datasets import make_friedman1
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from threadpoolctl import threadpool_limits

from neurostat.gp import NNGPRegressor

RESULTS = Path(__file__).parent / "results"


def make_data(n, seed=0, n_test=1000):
    X, y = make_friedman1(n_samples=n + n_test, n_features=5, noise=1.0, random_state=seed)
    X = (X - 0.5) / np.sqrt(1 / 12)  # standardized uniform inputs
    return X[:n], y[:n], X[n:], y[n:]


def exact_gp(K, Ks, kss, y, noise):
    """Float64 posterior mean and latent variance by Cholesky (the reference)."""
    L = sl.cholesky(K + noise * np.eye(len(y)), lower=True)
    alpha = sl.cho_solve((L, True), y)
    V = sl.solve_triangular(L, Ks.T, lower=True)
    return Ks @ alpha, kss - (V * V).sum(0)


def var_error(var, ref):
    rel = np.abs(var / ref - 1)
    return {"median_rel": float(np.median(rel)), "max_rel": float(np.max(rel))}


def arm_neurostat(X, y, Xt, device="cpu", **kw):
    t0 = time.perf_counter()
    gp = NNGPRegressor(depth=2, random_state=0, device=device, **kw).fit(X, y)
    t1 = time.perf_counter()
    mean, std = gp.predict(Xt, return_std=True)
    t2 = time.perf_counter()
    return gp, t1 - t0, t2 - t1, mean, std


def check_neurostat(gp, X, y, Xt, std):
    """Variance error against scipy with the fitted kernel, and the gradient at the answer."""
    from neurostat.gp._exact import TrainKernel, _Objective

    k = gp.kernel_
    with torch.no_grad():
        x, xt = torch.from_numpy(X), torch.from_numpy(Xt)
        K = k(x).to_dense().numpy()
        Ks = k(xt, x).to_dense().numpy()
        kss = k(xt, diag=True).numpy()
    z = (y - gp.y_mean_) / gp.y_std_
    _, ref_var = exact_gp(K, Ks, kss, z, gp.noise_)
    names = ["weight_variance", "bias_variance", "noise"]
    obj = _Objective(TrainKernel(x, gp.depth, gp.activation, gp.kernel == "ntk"),
                     torch.from_numpy(z), names, {})
    obj.value(np.log([gp.weight_variance_, gp.bias_variance_, gp.noise_]))
    grad = obj.gradient()
    return {"variance_error": var_error(std**2 / gp.y_std_**2, ref_var),
            "max_abs_grad_per_obs": float(np.abs(grad).max()), "n_iter": gp.n_iter_,
            "stages": gp.fit_stages_, "log_marginal_likelihood": gp.log_marginal_likelihood_,
            "hyperparameters": {"weight_variance": gp.weight_variance_,
                                "bias_variance": gp.bias_variance_, "noise": gp.noise_}}


def arm_sklearn(X, y, Xt):
    t0 = time.perf_counter()
    kernel = ConstantKernel() * RBF() + WhiteKernel()
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(X, y)
    t1 = time.perf_counter()
    mean, std = gp.predict(Xt, return_std=True)
    t2 = time.perf_counter()
    return gp, t1 - t0, t2 - t1, mean, std


def check_sklearn(gp, X, y, Xt, std):
    signal, white = gp.kernel_.k1, gp.kernel_.k2
    sd = gp._y_train_std
    _, ref_var = exact_gp(signal(X), signal(Xt, X), signal.diag(Xt),
                          (y - gp._y_train_mean) / sd, white.noise_level)
    # scikit-learn's std includes the WhiteKernel noise at test points: latent variances
    var = std**2 / sd**2 - white.noise_level
    return {"variance_error": var_error(var, ref_var), "kernel": str(gp.kernel_),
            "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_)}


def speed(args):
    sizes = [(n, args.repeats if n < 5000 else 1) for n in args.sizes]
    if args.quick:
        sizes = [(300, 1), (1000, 1)]
    results = {}
    with threadpool_limits(args.threads):
        Xw, yw, Xtw, _ = make_data(60, seed=1)
        arm_neurostat(Xw, yw, Xtw), arm_sklearn(Xw, yw, Xtw)  # lazy imports, allocator
        for n, repeats in sizes:
            X, y, Xt, yt = make_data(n)
            rows = {"neurostat_nngp": [], "sklearn_gpr": []}
            for rep in range(repeats):
                for arm in rows:  # interleaved: each repeat runs every arm once
                    run = arm_neurostat if arm == "neurostat_nngp" else arm_sklearn
                    gp, fit_s, pred_s, mean, std = run(X, y, Xt)
                    row = {"fit_s": fit_s, "predict_s": pred_s, "total_s": fit_s + pred_s,
                           "test_rmse": float(np.sqrt(np.mean((mean - yt) ** 2)))}
                    if rep == 0:
                        check = check_neurostat if arm == "neurostat_nngp" else check_sklearn
                        row.update(check(gp, X, y, Xt, std))
                    rows[arm].append(row)
                    print(f"n={n} rep={rep} {arm}: fit {fit_s:.2f} s, predict {pred_s:.2f} s, "
                          f"rmse {row['test_rmse']:.3f}", flush=True)
            summary = {}
            for arm, rs in rows.items():
                summary[arm] = {
                    "median_total_s": float(np.median([r["total_s"] for r in rs])),
                    "median_fit_s": float(np.median([r["fit_s"] for r in rs])),
                    "median_predict_s": float(np.median([r["predict_s"] for r in rs])),
                    "runs": rs,
                }
            ratios = [a["total_s"] / b["total_s"]
                      for a, b in zip(rows["neurostat_nngp"], rows["sklearn_gpr"])]
            summary["time_ratio_neurostat_to_sklearn"] = {
                "of_medians": summary["neurostat_nngp"]["median_total_s"]
                / summary["sklearn_gpr"]["median_total_s"],
                "per_repeat": ratios, "min": float(min(ratios)), "median": float(np.median(ratios)),
            }
            print(f"n={n}: ratio of medians "
                  f"{summary['time_ratio_neurostat_to_sklearn']['of_medians']:.3f}", flush=True)
            results[str(n)] = summary
    meta = _meta(args)
    meta.update({"p": 5, "n_test": 1000, "data": "make_friedman1(n_features=5, noise=1)",
                 "variance_error": "|latent predictive variance / exact float64 variance with "
                                   "the arm's own fitted hyperparameters - 1| over the test "
                                   "points (scipy Cholesky)"})
    out = args.out or RESULTS / ("bench_gp_quick.json" if args.quick else "bench_gp.json")
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {out}")


def _meta(args):
    import gpytorch

    return {"machine": platform.platform(), "cpu_count": os.cpu_count(),
            "threads": args.threads, "load_average_at_end": os.getloadavg(),
            "torch": torch.__version__, "gpytorch": gpytorch.__version__,
            "sklearn": sklearn.__version__}


# ---------------------------------------------------------------------------------------------
# scale: one (path, n) per process, peak memory from /proc
# ---------------------------------------------------------------------------------------------


def _peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return float("nan")


def scale_one(path, n, threads, device, n_test=1000):
    """Fit + predict (mean and std at n_test points) by one path; prints one JSON line."""
    torch.set_num_threads(threads)
    X, y, Xt, yt = make_data(n, n_test=n_test)
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        if path == "sklearn":
            gp = GaussianProcessRegressor(ConstantKernel() * RBF() + WhiteKernel(),
                                          normalize_y=True, random_state=0).fit(X, y)
        else:
            kw = {"max_exact_size": 0} if path == "iterative" else {}
            gp = NNGPRegressor(depth=2, random_state=0, device=device, **kw).fit(X, y)
        t1 = time.perf_counter()
        mean, std = gp.predict(Xt, return_std=True)
        t2 = time.perf_counter()
    out = {"path": path, "n": n, "fit_s": t1 - t0, "predict_s": t2 - t1, "total_s": t2 - t0,
           "peak_rss_gb": _peak_rss_bytes() / 2**30, "n_test": n_test, "threads": threads,
           "test_rmse": float(np.sqrt(np.mean((mean - yt) ** 2))), "device": device}
    if path != "sklearn":
        out.update(fit_rows=gp.fit_rows_, stages=getattr(gp, "fit_stages_", None),
                   solver=gp.solver_, cg_residual=gp.cg_residual_)
        if device.startswith("cuda"):
            out["cuda_peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print("RESULT " + json.dumps(out), flush=True)


def scale(args):
    plan = [("exact", n) for n in args.scale_sizes if "exact" in args.paths]
    plan += [("iterative", n) for n in args.scale_sizes if n >= 5000 and "iterative" in args.paths]
    plan += [("sklearn", n) for n in args.sklearn_sizes if "sklearn" in args.paths]
    out = args.scale_out
    rows = json.loads(out.read_text())["results"] if out.exists() and args.append else []
    for path, n in plan:
        cmd = [sys.executable, __file__, "--scale-one", path, str(n), "--threads",
               str(args.threads), "--device", args.device, "--n-test", str(args.n_test)]
        print("running", " ".join(cmd[2:]), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
        row = json.loads(line[-1][7:]) if line else {
            "path": path, "n": n, "failed": proc.stderr[-500:]}
        print(row, flush=True)
        rows.append(row)
        meta = _meta(args)
        meta["note"] = ("peak_rss_gb: the process's peak resident memory (VmHWM), including "
                        "Python, torch and the data (~0.3 GB at small n)")
        out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out}")


def check_iterative(args):
    """Iterative vs exact predictive means and variances at the same hyperparameters."""
    n = args.check_iterative
    torch.set_num_threads(args.threads)
    X, y, Xt, _ = make_data(n, n_test=args.n_test)
    with threadpool_limits(args.threads):
        t0 = time.perf_counter()
        exact = NNGPRegressor(depth=2, random_state=0, device=args.device).fit(X, y)
        t1 = time.perf_counter()
        m0, s0 = exact.predict(Xt, return_std=True)
        t2 = time.perf_counter()
        it = NNGPRegressor(depth=2, optimize=False, max_exact_size=0, device=args.device,
                           weight_variance=exact.weight_variance_,
                           bias_variance=exact.bias_variance_, noise=exact.noise_).fit(X, y)
        t3 = time.perf_counter()
        m1, s1 = it.predict(Xt, return_std=True)
        t4 = time.perf_counter()
    res = {"n": n, "n_test": len(Xt), "cg_tol": it.cg_tol,
           "preconditioner_rank": it.preconditioner_rank, "train_cg_residual": it.cg_residual_,
           "mean_max_abs_err_over_sd_y": float(np.abs(m1 - m0).max() / y.std()),
           "mean_max_rel_err": float(np.max(np.abs(m1 - m0) / np.abs(m0))),
           "var_max_rel_err": float(np.max(np.abs(s1**2 / s0**2 - 1))),
           "var_median_rel_err": float(np.median(np.abs(s1**2 / s0**2 - 1))),
           "exact_fit_s": t1 - t0, "exact_predict_s": t2 - t1,
           "iterative_condition_s": t3 - t2, "iterative_predict_s": t4 - t3,
           "device": args.device}
    print(json.dumps(res, indent=2))
    meta = _meta(args)
    out = args.out or RESULTS / f"bench_gp_iterative_{args.device.split(':')[0]}.json"
    out.write_text(json.dumps({"meta": meta, "result": res}, indent=2))
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n in {300, 1000}, one repeat")
    ap.add_argument("--repeats", type=int, default=3, help="repeats below n=5,000 (1 there)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--scale", action="store_true", help="time and memory against n")
    ap.add_argument("--scale-sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000])
    ap.add_argument("--sklearn-sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    ap.add_argument("--append", action="store_true", help="add to the existing scale JSON")
    ap.add_argument("--paths", nargs="+", default=["exact", "iterative", "sklearn"])
    ap.add_argument("--scale-out", type=Path, default=RESULTS / "bench_gp_scale.json")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per scale run")
    ap.add_argument("--scale-one", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--check-iterative", type=int, default=0, metavar="N")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    if args.scale_one:
        scale_one(args.scale_one[0], int(args.scale_one[1]), args.threads, args.device,
                  args.n_test)
    elif args.scale:
        scale(args)
    elif args.check_iterative:
        check_iterative(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
