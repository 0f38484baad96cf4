"""Reference numbers for tests/test_inference_glm.py, computed with statsmodels.

Run ``python tests/results/make_inference_reference.py`` to regenerate
``tests/results/inference_reference.json`` (statsmodels 0.15.0 made the frozen copy). The tests
recompute these numbers with the installed statsmodels *and* compare with the frozen file, so a
change on either side shows up.

Each case is a dataset shipped with statsmodels or scikit-learn, a neurostat estimator with no
hidden layer, and the statsmodels model it must reproduce: Logit, MNLogit (first class
reference), GLM(Poisson) and OLS.
"""

import json
import sys
from pathlib import Path

import numpy as np
import statsmodels.api as sm
from sklearn import datasets as skd

COV_TYPES = ("nonrobust", "HC0", "HC1")


def _standardize(df):
    return (df - df.mean()) / df.std()


def load_case(name):
    """``(X DataFrame, y, kind)``; kind in logit, mnlogit, poisson, ols."""
    if name == "spector_logit":
        d = sm.datasets.spector.load_pandas()
        return d.exog, d.endog.values, "logit"
    if name == "breast_cancer_logit":
        b = skd.load_breast_cancer(as_frame=True)
        X = _standardize(b.data[["mean radius", "mean texture", "mean smoothness"]])
        return X, b.target.values, "logit"
    if name == "anes96_mnlogit":
        a = sm.datasets.anes96.load_pandas().data
        return a[["logpopul", "selfLR", "age"]], a.PID.values % 3, "mnlogit"
    if name == "wine_mnlogit":
        w = skd.load_wine(as_frame=True)
        X = _standardize(w.data[["alcohol", "malic_acid", "ash"]])
        return X, w.target.values, "mnlogit"
    if name == "randhie_poisson":
        d = sm.datasets.randhie.load_pandas()
        cols = ["lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg"]
        return d.exog[cols].iloc[:2000], d.endog.values[:2000], "poisson"
    if name == "diabetes_poisson":
        b = skd.load_diabetes(as_frame=True, scaled=True)
        return b.data[["bmi", "bp", "s5"]] * 10, np.round(b.target.values / 10), "poisson"
    if name == "diabetes_ols":
        b = skd.load_diabetes(as_frame=True, scaled=True)
        return b.data, b.target.values, "ols"
    if name == "stackloss_ols":
        d = sm.datasets.stackloss.load_pandas()
        return d.exog, d.endog.values, "ols"
    raise KeyError(name)


CASES = ("spector_logit", "breast_cancer_logit", "anes96_mnlogit", "wine_mnlogit",
         "randhie_poisson", "diabetes_poisson", "diabetes_ols", "stackloss_ols")


def statsmodels_fit(name, cov_type="nonrobust"):
    X, y, kind = load_case(name)
    Xc = sm.add_constant(X, has_constant="add")
    if kind == "logit":
        return sm.Logit(y, Xc).fit(disp=0, cov_type=cov_type, method="newton", tol=1e-12)
    if kind == "mnlogit":
        return sm.MNLogit(y, Xc).fit(disp=0, cov_type=cov_type, method="newton", tol=1e-12)
    if kind == "poisson":
        return sm.GLM(y, Xc, family=sm.families.Poisson()).fit(cov_type=cov_type, tol=1e-12)
    return sm.OLS(y, Xc).fit(cov_type=cov_type)


def flat(v):
    """Coefficients in neurostat's order (class-major for MNLogit)."""
    v = np.asarray(v)
    return (v.T if v.ndim == 2 else v).ravel()


def llnull(name, res):
    X, y, kind = load_case(name)
    if kind == "ols":
        return float(sm.OLS(y, np.ones(len(y))).fit().llf)
    return float(res.llnull)


def reference(name, cov_type):
    res = statsmodels_fit(name, cov_type)
    ci = np.asarray(res.conf_int())
    if ci.ndim == 3:  # MNLogit: (classes, terms, 2) -> class-major rows
        ci = ci.reshape(-1, 2)
    return {
        "params": flat(res.params).tolist(), "bse": flat(res.bse).tolist(),
        "pvalues": flat(res.pvalues).tolist(), "conf_int": ci.tolist(),
        "llf": float(res.llf), "llnull": llnull(name, res), "aic": float(res.aic),
        "bic": float(res.bic), "df_model": float(res.df_model),
        "df_resid": float(res.df_resid), "scale": float(res.scale), "nobs": float(res.nobs),
    }


MARGEFF_CASES = ("spector_logit", "breast_cancer_logit", "anes96_mnlogit")
PREDICTION_CASES = ("spector_logit", "randhie_poisson", "diabetes_poisson", "stackloss_ols")


def margeff_reference(name):
    """Average marginal effects, statsmodels' ``get_margeff(at="overall").summary_frame()``."""
    res = statsmodels_fit(name)
    frame = res.get_margeff(at="overall").summary_frame()
    return {col: frame[col].tolist() for col in frame.columns}


def prediction_reference(name, rows=25, alpha=0.1):
    """``get_prediction(first rows).summary_frame(alpha)``: GLM for logit/poisson, OLS."""
    X, y, kind = load_case(name)
    Xc = sm.add_constant(X, has_constant="add")
    if kind == "ols":
        res = sm.OLS(y, Xc).fit()
    else:
        family = sm.families.Binomial() if kind == "logit" else sm.families.Poisson()
        res = sm.GLM(y, Xc, family=family).fit(tol=1e-12)
    frame = res.get_prediction(Xc.iloc[:rows]).summary_frame(alpha=alpha)
    cols = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    return {col: frame[col].tolist() for col in cols}


def main(path=None):
    import statsmodels
    path = Path(__file__).with_name("inference_reference.json") if path is None else path
    out = {"statsmodels": statsmodels.__version__,
           "cases": {n: {c: reference(n, c) for c in COV_TYPES} for n in CASES},
           "margeff": {n: margeff_reference(n) for n in MARGEFF_CASES},
           "prediction": {n: prediction_reference(n) for n in PREDICTION_CASES}}
    Path(path).write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
