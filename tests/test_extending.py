"""docs/user_guide/extending.rst stays true: every file and name it mentions exists,
and every option of every table sits in each place the page's recipe names."""

import inspect
import pathlib
import re

import pytest

from fastbp import (
    _common_epochs,
    _common_path,
    _convergence,
    _kernel_arguments,
    _kernel_codes,
    _kernels,
    _layer_math,
    _losses,
    _onnx_converters,
    _optimizer_steps,
    _optimizers,
    _warmup,
    estimators,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "user_guide" / "extending.rst").read_text()
MODULES = [
    _common_epochs, _common_path, _convergence, _kernel_arguments, _kernel_codes, _kernels,
    _layer_math, _losses, _onnx_converters, _optimizer_steps, _optimizers, _warmup, estimators,
]  # fmt: skip
# Double-quoted words of the page that name no code: parameters, values, prose.
WORDS = {
    "activation", "loss", "solver", "pre", "state", "hyper", "loss_params", "stopping",
    "nesterov", "rare is None", "rare is not None", "rare=None", "a = f(z)", "'swish'", "'gelu'",
    "out_activation_",
    "to_sklearn", "__init__", "H_*", "P_*",
}  # fmt: skip


def _constant(name, code):
    """The constant of _kernel_codes for the option ``name``: its name in capitals."""
    constant = name.upper()
    assert getattr(_kernel_codes, constant) == code, name
    return constant


def test_every_file_the_page_names_exists():
    paths = set(re.findall(r"``((?:fastbp|tests)/[\w/]+\.py)``", PAGE))
    assert len(paths) >= 10
    missing = [path for path in paths if not (ROOT / path).is_file()]
    assert not missing


def test_every_name_the_page_mentions_exists():
    tokens = set(re.findall(r"``([^`]+)``", PAGE)) - WORDS
    tokens = {token for token in tokens if "/" not in token}
    test_sources = "".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    unknown = [
        token
        for token in tokens
        if not any(hasattr(module, token) for module in MODULES)
        and not hasattr(_optimizers.SGDOptimizer, token)
        and not hasattr(estimators.BackpropClassifier, token)
        and f"def {token}" not in test_sources
        and f"{token} =" not in test_sources
    ]
    assert not unknown, f"extending.rst names what does not exist: {sorted(unknown)}"


@pytest.mark.parametrize("name", list(_kernel_codes.ACTIVATION_CODES))
def test_every_activation_sits_in_each_place_of_its_recipe(name):
    code = _kernel_codes.ACTIVATION_CODES[name]
    constant = _constant(name, code)
    for function in (_layer_math._activate, _layer_math._multiply_by_derivative):
        assert f"code == {constant}:" in inspect.getsource(function.py_func), function
    assert name in _onnx_converters.HIDDEN_ACTIVATIONS
    assert f"'{name}'" in estimators.BackpropClassifier.__doc__
    reference = (ROOT / "tests" / "test_beyond_sklearn.py").read_text()
    assert name in {"identity", "logistic", "tanh", "relu"} or f'"{name}": lambda z' in reference


@pytest.mark.parametrize("name", list(_kernel_codes.LOSS_CODES))
def test_every_loss_sits_in_each_place_of_its_recipe(name):
    code = _kernel_codes.LOSS_CODES[name]
    constant = _constant(name, code)
    output = _kernel_codes.LOSS_OUTPUT_ACTIVATIONS[name]
    assert _kernel_codes.OUTPUT_OF_LOSS[code] == _kernel_codes.OUTPUT_ACTIVATION_CODES[output]
    source = inspect.getsource(_layer_math._output_delta_and_loss.py_func)
    assert f"loss_code == {constant}:" in source
    # the output activation dispatches on the output, never on a loss
    assert constant not in inspect.getsource(_layer_math._output_activate.py_func)
    assert _losses.LOSSES[name].code == code
    assert _losses.LOSSES[name].output_activation == output


@pytest.mark.parametrize("name", list(_optimizers.OPTIMIZERS))
def test_every_optimizer_sits_in_each_place_of_its_recipe(name):
    optimizer = _optimizers.OPTIMIZERS[name]
    code = optimizer.solver_code
    assert optimizer._STATE_ARRAYS == _optimizer_steps.STATE_ARRAYS[code]
    constant = _constant(name, code)
    assert f"solver_code == {constant}:" in inspect.getsource(
        _optimizer_steps.optimizer_step.py_func
    )
    assert f"'{name}'" in estimators.BackpropClassifier.__doc__
