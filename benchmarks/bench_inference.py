"""Inference speed: neurostat fit + inference() against statsmodels and a bare PyTorch baseline.

(a) Logistic regression, p = 20, n in {1e4, 1e5, 1e6}: neurostat ``NeuralClassifier((),
    solver="lbfgs").fit(X, y).inference().bse`` against statsmodels ``Logit(y, X).fit().bse`` and
    a bare PyTorch float64 L-BFGS fit plus one row-blocked X'WX Hessian. Same process, repeats
    interleaved (peer order rotates), medians of wall and CPU seconds (CPU time is the fairer
    number on a shared machine), ratios to statsmodels, and the largest coefficient and
    standard-error differences.
(b) One hidden layer of 100 tanh units on 20 inputs, n = 10,000 (2,201 parameters): time of
    ``inference(effects="delta")`` (exact Hessian, its inverse, delta-method effects) and of
    the default ``inference()`` (cross-fitted debiased effects: 5 fold refits) after an lbfgs
    fit, and each over the fit's time.

    python benchmarks/bench_inference.py [--repeats 3] [--sizes 10000 100000 1000000]
        [--threads 2] [--net-only] [--out benchmarks/results/bench_inference.json]
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def logistic_data(n, p=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = rng.normal(size=p) * 0.3
    y = (X @ beta + 0.5 + rng.logistic(size=n) > 0).astype(np.int64)
    return X, y


def run_statsmodels(X, y):
    import statsmodels.api as sm

    res = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    return np.asarray(res.params), np.asarray(res.bse)


def run_neurostat(X, y):
    from neurostat import NeuralClassifier

    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    return res.params.values, res.bse.values


def run_neurostat_parts(X, y):
    """Fit and inference timed separately (to see which one dominates)."""
    from neurostat import NeuralClassifier

    t0 = time.perf_counter()
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    t1 = time.perf_counter()
    _ = est.inference().bse
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


#: the stages whose CPU time the breakdown reports (function name -> stage)
STAGES = {"standardizer": "fit: standardize the inputs (2 passes)",
          "_fun": "fit: L-BFGS objective and gradient evaluations",
          "weighted_gram": "fit: Newton finish's Hessian X'WX (once)",
          "value_and_grad": "fit: Newton finish's gradients",
          "curvatures": "inference: information X'WX at the final parameters",
          "check_separation": "inference: separation check (fitted probabilities)"}


def breakdown(X, y):
    """Where fit + inference of the logistic GLM spend their time (cProfile, cumulative
    seconds of each stage and of the whole), to see what reusing the fit's curvature could
    save."""
    import cProfile
    import pstats

    from neurostat import NeuralClassifier

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    t1 = time.perf_counter()
    _ = est.inference().bse
    prof.disable()
    t2 = time.perf_counter()
    stats = pstats.Stats(prof).stats
    out = {"fit_s": t1 - t0, "inference_s": t2 - t1, "stages": {}}
    for (_, _, name), (_, _, _, cum, _) in stats.items():
        if name in STAGES:
            out["stages"][STAGES[name]] = out["stages"].get(STAGES[name], 0.0) + cum
    return out


def run_torch(X, y, block=1 << 16):
    """Bare PyTorch: float64 L-BFGS on the mean nll, then X'WX summed in row blocks."""
    Xt = torch.from_numpy(np.column_stack([np.ones(len(y)), X]))
    yt = torch.from_numpy(y.astype(np.float64))
    beta = torch.zeros(Xt.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta], lr=1, max_iter=200, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        eta = Xt @ beta
        loss = (torch.nn.functional.softplus(eta) - yt * eta).mean()
        loss.backward()
        return loss

    opt.step(closure)
    b = beta.detach()
    H = torch.zeros(Xt.shape[1], Xt.shape[1], dtype=torch.float64)
    for s in range(0, Xt.shape[0], block):
        Z = Xt[s:s + block]
        p = torch.sigmoid(Z @ b)
        H += Z.T @ (Z * (p * (1 - p))[:, None])
    return b.numpy(), torch.sqrt(torch.diag(torch.linalg.inv(H))).numpy()


PEERS = {"statsmodels": run_statsmodels, "neurostat": run_neurostat, "torch_lbfgs": run_torch}


def timed(fn, *args):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w0, time.process_time() - c0


def bench_logistic(n, repeats):
    X, y = logistic_data(n)
    names = list(PEERS)
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    outputs = {}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            outputs[k], w, c = timed(PEERS[k], X, y)
            wall[k].append(w)
            cpu[k].append(c)
    fit_s, inf_s = run_neurostat_parts(X, y)
    ref_params, ref_bse = outputs["statsmodels"]
    out = {"n": n, "p": X.shape[1], "repeats": repeats,
           "neurostat_fit_s": fit_s, "neurostat_inference_s": inf_s,
           "breakdown": breakdown(X, y)}
    for k in names:
        out[k] = {"wall_median_s": float(np.median(wall[k])), "cpu_median_s":
                  float(np.median(cpu[k])), "wall_s": wall[k], "cpu_s": cpu[k]}
        if k != "statsmodels":
            params, bse = outputs[k]
            out[k]["max_abs_param_diff_vs_statsmodels"] = float(np.max(np.abs(params -
                                                                                ref_params)))
            out[k]["max_rel_bse_diff_vs_statsmodels"] = float(np.max(np.abs(bse - ref_bse) /
                                                                     ref_bse))
            out[k]["wall_ratio_to_statsmodels"] = (out[k]["wall_median_s"] /
                                                   out["statsmodels"]["wall_median_s"])
            out[k]["cpu_ratio_to_statsmodels"] = (out[k]["cpu_median_s"] /
                                                  out["statsmodels"]["cpu_median_s"])
    return out


def bench_net(repeats, n=10_000, p=20, hidden=100):
    """A (100,) tanh net: the delta method on the full Hessian (``effects="delta"``, timed
    ``repeats`` times) and the default cross-fitted debiased effects (5 fold refits, timed
    once), each also as a multiple of the fit's time."""
    from neurostat import NeuralClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, p))
    y = (np.tanh(X[:, 0]) + X[:, 1] * X[:, 2] * 0.5 + rng.logistic(size=n) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est = NeuralClassifier((hidden,), activation="tanh", solver="lbfgs", alpha=1e-2,
                               max_iter=1000, random_state=0).fit(X, y)
        fit_s = time.perf_counter() - t0
        wall, cpu = [], []
        for _ in range(repeats):
            (res, w, c) = timed(lambda: _full_inference(est, effects="delta"))
            wall.append(w)
            cpu.append(c)
        (_, cf_wall, cf_cpu) = timed(lambda: _full_inference(est))
    return {"n": n, "p": p, "hidden": hidden, "n_params": int(res.theta.size),
            "fit_converged": bool(est.converged_), "fit_n_iter": int(est.n_iter_),
            "hessian_singular": bool(res.statistics.hess_info["singular"]),
            "fit_lbfgs_s": fit_s, "inference_wall_median_s": float(np.median(wall)),
            "inference_cpu_median_s": float(np.median(cpu)), "wall_s": wall, "cpu_s": cpu,
            "delta_inference_over_fit": float(np.median(wall)) / fit_s,
            "crossfit_inference_wall_s": cf_wall, "crossfit_inference_cpu_s": cf_cpu,
            "crossfit_inference_over_fit": cf_wall / fit_s, "target_s": 10.0}


def _full_inference(est, **kwargs):
    res = est.inference(**kwargs)
    _ = res.bse  # effects and their covariance
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--net-only", action="store_true",
                    help="rerun (b) only, keeping the logistic results of --out")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "bench_inference.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"machine": platform.platform(), "processor": platform.processor(),
              "torch_threads": args.threads, "torch": torch.__version__, "logistic": [],
              "net": None}
    # warm up (first torch.func / vmap use and imports) outside the timings
    X, y = logistic_data(2000)
    for fn in PEERS.values():
        fn(X, y)
    if args.net_only:
        result["logistic"] = json.loads(Path(args.out).read_text())["logistic"]
    for n in ([] if args.net_only else args.sizes):
        r = bench_logistic(n, args.repeats if n < 1_000_000 else max(1, args.repeats - 1))
        result["logistic"].append(r)
        print(f"logistic n={n:>8}: statsmodels {r['statsmodels']['wall_median_s']:.3f}s, "
              f"neurostat {r['neurostat']['wall_median_s']:.3f}s (fit {r['neurostat_fit_s']:.3f}"
              f" + inference {r['neurostat_inference_s']:.3f}; wall ratio "
              f"{r['neurostat']['wall_ratio_to_statsmodels']:.2f}, cpu ratio "
              f"{r['neurostat']['cpu_ratio_to_statsmodels']:.2f}), torch "
              f"{r['torch_lbfgs']['wall_median_s']:.3f}s", flush=True)
    result["net"] = bench_net(args.repeats)
    net = result["net"]
    result["load_average"] = __import__("os").getloadavg()  # busy machines: read cpu ratios
    print(f"net (100 hidden, n=10,000, {net['n_params']} params): inference "
          f"{net['inference_wall_median_s']:.2f}s wall, {net['inference_cpu_median_s']:.2f}s cpu "
          f"(fit {net['fit_lbfgs_s']:.1f}s; delta method on the full Hessian); cross-fitted "
          f"default {net['crossfit_inference_wall_s']:.1f}s "
          f"({net['crossfit_inference_over_fit']:.1f} fits)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
