"""Data sets for the vignettes: only data that ship with a dependency or that the user has.

* :func:`load_digit_pairs` - two classes of scikit-learn's bundled 8x8 handwritten digits (no
  network, the default) or of MNIST when the user has it.
* :func:`load_mnist` - MNIST (70,000 images of 28x28) from a local file, from scikit-learn's
  ``fetch_openml`` cache, or downloaded when asked to; a clear error otherwise.
"""

import gzip
from pathlib import Path

import numpy as np

MNIST_OPENML_ID = 554  # "mnist_784" on openml.org
_MNIST_NOT_AVAILABLE = (
    "MNIST is not available offline: no local copy was found ({where}). Pass path= to a "
    "keras-style mnist.npz (x_train, y_train, x_test, y_test) or to a folder with the four IDX "
    "files (train-images-idx3-ubyte[.gz], ...), or call load_mnist(download=True) on a machine "
    "with network access (it stores the data in scikit-learn's cache). The 8x8 digits that ship "
    "with scikit-learn need no download: load_digit_pairs(a, b, source='digits')."
)


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte, the type MNIST uses
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic number {magic:#x}).")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says shape {shape} but holds {arr.size} values.")
    return arr.reshape(shape)


def _find_idx(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx")
                 + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(
        _MNIST_NOT_AVAILABLE.format(where=f"{stem}[.gz] is missing from {folder}")
    )


def _load_local(path):
    path = Path(path)
    if path.is_dir():
        parts = {}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            parts[split] = (_read_idx(_find_idx(path, f"{prefix}-images-idx3-ubyte")),
                            _read_idx(_find_idx(path, f"{prefix}-labels-idx1-ubyte")))
        X = np.concatenate([parts["train"][0], parts["test"][0]])
        y = np.concatenate([parts["train"][1], parts["test"][1]])
        return X, y
    if path.is_file():
        with np.load(path) as d:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(d.files)
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {sorted(missing)}; expected a keras-style "
                    "mnist.npz with x_train, y_train, x_test, y_test."
                )
            X = np.concatenate([d["x_train"], d["x_test"]])
            y = np.concatenate([d["y_train"], d["y_test"]])
        return X, y
    raise FileNotFoundError(_MNIST_NOT_AVAILABLE.format(where=f"{path} does not exist"))


def load_mnist(path=None, *, data_home=None, download=False):
    """MNIST handwritten digits, 28x28 grey levels scaled to [0, 1].

    Looked up in this order: ``path`` (a keras-style ``mnist.npz`` or a folder with the four IDX
    files), then scikit-learn's ``fetch_openml`` cache in ``data_home``; with ``download=True``
    it is fetched from openml.org when neither has it. Nothing is downloaded unless asked.

    Parameters
    ----------
    path : str or path-like, default=None
        A local copy of MNIST.
    data_home : str or path-like, default=None
        scikit-learn's data folder (``sklearn.datasets.get_data_home()`` when None).
    download : bool, default=False
        Fetch from openml.org (``fetch_openml(data_id=554)``) when no local copy exists.

    Returns
    -------
    X : ndarray of shape (70000, 28, 28), float32 in [0, 1]
        The 60,000 training images first, then the 10,000 test images.
    y : ndarray of shape (70000,), int64

    Raises
    ------
    FileNotFoundError
        When MNIST is not available locally and ``download=False``.
    """
    if path is not None:
        X, y = _load_local(path)
    else:
        from sklearn.datasets import get_data_home
        home = Path(get_data_home(data_home))
        desc = home / "openml" / "openml.org" / "api" / "v1" / "json" / "data" / (
            f"{MNIST_OPENML_ID}.gz")
        if not desc.exists() and not download:
            raise FileNotFoundError(_MNIST_NOT_AVAILABLE.format(
                where=f"no path= given and no openml cache under {home}"))
        from sklearn.datasets import fetch_openml
        try:
            X, y = fetch_openml(data_id=MNIST_OPENML_ID, data_home=str(home), return_X_y=True,
                                as_frame=False, parser="liac-arff")
        except OSError as err:  # URLError is an OSError
            raise FileNotFoundError(_MNIST_NOT_AVAILABLE.format(
                where=f"the openml cache under {home} is incomplete and the download failed: "
                f"{err}")) from err
    X = np.asarray(X, dtype=np.float32).reshape(-1, 28, 28) / 255.0
    return X, np.asarray(y).astype(np.int64)


def load_digit_pairs(a=0, b=1, *, source="digits", flat=False, path=None, data_home=None,
                     download=False):
    """Images of two digit classes, for two-class problems such as Leek's 0-vs-1.

    Parameters
    ----------
    a, b : int in 0..9, default=(0, 1)
        The two digits; ``a`` is coded 0 and ``b`` is coded 1 in the returned ``y``.
    source : {"digits", "mnist"}, default="digits"
        "digits": scikit-learn's bundled 8x8 digits (1,797 images, no download; grey levels
        0..16 scaled to [0, 1]). "mnist": :func:`load_mnist` (28x28), which needs a local copy
        (``path``, ``data_home``) or ``download=True``.
    flat : bool, default=False
        Return rows of ``h * w`` pixels instead of images ``(n, h, w)``.
    path, data_home, download :
        Passed to :func:`load_mnist` when ``source="mnist"``.

    Returns
    -------
    X : ndarray of shape (n, h, w) or (n, h * w), float in [0, 1]
    y : ndarray of shape (n,), int64, 0 for digit ``a`` and 1 for digit ``b``

    Examples
    --------
    >>> from neurostat.datasets import load_digit_pairs
    >>> X, y = load_digit_pairs(0, 1)
    >>> X.shape, int(y.sum())
    ((360, 8, 8), 182)
    """
    a, b = int(a), int(b)
    if a == b or not (0 <= a <= 9 and 0 <= b <= 9):
        raise ValueError(f"a and b must be two different digits in 0..9; got a={a}, b={b}.")
    images, labels = _load_source(source, path, data_home, download)
    keep = (labels == a) | (labels == b)
    X = np.asarray(images[keep], dtype=np.float64)
    y = (labels[keep] == b).astype(np.int64)
    if flat:
        X = X.reshape(X.shape[0], -1)
    return X, y


def _load_source(source, path, data_home, download):
    """All images (scaled to [0, 1]) and labels of the named source."""
    if source == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return d.images / 16.0, d.target
    if source == "mnist":
        return load_mnist(path, data_home=data_home, download=download)
    raise ValueError(f"source must be 'digits' or 'mnist'; got {source!r}.")


def load_digits_except(exclude, *, source="digits", path=None, data_home=None, download=False):
    """Images of every digit but those in ``exclude``, labels kept (0..9).

    The source task for transfer learning: a net trained on the other eight digits.

    Returns
    -------
    X : ndarray of shape (n, h, w), float in [0, 1]
    y : ndarray of shape (n,), int64
    """
    images, labels = _load_source(source, path, data_home, download)
    keep = ~np.isin(labels, list(exclude))
    return np.asarray(images[keep], dtype=np.float64), labels[keep].astype(np.int64)
