"""The fit's statistics (``inference/statistics.py``) against closed forms, written against the
survivors of a mutation run (tests/MUTATION.md): the pooled dispersion and log-likelihood of
a two-output gaussian net, an unpenalized net's covariance as the inverse of its exact Hessian
(autograd, not the package's curvature code), the Fisher-information path of a non-canonical
link (its words and its warning), the words of each covariance, and the cluster sandwich
against statsmodels."""

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.inference.covariance import InferenceWarning


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def test_two_output_net_pools_one_dispersion_and_its_log_likelihood():
    """Outputs that share hidden units have one dispersion, ``RSS / (n k - edf)`` over both
    columns, and the log-likelihood is the gaussian density of all n k residuals at the
    maximum-likelihood variance ``RSS / (n k)``."""
    rng = np.random.default_rng(0)
    n = 150
    X = rng.normal(size=(n, 2))
    Y = np.column_stack([np.tanh(X[:, 0]), X[:, 1] - X[:, 0]]) + rng.normal(size=(n, 2)) * [
        0.5, 1.0]
    est = NeuralRegressor((3,), solver="lbfgs", alpha=1e-2, random_state=0).fit(X, Y)
    res = _quiet(lambda: est.inference(effects="delta"))
    assert res.statistics.method == ("penalized sandwich A^-1 F A^-1 (A = observed "
                                     "information + penalty, F = Fisher information)")
    resid = Y - est.predict(X)
    rss = float(np.sum(resid**2))
    assert np.ndim(res.scale) == 0
    np.testing.assert_allclose(res.scale, rss / (2 * n - res.edf), rtol=1e-10)
    llf = stats.norm.logpdf(resid, scale=np.sqrt(rss / (2 * n))).sum()
    np.testing.assert_allclose(res.llf, llf, rtol=1e-10)


def test_unpenalized_net_covariance_is_the_inverse_exact_hessian():
    """Without a penalty the nonrobust covariance of theta is ``s2 H^-1``: H the Hessian of
    ``RSS / 2`` by autograd through the module, ``s2 = RSS / (n - p)`` (not the sandwich
    ``H^-1 F H^-1`` with the Gauss-Newton F, which differs for a net); ``statistics.H`` is
    ``H / s2``."""
    rng = np.random.default_rng(1)
    n = 200
    X = rng.normal(size=(n, 2))
    y = np.tanh(1.5 * X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    est = NeuralRegressor((2,), activation="tanh", solver="lbfgs", max_iter=3000, tol=1e-9,
                          random_state=0).fit(X, y)
    res = _quiet(lambda: est.inference(effects="delta"))
    assert res.statistics.method == "inverse observed information"
    module = est.module_
    names = [k for k, p in module.named_parameters() if p.requires_grad]
    shapes = [p.shape for k, p in module.named_parameters() if p.requires_grad]
    theta = torch.nn.utils.parameters_to_vector(
        [p for p in module.parameters() if p.requires_grad]).detach().double()
    np.testing.assert_allclose(res.theta, theta.numpy(), rtol=0, atol=0)  # the same order
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)

    def half_rss(flat):
        parts, i = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            parts[name] = flat[i:i + size].reshape(shape)
            i += size
        out = torch.func.functional_call(module.double(), parts, (Xt,)).reshape(-1)
        return 0.5 * torch.sum((yt - out) ** 2)

    H = torch.autograd.functional.hessian(half_rss, theta).numpy()
    p = theta.numel()
    rss = float(2 * half_rss(theta))
    assert np.all(np.linalg.eigvalsh(H) > 0)  # a strict minimum: the inverse exists
    np.testing.assert_allclose(res.edf, p)
    np.testing.assert_allclose(res.cov_theta, rss / (n - p) * np.linalg.inv(H),
                               rtol=1e-5, atol=1e-12)
    # the observed information at the fit's dispersion (FitStatistics.H, and A without penalty)
    np.testing.assert_allclose(res.statistics.H, H / (rss / (n - p)), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.statistics.A, res.statistics.H, rtol=1e-12)


def test_non_canonical_link_uses_and_names_the_fisher_information():
    """A gamma GLM (log link) reports the inverse expected information, says so, and a
    singular one (a duplicated column) is named in the pseudo-inverse's warning."""
    rng = np.random.default_rng(2)
    n = 300
    X = rng.normal(size=(n, 2))
    y = rng.gamma(2.0, np.exp(0.3 + 0.4 * X[:, 0]) / 2.0)
    est = NeuralRegressor((), family="gamma", solver="lbfgs").fit(X, y)
    res = _quiet(est.inference)
    assert res.statistics.method == "inverse expected (Fisher) information"
    assert "inverse expected (Fisher) information" in str(res.summary())
    dup = np.column_stack([X, X[:, 0]])
    est = _quiet(lambda: NeuralRegressor((), family="gamma", solver="lbfgs").fit(dup, y))
    with pytest.warns(InferenceWarning, match=r"^The Fisher information is singular"):
        est.inference()


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_glm_cluster_covariance_equals_statsmodels():
    """cov_type="cluster" for a logistic GLM: statsmodels' GLM cluster covariance without its
    small-sample factor (use_correction=False) to 1e-8; its default one is ours times
    G / (G - 1) (n - 1) / (n - k). Labels of any type name the clusters; a wrong number of
    them is refused."""
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n, G = 400, 40
    g = rng.integers(0, G, n)
    X = rng.normal(size=(n, 2)) + rng.normal(size=(G, 1))[g]
    p = 1 / (1 + np.exp(-(0.5 * X[:, 0] - 0.7 * X[:, 1] + rng.normal(size=G)[g])))
    y = (rng.random(n) < p).astype(int)
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    res = est.inference(cov_type="cluster", groups=g)
    glm = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial())
    plain = glm.fit(cov_type="cluster", cov_kwds={"groups": g, "use_correction": False})
    assert rel(res.bse, plain.bse) < 1e-8
    corrected = glm.fit(cov_type="cluster", cov_kwds={"groups": g})
    factor = G / (G - 1) * (n - 1) / (n - 3)
    assert rel(res.bse * np.sqrt(factor), corrected.bse) < 1e-8
    assert res.statistics.method == ("cluster-robust sandwich A^-1 (sum_g S_g S_g') A^-1 over "
                                     "40 clusters (no small-sample factor)")
    named = est.inference(cov_type="cluster", groups=np.array([f"c{v}" for v in g]))
    np.testing.assert_allclose(named.bse, res.bse, rtol=1e-13)
    with pytest.raises(ValueError, match="pass groups="):
        est.inference(cov_type="cluster")
    with pytest.raises(ValueError, match=r"^groups must be 1-D with one label per row: it has "
                                         r"shape \(399,\) but the data have 400 rows\.$"):
        est.inference(cov_type="cluster", groups=g[:-1])


def test_robust_covariance_of_a_lasso_fit_is_the_sandwich_on_its_active_set():
    """HC0 of a logistic lasso with an exactly-zero coefficient: the sandwich
    ``H^-1 (sum_i s_i s_i') H^-1`` over the nonzero coefficients, written out in numpy from
    the fitted probabilities; the zero's row is NaN."""
    rng = np.random.default_rng(5)
    n = 400
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.6 * X[:, 1])))).astype(int)
    est = NeuralClassifier((), solver="lbfgs", alpha=0.05, l1_ratio=1.0, max_iter=2000,
                           tol=1e-10).fit(X, y)
    res = _quiet(lambda: est.inference(cov_type="HC0"))
    beta = res.params.values  # intercept, x0, x1, x2
    zero = beta == 0
    assert zero.sum() == 1 and zero[3], beta  # the noise input is cut
    Z = np.column_stack([np.ones(n), X])[:, ~zero]
    p = est.predict_proba(X)[:, 1]
    H = (Z * (p * (1 - p))[:, None]).T @ Z
    S = Z * (y - p)[:, None]
    Hinv = np.linalg.inv(H)
    cov = Hinv @ (S.T @ S) @ Hinv
    np.testing.assert_allclose(res.bse.values[~zero], np.sqrt(np.diag(cov)), rtol=1e-6)
    assert np.isnan(res.bse.values[zero]).all()


@pytest.mark.parametrize("alpha, what", [(0.0, "Hessian of the negative log-likelihood"),
                                         (1e-14, "penalized Hessian")])
def test_a_singular_curvature_is_named_in_the_warning(alpha, what):
    """A duplicated input makes the curvature singular; the warning names which one was
    pseudo-inverted: the Hessian, or with a (here negligible) ridge the penalized Hessian."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    est = _quiet(lambda: NeuralClassifier((), solver="lbfgs", alpha=alpha).fit(
        np.column_stack([X, X[:, 0]]), y))
    with pytest.warns(InferenceWarning, match=f"^The {what} is singular or ill-conditioned"):
        est.inference()
