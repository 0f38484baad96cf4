"""The Leekasso pipeline against a hand computation: pooled t-statistics, the 10 pixels, the
linear (least squares, fitted > 1/2) and logistic (statsmodels Logit) fits."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.model_selection import train_test_split

from neurostat import leekasso
from neurostat.datasets import load_digit_pairs

pytestmark = pytest.mark.filterwarnings("ignore:Features .* are constant:UserWarning",
                                        "ignore::RuntimeWarning")


def pooled_t(X, y):
    """Two-sample t-statistic with pooled variance, by hand, per column."""
    a, b = X[y == 0], X[y == 1]
    na, nb = len(a), len(b)
    sp2 = ((na - 1) * a.var(0, ddof=1) + (nb - 1) * b.var(0, ddof=1)) / (na + nb - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (b.mean(0) - a.mean(0)) / np.sqrt(sp2 * (1 / na + 1 / nb))


def sample(a, b, n, seed):
    X, y = load_digit_pairs(a, b, flat=True)
    tr, te = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return X[tr], y[tr], X[te], y[te]


def top_k(t, k=10):
    score = np.where(np.isnan(t), -np.inf, np.abs(t))
    order = np.argsort(-score, kind="stable")
    # the hand selection is unambiguous only when the k-th and (k+1)-th scores differ
    assert score[order[k - 1]] > score[order[k]]
    return np.sort(order[:k])


def test_t_ranking_and_selected_pixels():
    X, y, _, _ = sample(3, 8, 60, 0)
    t = pooled_t(X, y)
    ok = np.isfinite(t)
    np.testing.assert_allclose(t[ok], stats.ttest_ind(X[:, ok][y == 1], X[:, ok][y == 0]).statistic,
                               rtol=1e-12)
    pipe = leekasso(10, "linear").fit(X, y)
    f = pipe.named_steps["select"].scores_
    # for two classes the ANOVA F is the squared pooled t-statistic
    np.testing.assert_allclose(f[ok], t[ok] ** 2, rtol=1e-10)
    np.testing.assert_array_equal(np.flatnonzero(pipe[0].get_support()), top_k(t))


def test_linear_leekasso_is_least_squares_on_the_label():
    X, y, Xt, yt = sample(3, 8, 60, 1)
    cols = top_k(pooled_t(X, y))
    A = np.column_stack([np.ones(len(y)), X[:, cols]])
    beta, *_ = np.linalg.lstsq(A, y.astype(float), rcond=None)  # lm(y ~ x), 0/1 coding
    pipe = leekasso(10, "linear").fit(X, y)
    model = pipe.named_steps["model"]
    # sklearn codes the label -1/+1 = 2y - 1, so its coefficients are twice lm's
    np.testing.assert_allclose(model.coef_.ravel(), 2 * beta[1:], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.intercept_[0], 2 * beta[0] - 1, rtol=1e-8, atol=1e-10)
    fitted = np.column_stack([np.ones(len(yt)), Xt[:, cols]]) @ beta
    np.testing.assert_array_equal(pipe.predict(Xt), (fitted > 0.5).astype(int))


def test_linear_leekasso_when_n_is_below_the_parameter_count():
    # 8 points, 11 coefficients: the minimum-norm least-squares solution (interpolates)
    X, y, Xt, _ = sample(0, 1, 8, 2)
    cols = top_k(pooled_t(X, y))
    Xc = X[:, cols] - X[:, cols].mean(0)
    yc = (2.0 * y - 1) - (2.0 * y - 1).mean()
    w = np.linalg.pinv(Xc) @ yc
    model = leekasso(10, "linear").fit(X, y).named_steps["model"]
    np.testing.assert_allclose(model.coef_.ravel(), w, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(X[:, cols] @ model.coef_.ravel() + model.intercept_[0],
                               2.0 * y - 1, atol=1e-8)


def test_logistic_leekasso_is_the_maximum_likelihood_fit():
    # n = 300 of 3 vs 8: the 10 pixels do not separate the classes (LP-checked; n = 200 does)
    X, y, Xt, _ = sample(3, 8, 300, 0)
    cols = top_k(pooled_t(X, y))
    ref = sm.Logit(y, sm.add_constant(X[:, cols])).fit(disp=0, method="newton", tol=1e-12)
    # at a tight solver tolerance (the default tol=1e-4 leaves the intercept 0.04 off)
    pipe = leekasso(10, "logistic", max_iter=10_000).set_params(model__tol=1e-10).fit(X, y)
    model = pipe.named_steps["model"]
    np.testing.assert_allclose(model.intercept_[0], ref.params[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.coef_.ravel(), ref.params[1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pipe.predict_proba(Xt)[:, 1],
                               ref.predict(sm.add_constant(Xt[:, cols], has_constant="add")),
                               atol=1e-5)


def _coef_norms(X, y, tols):
    out = []
    for tol in tols:
        pipe = leekasso(10, "logistic", max_iter=10_000).set_params(model__tol=tol).fit(X, y)
        out.append(np.linalg.norm(pipe[-1].coef_))
    return np.array(out), pipe


def test_logistic_leekasso_under_separation():
    # n = 10 points, 11 parameters: separable, no maximum-likelihood estimate; the coefficients
    # grow without bound as the solver's tolerance shrinks (seen: 9.1, 20.4, 31.2) ...
    X, y, Xt, yt = sample(0, 1, 10, 3)
    norms, pipe = _coef_norms(X, y, [1e-4, 1e-8, 1e-12])
    assert norms[1] > 1.5 * norms[0] and norms[2] > 1.3 * norms[1]
    assert pipe.score(X, y) == 1.0 and pipe.score(Xt, yt) > 0.9
    # ... while without separation they settle at the MLE (seen: 28.45, 28.94, 28.94)
    X, y, _, _ = sample(3, 8, 300, 0)
    norms, _ = _coef_norms(X, y, [1e-8, 1e-12])
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-5)


def test_bad_model_raises():
    with pytest.raises(ValueError, match="'logistic' or 'linear'"):
        leekasso(10, "probit")
