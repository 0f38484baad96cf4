"""Reference NNGP and NTK kernels for tests/test_gp_neural_tangents.py from neural-tangents.

neural-tangents (JAX) is not a dependency: run this in a separate environment, e.g.

    python3 -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install neural-tangents==0.6.5 jax==0.4.30 jaxlib==0.4.30 tf2jax==0.3.6
    /tmp/ntenv/bin/python tests/results/make_neural_tangents_reference.py

(newer jax releases removed ``jax.core.Jaxpr``, which neural-tangents 0.6.5 imports). Writes
tests/results/neural_tangents_reference.json: the inputs and, for relu / erf / gelu, depth 1-3
and three (weight, bias) variance pairs, ``stax.serial(*[Dense(1, W_std, b_std), act] * depth,
Dense(1, W_std, b_std))``'s analytic NNGP and NTK kernels in float64 (x1 against x2, and x1
against itself), with the versions; and tests/results/neural_tangents_conv_reference.json:
images in NHWC order and, for GlobalAvgPool / Flatten readouts, relu / erf, depth 1-3, filter
sizes 1, 3, 5 and two variance pairs, ``stax.serial(*[Conv(1, (k, k), padding="SAME", W_std,
b_std), act] * depth, readout, Dense(1, W_std, b_std))``'s NNGP and NTK kernels (run with
``--conv`` to write only this file).
"""

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("neural_tangents_reference.json")
OUT_CONV = Path(__file__).with_name("neural_tangents_conv_reference.json")


def main():
    import jax
    import neural_tangents as nt
    from jax import config
    from neural_tangents import stax

    config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(6, 3))
    x2 = rng.normal(size=(4, 3)) * 2
    acts = {"relu": stax.Relu, "erf": stax.Erf, "gelu": stax.Gelu}
    cases = []
    for act in acts:
        for depth in (1, 2, 3):
            for wv, bv in ((1.0, 0.0), (2.0, 0.3), (1.5, 1.2)):
                layers = []
                for _ in range(depth):
                    layers += [stax.Dense(1, W_std=np.sqrt(wv), b_std=np.sqrt(bv)), acts[act]()]
                layers.append(stax.Dense(1, W_std=np.sqrt(wv), b_std=np.sqrt(bv)))
                kernel_fn = stax.serial(*layers)[2]
                k = kernel_fn(x1, x2, ("nngp", "ntk"))
                kk = kernel_fn(x1, None, ("nngp", "ntk"))  # the training matrix of x1
                cases.append({"act": act, "depth": depth, "weight_variance": wv,
                              "bias_variance": bv, "nngp": np.asarray(k.nngp).tolist(),
                              "ntk": np.asarray(k.ntk).tolist(),
                              "nngp_11": np.asarray(kk.nngp).tolist(),
                              "ntk_11": np.asarray(kk.ntk).tolist()})
    OUT.write_text(json.dumps({"versions": {"neural_tangents": nt.__version__,
                                            "jax": jax.__version__},
                               "x1": x1.tolist(), "x2": x2.tolist(), "cases": cases}))


def main_conv():
    import jax
    import neural_tangents as nt
    from jax import config
    from neural_tangents import stax

    config.update("jax_enable_x64", True)
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=(4, 5, 4, 2))  # NHWC: 4 images of 5 x 4 pixels, 2 channels
    x2 = rng.normal(size=(3, 5, 4, 2)) * 1.5
    acts = {"relu": stax.Relu, "erf": stax.Erf}
    readouts = {"gap": stax.GlobalAvgPool, "flatten": stax.Flatten}
    cases = []
    for pooling in readouts:
        for act in acts:
            for depth, k in ((1, 3), (2, 3), (3, 3), (2, 1), (2, 5)):
                for wv, bv in ((1.0, 0.0), (1.7, 0.3)):
                    layers = []
                    for _ in range(depth):
                        conv = stax.Conv(1, (k, k), padding="SAME", W_std=np.sqrt(wv),
                                         b_std=np.sqrt(bv))
                        layers += [conv, acts[act]()]
                    layers += [readouts[pooling](), stax.Dense(1, np.sqrt(wv), np.sqrt(bv))]
                    kernel_fn = stax.serial(*layers)[2]
                    kk = kernel_fn(x1, x2, ("nngp", "ntk"))
                    k11 = kernel_fn(x1, None, ("nngp", "ntk"))
                    cases.append({"pooling": pooling, "act": act, "depth": depth,
                                  "kernel_size": k, "weight_variance": wv, "bias_variance": bv,
                                  "nngp": np.asarray(kk.nngp).tolist(),
                                  "ntk": np.asarray(kk.ntk).tolist(),
                                  "nngp_11": np.asarray(k11.nngp).tolist(),
                                  "ntk_11": np.asarray(k11.ntk).tolist()})
    OUT_CONV.write_text(json.dumps({"versions": {"neural_tangents": nt.__version__,
                                                 "jax": jax.__version__},
                                    "layout": "NHWC", "x1": x1.tolist(), "x2": x2.tolist(),
                                    "cases": cases}))


if __name__ == "__main__":
    if "--conv" not in sys.argv:
        main()
    main_conv()
