"""Training speed: neurostat vs scikit-learn, skorch and a tuned hand-written PyTorch loop.

make_classification, n=50,000, p=50; hidden (64, 64), relu, Adam lr 1e-3, batch 256, exactly
10 epochs; one process, interleaved repeats, medians; test accuracy on a held-out set. Also
n=500,000 for neurostat and scikit-learn. The machine's float32 matmul peak is measured in the
same run so the fraction of peak can be quoted. Results: benchmarks/results/bench_fit.json.

    python benchmarks/bench_fit.py [--repeats 3] [--n 50000] [--large 500000] [--device cpu]
                                   [--threads 1]
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralClassifier

HIDDEN, EPOCHS, BATCH, LR = (64, 64), 10, 256, 1e-3


def data(n, seed=0):
    X, y = make_classification(n_samples=n + 10_000, n_features=50, n_informative=20,
                               random_state=seed)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return train_test_split(X, y, test_size=10_000, random_state=seed)


def fit_neurostat(X, y, device):
    return NeuralClassifier(HIDDEN, batch_size=BATCH, learning_rate_init=LR, max_iter=EPOCHS,
                            tol=0.0, random_state=0, device=device).fit(X, y)


def fit_sklearn(X, y, device):
    return MLPClassifier(HIDDEN, batch_size=BATCH, learning_rate_init=LR, max_iter=EPOCHS,
                         alpha=0.0, tol=0.0, random_state=0).fit(X, y)


def fit_skorch(X, y, device):
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        _sequential(X.shape[1], softmax=True), max_epochs=EPOCHS, lr=LR, batch_size=BATCH,
        optimizer=torch.optim.Adam, train_split=None, iterator_train__shuffle=True,
        verbose=0, device=device,
    )
    return net.fit(X, y.astype(np.int64))


def _sequential(p, softmax=False):
    layers, sizes = [], [p, *HIDDEN]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-1], 2 if softmax else 1))
    if softmax:
        layers.append(torch.nn.Softmax(dim=-1))
    return torch.nn.Sequential(*layers)


class TunedLoop:
    """A hand-written loop as a careful user would write it: one gather per epoch, fused Adam."""

    def fit(self, X, y, device):
        torch.manual_seed(0)
        dev = torch.device(device)
        Xt = torch.from_numpy(X).to(dev)
        yt = torch.from_numpy(y.astype(np.float32)).to(dev)
        self.model = model = _sequential(X.shape[1]).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
        lossf = torch.nn.BCEWithLogitsLoss()
        n = Xt.shape[0]
        for _ in range(EPOCHS):
            perm = torch.randperm(n, device=dev)
            Xe, ye = Xt[perm], yt[perm]
            for s in range(0, n, BATCH):
                loss = lossf(model(Xe[s:s + BATCH])[:, 0], ye[s:s + BATCH])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return self

    def score(self, X, y, device):
        with torch.no_grad():
            out = self.model(torch.from_numpy(X).to(device))[:, 0].cpu().numpy()
        return float(np.mean((out > 0) == y))


def matmul_peak(device, size=2048, reps=10):
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    if device != "cpu":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * size**3 * reps / (time.perf_counter() - t)


def train_flops(n, p):
    sizes = [p, *HIDDEN, 1]
    fwd = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * fwd * n * EPOCHS  # forward + backward (about twice the forward)


def run(n, repeats, device, peers):
    Xtr, Xte, ytr, yte = data(n)
    times = {k: [] for k in peers}
    acc = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(repeats):
            for name in peers:  # interleaved: every peer once per round
                t = time.perf_counter()
                if name == "tuned_loop":
                    m = TunedLoop().fit(Xtr, ytr, device)
                    if device != "cpu":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - t)
                    acc[name] = m.score(Xte, yte, device)
                    continue
                m = {"neurostat": fit_neurostat, "sklearn": fit_sklearn,
                     "skorch": fit_skorch}[name](Xtr, ytr, device)
                times[name].append(time.perf_counter() - t)
                acc[name] = float(np.mean(m.predict(Xte) == yte))
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {"n": n, "p": 50, "median_seconds": med, "all_seconds": times, "test_accuracy": acc,
           "ratios": {f"neurostat/{k}": med["neurostat"] / med[k] for k in med if k != "neurostat"}}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--large", type=int, default=500_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit torch and BLAS threads of every peer (default: their own)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_fit.json"))
    args = ap.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    torch.manual_seed(0)
    peak = matmul_peak(args.device)
    result = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "device": args.device,
                    "neurostat_threads": "1 intra-op thread for networks this small (its policy)",
                    "matmul_peak_gflops": peak / 1e9},
        "setting": {"hidden": HIDDEN, "epochs": EPOCHS, "batch_size": BATCH, "lr": LR},
    }
    peers = ["neurostat", "sklearn", "skorch", "tuned_loop"]
    result["small"] = run(args.n, args.repeats, args.device, peers)
    if args.large:
        result["large"] = run(args.large, 1, args.device, ["neurostat", "sklearn"])
    for key in ("small", "large"):
        if key in result:
            r = result[key]
            r["neurostat_fraction_of_matmul_peak"] = (
                train_flops(r["n"], 50) / r["median_seconds"]["neurostat"] / peak)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in result if k in ("machine", "small", "large")},
                     indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
