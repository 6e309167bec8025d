"""The integer codes and vector layouts shared by Python and the compiled kernels.

Options (activation, loss, solver) cross into the kernels as integer codes and are
dispatched with ``if`` there, so adding an option never adds a specialisation; the
float vectors ``hyper``, ``loss_params`` and ``stopping`` are indexed by the
constants below. The Python side of each option is its row in
:data:`fastbp._losses.LOSSES` or :data:`fastbp._optimizers.OPTIMIZERS`.
"""

# Hidden-layer activations.
IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
SWISH = 7  # x * sigmoid(x), also called SiLU
GELU = 8  # x * Phi(x), Phi the standard normal CDF (PyTorch's exact, erf form)
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "softplus": SOFTPLUS,
    "swish": SWISH,
    "gelu": GELU,
}
LEAKY_RELU_SLOPE = 0.01

# Losses. Each is paired with its canonical output activation (identity, exp,
# softmax, logistic), which makes the output delta simply ``prediction - target``
# (absolute error, Huber and quantile, with an identity output, take that
# difference's sign, its clipped value, and its sign weighted by the quantile). The
# Python side of each loss (its parameters, its numpy formula, its scikit-learn
# counterpart) is its row in fastbp._losses.LOSSES.
SQUARED_ERROR = 0
POISSON = 1
LOG_LOSS = 2
BINARY_LOG_LOSS = 3
ABSOLUTE_ERROR = 4
HUBER = 5
QUANTILE = 6
LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "poisson": POISSON,
    "log_loss": LOG_LOSS,
    "binary_log_loss": BINARY_LOG_LOSS,
    "absolute_error": ABSOLUTE_ERROR,
    "huber": HUBER,
    "quantile": QUANTILE,
}

# Output activations: a loss names its partner below, and the kernels dispatch on
# the partner, so a new loss with a known output activation adds no kernel branch
# for it (only its delta and value, in fastbp._layer_math._output_delta_and_loss).
IDENTITY_OUTPUT = 0
EXP_OUTPUT = 1
SOFTMAX_OUTPUT = 2
LOGISTIC_OUTPUT = 3
OUTPUT_ACTIVATION_CODES = {
    "identity": IDENTITY_OUTPUT,
    "exp": EXP_OUTPUT,
    "softmax": SOFTMAX_OUTPUT,
    "logistic": LOGISTIC_OUTPUT,
}
#: Each loss's output activation (``out_activation_``), by loss name.
LOSS_OUTPUT_ACTIVATIONS = {
    "squared_error": "identity",
    "poisson": "exp",
    "log_loss": "softmax",
    "binary_log_loss": "logistic",
    "absolute_error": "identity",
    "huber": "identity",
    "quantile": "identity",
}
#: The same as codes, indexed by loss code (what the kernels read).
OUTPUT_OF_LOSS = tuple(
    OUTPUT_ACTIVATION_CODES[LOSS_OUTPUT_ACTIVATIONS[name]]
    for name, _ in sorted(LOSS_CODES.items(), key=lambda item: item[1])
)

# Optimizers (the Python side of each is its class in fastbp._optimizers.OPTIMIZERS).
SGD = 0
ADAM = 1
ADAMW = 2  # Adam with decoupled weight decay (Loshchilov & Hutter, 2019)

# Layout of the ``hyper`` vector handed to the epoch kernel (one dtype-typed array
# instead of many scalars keeps float32 arithmetic in float32).
H_LEARNING_RATE = 0
H_MOMENTUM = 1
H_BETA_1 = 2
H_BETA_2 = 3
H_EPSILON = 4
H_ALPHA = 5
H_WEIGHT_DECAY = 6
N_HYPER = 7

# Layout of the ``loss_params`` vector: the parameters of the losses that have one.
P_HUBER_DELTA = 0
P_QUANTILE = 1
N_LOSS_PARAMS = 2

# Layout of the float64 ``stopping`` vector of run_epochs: whether to check the
# convergence rule between epochs, and the rule's state and parameters.
S_CHECK = 0
S_BEST_LOSS = 1
S_TOL = 2
S_N_ITER_NO_CHANGE = 3
S_NO_IMPROVEMENT_COUNT = 4
N_STOPPING = 5
