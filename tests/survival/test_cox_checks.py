"""scikit-learn's estimator checks for NeuralCoxRegressor.

The checks feed 1-D targets; NeuralCoxRegressor reads a 1-D y as event times with every event
observed (lifelines' convention without an event column), and its ``positive_only`` tag makes
the checks draw positive times. ``score`` is Harrell's concordance.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from neurostat import NeuralCoxRegressor

_EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data":
        "Efron's ties: an integer weight is not a repeated row (repeats are tied events that "
        "Efron's approximation splits; R's coxph weights them the same way), and minibatch "
        "risk sets differ between weighted and repeated rows; exact for ties='breslow' with "
        "solver='lbfgs' (the first estimator here)",
}

ESTIMATORS = [
    # alpha > 0: the check's data have more features than rows (no unpenalized maximum)
    NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs", ties="breslow", alpha=0.01),
    NeuralCoxRegressor(hidden_layer_sizes=(4,), max_iter=20, learning_rate_init=1e-2,
                       random_state=0),
]


def _expected(est):
    return {} if est.ties == "breslow" and est.solver == "lbfgs" else dict(_EXPECTED)


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_sklearn_compatible(estimator, check):
    check(estimator)
