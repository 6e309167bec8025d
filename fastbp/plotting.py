"""Plots in scikit-learn's Display style."""

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.validation import check_is_fitted


class LossCurveDisplay:
    """Training loss per epoch, with the validation score and loss when recorded.

    Build it with :meth:`from_estimator`; :meth:`plot` draws it (matplotlib is an
    optional dependency: ``pip install "fastbp[plot]"``).

    Parameters
    ----------
    loss_curve : list of float
        Training loss per epoch (``loss_curve_``).
    validation_scores : list of float or None, default=None
        Validation score per epoch (``validation_scores_``), drawn on a second axis.
    validation_loss_curve : list of float or None, default=None
        Validation loss per epoch (``validation_loss_curve_``), beside the training
        loss.
    estimator_name : str or None, default=None
        Name used in the legend.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes of the losses.
    score_ax_ : matplotlib Axes or None
        The twin axes of the validation score.
    figure_ : matplotlib Figure
    line_ : matplotlib Line2D
        The training loss.
    validation_loss_line_, validation_score_line_ : matplotlib Line2D or None

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from fastbp import BackpropClassifier, LossCurveDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = BackpropClassifier(early_stopping=True, max_iter=30, random_state=0)
    >>> display = LossCurveDisplay.from_estimator(clf.fit(X / 16, y))
    >>> display.ax_.get_xlabel()
    'epoch'
    """

    def __init__(self, *, loss_curve, validation_scores=None, validation_loss_curve=None,
                 estimator_name=None):  # fmt: skip
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.validation_loss_curve = validation_loss_curve
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **kwargs):
        """Plot the curves a fitted sgd or adam estimator recorded.

        Parameters
        ----------
        estimator : fitted BackpropClassifier or BackpropRegressor
            Trained with solver 'sgd' or 'adam' (L-BFGS records no curve).
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        name : str, default=None
            Legend label; the estimator's class name when None.
        **kwargs : dict
            Passed to ``matplotlib.pyplot.plot`` for the training loss.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        if getattr(estimator, "loss_curve_", None) is None:
            raise ValueError(
                f"{type(estimator).__name__} with solver={estimator.solver!r} records no "
                "loss curve; fit with solver='sgd' or 'adam'."
            )
        display = cls(
            loss_curve=list(estimator.loss_curve_),
            validation_scores=getattr(estimator, "validation_scores_", None),
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            estimator_name=name or type(estimator).__name__,
        )
        return display.plot(ax=ax, **kwargs)

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        name : str, default=None
            Legend label of the training loss.
        **kwargs : dict
            Passed to ``matplotlib.pyplot.plot`` for the training loss.

        Returns
        -------
        display : LossCurveDisplay
            This object, with the matplotlib artists as attributes.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        name = name or self.estimator_name or "model"
        epochs = np.arange(1, len(self.loss_curve) + 1)
        (self.line_,) = ax.plot(epochs, self.loss_curve, label=f"{name} training loss", **kwargs)
        self.validation_loss_line_ = None
        if self.validation_loss_curve:
            (self.validation_loss_line_,) = ax.plot(
                epochs[: len(self.validation_loss_curve)],
                self.validation_loss_curve,
                linestyle="--",
                label="validation loss",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        handles = [line for line in (self.line_, self.validation_loss_line_) if line is not None]
        self.score_ax_ = None
        self.validation_score_line_ = None
        if self.validation_scores:
            self.score_ax_ = ax.twinx()
            (self.validation_score_line_,) = self.score_ax_.plot(
                epochs[: len(self.validation_scores)],
                self.validation_scores,
                color="tab:green",
                label="validation score",
            )
            self.score_ax_.set_ylabel("validation score")
            handles.append(self.validation_score_line_)
        # on the top axes, so that the twin axes' lines do not cover the legend
        (self.score_ax_ or ax).legend(handles=handles, loc="center right")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
