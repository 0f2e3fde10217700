"""What the hidden tests compare with, derived from the lesson's reference solutions (trusted code, never shipped).

The checker imports the lesson's solutions/ in its own process (never in a probe's, nor in the zygote the probes are
forked from), calls every builder, and keeps what the checks compare with as plain data: each network's input shape,
stages (kind, output shape, parameters), total parameters, canonical layer list, outputs and output activation, the
augmentation block's layers and settings, the Rescaling factor, and the model the filters bonus runs on. Shape-math
truths come from Keras itself (grader.checker.checks.keras_truth.KERAS_TRUTH), not from here. Everything is derived once
per process and kept under the reference's fingerprint, so an edited reference is judged by its own numbers.

Deriving needs Keras (seconds, and TensorFlow's memory), and the probe's request is made of it: so the lesson folder
keeps the expectations derived last, in expectations.json, under a digest of everything they follow from (the
reference's sources, lesson.toml, the code that describes a network, the installed Keras). While that digest holds, the
grader reads them from there and needs no Keras before the probe has run (`--import-after-probe`: one TensorFlow
process at a time); any change makes the record stale, and the grader derives as before. `grader calibrate` writes it
(`--expectations` alone, in seconds).
"""

import functools
import hashlib
import inspect
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

from grader.lesson import manifest

NO_REFERENCE = ("The grader derives what it checks from the lesson's reference, expected at {path}; it is missing. "
                "Received: a lesson folder without {what}.")
REFERENCE_FAILED = "The lesson's reference {call} raised {error}: the grader cannot derive what it checks from it."
RECORD_FILE = "expectations.json"   # in the lesson folder (the top-level one for the default lesson)
CHECKER = Path(__file__).resolve().parent
# The code that turns a reference's networks into the data compared with: an edit of it makes the record stale.
DESCRIBED_BY = (CHECKER / "reference.py", *sorted((CHECKER / "checks").glob("*.py")),
                CHECKER.parent / "lesson" / "manifest.py")


def reference_files(lesson_dir=None):
    """Return the reference's source files, in a stable order."""
    folder = Path(lesson_dir or manifest.lesson_dir()) / "solutions"
    return [folder / name for name in manifest.MODULE_FILES]


def fingerprint(lesson_dir=None) -> str:
    """Return a digest of the reference's sources: what every derived expectation follows from."""
    digest = hashlib.sha256()
    for path in reference_files(lesson_dir):
        if not path.is_file():
            raise FileNotFoundError(NO_REFERENCE.format(path=path.parent, what=path.name))
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def import_reference(lesson_dir=None):
    """Return {module name: module} of the reference, imported by path without leaving it in sys.modules."""
    import importlib

    folder = str(Path(lesson_dir or manifest.lesson_dir()).resolve() / "solutions")
    names = list(manifest.MODULES)
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        return {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(folder)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _call(function, call, **kwargs):
    try:
        return function(**kwargs)
    except Exception as error:  # the reference is the instructor's code: say what went wrong in it
        raise RuntimeError(REFERENCE_FAILED.format(call=call, error=f"{type(error).__name__}: {error}")) from None


def num_classes_default(function):
    """Return the default of a builder's num_classes argument, or None if it has none."""
    parameter = inspect.signature(function).parameters.get("num_classes")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def describe_network(model):
    """Return what the checks compare a network with, as plain data."""
    from grader.checker.checks import comparison, models

    built = bool(getattr(model, "inputs", None))  # an augmentation block is a Sequential without an Input
    found = models.stages(model) if built else []
    outputs = model.outputs[0].shape[-1] if built else None
    last = models.flat_layers(model)[-1]
    rescalers = [layer for layer in models.flat_layers(model) if type(layer).__name__ == "Rescaling"]
    return {
        "input_shape": tuple(model.inputs[0].shape[1:]) if built else None,
        "stages": tuple((kind, tuple(shape[1:]), models.layer_params(layer)) for kind, layer, shape in found),
        "total_params": models.total_params(model),
        "layers": tuple((kind, settings) for kind, settings in comparison.canonical_layers(model)),
        "outputs": outputs,
        "output_activation": models.activation_name(last) or "linear",
        "augmentation": tuple(comparison.layer_settings(layer) for layer in models.augmentation_layers(model)),
        "augmentation_code": tuple(models.layer_code(layer) for layer in models.augmentation_layers(model)),
        "augmentation_others": tuple(comparison.other_settings(layer, comparison.layer_settings(layer)[1])
                                     for layer in models.augmentation_layers(model)),
        "rescale": float(np.squeeze(rescalers[0].scale)) if len(rescalers) == 1 else None,
        "layer_code": tuple(models.layer_code(layer) for _kind, layer, _shape in found),
    }


def derive(lesson_dir=None):
    """Return the lesson's expectations, derived from its reference (builds every model once: seconds)."""
    import keras

    modules = import_reference(lesson_dir)
    networks, configs = {}, {}
    for name in manifest.BUILDERS:
        function = getattr(modules[manifest.HOME_MODULE[name]], name)
        model = _call(function, f"{name}()")
        if not isinstance(model, keras.Model):
            raise RuntimeError(REFERENCE_FAILED.format(call=f"{name}()", error=f"no keras.Model ({model!r})"))
        network = describe_network(model)
        default = num_classes_default(function)
        network["num_classes"] = default
        if default is not None:
            other = _call(function, f"{name}(num_classes=...)", num_classes=default + 1)
            network["num_classes_followed"] = bool(other.outputs[0].shape[-1] == default + 1)
        networks[name] = network
        configs[name] = model.to_json()
    first = next((network for network in networks.values() if network["stages"]), None)
    blocks = [network for network in networks.values() if network["augmentation"] and not network["stages"]]
    block = (blocks or [first or {}])[0]
    return {
        "fingerprint": fingerprint(lesson_dir),
        "dataset_name": manifest.DATASET_NAME,
        "input_shape": first["input_shape"] if first else None,
        "rescale": first["rescale"] if first else None,
        "augmentation": block.get("augmentation", ()),
        "augmentation_code": block.get("augmentation_code", ()),
        "augmentation_others": block.get("augmentation_others", ()),
        "networks": networks,
        "configs": configs,
    }


def source(lesson_dir=None) -> str:
    """Return a digest of what the expectations follow from: the reference's sources, the lesson's manifest, the code
    that describes a network and the installed Keras. Read without importing Keras (milliseconds)."""
    folder = Path(lesson_dir or manifest.lesson_dir())
    digest = hashlib.sha256(json.dumps([fingerprint(folder), version("keras")]).encode())
    for path in (folder / manifest.MANIFEST, *DESCRIBED_BY):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_record(lesson_dir=None):
    """Return the expectations the lesson folder records, if they were derived from what is there now; else None."""
    from grader.checker.checks.expectations import as_tuples

    path = Path(lesson_dir or manifest.lesson_dir()) / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("source") != source(lesson_dir):
        return None
    return as_tuples(record.get("expectations"))


def write_record(lesson_dir=None) -> Path:
    """Derive the lesson's expectations and record them in its folder, under their source; return the file."""
    path = Path(lesson_dir or manifest.lesson_dir()) / RECORD_FILE
    record = {"source": source(lesson_dir), "keras": version("keras"), "expectations": derive(lesson_dir)}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


@functools.cache
def _expected(lesson_dir, digest):
    return read_record(lesson_dir) or derive(lesson_dir)


@functools.cache
def _digest(lesson_dir):
    return fingerprint(lesson_dir)


def expectations(lesson_dir=None):
    """Return the lesson's expectations (recorded, or derived, once per process and reference fingerprint)."""
    lesson_dir = str(Path(lesson_dir or manifest.lesson_dir()).resolve())
    return _expected(lesson_dir, _digest(lesson_dir))


def reference_config(builder, lesson_dir=None):
    """Return the reference model's config (model.to_json()) a builder returns."""
    return expectations(lesson_dir)["configs"][builder]
