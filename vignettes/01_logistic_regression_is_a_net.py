"""Vignette 1: logistic regression is a net without hidden layer - then add hidden units.

A ``NeuralClassifier(hidden_layer_sizes=(), solver="lbfgs")`` is statsmodels' ``Logit``: same
coefficients, standard errors, p-values, log-likelihood, AIC and BIC. This script

* puts statsmodels' table beside neurostat's on the Spector data (statsmodels' own example) and
  on scikit-learn's breast-cancer data (10 standardized "mean" features);
* adds hidden units and shows what changes: covariate effects (average partial derivatives)
  against the GLM coefficients, per-input Wald tests, effective df, AIC/BIC, likelihood-ratio
  tests of "does the hidden layer help?" (chi-square, which is invalid there, against the
  parametric bootstrap), and calibration (Hosmer-Lemeshow, reliability plot);
* draws the partial-dependence effects with confidence bands.

    python vignettes/01_logistic_regression_is_a_net.py [--quick] [--out DIR]
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

from neurostat import EffectDisplay, NeuralClassifier  # noqa: E402
from neurostat.demo import demo_summary, side_by_side  # noqa: E402

torch.set_num_threads(1)


def datasets():
    spector = sm.datasets.spector.load_pandas()
    b = load_breast_cancer(as_frame=True)
    cols = ["mean radius", "mean texture", "mean smoothness", "mean compactness",
            "mean concavity", "mean symmetry"]
    Xb = b.data[cols]
    Xb = (Xb - Xb.mean()) / Xb.std()
    return {"spector": (spector.exog, spector.endog.values),
            "breast_cancer": (Xb, b.target.values)}


def glm_tables(data):
    """statsmodels Logit beside the no-hidden-layer net, per data set."""
    tables, fits, rows = {}, {}, []
    for name, (X, y) in data.items():
        t0 = time.perf_counter()
        sm_res = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
        t1 = time.perf_counter()
        res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
        t2 = time.perf_counter()
        tables[name] = side_by_side(sm_res, res)
        fits[name] = res
        t = tables[name]
        rows.append({
            "data": name, "n": len(y),
            "max rel diff coef": np.max(np.abs(t["neurostat coef"] - t["statsmodels coef"]) /
                                        np.abs(t["statsmodels coef"])),
            "max rel diff std err": np.max(np.abs(t["neurostat std err"] -
                                                  t["statsmodels std err"]) /
                                           t["statsmodels std err"]),
            "llf statsmodels": sm_res.llf, "llf neurostat": res.llf,
            "aic statsmodels": sm_res.aic, "aic neurostat": res.aic,
            "bic statsmodels": sm_res.bic, "bic neurostat": res.bic,
            "seconds statsmodels": t1 - t0, "seconds neurostat (fit+inference)": t2 - t1,
        })
    return tables, fits, pd.DataFrame(rows)


def standardized(X):
    return (X - X.mean()) / X.std()


def hidden_units(data, glm_fits, quick):
    """Nets with 1, 2 (and 4) tanh hidden units beside the GLM on standardized inputs; a light
    ridge penalty (alpha = 0.5 / n) keeps the weights finite on these small data sets."""
    sizes = [(1,), (2,)] if quick else [(1,), (2,), (4,)]
    rows, effects, walds, nets = [], [], [], {}
    for name, (X, y) in data.items():
        Xs = standardized(X)
        alpha = 0.5 / len(y)  # ridge lambda = 0.5 on the log-likelihood's (sum) scale
        glm = NeuralClassifier((), solver="lbfgs").fit(Xs, y).inference()
        rows.append({"data": name, "model": "GLM", "edf": glm.edf, "llf": glm.llf,
                     "aic": glm.aic, "bic": glm.bic})
        effects.append(pd.DataFrame({"data": name, "model": "GLM", "term": glm.params.index,
                                     "coef": glm.params.values, "std err": glm.bse.values}))
        for h in sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = NeuralClassifier(h, activation="tanh", solver="lbfgs", alpha=alpha,
                                       max_iter=2000, random_state=0).fit(Xs, y)
                res = est.inference()
            label = f"{h[0]} hidden"
            nets[(name, h)] = (est, res, glm)
            rows.append({"data": name, "model": label, "edf": res.edf, "llf": res.llf,
                         "aic": res.aic, "bic": res.bic})
            effects.append(pd.DataFrame({"data": name, "model": label,
                                         "term": res.params.index, "coef": res.params.values,
                                         "std err": res.bse.values}))
            w = res.wald_test_terms().reset_index()
            w.insert(0, "model", label)
            w.insert(0, "data", name)
            walds.append(w)
    return pd.DataFrame(rows), pd.concat(effects), pd.concat(walds), nets


def lr_tests(nets, quick):
    """Does the hidden layer help? chi-square (invalid: Davies' problem) vs parametric bootstrap."""
    B = 19 if quick else 99
    rows = []
    for (name, h), (_est, res, glm) in nets.items():
        if quick and (name != "spector" or h != (2,)):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chi2 = res.compare_lr_test(glm)
            boot = res.compare_lr_test(glm, method="bootstrap", n_bootstrap=B, random_state=0)
        rows.append({"data": name, "full": f"{h[0]} hidden", "restricted": "GLM",
                     "LR": chi2.statistic, "df (effective)": chi2.df,
                     "p chi2 (invalid here)": chi2.pvalue, "p bootstrap": boot.pvalue,
                     "n_bootstrap": B})
    return pd.DataFrame(rows)


def claim_metrics(tables, agreement, nets, lr):
    """The numbers behind the report's claims, for metrics.json (asserted by the tests)."""
    glm = {}
    for row in agreement.to_dict("records"):
        t = tables[row["data"]]

        def rel(col, t=t):
            ours, ref = t[f"neurostat {col}"], t[f"statsmodels {col}"]
            return float(np.max(np.abs(ours - ref) / np.abs(ref)))

        glm[row["data"]] = {
            "max_rel_diff_coef": rel("coef"), "max_rel_diff_bse": rel("std err"),
            "max_rel_diff_pvalue": rel("P>|z|"),
            **{f"abs_diff_{k}": float(abs(row[f"{k} neurostat"] - row[f"{k} statsmodels"]))
               for k in ("llf", "aic", "bic")},
        }
    edf = {}
    for (name, h), (est, res, glm_res) in nets.items():
        n_params = sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_)
        edf[f"{name} {h[0]} hidden"] = {
            "edf": float(res.edf), "n_params": int(n_params),
            "edf_over_n_params": float(res.edf / n_params),
            "glm_edf_minus_k": float(glm_res.edf - len(glm_res.params))}
    lr_rows = []
    for row in lr.to_dict("records"):
        _est, res, glm_res = nets[(row["data"], (int(row["full"].split()[0]),))]
        B = int(row["n_bootstrap"])
        k = row["p bootstrap"] * (B + 1)
        lr_rows.append({
            "data": row["data"], "full": row["full"], "LR": float(row["LR"]),
            "df": float(row["df (effective)"]), "p_chi2": float(row["p chi2 (invalid here)"]),
            "p_bootstrap": float(row["p bootstrap"]), "n_bootstrap": B,
            # LR = 2 (llf full - llf GLM), from the two fits' own log-likelihoods
            "LR_minus_twice_llf_gap": float(row["LR"] - 2 * (res.llf - glm_res.llf)),
            # a bootstrap p-value is (1 + #{LR* >= LR}) / (B + 1)
            "p_bootstrap_grid_distance": float(abs(k - round(k))),
        })
    return {"glm": glm, "hidden_units": edf, "lr_tests": lr_rows}


def calibration(glm_fit, net_fit, path):
    fig, ax = plt.subplots(figsize=(4.5, 4))
    rows = []
    for label, res in (("GLM", glm_fit), ("net", net_fit)):
        d = res.diagnostics()
        t = d.calibration
        ax.plot(t.mean_predicted, t.observed, "o-", label=f"{label} (HL p="
                f"{d.hosmer_lemeshow[1]:.2f})")
        rows.append(t.assign(model=label).reset_index())
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="mean predicted probability (decile bin)", ylabel="observed frequency",
           title="Calibration, breast cancer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pd.concat(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small settings (< 40 s)")
    ap.add_argument("--out", default="vignette_output/01_logistic_regression_is_a_net")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = datasets()
    tables, glm_fits, agreement = glm_tables(data)
    for name, t in tables.items():
        t.to_csv(out / f"glm_side_by_side_{name}.csv")
    agreement.to_csv(out / "glm_agreement.csv", index=False)

    criteria, effects, walds, nets = hidden_units(data, glm_fits, args.quick)
    criteria.to_csv(out / "information_criteria.csv", index=False)
    effects.to_csv(out / "effects.csv", index=False)
    walds.to_csv(out / "wald_tests.csv", index=False)
    lr = lr_tests(nets, args.quick)
    lr.to_csv(out / "lr_tests.csv", index=False)

    est2, res2, glm_b = nets[("breast_cancer", (2,))]
    calib = calibration(glm_b, res2, out / "calibration.png")
    calib.to_csv(out / "calibration.csv", index=False)
    disp = EffectDisplay.from_estimator(est2, results=res2, grid_resolution=15 if args.quick
                                        else 40)
    disp.plot()
    disp.figure_.suptitle("Breast cancer, 2 tanh hidden units: partial dependence, 95% bands")
    disp.figure_.savefig(out / "effects.png", dpi=110)
    plt.close("all")

    summary = demo_summary()
    (out / "summary.txt").write_text(summary + "\n")
    report = [
        "# Logistic regression is a net without hidden layer",
        "",
        "A `NeuralClassifier(hidden_layer_sizes=(), solver='lbfgs')` reproduces statsmodels' "
        "`Logit`: coefficients, standard errors, p-values, log-likelihood, AIC and BIC.",
        "",
        "## statsmodels beside neurostat",
        "",
        agreement.to_markdown(index=False, floatfmt=".4g"),
        "",
        "Spector data (statsmodels' example):",
        "",
        tables["spector"].to_markdown(floatfmt=".5g"),
        "",
        "## Adding hidden units (standardized inputs, tanh, ridge alpha = 0.5 / n)",
        "",
        "Effective degrees of freedom are trace(I A^-1) of the penalized fit; AIC and BIC use "
        "them.",
        "",
        criteria.to_markdown(index=False, floatfmt=".4g"),
        "",
        "Covariate effects (average partial derivative of the logit; the GLM's are its "
        "coefficients):",
        "",
        effects.pivot_table(index=["data", "term"], columns="model", values="coef",
                            sort=False).to_markdown(floatfmt=".3f"),
        "",
        "Per-input Wald tests (all weights leaving the input = 0):",
        "",
        walds.to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Does the hidden layer help? Likelihood-ratio tests",
        "",
        "Under the GLM the hidden-unit weights are not identified (Davies' problem), so the "
        "chi-square reference is not valid; the parametric bootstrap simulates from the GLM and "
        "refits both models.",
        "",
        lr.to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Calibration and effects",
        "",
        "![calibration](calibration.png)",
        "",
        "![effects](effects.png)",
        "",
        "## Summary",
        "",
        "```",
        summary,
        "```",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    metrics = claim_metrics(tables, agreement, nets, lr)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(summary)
    print(f"wrote {out}/report.md")


if __name__ == "__main__":
    main()
