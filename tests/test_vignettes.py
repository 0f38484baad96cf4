"""Every vignette runs with --quick, writes its report, tables and figures, and meets its claims.

Each vignette writes ``metrics.json`` beside its report: the numbers behind the claims its report
makes. ``CLAIMS`` holds, per vignette, ``(key path, comparator, threshold, why)``: the key path
walks the JSON (dict keys, list indices); the comparator is one of ``<``, ``<=``, ``>``, ``>=``,
``==`` (a tuple threshold is then the key path of another metric of the same run), ``in`` (a
closed band ``(lo, hi)``) or ``in_all`` (every element of a list in the band). Thresholds are
set near what the seeded ``--quick`` run achieves, so a wrong implementation fails them; where
the quick run is too small to decide a claim, the ``why`` says so and only what it can decide is
asserted.
"""

import json
import math
import operator
import os
import subprocess
import sys
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).parents[1] / "vignettes").glob("[0-9][0-9]_*.py"))

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "in": lambda v, band: band[0] <= v <= band[1]}

_MLP = "Beam's MLP 128-128 dropout"
_CNN = "GP, infinite CNN (conv NNGP)"

CLAIMS = {
    "01_logistic_regression_is_a_net": [
        (("glm", "spector", "max_rel_diff_coef"), "<", 1e-10,
         "no-hidden-layer net = statsmodels Logit (8e-16 achieved)"),
        (("glm", "spector", "max_rel_diff_bse"), "<", 1e-9,
         "same standard errors (2.4e-14 achieved)"),
        (("glm", "spector", "max_rel_diff_pvalue"), "<", 1e-8, "same p-values"),
        (("glm", "spector", "abs_diff_llf"), "<", 1e-9, "same log-likelihood"),
        (("glm", "breast_cancer", "max_rel_diff_coef"), "<", 1e-10, "Logit on 6 inputs"),
        (("glm", "breast_cancer", "max_rel_diff_bse"), "<", 1e-9, "Logit on 6 inputs"),
        (("glm", "breast_cancer", "abs_diff_aic"), "<", 1e-8, "same AIC"),
        (("glm", "breast_cancer", "abs_diff_bic"), "<", 1e-8, "same BIC"),
        (("hidden_units", "spector 2 hidden", "glm_edf_minus_k"), "in", (-1e-9, 1e-9),
         "an unpenalized GLM's effective df is its number of coefficients"),
        (("hidden_units", "breast_cancer 2 hidden", "edf_over_n_params"), "in", (0.3, 0.99),
         "the ridge penalty shrinks the net's effective df below its parameter count"),
        (("lr_tests", 0, "LR_minus_twice_llf_gap"), "in", (-1e-8, 1e-8),
         "the LR statistic is twice the gap of the two fits' log-likelihoods"),
        (("lr_tests", 0, "p_bootstrap_grid_distance"), "<", 1e-9,
         "the bootstrap p-value is (1 + #{LR* >= LR}) / (B + 1), not the chi-square one; with "
         "B = 19 the quick run cannot decide how far it is from the chi-square p"),
    ],
    "02_weight_decay_is_ridge": [
        (("max_rel_dev", "ridge"), "<", 1e-11, "weight decay = Ridge (1.6e-15 achieved)"),
        (("max_rel_dev", "lasso"), "<", 1e-7, "L1 = Lasso (4e-9 achieved)"),
        (("max_rel_dev", "elastic net (0.5)"), "<", 1e-7, "= ElasticNet (9e-9 achieved)"),
        (("max_rel_dev", "logistic ridge"), "<", 2e-5,
         "= LogisticRegression(C=1/(a n)) (1.2e-6 achieved, scikit-learn's lbfgs tolerance)"),
        (("same_zeros_all_fits",), "==", True, "the lasso zeros are scikit-learn's"),
        (("zeros_sklearn_total",), ">=", 2, "... and there are zeros to compare"),
        (("lasso_df_minus_nonzero_max",), "<", 1e-9, "lasso df = number of nonzeros"),
        (("ridge_df_minus_hat_trace_max",), "<", 1e-10, "ridge df = trace of the hat matrix"),
        (("net_df_decreasing_in_alpha",), "==", True, "a net's effective df falls with alpha"),
    ],
    "03_dropout_is_bagging": [
        (("adaptive_ridge_max_rel_error",), "<", 0.02,
         "input dropout = adaptive ridge w* to the report's 2% (1.3% achieved; Adam iterates)"),
        (("adaptive_ridge_min_distance_ols",), ">", 1.0,
         "w* is far from OLS, so the agreement is not that of two unpenalized fits"),
        (("mask_variance_max_abs_rel_diff",), "<", 0.05,
         "variance over 20,000 masks = p/(1-p) sum x^2 w^2 (MC error about 1%)"),
        (("mc_vs_weight_scaling_rms_over_sd",), "<", 0.1,
         "weight scaling approximates the average over masks"),
        (("dropout_over_bagged_test_mse",), "in", (0.8, 1.3),
         "dropout's test MSE is that of bagged nets; 2 seeds and 3 bags cannot rank them"),
        (("test_mse", "dropout net (MC average)"), "<", 0.4,
         "the dropout net learns Friedman #1 (predicting the mean gives about 1)"),
        (("coverage_95", "obs_coverage"), "in", (0.9, 0.98),
         "MC-dropout 95% intervals for new y near nominal (1 seed: seed-to-seed spread)"),
        (("coverage_95", "obs_coverage_tau_validation"), "in", (0.92, 0.99),
         "with the held-out tau"),
        (("coverage_95", "mean_coverage_of_f"), "<", 0.85,
         "the model-variance interval is no confidence interval for f"),
        (("tau_validation",), "<", ("tau_residual",),
         "held-out tau absorbs the net's error against f"),
        (("tau_residual",), "<", ("tau_true",), "... and so do training residuals"),
        (("band_width_far_over_near_data",), ">", 1.5, "the MC band widens away from the data"),
    ],
    "04_neals_limit": [
        (("kurtosis_depth1_max_abs_z_vs_closed_form",), "<", 4.0,
         "depth-1 excess kurtosis on its closed form 15 w^2 q^2 / (4 width K^2), in SEs"),
        (("kurtosis_decreasing_in_width", "1"), "==", True, "Gaussianity grows with width"),
        (("kurtosis_decreasing_in_width", "2"), "==", True, "... at depth 2 too"),
        (("kernel_error_over_mc_floor_depth1_max",), "<", 2.0,
         "depth 1: the covariance is the NNGP kernel at every width (error on its MC floor)"),
        (("kernel_error_over_mc_floor_depth2_width1",), ">", 2.0,
         "depth 2: a finite-width bias at width 1; with 2,000 nets the quick run cannot show "
         "it dropping below the floor at width 64"),
        (("gp_coverage_95_range",), "in_all", (0.89, 0.99),
         "GP 95% intervals for a new y (142 test points: binomial SE 0.018)"),
        (("test_rmse", "GP NNGP (depth 1)"), "<", 0.75,
         "the NNGP GP predicts diabetes (the mean gives about 1)"),
    ],
    "05_nets_vs_projection_pursuit": [
        (("rel_mse", "two_ridge", "PPR M=2"), "<", 0.03,
         "two learned ridge shapes fit the two-ridge model (0.007 achieved)"),
        (("abs_cos", "two_ridge PPR M=2"), "in_all", (0.99, 1.0),
         "PPR recovers both true directions"),
        (("rel_mse", "two_ridge", "net M=2"), ">", 0.1,
         "two tanh units cannot make the quadratic ridge"),
        (("rel_mse", "two_ridge", "net M=5"), "<", 0.03, "five units can"),
        (("abs_cos", "two_ridge net M=5"), "in_all", (0.98, 1.0), "... along the true directions"),
        (("rel_mse", "two_ridge", "linear"), ">", 0.2, "the truth is far from linear"),
        (("rel_mse", "two_ridge", "GAM"), ">", 0.1,
         "additive in the coordinates cannot express ridges along mixed directions; diabetes "
         "(one split) decides nothing"),
    ],
    "06_deep_learning_vs_leekasso": [
        (("min_accuracy_by_task_n", "0 vs 1", "40"), ">", 0.93,
         "every model learns 0 vs 1 from 40 images; the quick run (few epochs, 2 repeats) "
         "cannot decide the Leek/Beam debate"),
        (("accuracy_mean", "3 vs 8", "40", _MLP), ">", 0.85, "3 vs 8 is learned at n = 40"),
        (("separated_share", "0 vs 1 n=10"), "==", 1.0,
         "with 10 points and 10 pixels the classes are separable (no logistic MLE)"),
        (("separated_share", "3 vs 8 n=10"), "==", 1.0, "... for both tasks"),
        (("models_per_split",), "in_all", (8, 8), "all eight models on every split"),
        (("distinct_test_sizes_per_split_max",), "==", 1, "identical test sets per split"),
    ],
    "07_neural_cox": [
        (("heart_max_rel_diff_coef_se",), "<", 1e-9, "linear Cox = PHReg (1e-14 achieved)"),
        (("heart_rel_diff_robust_se", "breslow"), "<", 1e-9, "robust SE = PHReg (Breslow)"),
        (("heart_rel_diff_robust_se", "efron"), "in", (1e-5, 1e-2),
         "with Efron's ties the robust SE differs from PHReg's by its Breslow increments"),
        (("heart_max_abs_diff_llf",), "<", 1e-8, "same log partial likelihood"),
        (("concordance", "neural_lbfgs"), ">", ("concordance", "linear"), "net beats linear"),
        (("concordance", "neural_lbfgs"), "in", (0.77, 0.81),
         "the net's C near the oracle's 0.7985 (4,000 test rows)"),
        (("concordance", "neural_minibatch"), ">", 0.74, "minibatch risk sets learn it too"),
        (("concordance", "linear"), "<", 0.72, "the linear model misses the nonlinear terms"),
        (("linear_cox_max_abs_z_x2_x4",), "<", 3.0,
         "no linear effect of x2, x3, x4 on average"),
        (("neural_effect_max_abs_z_vs_truth",), "<", 3.0,
         "the net's average effects within 3 SE of the truth"),
        (("neural_wald_max_p_x0_x4",), "<", 1e-6,
         "per-input Wald tests find x0-x4; x5 (p = 0.019 in the quick run) is not asserted: the "
         "penalized net's test level is approximate"),
        (("survival_max_abs_error", "neural Cox"), "<", 0.1, "S(t|x) near the truth"),
        (("survival_max_abs_error", "linear Cox"), ">", 0.2, "the linear model's is not"),
    ],
    "08_can_you_trust_a_nets_standard_errors": [
        (("cells",), "==", 2, "the quick run's two cells of 8 replications: the machinery, "
         "not the evidence; its bands are not asserted"),
        (("conformal", 0, "coverage"), "in", (0.93, 0.97),
         "homoscedastic: the model-based interval covers 95%"),
        (("conformal", 1, "coverage"), "in", (0.94, 0.98),
         "split conformal covers at least 95% marginally"),
        (("conformal", 3, "coverage"), "in", (0.94, 0.98), "... under heteroscedastic noise too"),
        (("conformal", 2, "coverage, noisiest quarter"), "<", 0.9,
         "the model-based interval under-covers where the noise is largest"),
        (("conformal", 3, "coverage, noisiest quarter"), "<", 0.92,
         "and so does marginal conformal"),
    ],
    "09_the_model_menu": [
        (("counts", "poisson_vs_statsmodels", "params"), "<", 1e-10,
         "Poisson GLM with an offset = statsmodels (9e-14 achieved)"),
        (("counts", "poisson_vs_statsmodels", "bse"), "<", 1e-10, "same SEs"),
        (("counts", "nb_vs_statsmodels", "params"), "<", 1e-10, "NB2 GLM = statsmodels"),
        (("counts", "nb_vs_statsmodels", "bse"), "<", 1e-7, "NB2 SEs (1.1e-9 achieved)"),
        (("counts", "se_ratio_nb_over_poisson", 0), ">", 1.5,
         "Poisson's SEs are too small under overdispersion"),
        (("counts", "heldout_loglik", "NB GLM"), ">", ("counts", "heldout_loglik", "Poisson GLM"),
         "NB beats Poisson on held-out patients"),
        (("counts", "heldout_loglik", "NB net (8 tanh units)"), ">",
         ("counts", "heldout_loglik", "NB GLM"), "the net finds the U-shaped age effect"),
        (("proportions", "glm_vs_statsmodels", "params"), "<", 1e-10,
         "binomial (trials as weights) = statsmodels"),
        (("proportions", "glm_vs_statsmodels", "bse"), "<", 1e-10, "same SEs"),
        (("proportions", "pearson_dispersion"), ">", 5.0, "star98 is overdispersed"),
        (("gamma", "glm_vs_statsmodels", "params"), "<", 1e-8,
         "gamma GLM = statsmodels (1.5e-11 achieved)"),
        (("gamma", "glm_vs_statsmodels", "bse"), "<", 1e-10, "inverse Fisher information"),
        (("gamma", "robust_vs_statsmodels", "bse"), "<", 1e-10, "robust SEs"),
        (("gamma", "tweedie_vs_statsmodels", "params"), "<", 1e-10, "Tweedie = statsmodels"),
        (("gamma", "tweedie_vs_statsmodels", "llf"), "<", 1e-10, "the Tweedie density"),
        (("gamma", "occupation_wald_df"), "==", 3, "a 4-level factor is one 3-df term"),
        (("gaulss", "log_sd_slope"), ">", 0.5, "the spread grows with income (1.29, SE 0.10)"),
        (("gaulss", "coverage_90", "OLS (one variance)", "high income"), "<", 0.85,
         "one variance under-covers the rich (78 households per third)"),
        (("gaulss", "coverage_90", "gaulss (log sd linear)", "high income"), "in", (0.84, 0.97),
         "the heteroscedastic model's intervals are right there"),
        (("combined", "glm_heads_vs_separate_statsmodels", "bp", "params"), "<", 1e-10,
         "a GLM head of the joint model = its statsmodels fit"),
        (("combined", "glm_heads_vs_separate_statsmodels", "visits", "bse"), "<", 1e-8,
         "... with its SEs"),
    ],
    "10_infinite_width_cnn": [
        (("n_cases",), "==", 4, "two tasks x two sizes; the quick run (one repeat, 60 test "
         "images) cannot decide whether the conv GP beats the dense GP"),
        (("per_task_and_n", "0 vs 1 n=40", "accuracy", "GP, infinite MLP (NNGP)"), ">=", 0.95,
         "the dense NNGP learns 0 vs 1 at n = 40"),
        (("per_task_and_n", "0 vs 1 n=40", "accuracy", _CNN), ">=", 0.95, "so does the conv one"),
        (("per_task_and_n", "3 vs 8 n=40", "accuracy", _CNN), ">=", 0.85, "and 3 vs 8"),
    ],
    "11_sgd_regularizes": [
        (("part1_identity_max_rel_error", "diabetes (442 x 10)"), "<", 1e-6,
         "early-stopped GD = the spectral filter in float32 (2.5e-7 achieved)"),
        (("part1_identity_max_rel_error", "AR(1) rho=0.95 (300 x 30)"), "<", 1e-6,
         "... on the ill-conditioned design"),
        (("part1_max_flow_over_ridge",), "<", ("part1_bound",),
         "gradient flow's risk within 1.6862 x ridge's (Ali, Kolter & Tibshirani 2019)"),
        (("part1_max_flow_over_ridge",), ">", 1.0, "... and the bound is not trivially met"),
        (("part3_linear_identity_max_rel_error",), "<", 1e-6,
         "GD from any start = minimum norm + the start's null-space part"),
        (("part3_net_test_error_by_scale", "1.0", 0), "<",
         ("part3_net_test_error_by_scale", "10.0", 0),
         "a 10x larger start costs test error; part 2 (2 seeds) decides nothing"),
        (("part3_net_test_error_by_scale", "1.0", 0), "<",
         ("part3_net_test_error_by_scale", "0.1", 0), "so does a 10x smaller one"),
    ],
    "12_survival_as_it_comes": [
        (("A", "hr_ever_exposed"), "<", 1.0,
         "immortal time makes a harmful exposure (HR 2) look protective"),
        (("A", "hr_start_stop"), "in", (1.6, 3.2),
         "(start, stop] rows recover HR 2 roughly; 5 cohorts cannot decide coverage"),
        (("B", "hr_covered"), ">=", 3, "cause-specific hazard ratios inside their intervals"),
        (("B", "cif_max_error"), "<", 0.03, "cumulative incidence near the truth"),
        (("B", "cif_vs_aalen_johansen"), "<", 0.015, "and near Aalen-Johansen"),
        (("C", "c_difference"), ">", 0.05, "neural C above linear C"),
        (("C", "c_difference_p"), "<", 1e-6, "... significantly"),
        (("C", "ibs_neural"), "<", ("C", "ibs_linear"), "lower integrated Brier score"),
    ],
}


def _lookup(metrics, path):
    value = metrics
    for key in path:
        value = value[key]
    return value


def check_claims(name, metrics):
    """The claims of vignette ``name`` that ``metrics`` fails, as readable lines."""
    failures = []
    for path, op, threshold, why in CLAIMS[name]:
        try:
            value = _lookup(metrics, path)
        except (KeyError, IndexError, TypeError):
            failures.append(f"{'/'.join(map(str, path))}: missing from metrics.json ({why})")
            continue
        if isinstance(threshold, tuple) and op not in ("in", "in_all"):
            threshold = _lookup(metrics, threshold)  # another metric of the same run
        values = value if op == "in_all" else [value]
        check = _OPS["in" if op == "in_all" else op]
        bad = [v for v in values if v is None or (isinstance(v, float) and math.isnan(v))
               or not check(v, threshold)]
        if bad:
            failures.append(f"{'/'.join(map(str, path))} = {value!r} is not {op} "
                            f"{threshold!r}: {why}")
    return failures


def test_every_vignette_has_claims():
    stems = {p.stem for p in VIGNETTES}
    assert set(CLAIMS) == stems
    assert all(CLAIMS[s] for s in stems)
    for name, claims in CLAIMS.items():
        for path, op, _threshold, why in claims:
            assert op in _OPS or op == "in_all", (name, path, op)
            assert why, (name, path)


@pytest.mark.slow
@pytest.mark.parametrize("script", VIGNETTES, ids=[p.stem for p in VIGNETTES])
def test_vignette_quick(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(tmp_path.glob("*.md")), "no markdown report written"
    assert list(tmp_path.glob("*.csv")), "no CSV table written"
    assert list(tmp_path.glob("*.png")), "no PNG figure written"
    metrics_file = tmp_path / "metrics.json"
    assert metrics_file.exists(), "no metrics.json written"
    failures = check_claims(script.stem, json.loads(metrics_file.read_text()))
    assert not failures, "\n".join(failures)
