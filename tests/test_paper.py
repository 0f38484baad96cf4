"""The paper builds from result files: `paper/build.py` on three quick vignettes and the committed
benchmarks gives a PDF whose sections are all there and whose quoted numbers are the files'."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ["Thesis and design", "No hidden layer: the generalized linear model",
            "Weight decay is ridge, L1 is the lasso", "Wide Bayesian networks are Gaussian",
            "Networks and projection pursuit", "Survival outputs", "The model menu",
            "Stochastic gradient descent as regularization",
            "When are a net’s standard errors to be trusted?", "Performance",
            "Limitations, as measured", "References"]

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("typst")


def _fmt():
    """The paper's own number formatter (paper/build.py), so that the test writes a number as
    the paper prints it; the value itself is read from the result file here."""
    sys.path.insert(0, str(ROOT / "paper"))
    try:
        from build import fmt
    finally:
        sys.path.pop(0)
    return fmt


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    build, pdf = tmp / "build", tmp / "neurostat.pdf"
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "paper" / "build.py"), "--quick", "--vignettes", "01,08,12",
         "--build", str(build), "--pdf", str(pdf)],
        capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = "".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    return build, pdf, " ".join(text.split())


@pytest.mark.slow
def test_paper_has_every_section(paper):
    _, pdf, text = paper
    assert pdf.stat().st_size > 100_000
    missing = [s for s in SECTIONS if s not in text]
    assert not missing, missing


@pytest.mark.slow
def test_quoted_vignette_numbers_equal_their_files(paper):
    build, _, text = paper
    fmt = _fmt()
    m = json.loads((build / "vignettes" / "12" / "metrics.json").read_text())
    for value in (m["C"]["c_neural"], m["C"]["c_linear"], m["A"]["hr_start_stop"],
                  m["A"]["hr_ever_exposed"], m["C"]["ibs_neural"]):
        assert fmt(value) in text, (fmt(value), value)
    m8 = json.loads((build / "vignettes" / "08" / "metrics.json").read_text())
    for value in (m8["margeff_se_ratio_range"][0], m8["margeff_coverage_range"][0],
                  m8["link_bias_sd_max"]):  # the effects on the mean (get_margeff)
        assert fmt(value) in text, (fmt(value), value)
    with open(build / "vignettes" / "01" / "information_criteria.csv") as fh:
        rows = list(csv.DictReader(fh))
    edf = [fmt(float(r["edf"]), 4) for r in rows if r["model"] != "GLM"]
    assert all(e in text for e in edf), edf


@pytest.mark.slow
def test_quoted_benchmark_numbers_equal_their_files(paper):
    _, _, text = paper
    fmt = _fmt()
    fit = json.loads((RESULTS / "bench_fit.json").read_text())
    dask = json.loads((RESULTS / "bench_dask.json").read_text())
    wald = json.loads((RESULTS / "wald_calibration.json").read_text())
    expected = [fmt(fit["small"]["ratios"]["neurostat/sklearn"], 2),
                fmt(fit["small"]["ratios"]["neurostat/skorch"], 2),
                fmt(dask["large_2_workers"]["neurostat"]["wall_s"]),
                fmt(max(r["wald_rejection"] for r in wald["results"]), 2)]
    assert all(e in text for e in expected), [e for e in expected if e not in text]


@pytest.mark.slow
def test_sections_without_outputs_say_so(paper):
    """Vignettes left out of the build are marked in the text, not silently dropped."""
    build, _, text = paper
    numbers = json.loads((build / "numbers.json").read_text())
    assert numbers["vignettes"]["03"]["state"] == "not built"
    assert "Vignette 03" in text and "gave no outputs in this build" in text
    assert numbers["numbers"]["v12_c_neural"]["source"] == "build/vignettes/12/metrics.json"
