"""Where the calibration study measured a net's inference, and what it found there.

``benchmarks/calibration.py`` measures, by Monte Carlo over a grid of cells (family, width,
depth, sample size, penalty, solver, dropout, activation, covariance type, effects method),
the mean reported SE over the Monte-Carlo SD of each average effect, the coverage of its 95%
interval and the size of the per-input tests at 5%. ``--envelope`` writes the measured cells to
``calibration_envelope.json`` beside this module, and every summary of a network with hidden
layers looks its fit up there (:func:`assess`):

* in a measured cell whose numbers are inside the bands (SE/SD 0.85-1.15, coverage 0.92-0.98,
  size 0.03-0.07, with the Monte-Carlo error of the cell's replications allowed): a note
  quoting the cell's measured coverage and size;
* in or near a measured cell whose numbers are outside the bands: a warning quoting them;
* further than one factor from every measured cell, or departing from all in the family, the
  effects method, the covariance type or the architecture: a warning that the regime is
  outside the measured envelope, quoting the nearest cell's numbers (the calibration there is
  unmeasured).

A network without hidden layer is a GLM, whose inference is exact (no note).
"""

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ENVELOPE_FILE = Path(__file__).with_name("calibration_envelope.json")
#: factors whose change can change the calibration entirely: a fit departing from a cell in
#: one of them is never "near" it
HARD = ("architecture", "family", "effects", "cov_type")
BANDS = {"se_ratio": (0.85, 1.15), "coverage": (0.92, 0.98), "size": (0.03, 0.07)}


@lru_cache(maxsize=1)
def load_envelope(path=None):
    """The measured cells (a dict with ``cells`` and ``source``), or None if none shipped."""
    path = ENVELOPE_FILE if path is None else Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _width(hidden):
    return sum(hidden) if hidden else 0


def differences(regime, cell):
    """The factors in which a fit's ``regime`` departs from a measured ``cell`` (a list of
    names). Sample sizes differ when the fit has under half the cell's rows or over 4 times
    them (more data rarely hurts calibration); widths when their ratio exceeds 2."""
    out = []
    if regime.get("architecture", "mlp") != cell.get("architecture", "mlp"):
        out.append("architecture")
    for key in ("family", "effects", "cov_type", "activation"):
        if regime.get(key) != cell.get(key):
            out.append(key)
    if (regime.get("solver") == "lbfgs") != (cell.get("solver") == "lbfgs"):
        out.append("solver")
    if (regime.get("alpha", 0) > 0) != (cell.get("alpha", 0) > 0):
        out.append("penalty")
    if (regime.get("dropout", 0) > 0) != (cell.get("dropout", 0) > 0):
        out.append("dropout")
    h, c = list(regime.get("hidden", ())), list(cell.get("hidden", ()))
    if len(h) != len(c):
        out.append("depth")
    elif abs(math.log2(max(_width(h), 1) / max(_width(c), 1))) > 1:
        out.append("width")
    n, m = regime.get("n", 0), cell.get("n", 1)
    if n < m / 2 or n > 4 * m:
        out.append("n")
    return out


def _tolerance(p, reps):
    """Two Monte-Carlo standard errors of a proportion p from ``reps`` replications."""
    return 2 * math.sqrt(max(p * (1 - p), 1e-4) / max(reps, 1))


def cell_failures(cell):
    """What of a measured cell lies outside the bands beyond its Monte-Carlo error."""
    reps = cell.get("replications", 100)
    out = []
    lo, hi = BANDS["coverage"]
    cov = [c for c in cell.get("coverage", []) if c is not None]
    if cov and (min(cov) < lo - _tolerance(0.95, reps) or max(cov) > hi + _tolerance(0.95, reps)):
        out.append("coverage")
    lo, hi = BANDS["size"]
    size = cell.get("size_test")
    if size is not None and not (lo - _tolerance(0.05, reps) <= size
                                 <= hi + _tolerance(0.05, reps)):
        out.append("size")
    lo, hi = BANDS["se_ratio"]
    ratios = [r for r in cell.get("se_ratio", []) if r is not None]
    # the SD of an SD estimated from R draws is about SD / sqrt(2 R)
    slack = 2 / math.sqrt(2 * max(reps, 1))
    if ratios and (min(ratios) < lo - slack or max(ratios) > hi + slack):
        out.append("SE/SD")
    return out


@dataclass(frozen=True)
class Assessment:
    """A fit's place in the calibration study's envelope.

    Attributes
    ----------
    cell : dict
        The nearest measured cell.
    departures : list of str
        The factors in which the fit departs from it.
    failures : list of str
        What the study measured outside the bands in that cell.
    """

    cell: dict
    departures: list
    failures: list

    @property
    def near(self):
        """At most one departure from the cell, and none in a :data:`HARD` factor."""
        return len(self.departures) <= 1 and not set(self.departures) & set(HARD)

    @property
    def inside(self):
        """True when the fit is near a cell measured inside the bands."""
        return self.near and not self.failures

    def measured(self):
        """The cell's measured coverage and size, as the summary quotes them."""
        c = self.cell
        cov = c.get("coverage", [])
        parts = [f"coverage of 95% intervals {min(cov):.2f}-{max(cov):.2f}"] if cov else []
        if c.get("size_test") is not None:
            parts.append(f"size of the 5% per-input test {c['size_test']:.2f}")
        ratios = c.get("se_ratio", [])
        if ratios:
            parts.append(f"SE/SD {min(ratios):.2f}-{max(ratios):.2f}")
        return ", ".join(parts) + f" ({c.get('replications', '?')} replications)"

    def note(self):
        """The summary's line: a note inside the envelope, a warning outside it."""
        name = self.cell["name"]
        if self.inside:
            where = "in" if not self.departures else \
                f"near (differs in {self.departures[0]})"
            return f"Calibration study: {where} the measured cell '{name}': {self.measured()}."
        if self.failures and self.near:
            return (f"Warning: the calibration study measured this regime outside the bands "
                    f"('{name}': {self.measured()}); treat the standard errors and p-values "
                    f"with caution.")
        return (f"Warning: outside the calibration study's measured envelope (nearest cell "
                f"'{name}' differs in {', '.join(self.departures)}; measured there: "
                f"{self.measured()}); the calibration of these numbers is unmeasured.")


def regime_of(results):
    """The regime of an :class:`~neurostat.inference.results.InferenceResults` (None for a
    GLM, whose inference is exact, or a model that states none)."""
    model = results.model
    if model.layout.is_glm or model.regime is None:
        return None
    stats = results.statistics
    effects = "crossfit" if stats.effects is not None else "delta"
    return {**model.regime, "family": model.family.name, "n": float(results.nobs),
            "cov_type": results.cov_type, "effects": effects}


def assess(regime, envelope=None):
    """The :class:`Assessment` of a fit's ``regime`` (family, hidden, activation, solver,
    alpha, dropout, n, cov_type, effects), or None without a shipped envelope."""
    envelope = load_envelope() if envelope is None else envelope
    if not envelope or not envelope.get("cells"):
        return None
    best = None
    for cell in envelope["cells"]:
        dep = differences(regime, cell)
        key = (len(set(dep) & set(HARD)), len(dep), bool(cell_failures(cell)))
        if best is None or key < best[0]:
            best = (key, cell, dep)
    _, cell, dep = best
    return Assessment(cell, dep, cell_failures(cell))


def envelope_from_study(study):
    """The envelope (the JSON this module reads) from ``benchmarks/calibration.py``'s output:
    per cell its regime and measured numbers."""
    cells = []
    for name, row in study["cells"].items():
        cell = dict(row["cell"])
        cells.append({
            "name": name, "family": cell["family"], "hidden": cell["hidden"],
            "activation": cell.get("activation", "tanh"), "solver": cell["solver"],
            "alpha": cell.get("alpha", 0.0), "dropout": cell.get("dropout", 0.0),
            "n": cell["n"], "cov_type": cell.get("cov_type", "nonrobust"),
            "effects": cell.get("effects", "crossfit"), "replications": row["replications"],
            "se_ratio": [round(v, 3) for v in row["se_ratio"]],
            "coverage": [round(v, 3) for v in row["coverage"]],
            "size_test": round(row["size_test_x3"], 3), "size_z": round(row["size_z_x3"], 3),
        })
    return {"source": "benchmarks/results/calibration.json (benchmarks/calibration.py)",
            "machine": study.get("meta", {}).get("machine"), "cells": cells}
