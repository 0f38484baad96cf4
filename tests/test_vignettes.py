"""Every vignette runs with --quick and writes its report, tables and figures."""

import subprocess
import sys
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).parents[1] / "vignettes").glob("[0-9][0-9]_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", VIGNETTES, ids=[p.stem for p in VIGNETTES])
def test_vignette_quick(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(tmp_path.glob("*.md")), "no markdown report written"
    assert list(tmp_path.glob("*.csv")), "no CSV table written"
    assert list(tmp_path.glob("*.png")), "no PNG figure written"
