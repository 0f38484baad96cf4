"""Data loaders: the bundled 8x8 digits, and MNIST only from local files (clear error else)."""

import gzip

import numpy as np
import pytest
from sklearn.datasets import load_digits

from neurostat.datasets import load_digit_pairs, load_digits_except, load_mnist


def test_digit_pairs_are_the_bundled_digits():
    d = load_digits()
    X, y = load_digit_pairs(3, 8)
    keep = np.isin(d.target, [3, 8])
    assert X.shape == (keep.sum(), 8, 8) and X.dtype == np.float64
    np.testing.assert_array_equal(X, d.images[keep] / 16.0)
    np.testing.assert_array_equal(y, (d.target[keep] == 8).astype(int))
    assert X.min() == 0.0 and X.max() == 1.0
    Xf, yf = load_digit_pairs(3, 8, flat=True)
    np.testing.assert_array_equal(Xf, X.reshape(len(X), 64))
    # the order of a and b decides the coding
    _, y_rev = load_digit_pairs(8, 3)
    np.testing.assert_array_equal(y_rev, 1 - y)


def test_digits_except():
    X, y = load_digits_except((0, 1))
    assert set(np.unique(y)) == set(range(2, 10))
    assert X.shape == (len(y), 8, 8) and len(y) == 1797 - 178 - 182


@pytest.mark.parametrize("a, b, source", [(1, 1, "digits"), (0, 10, "digits"),
                                          (0, 1, "usps")])
def test_bad_pairs(a, b, source):
    with pytest.raises(ValueError, match="digits|source"):
        load_digit_pairs(a, b, source=source)


def test_mnist_is_not_available_offline(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST is not available offline"):
        load_mnist(data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere.npz")
    with pytest.raises(FileNotFoundError, match="not available offline"):
        load_digit_pairs(0, 1, source="mnist", data_home=tmp_path)


def _fake_mnist(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n)


def test_mnist_from_a_keras_npz(tmp_path):
    rng = np.random.default_rng(0)
    (xa, ya), (xb, yb) = _fake_mnist(rng, 6), _fake_mnist(rng, 4)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=xa, y_train=ya, x_test=xb, y_test=yb)
    X, y = load_mnist(path)
    assert X.shape == (10, 28, 28) and X.dtype == np.float32
    np.testing.assert_allclose(X, np.concatenate([xa, xb]) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb]))
    Xp, yp = load_digit_pairs(0, 1, source="mnist", path=path, flat=True)
    keep = np.isin(y, [0, 1])
    assert Xp.shape == (keep.sum(), 784)
    np.testing.assert_array_equal(yp, (y[keep] == 1).astype(int))
    np.savez(tmp_path / "bad.npz", x_train=xa)
    with pytest.raises(ValueError, match="lacks the arrays"):
        load_mnist(tmp_path / "bad.npz")


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(1)
    (xa, ya), (xb, yb) = _fake_mnist(rng, 3), _fake_mnist(rng, 2)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", xa)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ya)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", xb)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", yb)
    X, y = load_mnist(tmp_path)
    np.testing.assert_allclose(X * 255.0, np.concatenate([xa, xb]), atol=1e-4)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb]))
