"""scikit-learn's own estimator checks, over each solver and both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastbp import BackpropClassifier, BackpropRegressor, MLPClassifier, MLPRegressor
from fastbp._optimizers import OPTIMIZERS

CONFIGURATIONS = [
    *(
        Estimator(solver=solver, random_state=0)
        for Estimator in (BackpropClassifier, BackpropRegressor)
        for solver in [*OPTIMIZERS, "lbfgs"]
    ),
    BackpropClassifier(activation="logistic", random_state=0),
    BackpropRegressor(loss="poisson", activation="tanh", random_state=0),
    # the features beyond scikit-learn keep the estimators conformant too
    BackpropClassifier(dropout=0.2, activation="elu", max_grad_norm=1.0, random_state=0),
    BackpropRegressor(
        loss="huber", activation="softplus", learning_rate="cosine", random_state=0
    ),  # fmt: skip
    # scikit-learn's names: the same classes renamed, so one default configuration each
    MLPClassifier(random_state=0),
    MLPRegressor(random_state=0),
]


def expected_failed_checks(estimator):
    if getattr(estimator, "dropout", 0.0):
        reason = (
            "dropout draws a random mask per row: a row repeated twice gets two masks, "
            "a row of weight 2 one, so the two fits differ by design"
        )
        return {
            "check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason,
        }
    if getattr(estimator, "loss", None) == "poisson":
        return {
            "check_regressor_multioutput": (
                "the check draws negative targets without consulting the positive_only "
                "tag, and loss='poisson' rightly refuses them"
            )
        }
    return {}


@parametrize_with_checks(CONFIGURATIONS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
