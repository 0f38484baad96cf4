"""ConvNetClassifier: scikit-learn's checks, input layouts, structure, errors."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurostat import ConvNetClassifier
from neurostat.datasets import load_digit_pairs
from neurostat.engine.networks import ConvNet

# short fits on purpose: the tests check behaviour, not convergence
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Flat rows without image_shape: a perfect square count s*s is a (1, s, s) image, any other a
# (1, 1, n_features) strip, so sklearn's 2-d checks (2..20 features) all run through the convs.
_CHECKED = ConvNetClassifier(conv_layers=((4, 3), "pool"), dense_layers=(8,), max_iter=100,
                             learning_rate_init=1e-2, random_state=0)
_EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data":
        "minibatch SGD: repeated rows land in other batches than weighted rows (as for "
        "NeuralClassifier with a stochastic solver, tests/test_estimator_checks.py)",
}


@parametrize_with_checks([_CHECKED], expected_failed_checks=lambda est: _EXPECTED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _small(**kw):
    params = dict(conv_layers=((4, 3), "pool"), dense_layers=(8,), max_iter=15,
                  learning_rate_init=1e-2, random_state=0, batch_size=32)
    params.update(kw)
    return ConvNetClassifier(**params)


@pytest.fixture(scope="module")
def digits38():
    X, y = load_digit_pairs(3, 8)
    return X, y


def test_image_and_row_layouts_give_identical_fits(digits38):
    X, y = digits38
    X, y = X[:60], y[:60]
    forms = {
        "images": (X, {}),
        "channels": (X[:, None], {}),
        "rows+image_shape": (X.reshape(60, -1), {"image_shape": (1, 8, 8)}),
        "rows inferred": (X.reshape(60, -1), {}),
    }
    probs = {}
    for name, (Xf, kw) in forms.items():
        est = _small(**kw).fit(Xf, y)
        assert est.image_shape_ == (1, 8, 8)
        assert est.n_features_in_ == 64
        probs[name] = est.predict_proba(Xf)
        # a model fitted on images predicts on flat rows and vice versa
        np.testing.assert_allclose(est.predict_proba(X.reshape(60, -1)), probs[name], atol=1e-12)
    for name in probs:
        np.testing.assert_allclose(probs[name], probs["images"], atol=1e-12, err_msg=name)


def test_layout_inference_for_rows():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(10), np.ones(10)]
    assert _small(max_iter=1).fit(rng.normal(size=(20, 5)), y).image_shape_ == (1, 1, 5)
    assert _small(max_iter=1).fit(rng.normal(size=(20, 9)), y).image_shape_ == (1, 3, 3)
    est = _small(max_iter=1, image_shape=(2, 3, 2)).fit(rng.normal(size=(20, 12)), y)
    assert est.image_shape_ == (2, 3, 2)
    assert est.module_.convs[0].in_channels == 2


def test_pipeline_and_cross_validation_on_flat_rows(digits38):
    X, y = digits38
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0 - 1.0),
                         _small(image_shape=(1, 8, 8), max_iter=30))
    scores = cross_val_score(pipe, X.reshape(len(X), -1)[:150], y[:150], cv=3)
    assert scores.min() > 0.85


def test_learns_digits_and_is_reproducible(digits38):
    X, y = digits38
    a = _small(max_iter=40).fit(X[:120], y[:120])
    assert a.score(X[120:], y[120:]) > 0.9
    b = _small(max_iter=40).fit(X[:120], y[:120])
    np.testing.assert_array_equal(a.predict_proba(X[120:]), b.predict_proba(X[120:]))
    c = _small(max_iter=40, random_state=1).fit(X[:120], y[:120])
    assert not np.allclose(a.predict_proba(X[120:]), c.predict_proba(X[120:]))


def test_structure_and_fitted_attributes(digits38):
    X, y = digits38
    est = ConvNetClassifier(conv_layers=((3, 3), (5, 3), "pool", (6, 1), "pool"),
                            dense_layers=(7, 4), max_iter=2, random_state=0).fit(X[:40], y[:40])
    shapes = [w.shape for w in est.coefs_]
    # 8x8 -> pool -> 4x4 -> pool -> 2x2, 6 channels: 24 inputs to the first dense layer
    assert shapes == [(3, 1, 3, 3), (5, 3, 3, 3), (6, 5, 1, 1), (24, 7), (7, 4), (4, 1)]
    assert [b.shape for b in est.intercepts_] == [(3,), (5,), (6,), (7,), (4,), (1,)]
    assert est.n_layers_ == 7  # input, 5 body layers, output
    assert len(est.module_.body_layers()) == 5
    with pytest.raises(AttributeError, match="not a GLM"):
        _ = est.coef_
    # the penalty sees every weight (conv kernels too), never a bias
    pen = est.module_.penalized_parameters()
    assert len(pen) == 6 and all(p.ndim >= 2 for p in pen)


def test_odd_image_sizes_pool_with_ceiling():
    net = ConvNet((1, 7, 5), ((2, 3), "pool", "pool", "pool"), (), 1)
    assert net(torch.zeros(3, 35)).shape == (3, 1)
    # 7x5 -> 4x3 -> 2x2 -> 1x1
    assert len(net.dense) == 0 and net.output.in_features == 2


def test_penalty_and_dropout_reach_the_conv_net(digits38):
    X, y = digits38
    free = _small(max_iter=20).fit(X[:80], y[:80])
    ridge = _small(max_iter=20, alpha=1.0).fit(X[:80], y[:80])
    norm = lambda e: sum(float((w ** 2).sum()) for w in e.coefs_)  # noqa: E731
    assert norm(ridge) < 0.5 * norm(free)
    # the L1 proximal step gives exact zeros in the conv kernels as in the dense layers
    lasso = _small(max_iter=20, alpha=1.0, l1_ratio=1.0).fit(X[:80], y[:80])
    assert (lasso.coefs_[0] == 0).mean() > 0.2 and (lasso.coefs_[1] == 0).mean() > 0.5
    assert (free.coefs_[0] == 0).mean() == 0
    drop = _small(max_iter=20, dropout=0.5).fit(X[:80], y[:80])
    # dropout is off at prediction: deterministic outputs
    np.testing.assert_array_equal(drop.predict_proba(X), drop.predict_proba(X))


def test_multiclass_and_lbfgs():
    from sklearn.datasets import load_digits
    d = load_digits()
    est = _small(conv_layers=((8, 3), "pool"), dense_layers=(32,), max_iter=40).fit(
        d.images[:300] / 16, d.target[:300])
    assert est.predict_proba(d.images[300:400] / 16).shape == (100, 10)
    assert est.score(d.images[300:600] / 16, d.target[300:600]) > 0.8
    lb = _small(solver="lbfgs", max_iter=60).fit(d.images[:200] / 16, d.target[:200] == 3)
    assert lb.score(d.images[:200] / 16, d.target[:200] == 3) > 0.98


@pytest.mark.parametrize("kw, X_shape, match", [
    ({"image_shape": (1, 7, 7)}, (20, 64), "holds 49 values"),
    ({"image_shape": (1, 4, 4)}, (20, 8, 8), "image_shape="),
    ({"image_shape": (8, 8, 8, 8)}, (20, 64), "channels, height, width"),
    ({"conv_layers": ((4, 3), "max")}, (20, 64), "unknown layer 'max'"),
    ({"conv_layers": ((4, 3, 3),)}, (20, 64), "filters, kernel_size"),
    ({"dense_layers": (4, 0)}, (20, 64), "dense_layers"),
    ({"augment": {"shear": 0.1}}, (20, 64), "unknown keys"),
    ({"augment": {"rotation": 200}}, (20, 64), "rotation"),
])
def test_bad_structure_and_shapes_raise(kw, X_shape, match):
    X = np.random.default_rng(0).normal(size=X_shape)
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        _small(max_iter=1, **kw).fit(X, y)


def test_predict_on_other_image_shape_raises(digits38):
    X, y = digits38
    est = _small(max_iter=1).fit(X[:40], y[:40])
    with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\)"):
        est.predict(np.zeros((3, 7, 7)))
    with pytest.raises(ValueError, match="features"):
        est.predict(np.zeros((3, 49)))


def test_clone_keeps_structure_params():
    est = _small(augment={"shift": 0.2})
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.augment is not est.augment
