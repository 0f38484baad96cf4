"""Augmentation: exact geometry of the affine maps, shapes, labels, reproducibility, off at
prediction."""

import numpy as np
import pytest
import torch

from neurostat import ConvNetClassifier
from neurostat.datasets import load_digit_pairs
from neurostat.engine.augment import DEFAULTS, apply_affine, random_affine, resolve_augment

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _images(n=5, c=2, h=6, w=7, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_identity_settings_return_the_images():
    x = _images()
    out = random_affine(x, shift=0.0, rotation=0.0, scale=0.0)
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_one_pixel_shift_and_quarter_turn_are_exact():
    x = _images(n=1, c=1, h=6, w=6)
    # output pixel p samples input p + t; t = 2/w is one pixel: the image moves one pixel left
    theta = torch.tensor([[[1.0, 0.0, 2.0 / 6], [0.0, 1.0, 0.0]]])
    out = apply_affine(x, theta)
    torch.testing.assert_close(out[..., :-1], x[..., 1:], atol=1e-6, rtol=0)
    assert torch.all(out[..., -1].abs() < 1e-6)  # zeros enter at the border
    quarter = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])
    torch.testing.assert_close(apply_affine(x, quarter), torch.rot90(x, 1, dims=(2, 3)),
                               atol=1e-6, rtol=0)


def test_flips_only_mirror():
    x = _images(n=64, c=1, h=5, w=5)
    out = random_affine(x, shift=0, rotation=0, scale=0, hflip=True, p=1.0)
    same = (out - x).abs().amax((1, 2, 3)) < 1e-6
    mirrored = (out - x.flip(3)).abs().amax((1, 2, 3)) < 1e-6
    assert torch.all(same | mirrored) and 10 < int(mirrored.sum()) < 54


def test_probability_p_leaves_the_other_images_untouched():
    x = _images(n=400, c=1, h=8, w=8)
    torch.manual_seed(0)
    out = random_affine(x, shift=0.2, rotation=20, scale=0.2, p=0.3)
    kept = (out - x).abs().amax((1, 2, 3)) < 1e-6
    # binomial(400, 0.7): mean 280, sd 9.2
    assert 240 < int(kept.sum()) < 320


def test_shapes_dtype_device_and_bad_input():
    x = _images().double()
    out = random_affine(x, **resolve_augment(True))
    assert out.shape == x.shape and out.dtype == torch.float64 and out.device == x.device
    with pytest.raises(ValueError, match=r"\(n, c, h, w\)"):
        random_affine(x[0])


def test_resolve_augment():
    assert resolve_augment(None) is None and resolve_augment(False) is None
    assert resolve_augment(True) == DEFAULTS
    assert resolve_augment({"rotation": 5})["rotation"] == 5
    with pytest.raises(TypeError, match="augment must be"):
        resolve_augment("yes")
    with pytest.raises(ValueError, match="padding"):
        resolve_augment({"padding": "wrap"})
    with pytest.raises(ValueError, match=r"\['p'\]"):
        resolve_augment({"p": 1.5})


def test_reproducible_with_the_global_seed():
    x = _images()
    torch.manual_seed(3)
    a = random_affine(x)
    torch.manual_seed(3)
    b = random_affine(x)
    torch.manual_seed(4)
    c = random_affine(x)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


@pytest.fixture(scope="module")
def digits01():
    return load_digit_pairs(0, 1)


def test_labels_survive_augmentation(digits01):
    X, y = digits01
    clean = torch.as_tensor(X[:, None], dtype=torch.float32)
    torch.manual_seed(0)
    aug = random_affine(clean, **{**resolve_augment(True), "p": 1.0}).numpy()
    # a 1-nearest-neighbour rule (correlation) on the clean images labels the transformed ones
    a = aug.reshape(len(X), -1)
    c = X.reshape(len(X), -1)
    a = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
    c = (c - c.mean(1, keepdims=True)) / c.std(1, keepdims=True)
    corr = a @ c.T / a.shape[1]
    same_class = y[corr.argmax(1)] == y
    assert same_class.mean() > 0.95
    # a transformed image stays close to its source: correlation median > 0.7 (0.80 seen), and
    # above its mean correlation with the other class for > 97% of the images (98.9% seen)
    own = np.diag(corr)
    other = np.array([corr[i, y != y[i]].mean() for i in range(len(y))])
    assert np.median(own) > 0.7 and (own > other).mean() > 0.97


def test_estimator_augments_training_only(digits01):
    X, y = digits01
    kw = dict(conv_layers=((4, 3), "pool"), dense_layers=(8,), max_iter=8, batch_size=32,
              learning_rate_init=1e-2)
    plain = ConvNetClassifier(**kw, random_state=0).fit(X[:100], y[:100])
    assert plain._batch_augmentation() is None  # the fit loop skips augmentation entirely
    a = ConvNetClassifier(**kw, augment=True, random_state=0).fit(X[:100], y[:100])
    b = ConvNetClassifier(**kw, augment=True, random_state=0).fit(X[:100], y[:100])
    c = ConvNetClassifier(**kw, augment=True, random_state=1).fit(X[:100], y[:100])
    pa = a.predict_proba(X)
    # reproducible with random_state, and the augmentation did change the fit
    np.testing.assert_array_equal(pa, b.predict_proba(X))
    assert not np.allclose(pa, c.predict_proba(X))
    assert not np.allclose(pa, plain.predict_proba(X), atol=1e-4)
    # off at prediction: repeated predictions agree, and equal the plain network output
    np.testing.assert_array_equal(pa, a.predict_proba(X))
    a.module_.eval()
    with torch.no_grad():
        eta = a.module_.double()(torch.as_tensor(X.reshape(len(X), -1)))[:, 0].numpy()
    np.testing.assert_allclose(a.decision_function(X), eta, atol=1e-10)
    # a single seeded draw of the training minibatch transform, on flat rows
    xb = torch.as_tensor(X[:16].reshape(16, -1), dtype=torch.float32)
    torch.manual_seed(0)
    out = a._batch_augmentation()(xb)
    assert out.shape == xb.shape and not torch.allclose(out, xb)
