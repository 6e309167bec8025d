"""Training on data bigger than memory: ``fit_chunks`` streams row chunks through
``partial_fit``, one chunk in memory at a time."""

from collections.abc import Mapping
from contextlib import nullcontext
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state


class DaskChunks:
    """The row blocks of a dask array pair, as a sequence of numpy ``(X, y)`` pairs.

    Each item is computed when it is asked for, so only one chunk is in memory.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    y : dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
    """

    def __init__(self, X, y):
        for name, array in (("X", X), ("y", y)):
            if not all(hasattr(array, attribute) for attribute in ("rechunk", "blocks", "ndim")):
                raise TypeError(
                    f"DaskChunks takes dask arrays; {name} is a {type(array).__name__}. For a "
                    "dask DataFrame, pass its .to_dask_array(lengths=True)."
                )
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimension(s).")
        X = X.rechunk({1: -1})  # whole rows in each block
        self.X = X
        self.y = y.rechunk({0: X.chunks[0]} if y.ndim == 1 else {0: X.chunks[0], 1: -1})

    def __len__(self):
        return len(self.X.chunks[0])

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        return np.asarray(self.X.blocks[index].compute()), np.asarray(
            self.y.blocks[index].compute()
        )


def fit_chunks(estimator, chunks, *, epochs=1, classes=None, shuffle=True, random_state=None):
    """Train ``estimator`` over a sequence of row chunks with ``partial_fit``.

    Each epoch visits every chunk once, in a new random order when ``shuffle``;
    each visit is one ``partial_fit`` call (one epoch of minibatches over that chunk).
    Memory stays bounded by one chunk plus the model.

    Parameters
    ----------
    estimator : BackpropClassifier or BackpropRegressor
        With solver 'sgd' or 'adam'. Trained in place (and returned).
    chunks : sequence, callable or iterable of (X, y) pairs
        One of:

        * a sequence (anything with ``len`` and integer indexing, loading each chunk
          on demand if it likes; ``DaskChunks(X, y)`` does so for dask arrays),
          visited in a new random order every epoch when ``shuffle``;
        * a callable that returns a fresh iterable of chunks for each epoch (for
          instance a generator function that reads files), visited in its order;
        * a one-pass iterable such as a generator, for ``epochs=1`` only.
    epochs : int, default=1
        Passes over all the chunks.
    classes : array-like, default=None
        All the class labels (classifiers; required unless the estimator was already
        trained, or the targets are a multilabel indicator matrix).
    shuffle : bool, default=True
        Visit the chunks in a new random order every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the chunk order.

    Returns
    -------
    estimator : BackpropClassifier or BackpropRegressor
        The estimator passed in, trained. If a chunk fails (bad data, say), the
        estimator is left as it was before the call.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import BackpropClassifier, fit_chunks
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(1000, 5)); y = (X[:, 0] > 0).astype(int)
    >>> chunks = [(X[i:i + 250], y[i:i + 250]) for i in range(0, 1000, 250)]
    >>> clf = fit_chunks(BackpropClassifier(random_state=0), chunks, epochs=5,
    ...                  classes=[0, 1], random_state=0)
    >>> clf.score(X, y) > 0.9
    True
    """
    if isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, Integral):
        raise TypeError(f"epochs must be an integer, got {epochs!r}.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if isinstance(chunks, Mapping):
        raise TypeError(
            "chunks is a mapping: pass a sequence of (X, y) pairs, e.g. list(chunks.values())."
        )
    from fastbp._base import _BaseBackprop
    from fastbp._fitted import training

    # A fastbp estimator trains a copy, committed when every chunk went through: a
    # failure part-way leaves the estimator as it was (and other threads predict
    # with the old model meanwhile).
    whole_call = training(estimator) if isinstance(estimator, _BaseBackprop) else nullcontext()
    with whole_call as trainee:
        trainee = estimator if trainee is None else trainee
        first = True
        for chunk_iterable in _epochs_of_chunks(chunks, epochs, shuffle, random_state):
            for chunk in chunk_iterable:
                X_chunk, y_chunk = _pair(chunk)
                if first and classes is not None:
                    trainee.partial_fit(X_chunk, y_chunk, classes=classes)
                else:
                    trainee.partial_fit(X_chunk, y_chunk)
                first = False
            if first:
                raise ValueError("chunks is empty: there is nothing to train on.")
    return estimator


def _pair(chunk):
    """A chunk as ``(X, y)``, or a TypeError that says what a chunk must be."""
    if not isinstance(chunk, (tuple, list)) or len(chunk) != 2:
        raise TypeError(
            f"Each chunk must be an (X, y) pair; got a {type(chunk).__name__}"
            + (f" of length {len(chunk)}" if hasattr(chunk, "__len__") else "")
            + "."
        )
    return chunk


def _epochs_of_chunks(chunks, epochs, shuffle, random_state):
    """One iterable of (X, y) chunks per epoch, whatever form ``chunks`` takes."""
    if hasattr(chunks, "__len__") and hasattr(chunks, "__getitem__"):
        rng = check_random_state(random_state)
        order = np.arange(len(chunks))
        for _ in range(epochs):
            if shuffle:
                rng.shuffle(order)
            yield (chunks[int(index)] for index in order)
    elif callable(chunks):
        for _ in range(epochs):
            yield chunks()
    elif hasattr(chunks, "__iter__"):
        if epochs > 1:
            raise ValueError(
                f"chunks is a one-pass iterable ({type(chunks).__name__}), which cannot "
                f"be replayed for epochs={epochs}: pass a sequence, or a callable that "
                "returns a fresh iterable of chunks for each epoch (for instance the "
                "generator function itself, not the generator it returned)."
            )
        yield chunks
    else:
        raise TypeError(
            "chunks must be a sequence of (X, y) pairs, a callable returning an iterable "
            f"of them for each epoch, or (for epochs=1) an iterable; got "
            f"{type(chunks).__name__}."
        )
