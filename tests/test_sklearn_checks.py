"""scikit-learn's own estimator checks, over each solver and both estimators."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastbp import BackpropClassifier, BackpropRegressor

CONFIGURATIONS = [
    BackpropClassifier(random_state=0),
    BackpropClassifier(solver="sgd", random_state=0),
    BackpropClassifier(solver="lbfgs", random_state=0),
    BackpropClassifier(activation="logistic", random_state=0),
    BackpropRegressor(random_state=0),
    BackpropRegressor(solver="sgd", random_state=0),
    BackpropRegressor(solver="lbfgs", random_state=0),
    BackpropRegressor(loss="poisson", activation="tanh", random_state=0),
]


def expected_failed_checks(estimator):
    if getattr(estimator, "loss", None) == "poisson":
        return {
            "check_regressor_multioutput": (
                "the check draws negative targets without consulting the positive_only "
                "tag, and loss='poisson' rightly refuses them"
            )
        }
    return {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CONFIGURATIONS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
