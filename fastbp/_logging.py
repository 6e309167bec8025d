"""fastbp's own progress detail, on the standard ``logging`` logger ``"fastbp"``.

``verbose`` prints exactly scikit-learn's lines, so that a script written for
scikit-learn prints the same text. What fastbp can tell beyond them (each epoch's
time, the validation loss, each L-BFGS iteration's loss) goes to this logger at
DEBUG level, where it cannot mix with them: switch it on with
``logging.basicConfig(level=logging.DEBUG)`` or, for fastbp alone,
``logging.getLogger("fastbp").setLevel(logging.DEBUG)`` plus a handler.
"""

import logging

LOGGER = logging.getLogger("fastbp")


def detail_wanted():
    """Whether anyone listens to fastbp's DEBUG detail (checked once per fit: the
    stochastic loop then returns to Python after every epoch, to time it)."""
    return LOGGER.isEnabledFor(logging.DEBUG)
