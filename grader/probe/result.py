"""The data an untrusted probe hands back: plain values, never live objects.

The probe imports the student's code in a sandboxed process and reports, for every API function, what
calling it produced. Nothing here is trusted: the checker validates every value before it scores it.
"""

from dataclasses import dataclass, field

# Outcome statuses, in the words a report uses.
OK = "ok"                      # the function returned; `value` holds what it returned (as data)
ERROR = "error"                # the function raised; `message` says which exception and where
MISSING = "missing"            # the submission does not define the function
NOT_IMPLEMENTED = "not_implemented"  # the function raised NotImplementedError (an untouched stub)
TIMEOUT = "timeout"            # the function ran past its time limit; the probe was killed
CRASHED = "crashed"            # the process died in the function (exit, signal, memory limit)
NOT_RUN = "not_run"            # the probe never reached the function (e.g. the import failed)

# Every function the probe is asked about, in the order it runs them.
SHAPE_MATH = ("conv_output_size", "pool_output_size", "conv_params", "dense_params", "head_params")
BUILDERS = ("build_augmentation", "build_cnn", "build_cnn_v2")
FILTERS = ("first_layer_filters", "feature_maps")
API = SHAPE_MATH + BUILDERS + FILTERS


@dataclass
class FunctionOutcome:
    """What happened when the probe called one API function.

    `value` by function:
      shape math: a list with one entry per requested call, in request order; each entry is
        {"ok": <returned value as JSON>} or {"error": "<ExceptionType>: <message>"}.
      build_augmentation: {"config": <model.to_json() string>}.
      build_cnn / build_cnn_v2: {"config": <to_json() of build_X()>, "config_num_classes": <to_json() of
        build_X(num_classes=REQUEST_NUM_CLASSES)>} (either may instead be {"error": ...}).
      first_layer_filters / feature_maps: {"array": {"dtype", "shape", "base64"}} of what the function
        returned for the probe's request.
    """

    name: str
    status: str
    value: object = None
    message: str = ""
    seconds: float = 0.0


@dataclass
class ProbeResult:
    """Everything one probe run reported about one submission."""

    outcomes: dict = field(default_factory=dict)  # function name -> FunctionOutcome
    import_status: str = OK                       # OK, ERROR, TIMEOUT, CRASHED
    import_message: str = ""                      # plain words when import_status is not OK
    output: str = ""                              # what the student's code printed, truncated
    seconds: float = 0.0

    def outcome(self, name):
        """Return the outcome for one API function, NOT_RUN if the probe never reached it."""
        return self.outcomes.get(name) or FunctionOutcome(name, NOT_RUN, message=self.import_message)
