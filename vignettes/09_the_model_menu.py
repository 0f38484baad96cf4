"""Vignette 9: the statistician's model menu - counts, proportions, positive skewed data,
noise that varies, and several responses from one network.

The same question - what do the inputs do to the outcome, and how sure are we? - asked of
each kind of outcome, with the GLM (neurostat with no hidden layer, beside statsmodels: the
same numbers) and a net (one hidden layer; its coefficients are average effects on the linear
predictor with delta-method standard errors), compared on held-out log-likelihood:

A. counts over an exposure (simulated clinic visits over follow-up years, overdispersed, with
   a U-shaped age effect): Poisson against negative binomial, ``offset=log(years)``;
B. proportions: statsmodels' star98 (share of a school's pupils above the national maths
   median, out of those tested), binomial with the pupils tested as trials;
C. positive, skewed: statsmodels' fair (time in extramarital affairs among those with any),
   gamma with a log link, occupation as a categorical formula term; with the zeros, Tweedie;
D. noise that grows with the mean: statsmodels' engel (food expenditure against income),
   the heteroscedastic gaussian (mean and log sd both linear in log income) against OLS;
E. combined outputs: blood pressure (gaussian), diabetes (bernoulli) and visits (poisson)
   driven by one latent nonlinear risk, one net with a head per response
   (``MultiResponseRegressor``) beside three separate nets.

    python vignettes/09_the_model_menu.py [--quick] [--out DIR]
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
import statsmodels.formula.api as smf  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from neurostat import MultiResponseRegressor, NeuralRegressor  # noqa: E402
from neurostat.inference import InferenceWarning  # noqa: E402

torch.set_num_threads(1)
METRICS = {}


def net(family, formula, quick, units=8, alpha=1e-3, seed=0):
    return NeuralRegressor((units,), activation="tanh", family=family, solver="lbfgs",
                           alpha=alpha, max_iter=300 if quick else 1000, random_state=seed,
                           formula=formula)


def glm(family, formula):
    return NeuralRegressor((), family=family, solver="lbfgs", formula=formula, max_iter=500)


def versus_statsmodels(res, ref):
    """Largest relative differences of estimates and SEs, and of the log-likelihood."""
    ours_p = res.params.rename({"intercept": "Intercept"})
    theirs_p = ref.params.rename({"const": "Intercept"})
    common = [k for k in ours_p.index if k in theirs_p.index]
    rel = np.abs(ours_p[common] / theirs_p[common] - 1).max()
    ours_b = res.bse.rename({"intercept": "Intercept"})[common]
    rel_b = np.abs(ours_b / ref.bse.rename({"const": "Intercept"})[common] - 1).max()
    return {"params": float(rel), "bse": float(rel_b), "llf": float(abs(res.llf / ref.llf - 1))}


def side_by_side(res, ref):
    theirs = ref.params.rename({"Intercept": "intercept", "const": "intercept"})
    theirs_se = ref.bse.rename({"Intercept": "intercept", "const": "intercept"})
    return pd.DataFrame({"neurostat coef": res.params, "statsmodels coef": theirs,
                         "neurostat se": res.bse, "statsmodels se": theirs_se}).dropna()


def held_out(est, X, y, **kw):
    """Held-out log-likelihood per observation at the fitted parameters."""
    res = est.inference(X, y, **kw)
    return float(res.llf / res.nobs)


# ----------------------------------------------------------------------------- A. counts
def simulate_visits(n, rng):
    X = pd.DataFrame({"age": rng.uniform(20, 80, n), "smoker": rng.integers(0, 2, n),
                      "region": rng.choice(["east", "north", "south"], n)})
    years = rng.uniform(0.5, 5.0, n)
    rate = np.exp(-0.6 + 0.9 * ((X.age - 50) / 20) ** 2 + 0.4 * X.smoker
                  + X.region.map({"east": 0.0, "north": 0.3, "south": -0.2}))
    mu, r = years * rate, 1 / 0.5  # NB2 with alpha = 0.5
    X["visits"] = rng.negative_binomial(r, r / (r + mu)).astype(float)
    return X, years


def counts_section(out, quick, rng):
    f = "visits ~ age + smoker + C(region)"
    train, years = simulate_visits(1500 if quick else 5000, rng)
    test, years_t = simulate_visits(5000, rng)
    off, off_t = np.log(years), np.log(years_t)
    pois, nb = glm("poisson", f).fit(train, offset=off), glm("negative_binomial", f)
    nb.fit(train, offset=off)
    nbnet = net("negative_binomial", f, quick).fit(train, offset=off)
    res_p, res_nb, res_net = pois.inference(), nb.inference(), nbnet.inference()
    ref_p = smf.glm(f, train, family=sm.families.Poisson(), exposure=years).fit(tol=1e-13)
    ref_nb = smf.negativebinomial(f, train, exposure=years).fit(disp=0, method="newton",
                                                               tol=1e-13, maxiter=200)
    table = pd.DataFrame({"Poisson coef": res_p.params, "Poisson se": res_p.bse,
                          "NB coef": res_nb.params, "NB se": res_nb.bse})
    table.to_csv(out / "counts_poisson_vs_nb.csv")
    lr = 2 * (res_nb.llf - res_p.llf)
    ll = {"Poisson GLM": held_out(pois, test, None, offset=off_t),
          "NB GLM": held_out(nb, test, None, offset=off_t),
          "NB net (8 tanh units)": held_out(nbnet, test, None, offset=off_t)}
    pd.Series(ll, name="held-out loglik per row").to_csv(out / "counts_heldout.csv")
    se_ratio = (res_nb.bse / res_p.bse).drop("alpha").dropna()
    METRICS["counts"] = {
        "poisson_vs_statsmodels": versus_statsmodels(res_p, ref_p),
        "nb_vs_statsmodels": versus_statsmodels(res_nb, ref_nb),
        "alpha": float(res_nb.params["alpha"]), "alpha_se": float(res_nb.bse["alpha"]),
        "alpha_net": float(res_net.params["alpha"]), "alpha_net_se": float(res_net.bse["alpha"]),
        "alpha_true": 0.5, "lr_poisson_vs_nb": float(lr),
        "se_ratio_nb_over_poisson": [float(se_ratio.min()), float(se_ratio.max())],
        "heldout_loglik": ll}
    counts_figure(nbnet, pois, res_nb, res_net, train, off, out / "counts_age_and_variance.png")
    md = ["## A. Counts over an exposure: Poisson or negative binomial?", "",
          f"{len(train)} simulated patients, visits over 0.5-5 follow-up years "
          "(`offset=np.log(years)`), rate `exp(-0.6 + 0.9 ((age - 50) / 20)^2 + 0.4 smoker + "
          "region)`, NB2 noise with alpha = 0.5. Formula `" + f + "`.", "",
          "The GLMs equal statsmodels' `GLM(Poisson, exposure=)` and `NegativeBinomial("
          "exposure=)`: largest relative difference of estimates "
          f"{METRICS['counts']['poisson_vs_statsmodels']['params']:.1e} (Poisson) and "
          f"{METRICS['counts']['nb_vs_statsmodels']['params']:.1e} (NB), of SEs "
          f"{METRICS['counts']['nb_vs_statsmodels']['bse']:.1e}.", "",
          table.round(4).to_markdown(), "",
          f"The NB GLM's alpha = {res_nb.params['alpha']:.3f} (SE {res_nb.bse['alpha']:.3f}; "
          "truth 0.5) also absorbs the age curve its straight line misses; the NB net's is "
          f"{res_net.params['alpha']:.3f} (SE {res_net.bse['alpha']:.3f}). "
          f"The LR statistic against Poisson is {lr:.0f} (alpha = 0 is on the boundary: "
          "half a chi-square(1) reference; any value this size rejects). Poisson's standard "
          f"errors are {se_ratio.min():.1f}-{se_ratio.max():.1f} times too small: it counts "
          "overdispersed visits as if they were independent events.", "",
          "Held-out log-likelihood per patient (5,000 new patients): "
          + ", ".join(f"{k} {v:.4f}" for k, v in ll.items())
          + ". The net finds the U-shaped age effect that the GLM's straight line in age "
          "misses (figure, left); the right panel bins patients by predicted mean and "
          "compares the observed variance with Poisson's `mu` and NB's `mu + alpha mu^2`.",
          "", "![counts](counts_age_and_variance.png)", "",
          "The NB net's summary (average effects on log mu; alpha as a row):", "",
          "```", str(res_net.summary()), "```", ""]
    return md


def counts_figure(nbnet, pois, res_nb, res_net, train, off, path):
    ages = np.linspace(20, 80, 121)
    grid = pd.DataFrame({"age": ages, "smoker": 0, "region": "east", "visits": 0.0})
    truth = np.exp(-0.6 + 0.9 * ((ages - 50) / 20) ** 2)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ages, truth, "k--", label="truth")
    ax[0].plot(ages, pois.predict(grid), label="Poisson GLM (linear in age)")
    ax[0].plot(ages, nbnet.predict(grid), label="NB net")
    ax[0].set(xlabel="age", ylabel="visits per year (non-smoker, east)")
    ax[0].legend()
    mu = nbnet.predict(train, offset=off)
    bins = pd.qcut(mu, 15, labels=False, duplicates="drop")
    g = pd.DataFrame({"mu": mu, "y": train.visits, "b": bins}).groupby("b")
    m, v = g.mu.mean(), g.y.var()
    grid_mu = np.linspace(m.min(), m.max(), 100)
    ax[1].plot(m, v, "o", color="k", label="observed variance per bin")
    ax[1].plot(grid_mu, grid_mu, label="Poisson: mu")
    for name, res in (("NB GLM", res_nb), ("NB net", res_net)):
        a = float(res.params["alpha"])
        ax[1].plot(grid_mu, grid_mu + a * grid_mu**2, label=f"{name}: mu + {a:.2f} mu^2")
    ax[1].set(xlabel="predicted mean", ylabel="variance")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- B. proportions
STAR98 = ["LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PCTCHRT", "PCTYRRND", "PERMINTE",
          "AVYRSEXP", "AVSALK"]


def proportions_section(out, quick):
    d = sm.datasets.star98.load_pandas()
    X = (d.exog[STAR98] - d.exog[STAR98].mean()) / d.exog[STAR98].std()
    trials = (d.endog.NABOVE + d.endog.NBELOW).to_numpy(np.float64)
    y = d.endog.NABOVE.to_numpy() / trials
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0)
    g = glm("binomial", None).fit(X.iloc[idx_tr], y[idx_tr], sample_weight=trials[idx_tr])
    m = net("binomial", None, quick, units=4, alpha=1e-2).fit(
        X.iloc[idx_tr], y[idx_tr], sample_weight=trials[idx_tr])
    res, res_net = g.inference(), m.inference()
    endog = np.column_stack([y * trials, trials - y * trials])[idx_tr]
    ref = sm.GLM(endog, sm.add_constant(X.iloc[idx_tr]), family=sm.families.Binomial()).fit(
        tol=1e-13)
    side = side_by_side(res, ref)
    side.to_csv(out / "proportions_glm_vs_statsmodels.csv")
    res_net.summary().params_table.to_csv(out / "proportions_net_effects.csv")
    dispersion = float(res.likelihood.family.pearson_chi2(
        res.model.eta(), res.likelihood.y, res.likelihood.w) / res.df_resid)
    ll = {"binomial GLM": held_out(g, X.iloc[idx_te], y[idx_te],
                                   sample_weight=trials[idx_te]),
          "binomial net (4 tanh units)": held_out(m, X.iloc[idx_te], y[idx_te],
                                                  sample_weight=trials[idx_te])}
    METRICS["proportions"] = {"glm_vs_statsmodels": versus_statsmodels(res, ref),
                              "pearson_dispersion": dispersion, "heldout_loglik_per_school": ll}
    return ["## B. Proportions: star98 (statsmodels)", "",
            f"{len(idx_tr)} California school districts (75% for fitting): the share of pupils "
            "above the national maths median, `y = NABOVE / (NABOVE + NBELOW)`, with the pupils "
            "tested as `sample_weight` (the trials; glum's and scikit-learn's convention). Nine "
            "standardized covariates.", "",
            "GLM: neurostat against statsmodels' `GLM(Binomial)` on `[NABOVE, NBELOW]` "
            f"(estimates {METRICS['proportions']['glm_vs_statsmodels']['params']:.1e}, SEs "
            f"{METRICS['proportions']['glm_vs_statsmodels']['bse']:.1e}, log-likelihood "
            f"{METRICS['proportions']['glm_vs_statsmodels']['llf']:.1e} relative; the binomial "
            "coefficient is in the llf):", "", side.round(5).to_markdown(), "",
            f"The Pearson dispersion is {dispersion:.1f}, far above 1: pupils of one school "
            "are not independent trials, and the binomial SEs above are too small by about "
            f"sqrt({dispersion:.0f}) (use `cov_type='HC0'`). Held-out log-likelihood per "
            "school: " + ", ".join(f"{k} {v:.2f}" for k, v in ll.items()) + ".", "",
            "The net's average effects:", "", "```", str(res_net.summary()), "```", ""]


# ----------------------------------------------------------------------------- C. gamma
def gamma_section(out, quick):
    d = sm.datasets.fair.load_pandas().data
    d = d[d.affairs > 0].assign(occupation=lambda t: t.occupation.clip(2, 5).astype(int))
    f = ("affairs ~ rate_marriage + age + yrs_married + children + religious + educ"
         " + C(occupation)")
    train, test = train_test_split(d, test_size=0.3, random_state=0,
                                   stratify=d.occupation)
    g = glm("gamma", f).fit(train)
    m = net("gamma", f, quick, units=4, alpha=1e-2).fit(train)
    res, res_net = g.inference(), m.inference()
    ref = smf.glm(f, train, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-13)
    rob, ref_rob = g.inference(cov_type="HC0"), smf.glm(
        f, train, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-13,
                                                                          cov_type="HC0")
    side = side_by_side(res, ref)
    side.to_csv(out / "gamma_glm_vs_statsmodels.csv")
    wald = res.wald_test_terms()
    wald.to_csv(out / "gamma_wald_terms.csv")
    effects = res_net.summary().params_table
    effects.to_csv(out / "gamma_net_effects.csv")
    ll = {"gamma GLM": held_out(g, test, None), "gamma net (4 tanh units)": held_out(m, test,
                                                                                   None)}
    everyone = sm.datasets.fair.load_pandas().data.assign(
        occupation=lambda t: t.occupation.clip(2, 5).astype(int))
    tw = glm("tweedie", f).fit(everyone).inference()
    tw_ref = smf.glm(f, everyone, family=sm.families.Tweedie(
        var_power=1.5, link=sm.families.links.Log())).fit(tol=1e-13)
    METRICS["gamma"] = {"glm_vs_statsmodels": versus_statsmodels(res, ref),
                        "robust_vs_statsmodels": versus_statsmodels(rob, ref_rob),
                        "scale": float(res.scale), "heldout_loglik": ll,
                        "tweedie_vs_statsmodels": versus_statsmodels(tw, tw_ref),
                        "tweedie_zero_share": float(np.mean(everyone.affairs == 0)),
                        "occupation_wald_df": int(wald.loc["C(occupation)", "df constraint"])}
    return ["## C. Positive and skewed: time in affairs (statsmodels' fair)", "",
            f"The {len(d)} respondents with any affair (70% for fitting); yearly time in "
            "affairs is positive with a long right tail (mean 2.2, max 58). Gamma with a log "
            "link, `" + f + "` (occupations 1 and 6 joined to their neighbours: too few).", "",
            "The GLM equals statsmodels' `GLM(Gamma(Log()))`: estimates "
            f"{METRICS['gamma']['glm_vs_statsmodels']['params']:.1e}, SEs "
            f"{METRICS['gamma']['glm_vs_statsmodels']['bse']:.1e} (the inverse Fisher "
            "information, statsmodels' IRLS), robust SEs "
            f"{METRICS['gamma']['robust_vs_statsmodels']['bse']:.1e} (observed information in "
            "the sandwich), dispersion (Pearson chi2 / df) "
            f"{res.scale:.3f}:", "", side.round(4).to_markdown(), "",
            "Occupation is one term: one joint Wald test on levels - 1 df "
            "(statsmodels' `wald_test_terms`):", "", wald.round(4).to_markdown(), "",
            "Held-out log-likelihood per respondent: "
            + ", ".join(f"{k} {v:.4f}" for k, v in ll.items())
            + ". The GLM's summary, grouped by term:", "", "```", str(res.summary()), "```",
            "", "The net's average effects on log mu (the GLM's coefficients, averaged over "
            "the respondents):", "", effects.round(4).to_markdown(), "",
            f"With the {100 * METRICS['gamma']['tweedie_zero_share']:.0f}% of respondents who "
            f"had none ({len(everyone)} in all), time in affairs is a Tweedie outcome "
            "(compound Poisson-gamma, power 1.5: an atom at zero and a positive part): "
            "`family='tweedie'` equals statsmodels' `GLM(Tweedie(var_power=1.5, link=Log()))` "
            f"(estimates {METRICS['gamma']['tweedie_vs_statsmodels']['params']:.1e}, SEs "
            f"{METRICS['gamma']['tweedie_vs_statsmodels']['bse']:.1e}, log-likelihood - the "
            f"Tweedie density - {METRICS['gamma']['tweedie_vs_statsmodels']['llf']:.1e}).", ""]


# ----------------------------------------------------------------------------- D. gaulss
def noise_section(out, quick):
    d = sm.datasets.engel.load_pandas().data
    X = np.log(d[["income"]].to_numpy())
    y = d.foodexp.to_numpy()
    rng = np.random.default_rng(0)
    folds = rng.permutation(len(y)) % 5
    rows = []
    for name, family in (("OLS (one variance)", "gaussian"), ("gaulss (log sd linear)",
                                                               "gaulss")):
        hit = np.zeros(len(y), bool)
        for k in range(5):
            tr, te = folds != k, folds == k
            res = glm(family, None).fit(X[tr], y[tr]).inference()
            fr = res.get_prediction(X[te]).summary_frame(alpha=0.1, obs=True)
            hit[te] = (y[te] >= fr.obs_ci_lower) & (y[te] <= fr.obs_ci_upper)
        third = pd.qcut(X[:, 0], 3, labels=["low", "middle", "high"])
        rows.append({"model": name, "all": hit.mean(),
                     **{f"{t} income": hit[third == t].mean() for t in ("low", "middle",
                                                                        "high")}})
    cov = pd.DataFrame(rows)
    cov.to_csv(out / "engel_interval_coverage.csv", index=False)
    full = {f: glm(f, None).fit(X, y).inference() for f in ("gaussian", "gaulss")}
    noise_figure(full, X, y, out / "engel_intervals.png")
    METRICS["gaulss"] = {"coverage_90": cov.set_index("model").to_dict("index"),
                         "log_sd_slope": float(full["gaulss"].params[("log_sd", "x0")]),
                         "log_sd_slope_se": float(full["gaulss"].bse[("log_sd", "x0")])}
    return ["## D. Noise that grows: food expenditure and income (statsmodels' engel)", "",
            "235 Belgian households; food expenditure against log income. OLS has one "
            "variance; the heteroscedastic gaussian (`family='gaulss'`, mgcv's name) models "
            "the mean and the log standard deviation, here both linear in log income. The "
            f"slope of log sd is {METRICS['gaulss']['log_sd_slope']:.2f} (SE "
            f"{METRICS['gaulss']['log_sd_slope_se']:.2f}): the spread grows with income.", "",
            "Coverage of 90% prediction intervals (`get_prediction(X).summary_frame(obs="
            "True)`) on held-out households, 5-fold cross-validation, by income third:", "",
            cov.round(3).to_markdown(index=False), "",
            "OLS's intervals are too wide for the poor and too narrow for the rich; the "
            "heteroscedastic model's are right in each third (tests/inference/test_gaulss.py "
            "measures the same on data with known noise).", "",
            "![engel](engel_intervals.png)", ""]


def noise_figure(full, X, y, path):
    grid = np.linspace(X.min(), X.max(), 100)[:, None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.exp(X[:, 0]), y, ".", color="grey", alpha=0.6, label="households")
    for name, res in full.items():
        fr = res.get_prediction(grid).summary_frame(alpha=0.1, obs=True)
        line = ax.plot(np.exp(grid[:, 0]), fr["mean"], label=f"{name} mean")[0]
        ax.fill_between(np.exp(grid[:, 0]), fr.obs_ci_lower, fr.obs_ci_upper,
                        color=line.get_color(), alpha=0.2, label=f"{name} 90% interval")
    ax.set(xscale="log", xlabel="income (log scale)", ylabel="food expenditure")
    ticks = [500, 1000, 2000, 4000]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- E. combined
def simulate_patients(n, rng):
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x0", "x1", "x2", "x3"])
    z = np.tanh(1.5 * X.x0 * X.x1) + 0.5 * np.sin(2 * X.x2)  # one latent risk
    Y = pd.DataFrame({
        "bp": 125 + 8 * z + 6 * rng.normal(size=n),
        "diabetic": (rng.random(n) < 1 / (1 + np.exp(-(-0.8 + 1.5 * z)))).astype(float),
        "visits": rng.poisson(np.exp(0.4 + 0.6 * z)).astype(float)})
    return X, Y


FAMS = {"bp": "gaussian", "diabetic": "bernoulli", "visits": "poisson"}


def combined_section(out, quick, rng):
    X, Y = simulate_patients(500 if quick else 1500, rng)
    Xt, Yt = simulate_patients(5000, rng)
    kw = dict(activation="tanh", solver="lbfgs", alpha=1e-3, max_iter=300 if quick else 800,
              random_state=0)
    t = time.process_time()
    joint = MultiResponseRegressor(FAMS, hidden_layer_sizes=(8,), **kw).fit(X, Y)
    t_joint = time.process_time() - t
    # a separate bernoulli response is a binomial one with one trial per row
    sep = {k: NeuralRegressor((8,), family="binomial" if f == "bernoulli" else f,
                              **kw).fit(X, Y[k]) for k, f in FAMS.items()}
    joint_ll = joint.inference(Xt, Yt).llf_by_response / len(Yt)
    sep_ll = pd.Series({k: held_out(m, Xt, Yt[k]) for k, m in sep.items()})
    comp = pd.DataFrame({"one net, three heads": joint_ll, "three separate nets": sep_ll})
    comp.to_csv(out / "combined_heldout.csv")
    g = MultiResponseRegressor(FAMS, hidden_layer_sizes=(), solver="lbfgs").fit(X, Y)
    gres = g.inference()
    refs = {"bp": sm.OLS(Y.bp, sm.add_constant(X)).fit(),
            "diabetic": sm.Logit(Y.diabetic, sm.add_constant(X)).fit(disp=0, method="newton"),
            "visits": sm.GLM(Y.visits, sm.add_constant(X), family=sm.families.Poisson()).fit()}
    diffs = {k: versus_statsmodels(_response(gres, k), r) for k, r in refs.items()}
    combined_figure(comp, out / "combined_heldout.png")
    METRICS["combined"] = {"heldout_loglik_per_row": comp.to_dict("index"),
                           "glm_heads_vs_separate_statsmodels": diffs,
                           "joint_fit_cpu_s": t_joint}
    worst = max(max(v["params"], v["bse"]) for v in diffs.values())
    return ["## E. Combined outputs: one net, a head per response", "",
            f"{len(Y)} simulated patients; blood pressure (gaussian), diabetes (bernoulli) and "
            "visits (poisson) all depend on one latent nonlinear risk "
            "`tanh(1.5 x0 x1) + 0.5 sin(2 x2)`. `MultiResponseRegressor` fits one network with "
            "8 shared tanh units and a head per response by the joint likelihood (each "
            "gaussian response's variance profiled out), beside three separate nets of the "
            "same size.", "",
            "Held-out log-likelihood per patient and response (5,000 new patients):", "",
            comp.round(4).to_markdown(), "",
            "The shared units are fitted by all three responses at once, so the binary and "
            "count responses, which carry little information each, borrow the shape of the "
            "risk from the others.", "", "![combined](combined_heldout.png)", "",
            "With no hidden layer the joint fit factorizes: each head is its separate GLM, "
            "statsmodels' OLS, Logit and GLM(Poisson) per column (largest relative difference "
            f"of estimates and SEs: {worst:.1e}). The joint net's summary, one block per "
            "response:", "", "```", str(joint.inference().summary()), "```", ""]


def _response(res, name):
    """The rows of one response of a joint model's results, as a single-response view."""
    class View:
        params = res.params[name]
        bse = res.bse[name]
        llf = float(res.llf_by_response[name])
    return View


def combined_figure(comp, path):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    gain = comp["one net, three heads"] - comp["three separate nets"]
    gain.plot.bar(ax=ax, rot=0, color="C2")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="held-out log-likelihood per patient:\none net minus separate nets")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, fewer iterations")
    ap.add_argument("--out", default="vignette_output/09_the_model_menu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", InferenceWarning)
    rng = np.random.default_rng(args.seed)
    md = ["# Vignette 9: the statistician's model menu", "",
          "Each outcome is asked the same question: what do the inputs do, and how sure are "
          "we? The GLM (no hidden layer) gives statsmodels' numbers; the net (one hidden "
          "layer) gives average effects with delta-method SEs; both are judged on held-out "
          "log-likelihood.", ""]
    md += counts_section(out, args.quick, rng)
    md += proportions_section(out, args.quick)
    md += gamma_section(out, args.quick)
    md += noise_section(out, args.quick)
    md += combined_section(out, args.quick, rng)
    (out / "report.md").write_text("\n".join(md))
    (out / "metrics.json").write_text(json.dumps(METRICS, indent=1, default=float))
    print("\n".join(md))


if __name__ == "__main__":
    main()
