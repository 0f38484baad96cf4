"""Build the neurostat paper: run the vignettes, collect every quoted number, compile the PDF.

The paper (``paper/neurostat.typ``, Typst) types no number by hand. This script

1. runs the vignettes (``vignettes/NN_*.py [--quick] --out BUILD/vignettes/NN``), or reuses
   outputs already written (``--vignettes-from DIR`` with ``DIR/NN/``);
2. reads their CSV tables and ``metrics.json``, the committed benchmark results
   (``benchmarks/results/*.json``, never rerun here: they take hours) and refits the frozen
   statsmodels / R reference cases of ``tests/results/``;
3. writes ``BUILD/numbers.json``: every number (raw value, the text the paper prints, and the
   file it came from), every table (rows of text, with their source) and every figure;
4. compiles ``paper/neurostat.typ`` with the ``typst`` Python package into the PDF.

A vignette that fails or is not selected leaves its numbers missing; the paper says so where
they would stand (and this script lists them) instead of failing the whole build.

Usage::

    python paper/build.py [--quick] [--vignettes 01,08] [--vignettes-from DIR]
                          [--build paper/build] [--pdf paper/neurostat.pdf]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "paper"
RESULTS = ROOT / "benchmarks" / "results"
REFS = ROOT / "tests" / "results"
sys.path.insert(0, str(ROOT))  # this checkout's neurostat, whatever is installed
VIGNETTES = {p.name[:2]: p for p in sorted((ROOT / "vignettes").glob("[0-9][0-9]_*.py"))}


# --------------------------------------------------------------------------- formatting
def fmt(x, digits=3):
    """The text the paper prints for a number: ``digits`` significant digits, no exponent
    between 1e-3 and 1e6, ``m.me-XX`` outside, thousands separated for integers."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e6:
        return f"{int(x):,}"
    if 1e-3 <= abs(x) < 1e6:
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        return f"{x:.{decimals}f}"
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e+")


class Numbers:
    """Numbers, tables and figures for the paper, each with its source file."""

    def __init__(self, build: Path):
        self.build = build
        self.data = {"numbers": {}, "tables": {}, "figures": {}, "missing": [], "vignettes": {}}

    def src(self, path: Path) -> str:
        path = Path(path)
        for base, label in ((self.build, "build"), (ROOT, "")):
            try:
                rel = path.resolve().relative_to(base.resolve())
                return f"{label}/{rel}" if label else str(rel)
            except ValueError:
                continue
        return str(path)

    def put(self, key, value, source, digits=3, text=None):
        self.data["numbers"][key] = {"value": _plain(value), "source": self.src(source),
                                     "text": text if text is not None else fmt(value, digits)}

    def table(self, key, columns, rows, source, digits=3):
        align = ["left" if any(isinstance(r[j], str) for r in rows) else "right"
                 for j in range(len(columns))]
        rows = [[c if isinstance(c, str) else fmt(c, digits) for c in r] for r in rows]
        self.data["tables"][key] = {"columns": list(columns), "rows": rows, "align": align,
                                    "source": self.src(source)}

    def figure(self, key, path: Path):
        dest = self.build / "figures" / f"{key}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        self.data["figures"][key] = {"path": f"figures/{key}.png", "source": self.src(path)}


def _plain(v):
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _json(path):
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- vignettes
def run_vignettes(selected, build: Path, quick: bool, reuse: Path | None) -> dict:
    """Run (or reuse) each selected vignette; return {NN: status} with its output dir."""
    status = {}
    for nn in sorted(VIGNETTES):
        script = VIGNETTES[nn]
        if reuse is not None and (reuse / nn / "report.md").exists():
            status[nn] = {"state": "reused", "dir": reuse / nn, "script": script.name}
            continue
        if nn not in selected:
            status[nn] = {"state": "not built", "dir": None, "script": script.name}
            continue
        out = build / "vignettes" / nn
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(script), "--out", str(out)] + (["--quick"] if quick else [])
        env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        seconds = time.perf_counter() - start
        (out / "run.log").write_text(proc.stdout + proc.stderr)
        ok = proc.returncode == 0
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        status[nn] = {"state": "ran" if ok else "failed", "dir": out if ok else None,
                      "seconds": seconds, "script": script.name, "error": "" if ok else last}
        print(f"vignette {nn}: {status[nn]['state']} in {seconds:.0f} s"
              + ("" if ok else f" ({last})"), flush=True)
    return status


# --------------------------------------------------------------------------- the reference cases
def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(a, b):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def equivalence(nums: Numbers):
    """Refit neurostat on every frozen statsmodels / R case; the largest relative deviation."""
    from neurostat import NeuralClassifier, NeuralCoxRegressor, NeuralRegressor

    rows = []
    inf = _load(REFS / "make_inference_reference.py", "make_inference_reference")
    frozen = _json(REFS / "inference_reference.json")
    for name in inf.CASES:
        X, y, kind = inf.load_case(name)
        est = (NeuralClassifier((), solver="lbfgs", random_state=0) if "logit" in kind else
               NeuralRegressor((), family="poisson" if kind == "poisson" else "gaussian",
                               solver="lbfgs", random_state=0))
        rows.append(_compare(name, est.fit(X, y).inference(), frozen["cases"][name]["nonrobust"],
                             f"statsmodels {frozen['statsmodels']}", len(y)))
    fam = _load(REFS / "make_families_reference.py", "make_families_reference")
    frozen = _json(REFS / "families_reference.json")
    for name in frozen["cases"]:
        X, y, w, offset, family = fam.load_case(name)
        est = NeuralRegressor((), family=family, solver="lbfgs", max_iter=500)
        res = est.fit(X, y, sample_weight=w, offset=offset).inference()
        rows.append(_compare(name, res, frozen["cases"][name]["nonrobust"],
                             f"statsmodels {frozen['statsmodels']}", len(y)))
    cox = _json(REFS / "cox_reference.json")
    data = cox["data"]
    X, y = np.array(data["X"]), np.column_stack([data["time"], data["event"]])
    r_version = cox["R"]["version"].replace("_", " ").split(" (")[0]
    for key, r in cox["R"].items():
        if key == "version":
            continue
        ties, weighted = key.split("_")
        w = np.array(data["w"]) if weighted == "w" else None
        res = NeuralCoxRegressor((), solver="lbfgs", ties=ties).fit(X, y, sample_weight=w)
        res = res.inference()
        rows.append([f"cox_{key}", r_version.replace("R version", "R") + " coxph", len(y),
                     _rel(res.params, r["coef"]), _rel(res.bse, r["se"]),
                     abs(res.llf - r["loglik"][1]) / abs(r["loglik"][1])])
    nums.table("equivalence", ["case", "reference", "n", "params", "std. errors", "log-lik."],
               rows, REFS, digits=2)
    nums.put("equiv_cases", len(rows), REFS)
    nums.put("equiv_max_params", max(r[3] for r in rows), REFS, 2)
    nums.put("equiv_max_bse", max(r[4] for r in rows), REFS, 2)


def _compare(name, res, ref, label, n):
    return [name, label, n, _rel(res.params, ref["params"]), _rel(res.bse, ref["bse"]),
            abs(res.llf - ref["llf"]) / abs(ref["llf"])]


# --------------------------------------------------------------------------- per vignette
def v01(n: Numbers, d: Path):
    agree = pd.read_csv(d / "glm_agreement.csv").set_index("data")
    n.table("v01_agreement", ["data", "n", "coef", "std. err.", "llf statsmodels",
                              "llf neurostat", "AIC statsmodels", "AIC neurostat"],
            [[k, int(r["n"]), r["max rel diff coef"], r["max rel diff std err"],
              r["llf statsmodels"], r["llf neurostat"], r["aic statsmodels"],
              r["aic neurostat"]] for k, r in agree.iterrows()], d / "glm_agreement.csv", 5)
    n.put("v01_max_coef", agree["max rel diff coef"].max(), d / "glm_agreement.csv", 2)
    n.put("v01_max_se", agree["max rel diff std err"].max(), d / "glm_agreement.csv", 2)
    ic = pd.read_csv(d / "information_criteria.csv")
    n.table("v01_ic", ["data", "model", "edf", "log-lik.", "AIC", "BIC"],
            ic[["data", "model", "edf", "llf", "aic", "bic"]].values.tolist(),
            d / "information_criteria.csv", 4)
    n.figure("v01_calibration", d / "calibration.png")


def v02(n: Numbers, d: Path):
    dev = pd.read_csv(d / "deviations.csv")
    n.table("v02_deviations", ["model", "alpha", "max rel. dev.", "zeros neurostat",
                               "zeros scikit-learn"],
            dev[["model", "alpha", "max_rel_dev", "zeros_neurostat",
                 "zeros_sklearn"]].values.tolist(), d / "deviations.csv", 2)
    n.put("v02_worst", dev.max_rel_dev.max(), d / "deviations.csv", 2)
    n.put("v02_same_zeros", int(dev.same_zeros.sum()), d / "deviations.csv")
    n.put("v02_fits", len(dev), d / "deviations.csv")
    n.put("v02_ridge_df", pd.read_csv(d / "ridge_df.csv").abs_diff.max(), d / "ridge_df.csv", 2)
    n.figure("v02_paths", d / "glm_paths.png")
    n.figure("v02_net", d / "net_path.png")


def v03(n: Numbers, d: Path):
    ar = pd.read_csv(d / "adaptive_ridge.csv")
    n.put("v03_adaptive_max", ar["max_abs_diff_over_max_w*"].max(), d / "adaptive_ridge.csv", 2)
    mv = pd.read_csv(d / "mask_variance.csv")
    n.put("v03_maskvar_max", mv.rel_diff.abs().max(), d / "mask_variance.csv", 2)
    bag = pd.read_csv(d / "bagging_vs_dropout.csv")
    n.table("v03_bagging", ["model", "test MSE", "sd", "MSE vs true f", "variance over seeds"],
            bag[["model", "test_mse_mean", "test_mse_sd", "mse_vs_true_f",
                 "variance_across_seeds"]].values.tolist(), d / "bagging_vs_dropout.csv")
    cov = pd.read_csv(d / "mc_dropout_coverage.csv").groupby("level", as_index=False).mean()
    n.table("v03_coverage", ["level", "coverage of y (tau from residuals)",
                             "coverage of y (tau held out)", "coverage of f(x)"],
            cov[["level", "obs_coverage", "obs_coverage_tau_validation",
                 "mean_coverage_of_f"]].values.tolist(), d / "mc_dropout_coverage.csv")
    n.put("v03_cov95", float(cov.loc[cov.level == 0.95, "obs_coverage"].iloc[0]),
          d / "mc_dropout_coverage.csv")
    n.put("v03_covf95", float(cov.loc[cov.level == 0.95, "mean_coverage_of_f"].iloc[0]),
          d / "mc_dropout_coverage.csv")
    n.figure("v03_band", d / "mc_dropout_band.png")


def v04(n: Numbers, d: Path):
    k = pd.read_csv(d / "kurtosis_vs_width.csv")
    k1 = k[k.depth == 1]
    n.table("v04_kurtosis", ["depth", "width", "excess kurtosis", "MC s.e.", "closed form"],
            k[["depth", "width", "excess_kurtosis", "se", "closed_form_depth1"]].values.tolist(),
            d / "kurtosis_vs_width.csv")
    n.put("v04_kurt_widest", float(k1.excess_kurtosis.iloc[-1]), d / "kurtosis_vs_width.csv")
    n.put("v04_kurt_widest_cf", float(k1.closed_form_depth1.iloc[-1]), d / "kurtosis_vs_width.csv")
    n.put("v04_widest", int(k1.width.iloc[-1]), d / "kurtosis_vs_width.csv")
    reg = pd.read_csv(d / "diabetes_regression.csv")
    n.table("v04_regression", ["model", "test RMSE", "coverage of 95% intervals", "fit (s)"],
            reg[["model", "test_rmse", "coverage_95", "fit_s"]].values.tolist(),
            d / "diabetes_regression.csv")
    n.figure("v04_limits", d / "limits_vs_width.png")
    n.figure("v04_draws", d / "prior_draws.png")


def v05(n: Numbers, d: Path):
    s = pd.read_csv(d / "summary.csv")
    wide = s.pivot(index="model", columns="dataset", values="mse_mean")
    order = [m for m in s.model.drop_duplicates()]
    wide = wide.loc[order]
    n.table("v05_mse", ["model"] + [f"test MSE, {c}" for c in wide.columns],
            [[m] + list(r) for m, r in wide.iterrows()], d / "summary.csv")
    n.figure("v05_ridge", d / "ridge_functions.png")


def v06(n: Numbers, d: Path):
    s = pd.read_csv(d / "summary.csv")
    sizes = sorted(s.n.unique())
    rows = []
    for (task, model), g in s.groupby(["task", "model"], sort=False):
        g = g.set_index("n")
        rows.append([task, model] + [f"{fmt(g.loc[k, 'mean'])} ({fmt(g.loc[k, 'sd'], 2)})"
                                     for k in sizes])
    n.table("v06_accuracy", ["task", "model"] + [f"n = {k}" for k in sizes], rows,
            d / "summary.csv")
    n.figure("v06_accuracy", d / "accuracy_vs_n.png")


def v07(n: Numbers, d: Path):
    h = pd.read_csv(d / "heart_neurostat_vs_phreg.csv")
    n.table("v07_heart", ["ties", "coef neurostat", "coef PHReg", "s.e. neurostat",
                          "s.e. PHReg", "llf neurostat", "llf PHReg"],
            h[["ties", "coef neurostat", "coef PHReg", "se neurostat", "se PHReg",
               "llf neurostat", "llf PHReg"]].values.tolist(), d / "heart_neurostat_vs_phreg.csv",
            6)
    c = pd.read_csv(d / "concordance.csv")
    n.table("v07_concordance", ["model", "test concordance"], c.values.tolist(),
            d / "concordance.csv")
    n.figure("v07_loghazard", d / "log_hazard_x2.png")


def v08(n: Numbers, d: Path):
    m = _json(d / "metrics.json")
    n.put("v08_cells", m["cells"], d / "metrics.json")
    n.put("v08_in_bands", m["cells_in_bands"], d / "metrics.json")
    n.put("v08_se_lo", m["se_ratio_range"][0], d / "metrics.json")
    n.put("v08_se_hi", m["se_ratio_range"][1], d / "metrics.json")
    n.put("v08_cov_lo", m["coverage_range"][0], d / "metrics.json")
    t = pd.read_csv(d / "calibration_table.csv")
    cols = ["cell", "replications", "SE/SD min", "SE/SD max", "coverage min", "coverage max",
            "size: per-input test (x3)", "size: effect z (x3)", "power: effect z (x4)"]
    n.table("v08_table", ["cell", "reps", "SE/SD min", "SE/SD max", "cover. min", "cover. max",
                          "size, input test", "size, effect z", "power, effect z"],
            t[cols].values.tolist(), d / "calibration_table.csv")
    mfx_path = d / "margeff_table.csv"
    if mfx_path.exists():  # effects on the mean (bernoulli and poisson cells)
        mfx = pd.read_csv(mfx_path)
        cols = ["cell", "replications", "SE/SD min", "SE/SD max", "coverage min",
                "coverage max", "largest |bias| / SD", "link scale: largest |bias| / SD",
                "link scale: coverage min"]
        n.table("v08_margeff", ["cell", "reps", "SE/SD min", "SE/SD max", "cover. min",
                                "cover. max", "max |bias|/SD", "link: max |bias|/SD",
                                "link: cover. min"], mfx[cols].values.tolist(), mfx_path)
        n.put("v08_mfx_cells", m["margeff_cells"], d / "metrics.json")
        if m.get("margeff_cells"):
            n.put("v08_mfx_cov_lo", m["margeff_coverage_range"][0], d / "metrics.json")
            n.put("v08_mfx_cov_hi", m["margeff_coverage_range"][1], d / "metrics.json")
            n.put("v08_mfx_se_lo", m["margeff_se_ratio_range"][0], d / "metrics.json")
            n.put("v08_mfx_se_hi", m["margeff_se_ratio_range"][1], d / "metrics.json")
            n.put("v08_mfx_bias_max", m["margeff_bias_sd_max"], d / "metrics.json")
            n.put("v08_link_bias_max", m["link_bias_sd_max"], d / "metrics.json")
    conf = pd.DataFrame(m["conformal"])
    n.table("v08_conformal", ["noise", "method", "coverage", "noisiest quarter", "mean width"],
            conf.values.tolist(), d / "metrics.json")
    n.figure("v08_qq", d / "qq_null_pvalues.png")
    n.figure("v08_coverage", d / "coverage.png")
    n.data["v08_from_benchmark"] = (RESULTS / "calibration.json").exists()


def v09(n: Numbers, d: Path):
    m = _json(d / "metrics.json")
    rows = []
    for section, entries in m.items():
        for name, v in (entries.items() if isinstance(entries, dict) else []):
            if isinstance(v, dict) and {"params", "bse"} <= set(v):
                rows.append([f"{section}: {name.replace('_', ' ')}", v["params"], v["bse"],
                             v.get("llf", float("nan"))])
    n.table("v09_versus", ["model (vignette 09)", "params", "std. errors", "log-lik."], rows,
            d / "metrics.json", 2)
    pngs = sorted(d.glob("*.png"))
    if pngs:
        n.figure("v09_first", pngs[0])


def v10(n: Numbers, d: Path):
    m = _json(d / "metrics.json")
    diffs = [v["conv_minus_dense_gp"] for v in m["per_task_and_n"].values()]
    n.put("v10_cases", len(diffs), d / "metrics.json")
    n.put("v10_conv_wins", sum(x > 0 for x in diffs), d / "metrics.json")
    n.table("v10_diffs", ["task and n", "conv GP minus dense GP", "conv GP minus finite CNN",
                          "dense GP minus finite MLP"],
            [[k, v["conv_minus_dense_gp"], v["conv_gp_minus_finite_cnn"],
              v["dense_gp_minus_finite_mlp"]] for k, v in m["per_task_and_n"].items()],
            d / "metrics.json", 2)
    n.figure("v10_accuracy", d / "accuracy_vs_n.png")


def v11(n: Numbers, d: Path):
    m = _json(d / "metrics.json")
    src = d / "metrics.json"
    n.put("v11_identity", max(m["part1_identity_max_rel_error"].values()), src, 2)
    n.put("v11_tol", m["part1_identity_tolerance"], src, 1)
    n.put("v11_flow", m["part1_max_flow_over_ridge"], src)
    n.put("v11_bound", m["part1_bound"], src, 5)
    n.put("v11_gd_max", max(m["part1_max_gd_over_ridge"].values()), src)
    n.put("v11_spearman_time", m["part2_spearman_time_vs_test_error"], src, 2)
    n.put("v11_spearman_noise", m["part2_spearman_lr_over_batch_vs_test_error"], src, 2)
    n.put("v11_noise_lowers", m["part2_configs_where_noise_lowers_test_error_2se"], src)
    n.put("v11_compared", m["part2_configs_compared"], src)
    n.put("v11_init_identity", m["part3_linear_identity_max_rel_error"], src, 2)
    rr = pd.read_csv(d / "risk_ratios.csv")
    n.table("v11_risk", ["design", "eta s1^2", "risk", "max GD/ridge", "max flow/ridge",
                         "best GD/best ridge"],
            rr[["design", "eta_s1^2", "risk", "max_ratio_gd_over_ridge",
                "max_ratio_flow_over_ridge", "best_gd_over_best_ridge"]].values.tolist(),
            d / "risk_ratios.csv")
    n.figure("v11_paths", d / "paths_side_by_side.png")
    n.figure("v11_risk", d / "risk_paths.png")


def v12(n: Numbers, d: Path):
    m = _json(d / "metrics.json")
    src = d / "metrics.json"
    a, b, c = m["A"], m["B"], m["C"]
    for key, digits in (("true_hr", 3), ("hr_start_stop", 3), ("hr_entry_ignored", 3),
                        ("hr_ever_exposed", 3), ("coverage", 2), ("n_replications", 0)):
        n.put(f"v12_{key}", a[key], src, digits)
    n.put("v12_ci_lo", a["ci_start_stop"][0], src)
    n.put("v12_ci_hi", a["ci_start_stop"][1], src)
    n.put("v12_hr_covered", b["hr_covered"], src)
    n.put("v12_hr_total", len(b["hr"]), src)
    n.put("v12_cif_max", b["cif_max_error"], src, 2)
    for key in ("c_linear", "c_neural", "c_difference", "ibs_linear", "ibs_neural",
                "mean_auc_linear", "mean_auc_neural"):
        n.put(f"v12_{key}", c[key], src)
    n.put("v12_c_p", c["c_difference_p"], src, 2)
    n.figure("v12_auc", d / "auc_over_time.png")
    n.figure("v12_cif", d / "cumulative_incidence.png")


COLLECTORS = {"01": v01, "02": v02, "03": v03, "04": v04, "05": v05, "06": v06, "07": v07,
              "08": v08, "09": v09, "10": v10, "11": v11, "12": v12}


# --------------------------------------------------------------------------- benchmarks
def benchmarks(n: Numbers):
    """Ratios from the committed benchmark JSONs (neurostat's time over the peer's)."""
    rows, machines = [], set()
    f = RESULTS / "bench_fit.json"
    fit = _json(f)
    machines.add(fit["machine"]["platform"])
    for peer in ("sklearn", "skorch", "tuned_loop"):
        rows.append(["MLP training, n = 50,000, 10 epochs", peer.replace("_", " "),
                     fit["small"]["median_seconds"]["neurostat"],
                     fit["small"]["median_seconds"][peer],
                     fit["small"]["ratios"][f"neurostat/{peer}"], "bench_fit.json"])
    n.put("bench_fit_sklearn", fit["small"]["ratios"]["neurostat/sklearn"], f, 2)
    n.put("bench_fit_skorch", fit["small"]["ratios"]["neurostat/skorch"], f, 2)
    n.put("bench_fit_threads", fit["machine"]["threads"], f)
    f = RESULTS / "bench_inference.json"
    inf = _json(f)
    machines.add(inf["machine"])
    for r in inf["logistic"]:
        rows.append([f"logistic fit + SEs, n = {r['n']:,}", "statsmodels Logit",
                     r["neurostat"]["wall_median_s"], r["statsmodels"]["wall_median_s"],
                     r["neurostat"]["wall_ratio_to_statsmodels"], "bench_inference.json"])
    n.put("bench_inf_1e6", inf["logistic"][-1]["neurostat"]["wall_ratio_to_statsmodels"], f, 2)
    f = RESULTS / "bench_cox.json"
    cox = _json(f)
    machines.add(cox["meta"]["platform"])
    for r in cox["results"]:
        for peer in ("statsmodels", "lifelines", "R_coxph"):
            rows.append([f"linear Cox fit + SEs, n = {r['n']:,}", peer.replace("_", " "),
                         r["cpu_s"]["neurostat"], r["cpu_s"][peer],
                         1 / r["cpu_ratio_peer_over_neurostat"][peer], "bench_cox.json (CPU)"])
    n.put("bench_cox_r", min(r["cpu_ratio_peer_over_neurostat"]["R_coxph"]
                             for r in cox["results"]), f, 2)
    n.put("bench_cox_r_coef", max(r["max_abs_coef_diff_vs_statsmodels"]["R_coxph"]
                                  for r in cox["results"]), f, 2)
    f = RESULTS / "bench_gp.json"
    gp = _json(f)
    machines.add(gp["meta"]["machine"])
    for size, r in gp["results"].items():
        rows.append([f"NNGP regressor fit + predict, n = {int(size):,}",
                     "scikit-learn GPR", r["neurostat_nngp"]["median_total_s"],
                     r["sklearn_gpr"]["median_total_s"],
                     r["time_ratio_neurostat_to_sklearn"]["of_medians"], "bench_gp.json"])
    n.put("bench_gp_max_n", max(int(k) for k in gp["results"]), f)
    f = RESULTS / "bench_ppr.json"
    ppr = _json(f)
    times = [c["time_ratio"] for c in ppr["cases"]]
    rows.append([f"PPR fit, Friedman 1-3, {len(times)} cases (median)", "R stats::ppr",
                 float("nan"), float("nan"), float(np.median(times)), "bench_ppr.json (CPU)"])
    n.put("bench_ppr_time", float(np.median(times)), f, 2)
    mse = [s["mse_ratio_of_means"] for s in ppr["summary"]]
    n.put("bench_ppr_mse_lo", min(mse), f, 2)
    n.put("bench_ppr_mse_hi", max(mse), f, 2)
    n.put("bench_ppr_cases", len(times), f)
    n.put("bench_ppr_r", ppr["R"], f, text=ppr["R"].split("version")[-1].split()[0])
    n.table("bench", ["task", "peer", "neurostat (s)", "peer (s)", "ratio", "file"], rows,
            RESULTS, 3)
    n.table("bench_ppr_summary", ["data", "terms", "smoother", "MSE ratio to R",
                                  "median time ratio"],
            [[s["dataset"], s["n_terms"], s["smoother"], s["mse_ratio_of_means"],
              s["time_ratio_median"]] for s in ppr["summary"]], f)
    n.data["machines"] = sorted(machines)
    cpus = {gp["meta"].get("cpu_count")} | {_json(RESULTS / "bench_dask.json").get("cpus")}
    n.put("bench_cpus", max(c for c in cpus if c), RESULTS)
    dask(n)
    wald(n)


def dask(n: Numbers):
    f = RESULTS / "bench_dask.json"
    d = _json(f)
    rows = []
    for key, label in (("small_1_worker", "1 worker"), ("small_2_workers", "2 workers"),
                       ("large_2_workers", "2 workers")):
        r = d[key]
        rows.append([f"{r['n']:,}", label, r["neurostat"]["wall_s"], r["read_once_s"],
                     r["neurostat"]["n_passes"], r["neurostat"]["client_peak_rss_mb"],
                     max(r["neurostat"]["worker_peak_rss_mb"])])
    n.table("dask", ["rows", "cluster", "fit + SEs (s)", "one read (s)", "passes",
                     "client RSS (MB)", "worker RSS (MB)"], rows, f)
    peers = d["small_2_workers"]["peers"]
    n.put("dask_ml_ratio", 1 / peers["dask_ml_newton"]["ratio_to_neurostat"], f, 2)
    n.put("dask_glm_ratio", 1 / peers["dask_glm_newton"]["ratio_to_neurostat"], f, 2)
    n.put("dask_coef_diff", max(p["max_abs_coef_diff"] for p in peers.values()), f, 2)
    n.put("dask_speedup", d["small_1_worker"]["speedup_2_over_1_workers"], f, 2)
    n.put("dask_load", d["load_average_start"][0], f, 2)
    n.put("dask_large_n", d["large_2_workers"]["n"], f)
    n.put("dask_large_s", d["large_2_workers"]["neurostat"]["wall_s"], f)
    n.put("dask_client_large", d["large_2_workers"]["neurostat"]["client_peak_rss_mb"], f)
    n.put("dask_client_small", d["small_2_workers"]["neurostat"]["client_peak_rss_mb"], f)
    n.put("dask_small_n", d["small_2_workers"]["n"], f)
    mem = d["in_memory_1e6"]["neurostat"]
    n.put("dask_inmem_ratio", mem["wall_ratio_to_statsmodels"], f, 2)


def wald(n: Numbers):
    f = RESULTS / "wald_calibration.json"
    w = _json(f)
    n.table("wald", ["hidden units", "ridge alpha", "size, per-input Wald test",
                     "size, effect z test"],
            [[", ".join(map(str, r["hidden"])), r["alpha"], r["wald_rejection"],
              r["effect_z_rejection"]] for r in w["results"]], f, 2)
    for key in ("replications", "n", "level"):
        n.put(f"wald_{key}", w[key], f, 2)
    n.put("wald_max", max(r["wald_rejection"] for r in w["results"]), f, 2)
    n.put("wald_z_max", max(r["effect_z_rejection"] for r in w["results"]), f, 2)


# --------------------------------------------------------------------------- main
def collect(nums: Numbers, status: dict, skip_equivalence: bool):
    for nn, st in status.items():
        nums.data["vignettes"][nn] = {k: (str(v) if isinstance(v, Path) else v)
                                      for k, v in st.items()}
        if st["dir"] is None:
            continue
        try:
            COLLECTORS[nn](nums, Path(st["dir"]))
        except (OSError, KeyError, ValueError, IndexError) as exc:  # a changed output format
            nums.data["vignettes"][nn].update(state="unreadable", error=repr(exc))
            print(f"vignette {nn}: outputs unreadable ({exc!r})", flush=True)
    benchmarks(nums)
    if not skip_equivalence:
        equivalence(nums)


def compile_pdf(build: Path, pdf: Path):
    import typst

    for name in ("neurostat.typ", "references.bib"):
        shutil.copyfile(PAPER / name, build / name)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    try:
        typst.compile(str(build / "neurostat.typ"), output=str(pdf), root=str(build))
    except typst.TypstError as exc:
        raise SystemExit(f"typst could not compile the paper:\n{exc.diagnostic}") from exc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="run the vignettes with --quick")
    ap.add_argument("--vignettes", default="all", help="comma-separated numbers, or 'all'")
    ap.add_argument("--vignettes-from", type=Path, default=None,
                    help="reuse DIR/NN/ outputs where present instead of running vignette NN")
    ap.add_argument("--build", type=Path, default=PAPER / "build")
    ap.add_argument("--pdf", type=Path, default=PAPER / "neurostat.pdf")
    ap.add_argument("--no-equivalence", action="store_true",
                    help="skip refitting the frozen statsmodels / R reference cases")
    args = ap.parse_args(argv)
    selected = set(VIGNETTES) if args.vignettes == "all" else set(args.vignettes.split(","))
    unknown = selected - set(VIGNETTES)
    if unknown:
        raise ValueError(f"--vignettes: no vignette numbered {sorted(unknown)}; "
                         f"choose from {sorted(VIGNETTES)}")
    args.build.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.build / "figures", ignore_errors=True)
    status = run_vignettes(selected, args.build, args.quick, args.vignettes_from)
    nums = Numbers(args.build)
    nums.data["quick"] = args.quick
    collect(nums, status, args.no_equivalence)
    (args.build / "numbers.json").write_text(json.dumps(nums.data, indent=1, default=str))
    compile_pdf(args.build, args.pdf)
    missing = [nn for nn, v in nums.data["vignettes"].items() if v["state"] not in ("ran",
                                                                                   "reused")]
    print(f"wrote {args.pdf}; vignettes without numbers: {missing or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
