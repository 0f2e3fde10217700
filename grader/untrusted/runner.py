"""Run inside the untrusted probe process: import a submission, call its API, stream what happened.

This is the only code of the kit that runs beside student code, and it imports nothing of the kit: the
launcher starts it as `python -I -S -B runner.py RESULT_FD` in the sandbox and writes an envelope to stdin
(the checker's request, the lesson's module map, the path of the protocol module to load, the probe's
settings). Every event goes out as one JSON line on the result pipe RESULT_FD, never on stdout: what the
student's code prints is only shown, never parsed.
"""

import contextlib
import importlib.abc
import importlib.util
import io
import json
import math
import os
import sys
import time
import traceback

BLOCKED_IMPORT = ("import of {name!r} is blocked in the probe: the grader, the solutions and the hidden tests are "
                  "off limits")
NO_MODULES = ("found no module to import: expected {single}.py or any of {modules}; received a folder with {files}")
MISSING_FUNCTION = "the submission does not define {name}()"
NOT_A_NUMBER = "returned {type}, expected a number"
NOT_A_MODEL = "returned {type}, expected a keras.Model"
MAX_MESSAGE_CHARS = 2000
RUN_WITHOUT = ("; the rest of {module}.py was run without {names}, and only the functions using {them} are charged "
               "for it")


class _Pyplot:
    """Stands in for matplotlib.pyplot in Keras's one plotting helper, importing it on first use."""

    def __getattr__(self, name):
        import matplotlib.pyplot

        return getattr(matplotlib.pyplot, name)


def import_keras():
    """Import Keras as a submission would, less the matplotlib.pyplot it loads for one plotting helper.

    Keras imports pyplot at once (0.8 s of its 4 s) only for keras.visualization.plot_image_gallery, which gets it
    on first use instead. A submission that imports matplotlib itself gets all of it as usual. Nothing happens
    where Keras is imported already, and a Keras that fails to import fails again, in the submission's import (or
    in the grader's, which imports Keras here too).
    """
    if "keras" in sys.modules or importlib.util.find_spec("keras") is None:
        return
    blocked = "matplotlib" not in sys.modules
    if blocked:
        sys.modules["matplotlib"] = None  # `import matplotlib.pyplot` raises ImportError; Keras expects that
    try:
        import keras  # noqa: F401
    except Exception:
        return
    finally:
        if blocked:
            del sys.modules["matplotlib"]
    gallery = sys.modules.get("keras.src.visualization.plot_image_gallery")
    if gallery is not None and getattr(gallery, "plt", False) is None:
        gallery.plt = _Pyplot()


class WrongType(TypeError):
    """A function returned a value of the wrong kind (reported as the protocol's WRONG_TYPE)."""


def load_by_path(name, path):
    """Load one of the kit's modules by path (this process cannot import the kit), under a name of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# How the rest of a submission is graded when part of it fails to import (rescue.py, beside this file).
RESCUE = load_by_path("_lesson6_rescue",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "rescue.py"))


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


class Lesson:
    """The lesson's module map, as the envelope sends it (grader/lesson/manifest.py on the trusted side)."""

    def __init__(self, envelope):
        self.modules = envelope["modules"]                    # module -> [function, ...]
        self.single_file = envelope["single_file_module"]
        self.call_kind = envelope["call_kind"]                # function -> shape_math | builder | filters
        self.num_classes_builders = envelope["num_classes_builders"]
        self.calls = envelope.get("calls", {})                # function -> [API function it calls, ...]
        self.home = {function: module for module, functions in self.modules.items() for function in functions}
        self.module_names = [self.single_file] + list(self.modules)


def describe_exception(error, submission_dir):
    """Return 'Type: message (file.py:line)' naming the last frame inside the submission."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if frame.filename.startswith(submission_dir + os.sep):
            code = f": {frame.line.strip().rstrip(',;')}" if frame.line else ""  # lets the checker give a hint
            where = f" ({os.path.relpath(frame.filename, submission_dir)}:{frame.lineno}{code})"
            break
    if isinstance(error, SyntaxError) and error.filename:
        text = f"{type(error).__name__}: {error.msg} ({os.path.basename(error.filename)}, line {error.lineno})"
    else:
        text = f"{type(error).__name__}: {error}".rstrip(": ") + where
    text = text.replace(submission_dir + os.sep, "")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + " ..."


def setup_imports(envelope, lesson):
    """Put the installed packages first and the submission last on sys.path; block the kit."""
    submission_dir = envelope["submission_dir"]
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()]
    sys.path.extend(envelope["site_dirs"])
    sys.path.append(submission_dir)
    files = {name: os.path.join(submission_dir, name + ".py") for name in lesson.module_names}
    files = {name: path for name, path in files.items() if os.path.isfile(path)}
    sys.meta_path.insert(0, SubmissionModules(files))
    sys.meta_path.insert(0, BlockedImports(envelope["blocked"]))
    return files


def import_submission(files, submission_dir, single_file=None):
    """Import the submission's modules; return ({name: module}, {name: error message}).

    A single-file submission (single_file) that fails on one of its own imports is run again with placeholders for
    the names that could not be imported (import_with_placeholders): its other functions are graded.
    """
    modules, failures = {}, {}
    for name in files:
        try:
            modules[name] = importlib.import_module(name)
        except Exception as error:  # SystemExit and KeyboardInterrupt end the process on purpose
            failures[name] = describe_exception(error, submission_dir)
            if name == single_file and isinstance(error, ImportError):
                module, missing = RESCUE.import_with_placeholders(name, files[name], submission_dir)
                if module is not None and missing:
                    modules[name] = module
                    names = ", ".join(missing)
                    failures[name] = "; ".join(missing.values()) + RUN_WITHOUT.format(
                        module=name, names=names, them="it" if len(missing) == 1 else "them")
    return modules, failures


def find_function(name, modules, lesson):
    """Return the API function from its home module, the single file, or any other module; None if absent."""
    for module_name in [lesson.home[name]] + lesson.module_names:
        function = getattr(modules.get(module_name), name, None)
        if callable(function) and not getattr(function, "lesson_stand_in", False):
            return function
    return None


def home_failed(name, failures, lesson):
    """Return whether the module that should define name failed to import."""
    return lesson.home[name] in failures or lesson.single_file in failures


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
        except RESCUE.MissingImport:
            raise  # the function cannot run at all: its import failed
        except Exception as error:
            entries.append({"error": describe_exception(error, submission_dir)})
    if unimplemented and len(unimplemented) == len(entries):
        raise unimplemented[0]  # an untouched stub, not a wrong answer
    return entries


def model_json(model):
    """Return model.to_json(), or raise WrongType when the builder returned something else."""
    if not callable(getattr(model, "to_json", None)) or not callable(getattr(model, "count_params", None)):
        raise WrongType(NOT_A_MODEL.format(type=type(model).__name__))
    text = model.to_json()
    if not isinstance(text, str):
        raise WrongType(NOT_A_MODEL.format(type=type(model).__name__))
    return text


def built_config(function, **kwargs):
    """Return the JSON config of the model function(**kwargs) builds.

    Only the config leaves the probe, so the model is first built in keras.StatelessScope(initialize_variables=False),
    which skips creating and initialising its weights (most of a build's time). A builder that needs real variables
    (one that compiles its model, say) fails there and is built again the ordinary way; what the failed attempt
    printed is dropped, so the student sees each print once.
    """
    keras = sys.modules.get("keras")  # imported by the submission (or the zygote); never imported just for this
    if keras is not None and hasattr(keras, "StatelessScope"):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                with keras.StatelessScope(initialize_variables=False):
                    config = model_json(function(**kwargs))
        except (NotImplementedError, WrongType):
            sys.stdout.write(printed.getvalue())
            raise  # an untouched stub or a wrong return type: the same either way
        except Exception:  # noqa: BLE001 - built again below; a real mistake raises again there
            pass
        else:
            sys.stdout.write(printed.getvalue())
            return config
    return model_json(function(**kwargs))


def call_builder(name, function, request, submission_dir, lesson):
    """Build the model(s) and return their configs; the CNN builders also with the request's num_classes."""
    value = {"config": built_config(function)}
    if name in lesson.num_classes_builders and "num_classes" in request:
        try:
            value["config_num_classes"] = built_config(function, num_classes=request["num_classes"])
        except Exception as error:
            value["config_num_classes"] = {"error": describe_exception(error, submission_dir)}
    return value


def call_filters(name, function, envelope, protocol, seeded):
    """Call a filters function on the rebuilt, seeded model (weights/SeededModel); return its array."""
    request = envelope["request"]["filters"]
    model = seeded.fresh()
    if name in envelope.get("image_functions", ()):  # called on the model and the request's images
        result = function(model, protocol.decode_array(request["images"]))
    else:
        result = function(model)
    try:
        return {"array": protocol.encode_array(result, envelope["max_array_bytes"])}
    except TypeError as error:
        raise WrongType(str(error)) from None


def call_api_function(name, function, envelope, lesson, protocol, seeded=None):
    """Return the outcome value of one API function for the request (seeded: the filters' model, see run)."""
    request, submission_dir = envelope["request"], envelope["submission_dir"]
    kind = lesson.call_kind[name]
    if kind == "shape_math":
        return call_shape_math(function, request["shape_math"][name], submission_dir)
    if kind == "filters":
        return call_filters(name, function, envelope, protocol, seeded)
    return call_builder(name, function, request, submission_dir, lesson)


def is_requested(name, request, lesson):
    """Return whether the request asks about this function at all."""
    kind = lesson.call_kind[name]
    if kind == "shape_math":
        return name in request.get("shape_math", {})
    if kind == "filters":
        return "filters" in request
    return True


def run_function(name, modules, envelope, lesson, protocol, seeded=None):
    """Call one API function; return the fields of its done event."""
    function = find_function(name, modules, lesson)
    if function is None:
        return {"status": protocol.MISSING, "message": MISSING_FUNCTION.format(name=name)}
    try:
        return {"status": protocol.OK, "value": call_api_function(name, function, envelope, lesson, protocol, seeded)}
    except NotImplementedError as error:
        return {"status": protocol.NOT_IMPLEMENTED, "message": str(error)}
    except RESCUE.MissingImport as error:
        return {"status": protocol.NOT_RUN, "message": str(error)}
    except WrongType as error:
        return {"status": protocol.WRONG_TYPE, "message": str(error)}
    except MemoryError as error:
        return {"status": protocol.ERROR, "exception": "MemoryError",
                "message": describe_exception(error, envelope["submission_dir"])}
    except Exception as error:
        return {"status": protocol.ERROR, "message": describe_exception(error, envelope["submission_dir"])}


def main(argv):
    """Read the envelope from stdin, then run it with the result pipe named on the command line.

    stdin holds two lines: the envelope without its request, then the request. Keras is imported between them, from
    the envelope's site folders: the grader may still be computing the request (it needs Keras too), and a zygote's
    child, which starts in run(), has Keras imported before it knows its envelope as well.
    """
    envelope = json.loads(sys.stdin.readline())
    path = list(sys.path)
    sys.path.extend(envelope["site_dirs"])
    import_keras()
    sys.path[:] = path  # setup_imports puts them back, in their place
    envelope["request"] = json.loads(sys.stdin.readline())
    run(envelope, int(argv[1]))


def run(envelope, result_fd):
    """Import the submission and report every requested API function (also called in a zygote's forked child)."""
    events = Events(result_fd)
    sys.stdin = open(os.devnull)  # input() in student code sees end of file
    protocol = load_by_path("_lesson6_protocol", envelope["protocol_path"])
    lesson = Lesson(envelope)
    files = setup_imports(envelope, lesson)
    events.emit(protocol.IMPORT_START)
    if not files:
        listing = ", ".join(sorted(os.listdir(envelope["submission_dir"]))) or "no files"
        message = NO_MODULES.format(single=lesson.single_file, files=listing,
                                    modules=", ".join(f"{module}.py" for module in lesson.modules))
        events.emit(protocol.IMPORTED, modules=[], failures={"": message})
        events.emit(protocol.FINISHED)
        return
    import_keras()
    filters = envelope["request"].get("filters")  # the checker's model, rebuilt once for every filters function
    seeded = load_by_path("_lesson6_weights", envelope["weights_path"]).SeededModel(
        filters["model_config"], filters["weights_seed"]) if filters else None
    modules, failures = import_submission(files, envelope["submission_dir"], lesson.single_file)
    rescued = RESCUE.import_with_stand_ins(modules, failures, envelope, lesson)
    events.emit(protocol.IMPORTED, modules=sorted(modules), failures=failures)
    if not modules:
        events.emit(protocol.FINISHED)
        return

    def run_once(name, substituted_calls):
        events.emit(protocol.START, name=name)
        started = time.monotonic()
        fields = run_function(name, modules, envelope, lesson, protocol, seeded)
        fields.update({"substituted": substituted_calls} if substituted_calls else {})
        events.emit(protocol.DONE, name=name, seconds=round(time.monotonic() - started, 3), **fields)
        return fields

    failed = set()  # the functions whose own answer is not OK: the functions calling them are run again
    killed = set(envelope.get("killed", ()))  # those that timed out or crashed an earlier child
    for name in envelope["functions"]:
        if name in envelope["skip"] or not is_requested(name, envelope["request"], lesson):
            continue
        if find_function(name, modules, lesson) is None and home_failed(name, failures, lesson):
            failed.add(name)
            continue  # reported as not run, with the import error
        run_on_its_own(name, run_once, modules, envelope, lesson, protocol, failed, rescued, killed)
    events.emit(protocol.FINISHED)


def run_on_its_own(name, run_once, modules, envelope, lesson, protocol, failed, rescued, killed=()):
    """Run an API function; if it fails and a function it calls failed before, run it again with the lesson's.

    run_once(name, substituted) runs it once and reports its fields; `failed` collects the functions whose own
    answer is not OK; `rescued` says which stand-ins a module was imported with (import_with_stand_ins); `killed`
    names the functions that timed out or crashed an earlier child: a function calling one runs with the lesson's
    version at once, since calling the student's again would only end this child the same way.
    """
    calls = lesson.calls.get(name, ())
    imported_with = {called: protocol.NOT_RUN for called in rescued.get(lesson.home[name], ()) if called in calls}
    stand_ins = RESCUE.stand_ins_for(set(calls) & set(killed), envelope)
    with RESCUE.substituted(stand_ins, modules):
        fields = run_once(name, {**imported_with, **dict.fromkeys(stand_ins, "killed")})
    if stand_ins:
        (failed.discard if fields["status"] == protocol.OK else failed.add)(name)
        return
    if fields["status"] == protocol.OK:
        failed.discard(name)
        return
    failed.add(name)
    stand_ins = RESCUE.stand_ins_for(set(calls) & failed, envelope)
    if stand_ins:  # graded again on its own, with the lesson's version of what it calls: the new answer stands
        with RESCUE.substituted(stand_ins, modules):
            run_once(name, {called: "failed" for called in stand_ins})


if __name__ == "__main__":
    main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip atexit handlers and interpreter teardown that student code could hook
