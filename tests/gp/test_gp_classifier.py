"""NNGPClassifier against scikit-learn's Laplace GP classifier with the same (precomputed)
kernel, a Monte-Carlo predictive probability, and scikit-learn's estimator checks."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurostat.gp import ConvNNGPKernel, NNGPClassifier, NNGPKernel


class _Precomputed(Kernel):
    """A fixed Gram matrix as a scikit-learn kernel on row indices (no hyperparameters)."""

    def __init__(self, gram):
        self.gram = gram

    def __call__(self, X, Y=None, eval_gradient=False):
        i = X[:, 0].astype(int)
        j = i if Y is None else Y[:, 0].astype(int)
        K = self.gram[np.ix_(i, j)]
        return (K, np.empty((len(i), len(i), 0))) if eval_gradient else K

    def diag(self, X):
        return np.diag(self.gram)[X[:, 0].astype(int)]

    def is_stationary(self):
        return False


def _data(n=60, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    score = X[:, 0] * X[:, 1] + X[:, 2]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, y


@pytest.mark.parametrize("classes", [2, 3])
def test_fixed_scale_matches_sklearn_laplace_gpc(classes):
    """Same Gram matrix (NNGP depth 2, scale 2.5): the same Laplace log marginal likelihood
    (to the Newton tolerance) and latent posterior; probabilities to scikit-learn's
    erf-mixture approximation of the logistic-Gaussian integral (~1e-4)."""
    X, y = _data(classes=classes)
    Xt = _data(n=25, seed=1)[0]
    clf = NNGPClassifier(depth=2, bias_variance=0.2, scale=2.5, optimize=False).fit(X, y)
    k = NNGPKernel(depth=2).double()
    k.weight_variance, k.bias_variance = 1.0, 0.2
    allx = torch.from_numpy(np.vstack([X, Xt]))
    with torch.no_grad():
        gram = 2.5 * k(allx).to_dense().numpy()
    idx = np.arange(len(allx), dtype=float)[:, None]
    sk = GaussianProcessClassifier(_Precomputed(gram), optimizer=None).fit(idx[: len(X)], y)
    lml = sk.log_marginal_likelihood_value_
    ours = clf.log_marginal_likelihood_
    if classes == 2:
        assert ours[0] == pytest.approx(lml, rel=1e-8)
        f_sk = sk.base_estimator_.f_cached
        np.testing.assert_allclose(clf._fits[0]["f"], f_sk, rtol=1e-6, atol=1e-8)
    else:  # one-vs-rest: scikit-learn reports the mean over the binary problems
        assert ours.mean() == pytest.approx(lml, rel=1e-8)
    np.testing.assert_allclose(clf.predict_proba(Xt), sk.predict_proba(idx[len(X):]),
                               atol=3e-4)
    np.testing.assert_array_equal(clf.classes_, sk.classes_)


def test_predictive_probability_is_the_logistic_averaged_over_the_latent_posterior():
    """predict_proba = E[sigmoid(f*)], f* ~ N(mean, var) of the Laplace latent posterior:
    against a Monte-Carlo average of 400,000 draws (SE < 1e-3)."""
    X, y = _data()
    clf = NNGPClassifier(depth=1, scale=4.0, optimize=False).fit(X, y)
    Xt = _data(n=5, seed=2)[0]
    (mean, var), = clf._latent(Xt)
    rng = np.random.default_rng(3)
    draws = mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((5, 400_000))
    mc = (1 / (1 + np.exp(-draws))).mean(1)
    np.testing.assert_allclose(clf.predict_proba(Xt)[:, 1], mc, atol=4e-3)
    assert var.min() > 0.05  # the average is not just the logistic of the mean here


def test_fitted_scale_maximizes_the_laplace_marginal_likelihood():
    X, y = _data()
    clf = NNGPClassifier(depth=2).fit(X, y)
    s = clf.scale_[0]
    for factor in (0.8, 1.25):
        other = NNGPClassifier(depth=2, scale=s * factor, optimize=False).fit(X, y)
        assert other.log_marginal_likelihood_[0] < clf.log_marginal_likelihood_[0]
    assert (clf.predict(X) == y).mean() > 0.8


def test_conv_architecture_uses_the_conv_kernel():
    """On 3 x 3 images the conv classifier's Gram matrix is ConvNNGPKernel's."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 9))
    y = (X[:, 4] > 0).astype(int)
    clf = NNGPClassifier(architecture="conv", depth=1, pooling="flatten", scale=1.5,
                         optimize=False).fit(X, y)
    assert clf.image_shape_ == (1, 3, 3)
    k = ConvNNGPKernel((3, 3), depth=1, pooling="flatten").double()
    with torch.no_grad():
        gram = 1.5 * k(torch.from_numpy(X)).to_dense().numpy()
    idx = np.arange(30, dtype=float)[:, None]
    sk = GaussianProcessClassifier(_Precomputed(gram), optimizer=None).fit(idx, y)
    assert clf.log_marginal_likelihood_[0] == pytest.approx(sk.log_marginal_likelihood_value_,
                                                            rel=1e-8)


def test_bad_inputs_raise():
    X, y = _data()
    with pytest.raises(ValueError, match="2 classes"):
        NNGPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="image_shape"):
        NNGPClassifier(architecture="conv", image_shape=(3, 3)).fit(X, y)
    with pytest.raises(ValueError, match="architecture"):
        NNGPClassifier(architecture="rnn").fit(X, y)


@parametrize_with_checks([NNGPClassifier(), NNGPClassifier(architecture="conv", depth=1)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)


def test_latent_posterior_and_decision_function():
    """The averaged logistic is symmetric about 0, so the latent posterior mean has the sign of
    the log-odds; the decision function is the log-odds of predict_proba, and the latent sd is
    positive and no larger than the prior sd (scale * k(x, x))."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    clf = NNGPClassifier().fit(X[:60], y[:60])
    mean, std = clf.predict_latent(X[60:], return_std=True)
    P = clf.predict_proba(X[60:])
    np.testing.assert_allclose(clf.decision_function(X[60:]), np.log(P[:, 1] / P[:, 0]),
                               rtol=1e-12)
    np.testing.assert_array_equal(mean > 0, P[:, 1] > 0.5)
    prior_sd = np.sqrt(clf.scale_[0] * clf._gram(X[60:], X[60:], diag=True))
    assert np.all(std > 0) and np.all(std <= prior_sd * (1 + 1e-9))
