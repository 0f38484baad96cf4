"""EffectDisplay and LossCurveDisplay: scikit-learn's Display contract; bands from the delta
method (a GLM's link-scale partial dependence is its linear predictor line)."""

import numpy as np
import pytest

from neurostat import EffectDisplay, LossCurveDisplay, NeuralClassifier, NeuralRegressor


@pytest.fixture(scope="module")
def glm():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    y = (X @ [1.0, -1.0] + rng.logistic(size=150) > 0).astype(int)
    return NeuralClassifier((), solver="lbfgs").fit(X, y), X


def test_effect_display_glm_link_is_linear(glm):
    import matplotlib.pyplot as plt

    est, X = glm
    disp = EffectDisplay.from_estimator(est, scale="link", grid_resolution=7)
    res = est.inference()
    b = res.params.values
    for j in range(2):
        grid = disp.grids[j]
        expected = b[0] + b[1 + j] * grid + b[1 + (1 - j)] * X[:, 1 - j].mean()
        np.testing.assert_allclose(disp.values[j][:, 0], expected, rtol=1e-8)
        # pointwise se of the mean linear predictor at grid value v: z' C z, z = (1, v, xbar)
        z = np.zeros((len(grid), 3))
        z[:, 0], z[:, 1 + j], z[:, 2 - j] = 1, grid, X[:, 1 - j].mean()
        se = np.sqrt(np.einsum("gi,ij,gj->g", z, res.cov_params().values, z))
        np.testing.assert_allclose(disp.upper[j][:, 0] - disp.values[j][:, 0], 1.959964 * se,
                                   rtol=1e-5)
    out = disp.plot()
    assert out is disp and disp.figure_ is disp.ax_.figure and len(disp.axes_) == 2
    plt.close("all")


def test_effect_display_from_estimator_stores_only(glm):
    import matplotlib.pyplot as plt

    est, _ = glm
    disp = EffectDisplay.from_estimator(est, features=["x1"])
    assert not hasattr(disp, "ax_") and disp.feature_names == ["x1"]
    fig, ax = plt.subplots()
    disp.plot(ax=ax)
    assert disp.ax_ is ax
    with pytest.raises(ValueError, match="scale"):
        EffectDisplay.from_estimator(est, scale="odds")
    plt.close("all")


def test_loss_curve_display():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    est = NeuralRegressor((4,), max_iter=15, early_stopping=True, n_iter_no_change=50,
                          random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    disp = LossCurveDisplay.from_estimator(est)
    assert len(disp.loss_curve) == est.n_iter_ and disp.validation_scores is not None
    disp.plot()
    np.testing.assert_allclose(disp.line_.get_ydata(), est.loss_curve_)
    assert disp.validation_line_ is not None and disp.figure_ is disp.ax_.figure
    plt.close("all")
