"""NNGP and NTK kernels against neural-tangents' analytic kernels (frozen reference).

tests/results/neural_tangents_reference.json holds neural-tangents 0.6.5's ``stax`` kernels
(made by tests/results/make_neural_tangents_reference.py): relu and erf are closed forms on
both sides (1e-12); gelu is a closed form there and polar Gauss quadrature here (1e-6).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurostat.gp import NNGPKernel, NTKKernel

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "neural_tangents_reference.json").read_text()
)
TOL = {"relu": 1e-12, "erf": 1e-12, "gelu": 1e-6}


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize(
    "case",
    REF["cases"],
    ids=lambda c: f"{c['act']}-d{c['depth']}-w{c['weight_variance']}-b{c['bias_variance']}",
)
def test_kernels_equal_neural_tangents(case, kind):
    x1 = torch.tensor(REF["x1"], dtype=torch.float64)
    x2 = torch.tensor(REF["x2"], dtype=torch.float64)
    cls = NNGPKernel if kind == "nngp" else NTKKernel
    k = cls(depth=case["depth"], activation=case["act"]).double()
    k.weight_variance = case["weight_variance"]
    k.bias_variance = case["bias_variance"]
    with torch.no_grad():
        got = k(x1, x2).to_dense().numpy()
        same = k(x1, x1).to_dense().numpy()  # the training-matrix path (x1 is x2)
    tol = TOL[case["act"]]
    ref = np.array(case[kind])
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    # x1 against itself: neural-tangents computes the diagonal's angle from separately rounded
    # variances (theta ~ 1e-8 instead of 0), which moves the relu NTK's diagonal by ~1e-9
    # relative; ours reads the variances off the same matrix. Off the diagonal: same tolerance;
    # on it: 1e-8 against neural-tangents and 1e-12 against the closed form at theta = 0
    ref11 = np.array(case[kind + "_11"])
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(same[off], ref11[off], rtol=tol, atol=tol * np.abs(ref11).max())
    np.testing.assert_allclose(np.diag(same), np.diag(ref11), rtol=max(tol, 1e-8))
    if case["act"] == "relu":
        # theta = 0: E[relu(u)^2] = k / 2 and E[relu'(u)^2] = 1 / 2 at every layer
        w, b = case["weight_variance"], case["bias_variance"]
        k = b + w * (x1.numpy() ** 2).sum(1) / x1.shape[1]
        t = k.copy()
        for _ in range(case["depth"]):
            k = b + w * k / 2
            t = k + w * t / 2
        np.testing.assert_allclose(np.diag(same), k if kind == "nngp" else t, rtol=1e-12)
