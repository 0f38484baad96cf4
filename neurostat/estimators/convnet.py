"""ConvNetClassifier: a convolutional network as a scikit-learn classifier on the shared engine.

A conv net builds the structure of images into the model: small filters shared across positions
(translation equivariance) and pooling (local invariance) instead of one weight per pixel. The
family (bernoulli / categorical), the penalties, the solvers, early stopping, augmentation and
transfer learning are those of every neurostat network (:mod:`neurostat.estimators`).
"""

import math
from numbers import Integral

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import HasMethods, Interval, StrOptions
from ..engine.augment import random_affine, resolve_augment
from ..engine.networks import INIT_SCHEMES, ConvNet, conv_plan
from ..engine.penalties import ElasticNetPenalty
from ._base import _BaseNeural
from .neural import NeuralClassifier

DEFAULT_CONV_LAYERS = ((32, 3), (32, 3), "pool", (64, 3), (64, 3), "pool")


class ConvNetClassifier(NeuralClassifier):
    """A convolutional network classifier that is also a statistical model.

    Same likelihood (bernoulli for two classes, categorical otherwise), penalties, solvers and
    fit loop as :class:`~neurostat.NeuralClassifier`; the network is a stack of convolutions and
    pools followed by dense layers.

    Parameters
    ----------
    conv_layers : sequence of (filters, kernel_size) or "pool", \
            default=((32, 3), (32, 3), "pool", (64, 3), (64, 3), "pool")
        Convolutions ("same" padding, stride 1, followed by ``activation``) and 2x2 max pools, in
        order. ``()`` gives a dense network on the pixels.
    dense_layers : tuple of int, default=(128,)
        Fully connected hidden layers after the convolutions.
    activation : str, default="relu"
        As in :class:`~neurostat.NeuralClassifier`.
    image_shape : tuple (c, h, w) or None, default=None
        Shape of one image when X is given as flat rows of ``c * h * w`` values (pipelines,
        cross-validation, DataFrames). When None and X has rows, the layout is inferred: a
        perfect square number of features ``s * s`` is a ``(1, s, s)`` image (8x8 digits, 28x28
        MNIST), any other count a ``(1, 1, n_features)`` strip on which the convolutions act as
        1-d convolutions. Ignored when X is given as images ``(n, h, w)`` or ``(n, c, h, w)``,
        except that it must then agree with them.
    augment : None, bool or dict, default=None
        Data augmentation of every training minibatch, on the device: random shifts, rotations,
        scalings and (optionally) flips (:func:`neurostat.augment.random_affine`). True uses
        ``neurostat.augment.DEFAULTS`` (shift 0.1 of the image size, rotation 10 degrees,
        scale 0.1, no flips, zero padding, each image transformed with probability 0.5); a dict
        overrides some of them. Never applied at
        prediction. Reproducible: drawn from torch's generator seeded by ``random_state``.
    dropout : float in [0, 1), default=0.0
        Dropout on the dense hidden layers. ``input_dropout`` acts on the pixels.
    init : str or fitted neurostat estimator, default="glorot_uniform"
        A scheme name, or a fitted :class:`ConvNetClassifier` with the same ``image_shape``,
        ``conv_layers`` and ``dense_layers`` (possibly other classes): its layers are copied,
        the output layer is initialized anew (transfer learning as initialization).
    freeze : int, default=0
        Keep the first ``freeze`` layers (convolutions, then dense layers) fixed during fitting.
    solver, alpha, l1_ratio, batch_size, learning_rate, learning_rate_init, power_t, max_iter, \
shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping, \
validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, device, input_dropout :
        As in :class:`~neurostat.NeuralClassifier`. The penalty acts on every weight (conv
        kernels included), never on biases.
    formula : None, default=None
        Refused with a ValueError: the inputs of a conv net are pixels, not the columns of a
        data frame (the parameter exists because every neurostat estimator has it).

    Attributes
    ----------
    image_shape_ : tuple (c, h, w)
        The layout used; ``n_features_in_ = c * h * w``.
    classes_, loss_curve_, n_iter_, converged_, validation_scores_, module_, family_,
    n_outputs_, n_layers_ :
        As in :class:`~neurostat.NeuralClassifier`.
    coefs_, intercepts_ : list of ndarray
        Per layer: conv kernels of shape (c_out, c_in, k, k), dense weights (n_in, n_out).

    See Also
    --------
    neurostat.NeuralClassifier : the dense network.
    neurostat.leekasso : the t-statistic-selection baseline of the vignette.

    Notes
    -----
    The objective is that of every neurostat net,
    ``mean_i w_i nll_i + alpha (l1_ratio ||W||_1 + 0.5 (1 - l1_ratio) ||W||_2^2)``.

    Examples
    --------
    >>> from neurostat import ConvNetClassifier
    >>> from neurostat.datasets import load_digit_pairs
    >>> X, y = load_digit_pairs(3, 8)                   # images of shape (n, 8, 8)
    >>> cnn = ConvNetClassifier(conv_layers=((8, 3), "pool"), dense_layers=(16,),
    ...                         max_iter=30, learning_rate_init=1e-2, random_state=0)
    >>> bool(cnn.fit(X[:200], y[:200]).score(X[200:], y[200:]) > 0.9)
    True
    """

    _parameter_constraints = {
        **{k: v for k, v in _BaseNeural._parameter_constraints.items()
           if k != "hidden_layer_sizes"},
        "conv_layers": ["array-like"],
        "dense_layers": ["array-like", Interval(Integral, 1, None, closed="left")],
        "image_shape": [None, "array-like"],
        "augment": [None, "boolean", dict],
        "init": [StrOptions(set(INIT_SCHEMES)), HasMethods(["fit", "predict"])],
    }

    def __init__(self, conv_layers=DEFAULT_CONV_LAYERS, dense_layers=(128,), activation="relu",
                 *, image_shape=None, augment=None, solver="adam", alpha=0.0, l1_ratio=0.0,
                 dropout=0.0, input_dropout=0.0, init="glorot_uniform", batch_size="auto",
                 learning_rate="constant", learning_rate_init=1e-3, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, freeze=0, device="auto", formula=None):
        self.conv_layers = conv_layers
        self.dense_layers = dense_layers
        self.activation = activation
        self.image_shape = image_shape
        self.augment = augment
        self.solver = solver
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.init = init
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.freeze = freeze
        self.device = device
        self.formula = formula

    # ------------------------------------------------------------------ structure
    _architecture = "conv"

    def _hidden_sizes(self):
        sizes = self.dense_layers
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(s, Integral) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(
                f"dense_layers must be a tuple of positive integers (() for none); got "
                f"{self.dense_layers!r}."
            )
        return sizes

    def _describe(self):
        from ..inference.summary import penalty_text

        steps = ["pool" if st[0] == "pool" else f"conv {st[1]}x{st[2]}x{st[2]}"
                 for st in conv_plan(self.conv_layers)]
        return [
            ("Image shape:", "x".join(str(v) for v in self.image_shape_)),
            ("Convolutions:", ", ".join(steps) if steps else "none"),
            ("Dense layers:", str(self._hidden_sizes()) if self._hidden_sizes() else "none"),
            ("Activation:", self.activation),
            ("Penalty:", penalty_text(ElasticNetPenalty(self.alpha, self.l1_ratio))),
            ("Dropout:", f"{self.dropout:g} / input {self.input_dropout:g}"),
            ("Solver:", str(self.solver)),
        ]

    def _check_options(self):
        super()._check_options()
        conv_plan(self.conv_layers)
        resolve_augment(self.augment)

    def _build_module(self, n_features, n_outputs):
        return ConvNet(self.image_shape_, self.conv_layers, self._hidden_sizes(), n_outputs,
                       self.activation, self.dropout, self.input_dropout)

    # ------------------------------------------------------------------ inputs
    def _param_image_shape(self):
        if self.image_shape is None:
            return None
        shape = tuple(self.image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or any(not isinstance(v, Integral) or v < 1 for v in shape):
            raise ValueError(
                f"image_shape must be (channels, height, width) (or (height, width)) of positive "
                f"integers; got {self.image_shape!r}."
            )
        return tuple(int(v) for v in shape)

    def _rows(self, X, reset):
        """Flatten images (n, h, w) / (n, c, h, w) to rows; return (X, image shape or None)."""
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        ndim = getattr(X, "ndim", 2)
        if ndim not in (3, 4):
            return X, None
        X = np.asarray(X)
        shape = (1, *X.shape[1:]) if ndim == 3 else tuple(X.shape[1:])
        given = self._param_image_shape()
        if given is not None and given != shape:
            raise ValueError(
                f"X holds images of shape {shape} (channels, height, width) but "
                f"image_shape={self.image_shape!r}."
            )
        if not reset and getattr(self, "image_shape_", shape) != shape:
            raise ValueError(
                f"X holds images of shape {shape} (channels, height, width) but "
                f"{type(self).__name__} was fitted on images of shape {self.image_shape_}."
            )
        return X.reshape(X.shape[0], -1), shape

    def _layout(self, n_features, from_images):
        if from_images is not None:
            return from_images
        given = self._param_image_shape()
        if given is not None:
            if int(np.prod(given)) != n_features:
                raise ValueError(
                    f"image_shape={self.image_shape!r} holds {int(np.prod(given))} values but X "
                    f"has {n_features} features per row."
                )
            return given
        side = math.isqrt(n_features)
        return (1, side, side) if side * side == n_features else (1, 1, n_features)

    def _design_fit(self, X, y, reset):
        if self.formula is not None:
            raise ValueError(
                f"ConvNetClassifier does not take a formula (formula={self.formula!r}): its "
                "inputs are images. Use NeuralClassifier(formula=...) for tabular data.")
        self._design = None
        return X, y

    def _validate_xy(self, X, y, reset):
        X, shape = self._rows(X, reset)
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        check_classification_targets(y)
        if reset:
            self.image_shape_ = self._layout(X.shape[1], shape)
        return X, y

    def _validate_X_predict(self, X):
        X, _ = self._rows(X, reset=False)
        return validate_data(self, X, reset=False, dtype=np.float64)

    # ------------------------------------------------------------------ augmentation
    def _batch_augmentation(self):
        """Randomly transformed copies of each training minibatch of flat rows (same labels),
        or None without ``augment``."""
        settings = resolve_augment(self.augment)
        if settings is None:
            return None
        shape = self.image_shape_

        def augment(xb):
            out = random_affine(xb.reshape(xb.shape[0], *shape), **settings)
            return out.reshape(xb.shape[0], -1)

        return augment

    # ------------------------------------------------------------------ fitted parameters
    @property
    def coefs_(self):
        """Weights per layer: conv kernels (c_out, c_in, k, k), dense weights (n_in, n_out)."""
        check_is_fitted(self, "module_")
        out = []
        for layer in self.module_.layers:
            w = layer.weight.detach().cpu().double().numpy()
            out.append(w.T.copy() if w.ndim == 2 else w.copy())
        return out

    @property
    def coef_(self):
        """Not available: a conv net is not a GLM, its weights are not coefficients.

        Raises
        ------
        AttributeError
            Always (so ``hasattr(est, "coef_")`` is False); the weights are in ``coefs_``.
        """
        raise AttributeError("a ConvNetClassifier has no coef_ (it is not a GLM); use coefs_.")

    @property
    def intercept_(self):
        """Not available: a conv net is not a GLM.

        Raises
        ------
        AttributeError
            Always (so ``hasattr(est, "intercept_")`` is False); the biases are in
            ``intercepts_``.
        """
        raise AttributeError(
            "a ConvNetClassifier has no intercept_ (it is not a GLM); use intercepts_."
        )
