"""scikit-learn's own estimator checks, over each solver and both estimators."""

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks

from fastbp import BackpropClassifier, BackpropRegressor, MLPClassifier, MLPRegressor

CONFIGURATIONS = [
    *(
        Estimator(solver=solver, random_state=0)
        for Estimator in (BackpropClassifier, BackpropRegressor)
        for solver in ["sgd", "adam"]
    ),
    # L-BFGS runs up to max_iter=200 iterations of 15,000 evaluations on each check's
    # data (two thirds of these checks' time, most in the sparse-input checks); 50
    # converge as far as every check needs
    *(
        Estimator(solver="lbfgs", max_iter=50, random_state=0)
        for Estimator in (BackpropClassifier, BackpropRegressor)
    ),
    BackpropClassifier(activation="logistic", random_state=0),
    BackpropRegressor(loss="poisson", activation="tanh", random_state=0),
    # the features beyond scikit-learn keep the estimators conformant too; adamw (adam
    # with decoupled weight decay: the same Python path, another step) runs here
    BackpropClassifier(
        solver="adamw", dropout=0.2, activation="elu", max_grad_norm=1.0, random_state=0
    ),
    BackpropRegressor(
        solver="adamw",
        loss="huber",
        activation="softplus",
        learning_rate="cosine",
        random_state=0,
    ),  # fmt: skip
]

# scikit-learn's names are the same classes renamed (tests/test_sklearn_names.py checks
# that they fit the same weights): what they add is the class itself, so the checks of
# the class (construction, parameters, cloning, pickling, repr, tags) run on them.
CLASS_CHECKS = (
    "estimator_repr", "cloneable", "pickle", "get_params", "set_params", "default_constructible",
    "no_attributes_set_in_init", "init_or_set_params", "tags", "mixin_order",
    "overwrite", "fit_returns_self", "unfitted", "pipeline_consistency",
)  # fmt: skip


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


def _class_checks():
    for alias in (MLPClassifier(random_state=0), MLPRegressor(random_state=0)):
        for estimator, check in estimator_checks_generator(alias):
            name = getattr(check, "func", check).__name__
            if any(word in name for word in CLASS_CHECKS):
                yield pytest.param(estimator, check, id=f"{type(alias).__name__}-{name}")


@pytest.mark.parametrize("estimator, check", list(_class_checks()))
def test_sklearn_class_checks_on_the_sklearn_names(estimator, check):
    check(estimator)
