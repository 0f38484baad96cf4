"""The envelope's rules at their boundaries, written out from the module's documented rules.

Each test states a rule of :mod:`neurostat.inference.envelope` (a sample size differs under half
or over 4 times the cell's, a width past a factor 2, a measured proportion outside its band by
more than two Monte-Carlo SEs ``2 sqrt(p (1 - p) / R)``, an SE ratio by more than
``2 / sqrt(2 R)``) and checks it on both sides of the boundary, with the boundary's value
computed here by hand. They were written to kill the mutants that survived ``make mutation``
(tests/MUTATION.md).
"""

import math
from types import SimpleNamespace

import pytest

from neurostat.inference.envelope import (
    HARD,
    Assessment,
    assess,
    cell_failures,
    differences,
    envelope_from_study,
    load_envelope,
    regime_of,
)


def _cell(**kw):
    cell = {"name": "c", "family": "gaussian", "hidden": [16], "activation": "tanh",
            "solver": "lbfgs", "alpha": 0.01, "dropout": 0.0, "n": 800,
            "cov_type": "nonrobust", "effects": "crossfit", "replications": 100,
            "se_ratio": [1.0], "coverage": [0.95], "size_test": 0.05}
    cell.update(kw)
    return cell


def _regime(**kw):
    r = {"architecture": "mlp", "family": "gaussian", "hidden": [16], "activation": "tanh",
         "solver": "lbfgs", "alpha": 0.01, "dropout": 0.0, "n": 800.0,
         "cov_type": "nonrobust", "effects": "crossfit"}
    r.update(kw)
    return r


def test_sample_size_differs_only_outside_half_to_four_times():
    cell = _cell(n=800)
    assert differences(_regime(n=400.0), cell) == []      # exactly half: same regime
    assert differences(_regime(n=399.0), cell) == ["n"]
    assert differences(_regime(n=3200.0), cell) == []     # exactly 4 times
    assert differences(_regime(n=3201.0), cell) == ["n"]
    # a regime without n (0 rows) departs from any cell; a cell without n counts as 1 row
    assert differences({k: v for k, v in _regime().items() if k != "n"}, cell) == ["n"]
    assert differences(_regime(n=4.0), {k: v for k, v in cell.items() if k != "n"}) == []
    assert differences(_regime(n=5.0), {k: v for k, v in cell.items() if k != "n"}) == ["n"]


def test_width_differs_only_past_a_factor_two_in_total_units():
    cell = _cell(hidden=[16])
    assert differences(_regime(hidden=[32]), cell) == []
    assert differences(_regime(hidden=[8]), cell) == []
    assert differences(_regime(hidden=[33]), cell) == ["width"]
    assert differences(_regime(hidden=[7]), cell) == ["width"]
    # the width of a deep net is its total number of units
    assert differences(_regime(hidden=[16, 16]), _cell(hidden=[8, 8])) == []
    assert differences(_regime(hidden=[16, 17]), _cell(hidden=[8, 8])) == ["width"]
    # no hidden layer on both sides: same depth, widths 0 and 0 (counted as 1)
    assert differences(_regime(hidden=[]), _cell(hidden=[])) == []
    assert differences(_regime(hidden=[2]), _cell(hidden=[])) == ["depth"]
    assert differences({k: v for k, v in _regime().items() if k != "hidden"},
                       _cell(hidden=[])) == []


def test_each_factor_is_named_and_defaults_are_the_mlp_without_penalty():
    cell = _cell()
    assert differences(_regime(architecture="convnet"), cell) == ["architecture"]
    # a regime or cell without an architecture is an MLP
    assert differences({k: v for k, v in _regime().items() if k != "architecture"}, cell) == []
    assert differences(_regime(), {**cell, "architecture": "mlp"}) == []
    for key, value in [("family", "poisson"), ("effects", "delta"), ("cov_type", "HC0"),
                       ("activation", "relu")]:
        assert differences(_regime(**{key: value}), cell) == [key]
    # solvers: only lbfgs against anything else matters
    assert differences(_regime(solver="adam"), _cell(solver="sgd")) == []
    assert differences(_regime(solver="adam"), cell) == ["solver"]
    assert differences(_regime(solver="lbfgs"), _cell(solver="adam")) == ["solver"]
    # penalty and dropout: present or absent, not their size; absent keys are 0
    assert differences(_regime(alpha=1.0), cell) == []
    assert differences(_regime(alpha=0.0), cell) == ["penalty"]
    assert differences({k: v for k, v in _regime().items() if k != "alpha"},
                       _cell(alpha=0.0)) == []
    assert differences(_regime(alpha=0.0), {k: v for k, v in cell.items() if k != "alpha"}) \
        == []
    assert differences(_regime(dropout=0.2), cell) == ["dropout"]
    assert differences(_regime(dropout=0.2), _cell(dropout=0.5)) == []
    assert differences({k: v for k, v in _regime().items() if k != "dropout"}, cell) == []
    assert differences(_regime(), {k: v for k, v in cell.items() if k != "dropout"}) == []
    assert differences(_regime(dropout=0.1), {k: v for k, v in cell.items()
                                              if k != "dropout"}) == ["dropout"]
    assert differences({k: v for k, v in _regime().items() if k != "dropout"},
                       _cell(dropout=0.1)) == ["dropout"]


def test_coverage_band_allows_two_monte_carlo_standard_errors_of_095():
    for reps in (20, 100):
        tol = 2 * math.sqrt(0.95 * 0.05 / reps)
        lo, hi = 0.92 - tol, 0.98 + tol
        assert cell_failures(_cell(replications=reps, coverage=[lo + 1e-9])) == []
        assert cell_failures(_cell(replications=reps, coverage=[lo - 1e-9])) == ["coverage"]
        assert cell_failures(_cell(replications=reps, coverage=[hi - 1e-9])) == []
        assert cell_failures(_cell(replications=reps, coverage=[hi + 1e-9])) == ["coverage"]
        # every interval counts: one bad one among good ones fails the cell
        assert cell_failures(_cell(replications=reps, coverage=[0.95, lo - 1e-9])) == [
            "coverage"]
        assert cell_failures(_cell(replications=reps, coverage=[hi + 1e-9, 0.95])) == [
            "coverage"]
    # a cell without a replication count is read as 100 replications
    tol = 2 * math.sqrt(0.95 * 0.05 / 100)
    bare = {k: v for k, v in _cell().items() if k != "replications"}
    assert cell_failures({**bare, "coverage": [0.92 - tol + 1e-9]}) == []
    assert cell_failures({**bare, "coverage": [0.92 - tol - 1e-9]}) == ["coverage"]
    # missing coverages (None) are skipped, an empty list measures nothing
    assert cell_failures(_cell(coverage=[None, 0.95])) == []
    assert cell_failures(_cell(coverage=[])) == []
    assert cell_failures({k: v for k, v in _cell().items() if k != "coverage"}) == []


def test_size_band_allows_two_monte_carlo_standard_errors_of_005():
    reps = 100
    tol = 2 * math.sqrt(0.05 * 0.95 / reps)
    assert cell_failures(_cell(size_test=0.03 - tol + 1e-9)) == []
    assert cell_failures(_cell(size_test=0.03 - tol - 1e-9)) == ["size"]
    assert cell_failures(_cell(size_test=0.07 + tol - 1e-9)) == []
    assert cell_failures(_cell(size_test=0.07 + tol + 1e-9)) == ["size"]
    assert cell_failures(_cell(size_test=None)) == []
    assert cell_failures({k: v for k, v in _cell().items() if k != "size_test"}) == []


def test_zero_replications_are_read_as_one():
    # the tolerance is then 2 sqrt(0.95 * 0.05) = 0.436 around the band
    tol = 2 * math.sqrt(0.95 * 0.05)
    assert cell_failures(_cell(replications=0, coverage=[0.92 - tol + 1e-9], se_ratio=[])) \
        == []
    assert cell_failures(_cell(replications=0, coverage=[0.92 - tol - 1e-9], se_ratio=[])) \
        == ["coverage"]


def test_se_ratio_band_allows_the_sd_of_an_sd():
    for reps in (20, 100):
        slack = 2 / math.sqrt(2 * reps)
        ok_lo, ok_hi = 0.85 - slack + 1e-9, 1.15 + slack - 1e-9
        assert cell_failures(_cell(replications=reps, se_ratio=[ok_lo, ok_hi])) == []
        assert cell_failures(_cell(replications=reps, se_ratio=[ok_lo - 2e-9])) == ["SE/SD"]
        assert cell_failures(_cell(replications=reps, se_ratio=[1.0, ok_hi + 2e-9])) == [
            "SE/SD"]
        assert cell_failures(_cell(replications=reps, se_ratio=[ok_hi + 2e-9, 1.0])) == [
            "SE/SD"]
    slack = 2 / math.sqrt(2)  # zero replications are read as one
    assert cell_failures(_cell(replications=0, coverage=[], se_ratio=[1.15 + slack - 1e-9])) \
        == []
    assert cell_failures(_cell(replications=0, coverage=[], se_ratio=[1.15 + slack + 1e-9])) \
        == ["SE/SD"]
    assert cell_failures(_cell(se_ratio=[None, 1.0])) == []
    assert cell_failures({k: v for k, v in _cell().items() if k != "se_ratio"}) == []
    # all three at once, in the documented order
    assert cell_failures(_cell(coverage=[0.5], size_test=0.5, se_ratio=[3.0])) == [
        "coverage", "size", "SE/SD"]


def test_near_and_inside_follow_the_hard_factors():
    cell = _cell()
    assert set(HARD) == {"architecture", "family", "effects", "cov_type"}
    assert Assessment(cell, [], []).near and Assessment(cell, [], []).inside
    assert Assessment(cell, ["width"], []).near
    assert not Assessment(cell, ["width", "n"], []).near
    for hard in HARD:
        assert not Assessment(cell, [hard], []).near
    assert not Assessment(cell, [], ["size"]).inside and Assessment(cell, [], ["size"]).near


def test_notes_quote_the_measured_numbers_word_for_word():
    cell = _cell(name="base", coverage=[0.931, 0.962], size_test=0.048, se_ratio=[0.97, 1.04],
                 replications=150)
    measured = ("coverage of 95% intervals 0.93-0.96, size of the 5% per-input test 0.05, "
                "SE/SD 0.97-1.04 (150 replications)")
    assert Assessment(cell, [], []).measured() == measured
    assert Assessment(cell, [], []).note() == (
        f"Calibration study: in the measured cell 'base': {measured}.")
    assert Assessment(cell, ["width"], []).note() == (
        f"Calibration study: near (differs in width) the measured cell 'base': {measured}.")
    assert Assessment(cell, ["n"], ["size"]).note() == (
        "Warning: the calibration study measured this regime outside the bands "
        f"('base': {measured}); treat the standard errors and p-values with caution.")
    assert Assessment(cell, ["family", "n"], []).note() == (
        "Warning: outside the calibration study's measured envelope (nearest cell 'base' "
        f"differs in family, n; measured there: {measured}); the calibration of these numbers "
        "is unmeasured.")
    # a cell far away and failing gets the outside-the-envelope warning
    assert Assessment(cell, ["family"], ["size"]).note().startswith("Warning: outside")
    bare = {"name": "bare"}
    assert Assessment(bare, [], []).measured() == " (? replications)"
    assert Assessment({"name": "s", "size_test": 0.1}, [], []).measured() == (
        "size of the 5% per-input test 0.10 (? replications)")


def test_assess_prefers_few_hard_departures_then_few_departures_then_passing_cells():
    good, bad = _cell(name="good"), _cell(name="bad", size_test=0.5)
    # same regime, one cell failing: the passing one is chosen whatever the order
    for cells in ([good, bad], [bad, good]):
        a = assess(_regime(), {"cells": cells})
        assert a.cell["name"] == "good" and a.departures == [] and a.failures == []
    bad_exact = _cell(name="bad_exact", size_test=0.5)
    near_good = _cell(name="near_good", hidden=[64])
    # fewer departures beat a passing cell
    a = assess(_regime(), {"cells": [near_good, bad_exact]})
    assert a.cell["name"] == "bad_exact" and a.failures == ["size"]
    # a soft departure beats a hard one even against several soft ones
    soft = _cell(name="soft", hidden=[64], n=100, solver="adam")
    hard = _cell(name="hard", family="poisson")
    a = assess(_regime(), {"cells": [hard, soft]})
    assert a.cell["name"] == "soft" and a.departures == ["solver", "width", "n"]
    # the first of equally good cells stands
    a = assess(_regime(), {"cells": [_cell(name="first"), _cell(name="second")]})
    assert a.cell["name"] == "first"
    assert assess(_regime(), {"cells": []}) is None
    assert assess(_regime(), {}) is None


def test_load_envelope_reads_a_given_file_or_returns_none(tmp_path):
    path = tmp_path / "env.json"
    assert load_envelope(path) is None
    path.write_text('{"cells": [{"name": "x"}], "source": "s"}')
    load_envelope.cache_clear()
    assert load_envelope(str(path)) == {"cells": [{"name": "x"}], "source": "s"}
    load_envelope.cache_clear()


def test_envelope_from_study_copies_and_rounds_each_cell():
    study = {"meta": {"machine": "m"}, "cells": {
        "full": {"cell": {"family": "poisson", "hidden": [8], "activation": "relu",
                          "solver": "adam", "alpha": 0.1, "dropout": 0.2, "n": 300,
                          "cov_type": "HC0", "effects": "delta"},
                 "replications": 50, "se_ratio": [1.23456], "coverage": [0.94449],
                 "size_test_x3": 0.05551, "size_z_x3": 0.0444},
        "defaults": {"cell": {"family": "gaussian", "hidden": [4], "solver": "lbfgs",
                              "n": 100},
                     "replications": 10, "se_ratio": [], "coverage": [],
                     "size_test_x3": 0.1, "size_z_x3": 0.2}}}
    env = envelope_from_study(study)
    assert env["source"] == "benchmarks/results/calibration.json (benchmarks/calibration.py)"
    assert env["machine"] == "m"
    assert env["cells"][0] == {
        "name": "full", "family": "poisson", "hidden": [8], "activation": "relu",
        "solver": "adam", "alpha": 0.1, "dropout": 0.2, "n": 300, "cov_type": "HC0",
        "effects": "delta", "replications": 50, "se_ratio": [1.235], "coverage": [0.944],
        "size_test": 0.056, "size_z": 0.044}
    assert env["cells"][1] == {
        "name": "defaults", "family": "gaussian", "hidden": [4], "activation": "tanh",
        "solver": "lbfgs", "alpha": 0.0, "dropout": 0.0, "n": 100, "cov_type": "nonrobust",
        "effects": "crossfit", "replications": 10, "se_ratio": [], "coverage": [],
        "size_test": 0.1, "size_z": 0.2}
    assert envelope_from_study({"cells": {}})["machine"] is None


@pytest.mark.parametrize("effects, expected", [(None, "delta"), (object(), "crossfit")])
def test_regime_of_reads_the_model_and_the_statistics(effects, expected):
    model = SimpleNamespace(layout=SimpleNamespace(is_glm=False), regime={"hidden": [4]},
                            family=SimpleNamespace(name="poisson"))
    res = SimpleNamespace(model=model, statistics=SimpleNamespace(effects=effects), nobs=37,
                          cov_type="HC1")
    assert regime_of(res) == {"hidden": [4], "family": "poisson", "n": 37.0,
                              "cov_type": "HC1", "effects": expected}
    assert isinstance(regime_of(res)["n"], float)
    glm = SimpleNamespace(model=SimpleNamespace(layout=SimpleNamespace(is_glm=True),
                                                regime={"hidden": []}))
    assert regime_of(glm) is None
    unstated = SimpleNamespace(model=SimpleNamespace(layout=SimpleNamespace(is_glm=False),
                                                     regime=None))
    assert regime_of(unstated) is None


def test_values_exactly_on_a_band_edge_pass():
    """"Outside the bands beyond the Monte-Carlo error": a value on the edge is inside (the
    edges computed as the module documents them, in the same floating-point order)."""
    tol95 = 2 * math.sqrt(0.95 * (1 - 0.95) / 100)
    tol05 = 2 * math.sqrt(0.05 * (1 - 0.05) / 100)
    slack = 2 / math.sqrt(2 * 100)
    for edge in ({"coverage": [0.92 - tol95]}, {"coverage": [0.98 + tol95]},
                 {"size_test": 0.03 - tol05}, {"size_test": 0.07 + tol05},
                 {"se_ratio": [0.85 - slack]}, {"se_ratio": [1.15 + slack]}):
        assert cell_failures(_cell(replications=100, **edge)) == [], edge


def test_more_departures_at_the_edges_of_the_defaults():
    # the cell's architecture is read, not assumed
    assert differences(_regime(), _cell(architecture="convnet")) == ["architecture"]
    # a cell without hidden layers listed has none
    no_hidden = {k: v for k, v in _cell().items() if k != "hidden"}
    assert differences(_regime(hidden=[]), no_hidden) == []
    assert differences(_regime(hidden=[3]), no_hidden) == ["depth"]
    # one unit against four is past a factor two, either way round
    assert differences(_regime(hidden=[1]), _cell(hidden=[4])) == ["width"]
    assert differences(_regime(hidden=[4]), _cell(hidden=[1])) == ["width"]
    # a regime without n departs even from a one-row cell
    assert differences({k: v for k, v in _regime().items() if k != "n"}, _cell(n=1)) == ["n"]


def test_assess_reads_the_shipped_envelope_by_default(monkeypatch):
    import neurostat.inference.envelope as envelope

    monkeypatch.setattr(envelope, "load_envelope", lambda: {"cells": [_cell(name="shipped")]})
    a = envelope.assess(_regime())
    assert a is not None and a.cell["name"] == "shipped" and a.inside
    monkeypatch.setattr(envelope, "load_envelope", lambda: None)
    assert envelope.assess(_regime()) is None
