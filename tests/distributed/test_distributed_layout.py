"""Dask stays optional: ``import neurostat`` and in-memory fits never import it, and the
distributed floor imports nothing from the estimators (they call it, not the reverse)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_in_memory_use_never_imports_dask():
    code = (
        "import sys, numpy as np\n"
        "from neurostat import NeuralClassifier\n"
        "X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)\n"
        "est = NeuralClassifier((), solver='lbfgs', alpha=0.1).fit(X, y)\n"
        "est.predict(X); est.inference().summary()\n"
        "assert not any(m == 'dask' or m.startswith(('dask.', 'distributed'))\n"
        "               for m in sys.modules), sorted(m for m in sys.modules if 'dask' in m)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_distributed_imports_nothing_from_the_estimators():
    import ast

    for path in (ROOT / "neurostat" / "distributed").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert "estimators" not in mod and "survival" not in mod, (path.name, mod)
