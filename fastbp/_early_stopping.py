"""The convergence rule of the stochastic solvers, and early stopping's held-out set.

scikit-learn's rule: after each epoch, count the epochs in a row whose training loss
(or, with ``early_stopping``, validation score) did not improve on the best so far by
``tol``; training stops (or the adaptive schedule shrinks the step) when the count
exceeds ``n_iter_no_change``. The state lives in the estimator's fitted attributes
(``best_loss_``, ``validation_scores_``, ``best_validation_score_``, ...), as in
scikit-learn, so a warm start continues it.
"""

from numbers import Real

import numpy as np
from sklearn.base import is_classifier

from fastbp._convergence import no_improvement_rule
from fastbp._logging import LOGGER
from fastbp._losses import loss_parameters, output_loss


class ValidationSet:
    """The held-out data early stopping scores each epoch, and how it scores it.

    Built by :meth:`split`, which holds it out exactly as scikit-learn does.
    """

    def __init__(self, X, y, y_encoded, sample_weight, scorer):
        self.X = X
        self.y = y
        self.y_encoded = np.asarray(y_encoded, dtype=np.float64)
        self.sample_weight = sample_weight
        self.scorer = scorer

    @classmethod
    def split(cls, estimator, X, y, sample_weight):
        """Hold out ``validation_fraction`` of the data (stratified for binary
        problems only, as scikit-learn does).

        Returns
        -------
        X_train, y_train, sample_weight_train, validation : the training part and
        the held-out set.
        """
        from sklearn.model_selection import train_test_split  # ~0.1 s: only when used

        stratify = y if is_classifier(estimator) and estimator.n_outputs_ == 1 else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        split = train_test_split(
            *arrays,
            random_state=estimator._random_state,
            test_size=estimator.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, y_train, y_val = split[:4]
        sample_weight_train, sample_weight_val = (
            (None, None) if sample_weight is None else split[4:]
        )
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if sample_weight_val is not None and not sample_weight_val.sum() > 0:
            raise ValueError(
                "Sample weights must contain at least one non-zero number: the "
                "validation part held out by the early-stopping split has zero total weight. "
                "Change validation_fraction or random_state, or give those samples weight."
            )
        if sample_weight_train is not None and not sample_weight_train.sum() > 0:
            raise ValueError(
                "Sample weights must contain at least one non-zero number: the training "
                "part left after the early-stopping split has zero total weight."
            )
        y_val_encoded = y_val
        if is_classifier(estimator):
            y_val = estimator._label_binarizer.inverse_transform(y_val)
        scorer = None
        if estimator.scoring is not None and estimator.scoring != "loss":
            from sklearn.metrics import check_scoring

            scorer = check_scoring(estimator, scoring=estimator.scoring)
        validation = cls(X_val, y_val, y_val_encoded, sample_weight_val, scorer)
        return X_train, y_train, sample_weight_train, validation

    def evaluate(self, estimator, model):
        """The validation loss and score (higher is better) of ``model``, the network
        ``estimator`` is training. One forward pass gives both the loss and the
        default score."""
        outputs = estimator._forward_pass_fast(self.X, model, check_input=False)
        loss = output_loss(
            outputs, self.y_encoded, self.sample_weight, estimator._loss_name(),
            loss_parameters(estimator),
        )  # fmt: skip
        weights = {} if self.sample_weight is None else {"sample_weight": self.sample_weight}
        if estimator.scoring == "loss":
            score = -loss
        elif self.scorer is not None:
            score = _checked_score(
                self.scorer(estimator._trainee(model), self.X, self.y, **weights),
                estimator.scoring,
            )
        elif not np.isfinite(outputs).all():
            score = np.nan
        else:
            y_pred = estimator._decode(outputs, model)
            score = estimator._score_function(self.y, y_pred, sample_weight=self.sample_weight)
        return loss, score


def _checked_score(score, scoring):
    """The score as a float, or a TypeError naming ``scoring``: the convergence rule
    compares scores, so one must be a single real number."""
    if isinstance(score, np.ndarray) and score.ndim == 0:
        score = score[()]
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, Real):
        raise TypeError(
            f"scoring={scoring!r} must return a single real number (higher is better); it "
            f"returned {type(score).__name__} {score!r:.80}."
        )
    return float(score)


def update_no_improvement_count(estimator, model, validation):
    """Apply the rule to the epoch just recorded: update the count and the best loss
    or score (with a validation set, keep the best score's weights)."""
    if validation is None:
        if estimator.best_loss_ is None:  # a warm start after fits with early stopping
            estimator.best_loss_ = np.inf
        estimator._no_improvement_count, estimator.best_loss_ = no_improvement_rule(
            estimator.loss_curve_[-1], estimator.best_loss_, estimator.tol,
            estimator._no_improvement_count, 0.0,
        )  # fmt: skip
        return
    val_loss, score = validation.evaluate(estimator, model)
    estimator.validation_loss_curve_.append(val_loss)
    estimator.validation_scores_.append(score)
    if estimator.verbose:  # scikit-learn's line, for any truthy verbose
        print("Validation score: %f" % score)
    LOGGER.debug(
        "epoch %d: validation score %f, validation loss %.8f", estimator.n_iter_, score, val_loss
    )
    # The same rule on the negated score (higher is better): negation is exact.
    best_score = estimator.best_validation_score_
    estimator._no_improvement_count, negated_best = no_improvement_rule(
        -score, -best_score, estimator.tol, estimator._no_improvement_count, 0.0
    )
    if negated_best != -best_score:
        estimator.best_validation_score_ = score
        estimator._best_params = model.params.copy()


def no_improvement_message(estimator, validation):
    """scikit-learn's message when the rule fires."""
    if validation is not None:
        return "Validation score did not improve more than tol=%f for %d consecutive epochs." % (
            estimator.tol,
            estimator.n_iter_no_change,
        )
    return "Training loss did not improve more than tol=%f for %d consecutive epochs." % (
        estimator.tol,
        estimator.n_iter_no_change,
    )
