"""Bad input to the menu's families and inputs: a ValueError that names the problem (and the
fix), raised by fit before any training."""

import numpy as np
import pandas as pd
import pytest

from neurostat import MultiResponseRegressor, NeuralRegressor

RNG = np.random.default_rng(61)
X = RNG.normal(size=(20, 2))
COUNTS = RNG.poisson(2.0, 20).astype(float)
PROPS = RNG.uniform(size=20)


@pytest.mark.parametrize("family, y, w, match", [
    ("negative_binomial", np.r_[COUNTS[:-1], -1.0], None, "counts y >= 0"),
    ("poisson", np.r_[COUNTS[:-1], -1.0], None, "counts y >= 0"),
    ("binomial", np.r_[PROPS[:-1], 1.2], None, r"proportions y in \[0, 1\]"),
    ("binomial", PROPS, np.r_[np.ones(19), 0.0], "zero trials"),
    ("gamma", np.r_[PROPS[:-1], 0.0], None, "positive response y > 0"),
    ("gamma", np.r_[PROPS[:-1], -3.0], None, "positive response y > 0"),
    ("tweedie", np.r_[PROPS[:-1], -0.5], None, "y >= 0"),
    ("gaulss", np.column_stack([PROPS, PROPS]), None, "models one response"),
    ("binomial", np.column_stack([PROPS, PROPS]), None, "one proportion per row"),
])
def test_fit_refuses_data_outside_the_family(family, y, w, match):
    with pytest.raises(ValueError, match=match):
        NeuralRegressor((), family=family, solver="lbfgs").fit(X, y, sample_weight=w)


def test_the_formula_and_offset_errors_name_the_problem():
    df = pd.DataFrame({"a": X[:, 0], "y": COUNTS})
    with pytest.raises(ValueError, match="names something X does not have.*`b`"):
        NeuralRegressor((), family="poisson", solver="lbfgs", formula="y ~ a + b").fit(df)
    with pytest.raises(ValueError, match="one value per row of X"):
        NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, COUNTS, offset=np.ones(3))


def test_a_joint_model_names_the_response_at_fault():
    Y = pd.DataFrame({"g": PROPS, "c": np.r_[COUNTS[:-1], -2.0]})
    with pytest.raises(ValueError, match="response 'c'.*counts y >= 0"):
        MultiResponseRegressor({"g": "gaussian", "c": "poisson"}, hidden_layer_sizes=(),
                               solver="lbfgs").fit(X, Y)
