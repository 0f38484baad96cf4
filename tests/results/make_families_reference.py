"""Reference numbers for tests/inference/test_families_statsmodels.py, computed with statsmodels.

Run ``python tests/results/make_families_reference.py`` to regenerate
``tests/results/families_reference.json`` (statsmodels 0.15.0 made the frozen copy). The tests
recompute these numbers with the installed statsmodels *and* compare with the frozen file.

Each case is a data set (shipped with statsmodels, or simulated here with a fixed seed where
an exposure is needed), the neurostat family fitted to it with no hidden layer, and the
statsmodels model it must reproduce:

* star98_binomial - GLM(Binomial) on [NABOVE, NBELOW] (neurostat: the proportion NABOVE /
  trials with the trials as sample_weight);
* scotland_gamma - GLM(Gamma(Log())) of the Scottish "yes" vote;
* randhie_negbin - NegativeBinomial (NB2) of doctor visits, first 2,000 rows;
* exposure_poisson, exposure_negbin - GLM(Poisson, exposure=) and NegativeBinomial(exposure=)
  of simulated counts over exposures (neurostat: offset=log(exposure));
* fair_tweedie - GLM(Tweedie(var_power=1.5, link=Log())) of the time in affairs (68% zeros).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

COV_TYPES = ("nonrobust", "HC0", "HC1")
CASES = ("star98_binomial", "scotland_gamma", "randhie_negbin", "exposure_poisson",
         "exposure_negbin", "fair_tweedie")
FAIR = ["rate_marriage", "age", "yrs_married", "children", "religious", "educ"]
STAR98 = ["LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PCTCHRT", "PCTYRRND", "PERMINTE",
          "AVYRSEXP", "AVSALK"]
RANDHIE = ["lncoins", "idp", "lpi", "fmde", "physlm", "disea"]


def _exposure_data(kind):
    rng = np.random.default_rng(20240513)
    n = 600
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(-1, 1, n),
                      "group": rng.integers(0, 2, n).astype(float)})
    exposure = rng.uniform(0.2, 6.0, n)
    mu = exposure * np.exp(-0.4 + 0.5 * X.x1 - 0.8 * X.x2 + 0.3 * X.group)
    if kind == "poisson":
        y = rng.poisson(mu)
    else:  # NB2 with alpha = 0.6
        r = 1 / 0.6
        y = rng.negative_binomial(r, r / (r + mu))
    return X, y.astype(np.float64), exposure


def load_case(name):
    """``(X DataFrame, y, sample_weight, offset, family)`` as neurostat takes them."""
    if name == "star98_binomial":
        d = sm.datasets.star98.load_pandas()
        trials = (d.endog.NABOVE + d.endog.NBELOW).to_numpy(np.float64)
        return d.exog[STAR98], d.endog.NABOVE.to_numpy() / trials, trials, None, "binomial"
    if name == "scotland_gamma":
        d = sm.datasets.scotland.load_pandas()
        return d.exog, d.endog.to_numpy(np.float64), None, None, "gamma"
    if name == "randhie_negbin":
        d = sm.datasets.randhie.load_pandas()
        return (d.exog[RANDHIE].iloc[:2000], d.endog.to_numpy(np.float64)[:2000], None, None,
                "negative_binomial")
    if name == "fair_tweedie":
        d = sm.datasets.fair.load_pandas().data
        return d[FAIR], d.affairs.to_numpy(np.float64), None, None, "tweedie"
    if name in ("exposure_poisson", "exposure_negbin"):
        kind = "poisson" if name == "exposure_poisson" else "negbin"
        X, y, exposure = _exposure_data(kind)
        return X, y, None, np.log(exposure), ("poisson" if kind == "poisson"
                                                else "negative_binomial")
    raise KeyError(name)


def statsmodels_fit(name, cov_type="nonrobust"):
    X, y, w, offset, family = load_case(name)
    Xc = sm.add_constant(X, has_constant="add")
    if family == "binomial":
        endog = np.column_stack([np.round(y * w), np.round(w - y * w)])
        return sm.GLM(endog, Xc, family=sm.families.Binomial()).fit(cov_type=cov_type,
                                                                    tol=1e-13)
    if family in ("gamma", "tweedie"):
        fam = (sm.families.Gamma(sm.families.links.Log()) if family == "gamma"
               else sm.families.Tweedie(var_power=1.5, link=sm.families.links.Log()))
        return sm.GLM(y, Xc, family=fam).fit(cov_type=cov_type, tol=1e-13)
    exposure = None if offset is None else np.exp(offset)
    if family == "poisson":
        return sm.GLM(y, Xc, family=sm.families.Poisson(), exposure=exposure).fit(
            cov_type=cov_type, tol=1e-13)
    return sm.NegativeBinomial(y, Xc, exposure=exposure).fit(
        method="newton", maxiter=200, tol=1e-13, disp=0, cov_type=cov_type)


def reference(name, cov_type):
    res = statsmodels_fit(name, cov_type)
    return {
        "params": np.asarray(res.params).tolist(), "bse": np.asarray(res.bse).tolist(),
        "pvalues": np.asarray(res.pvalues).tolist(),
        "conf_int": np.asarray(res.conf_int()).tolist(),
        "llf": float(res.llf), "llnull": float(res.llnull), "aic": float(res.aic),
        "bic": float(res.bic), "df_model": float(res.df_model),
        "df_resid": float(res.df_resid), "nobs": float(res.nobs),
        "scale": float(getattr(res, "scale", 1.0)),
    }


def prediction_reference(name, rows=20, alpha=0.1):
    """``get_prediction(first rows).summary_frame(alpha)`` of the GLM cases."""
    X, y, w, offset, family = load_case(name)
    res = statsmodels_fit(name)
    Xc = sm.add_constant(X, has_constant="add").iloc[:rows]
    kw = {} if offset is None else {"exposure": np.exp(offset[:rows])}
    frame = res.get_prediction(Xc, **kw).summary_frame(alpha=alpha)
    cols = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    return {col: frame[col].tolist() for col in cols}


PREDICTION_CASES = ("star98_binomial", "scotland_gamma", "exposure_poisson", "fair_tweedie")


def main(path=None):
    import statsmodels
    path = Path(__file__).with_name("families_reference.json") if path is None else path
    out = {"statsmodels": statsmodels.__version__,
           "cases": {n: {c: reference(n, c) for c in COV_TYPES} for n in CASES},
           "prediction": {n: prediction_reference(n) for n in PREDICTION_CASES}}
    Path(path).write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
