"""skl2onnx shape calculators and converters for fastbp's estimators.

Importing this module registers them with skl2onnx (it needs skl2onnx); fastbp.onnx
imports it when skl2onnx is imported, or on request.

The graph is the network written with standard ONNX operators: per layer ``MatMul``,
``Add`` and the layer's activation, then the output activation and, for classifiers,
scikit-learn's two outputs (label and probabilities). Every constant is cast to the
input's float type, so a float32 input gives a float32 graph and a float64 input a
float64 graph.
"""

import numpy as np
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (
    BooleanTensorType,
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
from skl2onnx.common.utils_classifier import get_label_classes
from sklearn.utils.validation import check_is_fitted

from fastbp._kernel_codes import LEAKY_RELU_SLOPE
from fastbp.estimators import (
    BackpropClassifier,
    BackpropRegressor,
    MLPClassifier,
    MLPRegressor,
)

# skl2onnx looks converters up by the model's exact class, so each class is
# registered under its own alias, all with the same converter.
CLASSIFIER_ALIASES = {
    BackpropClassifier: "FastbpBackpropClassifier",
    MLPClassifier: "FastbpMLPClassifier",
}
REGRESSOR_ALIASES = {
    BackpropRegressor: "FastbpBackpropRegressor",
    MLPRegressor: "FastbpMLPRegressor",
}

# The options skl2onnx's own MLPClassifier converter takes; its classifier parser
# reads zipmap and output_class_labels, get_label_classes reads nocl.
CLASSIFIER_OPTIONS = {
    "zipmap": [True, False, "columns"],
    "output_class_labels": [False, True],
    "nocl": [True, False],
}

_INPUT_TYPES = [FloatTensorType, DoubleTensorType, Int64TensorType, BooleanTensorType]


# ------------------------------------------------------------------ activations
def _unary(op_type, **attributes):
    """An activation that is one ONNX operator."""

    def emit(graph, name):
        return graph.node(op_type, [name], **attributes)

    return emit


def _identity(graph, name):
    return name


# ONNX Runtime has float32 kernels of LeakyRelu, Elu and Softplus, but no float64
# ones (and LeakyRelu's alpha is a float32 attribute: 0.01 would be off by 2e-8).
# In float64 each is written with operators that have float64 kernels, in the form
# fastbp's kernels compute it.
def _leaky_relu(graph, name):
    if graph.dtype == np.float32:
        return graph.node("LeakyRelu", [name], alpha=LEAKY_RELU_SLOPE)
    # max(x, slope x) is leaky relu for a slope below 1
    scaled = graph.node("Mul", [name, graph.constant("slope", LEAKY_RELU_SLOPE)])
    return graph.node("Max", [name, scaled])


def _elu(graph, name):
    if graph.dtype == np.float32:
        return graph.node("Elu", [name], alpha=1.0)
    # max(x, 0) + (exp(min(x, 0)) - 1): x above 0 (plus exp(0) - 1 = 0 exactly),
    # exp(x) - 1 below
    zero = graph.constant("zero", 0.0)
    negative = graph.node("Exp", [graph.node("Min", [name, zero])])
    negative = graph.node("Sub", [negative, graph.constant("one", 1.0)])
    return graph.node("Add", [graph.node("Max", [name, zero]), negative])


def _softplus(graph, name):
    if graph.dtype == np.float32:
        return graph.node("Softplus", [name])
    # max(x, 0) + log(1 + exp(-|x|)), which cannot overflow
    decay = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [name])])])
    log_term = graph.node("Log", [graph.node("Add", [graph.constant("one", 1.0), decay])])
    return graph.node("Add", [graph.node("Max", [name, graph.constant("zero", 0.0)]), log_term])


def _swish(graph, name):
    # x / (1 + exp(-x)), as the kernels compute it (0 for x -> -inf, x for x -> +inf)
    decay = graph.node("Exp", [graph.node("Neg", [name])])
    return graph.node("Div", [name, graph.node("Add", [graph.constant("one", 1.0), decay])])


# Numerical Recipes' (3rd ed., 6.2.2) Chebyshev coefficients of erfc: with
# t = 2 / (2 + z), erfc(z) = t exp(-z^2 + (c_0 + ty d) / 2 - dd) for z >= 0, d and dd
# from Clenshaw's recurrence in ty = 4t - 2 (relative error below 2e-13, measured
# against scipy over [0, 30]).
_ERFC_COEFFICIENTS = (
    -1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2,
    -9.561514786808631e-3, -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5,
    -2.0278578112534e-5, -1.624290004647e-6, 1.303655835580e-6, 1.5626441722e-8,
    -8.5238095915e-8, 6.529054439e-9, 5.059343495e-9, -9.91364156e-10, -2.27365122e-10,
    9.6467911e-11, 2.394038e-12, -6.886027e-12, 8.94487e-13, 3.13092e-13, -1.12708e-13,
    3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17,
)  # fmt: skip


def _erfc_of_nonnegative(graph, z):
    """erfc(z) for z >= 0 from operators with float64 kernels (see above)."""
    t = graph.node(
        "Div", [graph.constant("two", 2.0), graph.node("Add", [graph.constant("two", 2.0), z])]
    )
    ty = graph.node(
        "Sub", [graph.node("Mul", [graph.constant("four", 4.0), t]), graph.constant("two", 2.0)]
    )
    d, dd = graph.constant("zero", 0.0), graph.constant("zero", 0.0)
    for coefficient in _ERFC_COEFFICIENTS[:0:-1]:
        d, dd = graph.node("Add", [graph.node("Sub", [graph.node("Mul", [ty, d]), dd]),
                                   graph.constant("cof", coefficient)]), d  # fmt: skip
    first = graph.node(
        "Add", [graph.constant("cof", _ERFC_COEFFICIENTS[0]), graph.node("Mul", [ty, d])]
    )
    exponent = graph.node("Sub", [
        graph.node("Sub", [graph.node("Mul", [graph.constant("half", 0.5), first]),
                           graph.node("Mul", [z, z])]),
        dd,
    ])  # fmt: skip
    return graph.node("Mul", [t, graph.node("Exp", [exponent])])


def _gelu(graph, name):
    # PyTorch's exact GELU, x (1 + erf(x / sqrt(2))) / 2, as the kernels compute it.
    # ONNX Runtime's Erf has a float32 kernel only: in float64, 1 + erf(y) is written
    # as 1 + sign(y) (1 - erfc(|y|)).
    half_x = graph.node("Mul", [name, graph.constant("half", 0.5)])
    scaled = graph.node("Mul", [name, graph.constant("sqrt_half", 0.7071067811865476)])
    if graph.dtype == np.float32:
        one_plus_erf = graph.node("Add", [graph.constant("one", 1.0), graph.node("Erf", [scaled])])
    else:
        erfc = _erfc_of_nonnegative(graph, graph.node("Abs", [scaled]))
        erf_of_size = graph.node("Sub", [graph.constant("one", 1.0), erfc])
        erf = graph.node("Mul", [graph.node("Sign", [scaled]), erf_of_size])
        one_plus_erf = graph.node("Add", [graph.constant("one", 1.0), erf])
    return graph.node("Mul", [half_x, one_plus_erf])


#: Hidden-layer activations, by fastbp's name. Elu's alpha=1 and LeakyRelu's alpha
#: (0.01 in float32) are fastbp's functions in float32.
HIDDEN_ACTIVATIONS = {
    "identity": _identity,
    "logistic": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "relu": _unary("Relu"),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softplus": _softplus,
    "swish": _swish,
    "gelu": _gelu,
}

#: Output activations, by ``out_activation_``.
OUTPUT_ACTIVATIONS = {
    "identity": _identity,
    "exp": _unary("Exp"),
    "softmax": _unary("Softmax", axis=1),
    "logistic": _unary("Sigmoid"),
}


# ------------------------------------------------------------------------ graph
class _Graph:
    """Adds nodes and constants to skl2onnx's container with unique names.

    Parameters
    ----------
    scope, container : skl2onnx's Scope and ModelComponentContainer
    dtype : numpy dtype
        The float type of the graph (float32 or float64).
    """

    def __init__(self, scope, container, dtype):
        self.scope = scope
        self.container = container
        self.dtype = np.dtype(dtype)
        self.proto_type = TensorProto.DOUBLE if self.dtype == np.float64 else TensorProto.FLOAT

    def node(self, op_type, inputs, output=None, **attributes):
        """Add one node; return the name of its output."""
        if output is None:
            output = self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(
            op_type,
            inputs,
            output,
            name=self.scope.get_unique_operator_name(op_type),
            **attributes,
        )
        return output

    def constant(self, hint, value):
        """Add an initializer holding ``value`` in the graph's float type; return its
        name."""
        name = self.scope.get_unique_variable_name(hint)
        array = np.ascontiguousarray(value, dtype=self.dtype)
        # A TensorProto keeps the values as raw bytes: large weight matrices
        # serialise without a detour through Python lists.
        self.container.add_initializer(name, None, None, numpy_helper.from_array(array, name))
        return name


def _float_type(variable):
    """numpy float type of the graph for an input variable: float64 stays float64,
    anything else (float32, int64, bool) computes in float32, as skl2onnx does."""
    return np.float64 if isinstance(variable.type, DoubleTensorType) else np.float32


def _float_tensor_type(variable):
    """skl2onnx's tensor type of the graph's float type."""
    return DoubleTensorType if _float_type(variable) == np.float64 else FloatTensorType


def _input_as_float(graph, variable):
    """The input, cast to the graph's float type if it is not already."""
    if isinstance(variable.type, (FloatTensorType, DoubleTensorType)):
        return variable.full_name
    return graph.node("Cast", [variable.full_name], to=graph.proto_type)


def _network_output(graph, model, input_name):
    """Add the forward pass; return the name of the output layer's activations.

    The fitted network is read once, with the options it was fitted with (what
    ``predict`` uses). Dropout only acts in training, so inference is the plain
    network."""
    network = model._fitted_network()
    hidden = list(network.activations)
    activation_names = [*hidden, network.out_activation]
    tables = [HIDDEN_ACTIVATIONS] * len(hidden) + [OUTPUT_ACTIVATIONS]
    layer = input_name
    for coef, intercept, name, table in zip(
        network.coefs, network.intercepts, activation_names, tables
    ):
        product = graph.node("MatMul", [layer, graph.constant("coefficient", coef)])
        layer = graph.node("Add", [product, graph.constant("intercept", intercept)])
        layer = table[name](graph, layer)
    return layer, network


# ------------------------------------------------------------------- classifier
def _label_classes(scope, model):
    """The labels the graph outputs, and their ONNX type (int64 or string).

    As skl2onnx does for scikit-learn's classifiers: integer, boolean and integral
    float labels become int64; strings stay strings. With option ``nocl`` the labels
    are the class indices.
    """
    classes = np.asarray(get_label_classes(scope, model))
    # Float labels are integral: fit calls any others continuous and refuses them.
    if classes.dtype.kind in "biuf":
        return classes.astype(np.int64), Int64TensorType
    if all(isinstance(label, str) for label in classes):
        return classes.astype(object), StringTensorType
    raise ValueError(
        f"ONNX labels are integers or strings; got class labels of types "
        f"{sorted({type(label).__name__ for label in classes})}."
    )


def _is_multilabel(model):
    return model._label_binarizer.y_type_ == "multilabel-indicator"


def classifier_shapes(operator):
    """skl2onnx shape calculator of BackpropClassifier: label and probabilities."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    model = operator.raw_operator
    check_is_fitted(model)  # skl2onnx calls the shape calculator first
    n_rows = operator.inputs[0].get_first_dimension()
    _, label_type = _label_classes(operator.scope_inst, model)
    n_columns = model.n_outputs_ if _is_multilabel(model) else len(model.classes_)
    label_shape = [n_rows, n_columns] if _is_multilabel(model) else [n_rows]
    operator.outputs[0].type = label_type(label_shape)
    operator.outputs[1].type = _float_tensor_type(operator.inputs[0])([n_rows, n_columns])


def convert_classifier(scope, operator, container):
    """skl2onnx converter of BackpropClassifier: ``predict`` and ``predict_proba``.

    Binary targets: one logistic output p, probabilities ``[1 - p, p]``.
    Multiclass: softmax probabilities. Multilabel: one logistic output per label,
    label ``p > 0.5`` as int64. Logistic outputs are clipped one rounding step
    inside (0, 1), as ``predict_proba`` clips them.
    """
    model = operator.raw_operator
    graph = _Graph(scope, container, _float_type(operator.inputs[0]))
    output, network = _network_output(graph, model, _input_as_float(graph, operator.inputs[0]))
    label_name, probability_name = (variable.full_name for variable in operator.outputs)

    if network.out_activation == "logistic":
        epsneg = np.finfo(graph.dtype).epsneg
        output = graph.node("Max", [output, graph.constant("smallest", epsneg)])
        output = graph.node("Min", [output, graph.constant("largest", 1 - epsneg)])

    if _is_multilabel(model):
        graph.node("Identity", [output], probability_name)
        # LabelBinarizer.inverse_transform's threshold for 0/1 targets.
        positive = graph.node("Greater", [output, graph.constant("threshold", 0.5)])
        graph.node("Cast", [positive], label_name, to=TensorProto.INT64)
        return

    if network.out_activation == "logistic":  # binary: p is the positive class's
        negative = graph.node("Sub", [graph.constant("one", 1.0), output])
        graph.node("Concat", [negative, output], probability_name, axis=1)
    else:
        graph.node("Identity", [output], probability_name)
    # argmax of [1 - p, p] is 1 exactly when p > 0.5 (1 - p is exact there), as
    # predict decides the binary case; ties go to the first class in both.
    index = graph.node("ArgMax", [probability_name], axis=1, keepdims=0)
    classes, label_type = _label_classes(scope, model)
    if label_type is StringTensorType:
        onnx_type, values = TensorProto.STRING, [label.encode("utf-8") for label in classes]
    else:
        onnx_type, values = TensorProto.INT64, classes
    # Gather on an int64 table keeps every integer label (skl2onnx's own MLP
    # converter goes through int32).
    classes_name = scope.get_unique_variable_name("classes")
    container.add_initializer(classes_name, onnx_type, [len(classes)], values)
    graph.node("Gather", [classes_name, index], label_name, axis=0)


# -------------------------------------------------------------------- regressor
def regressor_shapes(operator):
    """skl2onnx shape calculator of BackpropRegressor: one (n_rows, n_outputs) tensor."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    check_is_fitted(operator.raw_operator)  # skl2onnx calls the shape calculator first
    n_rows = operator.inputs[0].get_first_dimension()
    n_outputs = operator.raw_operator.n_outputs_
    operator.outputs[0].type = _float_tensor_type(operator.inputs[0])([n_rows, n_outputs])


def convert_regressor(scope, operator, container):
    """skl2onnx converter of BackpropRegressor: ``predict`` as an (n_rows, n_outputs)
    tensor (identity output, or exp for the Poisson loss)."""
    model = operator.raw_operator
    graph = _Graph(scope, container, _float_type(operator.inputs[0]))
    output, _ = _network_output(graph, model, _input_as_float(graph, operator.inputs[0]))
    graph.node("Identity", [output], operator.outputs[0].full_name)


def register():
    """Register fastbp's estimators with skl2onnx (see fastbp.onnx)."""
    for estimator_class, alias in CLASSIFIER_ALIASES.items():
        update_registered_converter(
            estimator_class,
            alias,
            classifier_shapes,
            convert_classifier,
            options=CLASSIFIER_OPTIONS,
        )
    for estimator_class, alias in REGRESSOR_ALIASES.items():
        update_registered_converter(estimator_class, alias, regressor_shapes, convert_regressor)


# Registered on import, as skl2onnx's own converter modules are (see _load_converters
# in fastbp.onnx for why).
register()
