"""What crosses the seam between the untrusted runner and the trusted grader: plain data, never live objects.

The runner (grader/untrusted/runner.py) loads this file by path, so it uses only the standard library (numpy is
imported lazily by the array codec). Nothing the runner sends is trusted: the checker validates every value
before it scores it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

# Outcome statuses, in the words a report uses.
OK = "ok"                      # the function returned; `value` holds what it returned (as data)
ERROR = "error"                # the function raised; `message` says which exception and where
MISSING = "missing"            # the submission does not define the function
NOT_IMPLEMENTED = "not_implemented"  # the function raised NotImplementedError (an untouched stub)
WRONG_TYPE = "wrong_type"      # the function returned something of the wrong kind; `message` says what
TIMEOUT = "timeout"            # the function ran past its time limit; the probe was killed
CRASHED = "crashed"            # the process died in the function (exit, signal, memory limit)
NOT_RUN = "not_run"            # the probe never reached the function (e.g. the import failed)
# The statuses the runner itself may report (NOT_RUN: the function used a name its file could not import); the
# others are the launcher's verdicts.
RUNNER_STATUSES = (OK, ERROR, MISSING, NOT_IMPLEMENTED, WRONG_TYPE, NOT_RUN)

# Events, one JSON line each on the result pipe, in the order the runner sends them.
IMPORT_START, IMPORTED, START, DONE, FINISHED = "import_start", "imported", "start", "done", "finished"

MAX_ARRAY_BYTES = 16 * 2**20
MAX_EVENT_BYTES = 32 * 2**20   # one event line: the largest the runner sends is an array, 16 MiB as 21 MiB of base64
MAX_EVENT_DEPTH = 16           # JSON levels of one event: the lesson's nest 4 (event, list of calls, "ok", a tuple)
VALUE_TOO_DEEP = "returned a value that nests {depth:,} levels deep; the grader reads values at most {limit} deep"
ARRAY_DTYPE_KINDS = "biuf"
NOT_AN_ARRAY = "returned {type}, expected a numpy array of numbers"
ARRAY_TOO_BIG = "returned an array of {size:,} bytes, more than the probe's limit of {limit:,} bytes"


@dataclass
class FunctionOutcome:
    """What happened when the probe called one API function.

    `value` by function:
      shape math: a list with one entry per requested call, in request order; each entry is
        {"ok": <returned value as JSON>} or {"error": "<ExceptionType>: <message>"}.
      build_augmentation: {"config": <model.to_json() string>}.
      build_cnn / build_cnn_v2: {"config": <to_json() of build_X()>, "config_num_classes": <to_json() of
        build_X(num_classes=REQUEST_NUM_CLASSES)>} (either may instead be {"error": ...}).
      first_layer_filters / feature_maps: {"array": encode_array(...)} of what the function returned.

    `substituted` names the API functions it calls (the lesson's CALLS) that the probe replaced by the lesson's own
    (rebuilt from the request's "substitutes" configs) because the student's could not be used: {function: the
    student's function's status}. Empty when everything it called was the student's own.
    """

    name: str
    status: str
    value: Any = None
    message: str = ""
    seconds: float = 0.0
    substituted: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """Everything one probe run reported about one submission."""

    outcomes: dict[str, FunctionOutcome] = field(default_factory=dict)
    import_status: str = OK                       # OK, ERROR, TIMEOUT, CRASHED
    import_message: str = ""                      # plain words when import_status is not OK
    output: str = ""                              # what the student's code printed, truncated
    seconds: float = 0.0
    isolation: list[dict[str, Any]] = field(default_factory=list)  # the sandbox layers: name, held, reason
    notes: list[str] = field(default_factory=list)  # what reading the submission set aside (a notebook's magics)

    def outcome(self, name: str) -> FunctionOutcome:
        """Return the outcome for one API function, NOT_RUN if the probe never reached it."""
        return self.outcomes.get(name) or FunctionOutcome(name, NOT_RUN, message=self.import_message)


def encode_array(value: Any, limit: int = MAX_ARRAY_BYTES) -> dict[str, Any]:
    """Return a numeric array-like as JSON-able data (dtype, shape, base64); raise TypeError or ValueError."""
    import numpy as np

    try:
        array = np.asarray(value)
    except Exception:
        raise TypeError(NOT_AN_ARRAY.format(type=type(value).__name__)) from None
    if array.dtype.kind not in ARRAY_DTYPE_KINDS:
        raise TypeError(NOT_AN_ARRAY.format(type=type(value).__name__))
    if array.nbytes > limit:
        raise ValueError(ARRAY_TOO_BIG.format(size=array.nbytes, limit=limit))
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "base64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(data: Any, max_elements: int = 1_000_000) -> Any:
    """Return the numpy array encode_array described; raise ValueError if the data is malformed."""
    import numpy as np

    if not isinstance(data, dict) or set(data) != {"dtype", "shape", "base64"}:
        raise ValueError("expected an array")
    try:
        shape = tuple(int(d) for d in data["shape"])
        dtype = np.dtype(data["dtype"])
    except (TypeError, ValueError):
        raise ValueError("malformed array description") from None
    if any(d < 0 for d in shape) or int(np.prod(shape)) > max_elements:
        raise ValueError(f"array shape {shape} is too large")
    if dtype.kind not in ARRAY_DTYPE_KINDS:
        raise ValueError(f"array dtype {dtype} is not numeric")
    return np.frombuffer(base64.b64decode(data["base64"]), dtype=dtype).reshape(shape).copy()


def json_depth(value: Any) -> int:
    """Return how many levels of lists and objects a parsed JSON value nests (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def read_event(line: bytes | str) -> Any:
    """Return the JSON value of one result line, bounded in size and depth; raise ValueError if it is unreadable.

    A done event whose value nests deeper than MAX_EVENT_DEPTH comes back as a WRONG_TYPE outcome that says so.
    JSON nested past Python's own parser raises RecursionError, as json.loads does.
    """
    if len(line) > MAX_EVENT_BYTES:
        raise ValueError(f"an event of {len(line):,} bytes; the grader reads events of at most {MAX_EVENT_BYTES:,}")
    event = json.loads(line)
    if json_depth(event) <= MAX_EVENT_DEPTH:
        return event
    if isinstance(event, dict) and event.get("event") == DONE:
        message = VALUE_TOO_DEEP.format(depth=json_depth(event.get("value")), limit=MAX_EVENT_DEPTH - 2)
        return {"event": DONE, "name": event.get("name"), "status": WRONG_TYPE, "message": message}
    raise ValueError(f"an event nesting {json_depth(event):,} levels; the grader reads at most {MAX_EVENT_DEPTH}")
