"""Size of the per-input tests on a net with a hidden layer: a Monte-Carlo study (not a test).

Data: n=300, three standard-normal inputs, a logistic response on x0 and x1 only, so x2 is
null. For each network (tanh hidden units, lbfgs, ridge ``alpha``) and replication, the
rejection rate at the 5% level of (a) ``wald_test_terms()`` for x2, the joint Wald test that
all weights leaving x2 are zero, and (b) the z test of x2's average-derivative effect
(``res.pvalues``). A calibrated test rejects about 5% (Monte-Carlo sd ~2.2% at 100 replications).

    python benchmarks/wald_calibration.py [--replications 100]
Results: benchmarks/results/wald_calibration.json.
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from neurostat import NeuralClassifier

SETTINGS = [((1,), 1e-2), ((2,), 1e-2), ((4,), 0.0), ((4,), 1e-3), ((4,), 1e-2), ((4,), 1e-1)]


def rejection_rates(hidden, alpha, replications, n=300, seed=0):
    rng = np.random.default_rng(seed)
    wald = effect = 0
    for r in range(replications):
        X = rng.normal(size=(n, 3))
        p = 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 1])))
        y = (rng.random(n) < p).astype(int)
        res = NeuralClassifier(hidden, activation="tanh", solver="lbfgs", alpha=alpha,
                               max_iter=1000, random_state=r).fit(X, y).inference()
        wald += float(res.wald_test_terms().iloc[2]["P>chi2"]) < 0.05
        effect += float(res.pvalues.iloc[3]) < 0.05
    return wald / replications, effect / replications


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "wald_calibration.json"))
    args = ap.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for hidden, alpha in SETTINGS:
            wald, effect = rejection_rates(hidden, alpha, args.replications)
            rows.append({"hidden": list(hidden), "alpha": alpha, "wald_rejection": wald,
                         "effect_z_rejection": effect})
            print(f"hidden={hidden} alpha={alpha:g}: Wald {wald:.2f}, effect z {effect:.2f}")
    Path(args.out).write_text(json.dumps({"replications": args.replications, "level": 0.05,
                                          "n": 300, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
