"""Run inside the untrusted probe process: import a submission, call its API, stream what happened.

The launcher starts this file as `python -I -S -B runner.py RESULT_FD` with a clean environment and
writes an envelope (the checker's request plus the probe's settings) to stdin. Every event goes out as
one JSON line on the result pipe RESULT_FD, never on stdout: what the student's code prints is only
shown, never parsed. Nothing here is trusted by the grader; it is plain standard library (plus the
installed keras/numpy once the submission is imported) so that it needs nothing from the kit.
"""

import base64
import importlib.abc
import importlib.util
import json
import math
import os
import sys
import time
import traceback

# The modules a submission may define, each with the API functions that live there.
HOME_MODULE = {
    "conv_output_size": "shape_math", "pool_output_size": "shape_math", "conv_params": "shape_math",
    "dense_params": "shape_math", "head_params": "shape_math",
    "build_augmentation": "augmentation", "build_cnn": "cnn", "build_cnn_v2": "cnn",
    "first_layer_filters": "filters", "feature_maps": "filters",
}
SINGLE_FILE_MODULE = "submission"
SUBMISSION_MODULES = (SINGLE_FILE_MODULE, "shape_math", "augmentation", "cnn", "filters")
SHAPE_MATH = ("conv_output_size", "pool_output_size", "conv_params", "dense_params", "head_params")
CNN_BUILDERS = ("build_cnn", "build_cnn_v2")

# Statuses, spelled as in grader/probe/result.py (this file cannot import it).
OK, ERROR, MISSING, NOT_IMPLEMENTED = "ok", "error", "missing", "not_implemented"

BLOCKED_IMPORT = "import of {name!r} is blocked in the probe: the grader, the solutions and the hidden tests are off limits"
NO_MODULES = ("found no module to import: expected submission.py or any of shape_math.py, augmentation.py, "
              "cnn.py, filters.py; received a folder with {files}")
MISSING_FUNCTION = "the submission does not define {name}()"
NOT_A_NUMBER = "returned {type}, expected a number"
NOT_A_MODEL = "returned {type}, expected a keras.Model"
NOT_AN_ARRAY = "returned {type}, expected a numpy array of numbers"
ARRAY_TOO_BIG = "returned an array of {size:,} bytes, more than the probe's limit of {limit:,} bytes"
MAX_MESSAGE_CHARS = 2000


class BlockedImports(importlib.abc.MetaPathFinder):
    """Refuse to import the kit's own packages, even where they are installed in site-packages."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        """Raise ModuleNotFoundError for a blocked top-level package or any of its submodules."""
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(BLOCKED_IMPORT.format(name=name), name=name)
        return None


class SubmissionModules(importlib.abc.MetaPathFinder):
    """Load the API modules from the submission's files, whatever else is installed under those names."""

    def __init__(self, files):
        self.files = files

    def find_spec(self, name, path=None, target=None):
        """Return a spec for a submission API module, None for anything else."""
        if path is None and name in self.files:
            return importlib.util.spec_from_file_location(name, self.files[name])
        return None


class Events:
    """Write one JSON line per event to the result pipe."""

    def __init__(self, fd):
        self.stream = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def emit(self, event, **fields):
        """Send one event; fields must be JSON-able."""
        self.stream.write(json.dumps({"event": event, **fields}) + "\n")
        self.stream.flush()


def describe_exception(error, submission_dir):
    """Return 'Type: message (file.py:line)' naming the last frame inside the submission."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if frame.filename.startswith(submission_dir + os.sep):
            where = f" ({os.path.relpath(frame.filename, submission_dir)}:{frame.lineno})"
            break
    if isinstance(error, SyntaxError) and error.filename:
        text = f"{type(error).__name__}: {error.msg} ({os.path.basename(error.filename)}, line {error.lineno})"
    else:
        text = f"{type(error).__name__}: {error}".rstrip(": ") + where
    text = text.replace(submission_dir + os.sep, "")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + " ..."


def setup_imports(envelope):
    """Put the installed packages first and the submission last on sys.path; block the kit."""
    submission_dir = envelope["submission_dir"]
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()]
    sys.path.extend(envelope["site_dirs"])
    sys.path.append(submission_dir)
    files = {name: os.path.join(submission_dir, name + ".py") for name in SUBMISSION_MODULES}
    files = {name: path for name, path in files.items() if os.path.isfile(path)}
    sys.meta_path.insert(0, SubmissionModules(files))
    sys.meta_path.insert(0, BlockedImports(envelope["blocked"]))
    return files


def import_submission(files, submission_dir):
    """Import the submission's modules; return ({name: module}, {name: error message})."""
    modules, failures = {}, {}
    for name in files:
        try:
            modules[name] = importlib.import_module(name)
        except Exception as error:  # SystemExit and KeyboardInterrupt end the process on purpose
            failures[name] = describe_exception(error, submission_dir)
    return modules, failures


def find_function(name, modules):
    """Return the API function from its home module, the single file, or any other module; None if absent."""
    order = [HOME_MODULE[name], SINGLE_FILE_MODULE] + [m for m in SUBMISSION_MODULES]
    for module_name in order:
        function = getattr(modules.get(module_name), name, None)
        if callable(function):
            return function
    return None


def home_failed(name, failures):
    """Return whether the module that should define name failed to import."""
    return HOME_MODULE[name] in failures or SINGLE_FILE_MODULE in failures


def as_number(value):
    """Return value as a JSON number entry, or an error entry naming the type that came back."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalars and 0-d arrays
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {"error": NOT_A_NUMBER.format(type=type(value).__name__)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"error": NOT_A_NUMBER.format(type=f"float {value}")}
    return {"ok": value}


def call_shape_math(function, calls, submission_dir):
    """Call a shape-math function once per requested (args, kwargs); return one entry per call."""
    entries, unimplemented = [], []
    for args, kwargs in calls:
        try:
            entries.append(as_number(function(*args, **kwargs)))
        except NotImplementedError as error:
            unimplemented.append(error)
            entries.append({"error": describe_exception(error, submission_dir)})
        except Exception as error:
            entries.append({"error": describe_exception(error, submission_dir)})
    if unimplemented and len(unimplemented) == len(entries):
        raise unimplemented[0]  # an untouched stub, not a wrong answer
    return entries


def model_json(model):
    """Return model.to_json(), or raise TypeError when the builder returned something else."""
    if not callable(getattr(model, "to_json", None)) or not callable(getattr(model, "count_params", None)):
        raise TypeError(NOT_A_MODEL.format(type=type(model).__name__))
    text = model.to_json()
    if not isinstance(text, str):
        raise TypeError(NOT_A_MODEL.format(type=type(model).__name__))
    return text


def call_builder(name, function, request, submission_dir):
    """Build the model(s) and return their configs; build_cnn/_v2 also with the request's num_classes."""
    value = {"config": model_json(function())}
    if name in CNN_BUILDERS and "num_classes" in request:
        try:
            value["config_num_classes"] = model_json(function(num_classes=request["num_classes"]))
        except Exception as error:
            value["config_num_classes"] = {"error": describe_exception(error, submission_dir)}
    return value


def decode_array(spec):
    """Return the numpy array described by {"dtype", "shape", "base64"}."""
    import numpy as np

    data = base64.b64decode(spec["base64"])
    return np.frombuffer(data, dtype=spec["dtype"]).reshape(spec["shape"]).copy()


def encode_array(value, limit):
    """Return {"array": {dtype, shape, base64}} for a numeric array-like, or raise TypeError."""
    import numpy as np

    try:
        array = np.asarray(value)
    except Exception:
        raise TypeError(NOT_AN_ARRAY.format(type=type(value).__name__)) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(NOT_AN_ARRAY.format(type=type(value).__name__))
    if array.nbytes > limit:
        raise ValueError(ARRAY_TOO_BIG.format(size=array.nbytes, limit=limit))
    array = np.ascontiguousarray(array)
    return {"array": {"dtype": array.dtype.str, "shape": list(array.shape),
                      "base64": base64.b64encode(array.tobytes()).decode("ascii")}}


def filters_model(request, weights_path):
    """Rebuild the checker's model from its config and give it the seeded weights."""
    import keras

    spec = importlib.util.spec_from_file_location("_probe_weights", weights_path)
    weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(weights)
    model = keras.models.model_from_json(request["model_config"])
    return weights.set_seeded_weights(model, request["weights_seed"])


def call_filters(name, function, envelope):
    """Call a filters function on the rebuilt, seeded model; return its array."""
    request = envelope["request"]["filters"]
    model = filters_model(request, envelope["weights_path"])
    if name == "feature_maps":
        result = function(model, decode_array(request["images"]))
    else:
        result = function(model)
    return encode_array(result, envelope["max_array_bytes"])


def call_api_function(name, function, envelope):
    """Return the outcome value of one API function for the request."""
    request, submission_dir = envelope["request"], envelope["submission_dir"]
    if name in SHAPE_MATH:
        return call_shape_math(function, request["shape_math"][name], submission_dir)
    if name in HOME_MODULE and HOME_MODULE[name] == "filters":
        return call_filters(name, function, envelope)
    return call_builder(name, function, request, submission_dir)


def is_requested(name, request):
    """Return whether the request asks about this function at all."""
    if name in SHAPE_MATH:
        return name in request.get("shape_math", {})
    if HOME_MODULE.get(name) == "filters":
        return "filters" in request
    return True


def run_function(name, modules, envelope):
    """Call one API function; return the fields of its done event."""
    function = find_function(name, modules)
    if function is None:
        return {"status": MISSING, "message": MISSING_FUNCTION.format(name=name)}
    try:
        return {"status": OK, "value": call_api_function(name, function, envelope)}
    except NotImplementedError as error:
        return {"status": NOT_IMPLEMENTED, "message": str(error)}
    except MemoryError as error:
        return {"status": ERROR, "exception": "MemoryError",
                "message": describe_exception(error, envelope["submission_dir"])}
    except Exception as error:
        return {"status": ERROR, "message": describe_exception(error, envelope["submission_dir"])}


def main(argv):
    """Read the envelope, import the submission, and report every requested API function."""
    events = Events(int(argv[1]))
    envelope = json.loads(sys.stdin.read())
    sys.stdin = open(os.devnull)  # input() in student code sees end of file
    files = setup_imports(envelope)
    events.emit("import_start")
    if not files:
        listing = ", ".join(sorted(os.listdir(envelope["submission_dir"]))) or "no files"
        events.emit("imported", modules=[], failures={"": NO_MODULES.format(files=listing)})
        events.emit("finished")
        return
    modules, failures = import_submission(files, envelope["submission_dir"])
    events.emit("imported", modules=sorted(modules), failures=failures)
    if not modules:
        events.emit("finished")
        return
    for name in envelope["functions"]:
        if name in envelope["skip"] or not is_requested(name, envelope["request"]):
            continue
        if find_function(name, modules) is None and home_failed(name, failures):
            continue  # reported as not run, with the import error
        events.emit("start", name=name)
        started = time.monotonic()
        fields = run_function(name, modules, envelope)
        events.emit("done", name=name, seconds=round(time.monotonic() - started, 3), **fields)
    events.emit("finished")


if __name__ == "__main__":
    main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip atexit handlers and interpreter teardown that student code could hook
