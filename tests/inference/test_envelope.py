"""The calibration study's envelope: which measured cell a fit is looked up in, what the
summary says there, and that the shipped envelope is the study's own numbers."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurostat import NeuralRegressor
from neurostat.inference.envelope import (
    ENVELOPE_FILE,
    assess,
    cell_failures,
    differences,
    envelope_from_study,
    load_envelope,
)

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "calibration.json"


def _cell(name, **kw):
    cell = {"name": name, "family": "gaussian", "hidden": [16], "activation": "tanh",
            "solver": "lbfgs", "alpha": 0.01, "dropout": 0.0, "n": 800,
            "cov_type": "nonrobust", "effects": "crossfit", "replications": 100,
            "se_ratio": [1.0, 0.97, 1.02, 0.99, 1.05], "coverage": [0.95, 0.94, 0.96, 0.95, 0.93],
            "size_test": 0.05, "size_z": 0.04}
    cell.update(kw)
    return cell


ENV = {"cells": [
    _cell("base"),
    _cell("delta", effects="delta", se_ratio=[5.2, 5.9, 6.1, 5.0, 4.8],
          coverage=[1.0, 1.0, 1.0, 1.0, 1.0], size_test=0.31),
    _cell("bernoulli", family="bernoulli"),
]}


def _regime(**kw):
    r = {"architecture": "mlp", "family": "gaussian", "hidden": [16], "activation": "tanh",
         "solver": "lbfgs", "alpha": 0.01, "dropout": 0.0, "n": 800.0,
         "cov_type": "nonrobust", "effects": "crossfit"}
    r.update(kw)
    return r


def test_departures_are_counted_per_factor():
    assert differences(_regime(), ENV["cells"][0]) == []
    # width within a factor 2 and more rows are the same regime; fewer than half are not
    assert differences(_regime(hidden=[24], n=3000.0), ENV["cells"][0]) == []
    assert differences(_regime(hidden=[64], n=300.0, solver="adam"), ENV["cells"][0]) == [
        "solver", "width", "n"]
    assert differences(_regime(hidden=[16, 16], alpha=0.0), ENV["cells"][0]) == [
        "penalty", "depth"]


def test_inside_near_and_outside_the_envelope():
    a = assess(_regime(), ENV)
    assert a.inside and a.cell["name"] == "base" and a.note().startswith("Calibration study: in")
    assert "coverage of 95% intervals 0.93-0.96" in a.note()
    near = assess(_regime(hidden=[64]), ENV)
    assert near.inside and "differs in width" in near.note()
    # the delta method was measured outside the bands: a warning quoting what was measured
    d = assess(_regime(effects="delta"), ENV)
    assert d.cell["name"] == "delta" and not d.inside and d.failures
    assert d.note().startswith("Warning: the calibration study measured") and "SE/SD 4.80-6.10" \
        in d.note() and "size of the 5% per-input test 0.31" in d.note()
    # a family the study never measured is outside the envelope, whatever else matches
    g = assess(_regime(family="gamma"), ENV)
    assert not g.inside and g.note().startswith("Warning: outside") and "family" in g.note()
    far = assess(_regime(hidden=[256, 256], n=100.0, alpha=0.0), ENV)
    assert not far.inside and "depth" in far.note() and "n" in far.departures


def test_failures_allow_for_the_monte_carlo_error():
    # 20 replications: a coverage of 0.88 is within 2 MC SEs (0.097) of 0.92; 0.70 is not
    assert cell_failures(_cell("x", replications=20, coverage=[0.88] * 5)) == []
    assert cell_failures(_cell("x", replications=20, coverage=[0.70] * 5)) == ["coverage"]
    assert cell_failures(_cell("x", replications=200, coverage=[0.88] * 5)) == ["coverage"]
    assert "SE/SD" in cell_failures(_cell("x", se_ratio=[3.0] * 5))
    assert "size" in cell_failures(_cell("x", size_test=0.25))


@pytest.mark.skipif(not STUDY.exists(), reason="no calibration study has been run")
def test_the_shipped_envelope_is_the_study_itself():
    """calibration_envelope.json is envelope_from_study of the committed study output."""
    shipped = json.loads(ENVELOPE_FILE.read_text())
    fresh = envelope_from_study(json.loads(STUDY.read_text()))
    by_name = {c["name"]: c for c in fresh["cells"]}
    assert {c["name"] for c in shipped["cells"]} == set(by_name)
    for cell in shipped["cells"]:
        assert cell == by_name[cell["name"]]


def test_a_summary_quotes_the_nearest_measured_cell():
    """A net's summary ends with the envelope's line for its regime; a GLM's has none."""
    if load_envelope() is None:
        pytest.fail("neurostat/inference/calibration_envelope.json is not shipped")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 5))
    y = 0.8 * X[:, 0] + np.tanh(2 * X[:, 1]) + rng.normal(size=800)
    est = NeuralRegressor((16,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=300,
                          random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(effects="delta")
    expected = assess({**est._regime(), "family": "gaussian", "n": 800.0,
                       "cov_type": "nonrobust", "effects": "delta"})
    assert res.calibration == expected
    assert res.summary().notes[-1] == expected.note()
    glm = NeuralRegressor((), solver="lbfgs").fit(X, y).inference()
    assert glm.calibration is None
    assert not any("Calibration" in n or "calibration" in n for n in glm.summary().notes)
