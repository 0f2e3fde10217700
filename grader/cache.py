"""Remember training-check outcomes, so each distinct model is trained once per class, not once per student.

The training check is the slowest part of grading, and most of a class hands in the same network in
different spellings: Functional or Sequential, any layer names, `kernel_size=3` or `(3, 3)`, relu inside
Conv2D or as a separate ReLU layer, the augmentation block nested or inline. `model_key` maps all of those
to one key, made of a canonical form of the model's config (what trains identically gets one form), the
data set, the seed, the kit's version, the training code and its budget. Anything the canonical form
does not understand is kept as it is, so two models share a key only when they train the same way.

`TrainingCache` wraps the trainer the checker calls (`trainer(config_json, dataset=...)`): an in-memory
dict per process, then a SignedStore: JSON files in a folder shared by every worker (and by later runs),
each signed with the folder's key and written atomically, with a lock per entry so that two workers needing
the same model train it once. `VerdictCache` keeps the hidden tests' verdicts in the same store. Both key
their entries from one fingerprint of the kit (`kit_fingerprint`).
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grader.lesson.manifest import CALLS, FILTERS, SHAPE_MATH

FORMAT = 2                      # bump when the entry layout or the canonical form changes
MODEL_CLASSES = ("Sequential", "Functional", "Model")
ACTIVATION_LAYERS = ("ReLU", "Activation")
# Keras stores these as one number per spatial axis; a config written by hand may give one int.
PER_AXIS_KEYS = ("kernel_size", "strides", "pool_size", "dilation_rate", "size")
KEY_FILE = "hmac.key"            # made 0600 in the cache folder on first use; entries are signed with it
UNREADABLE_CONFIG = "Expected a model config written by model.to_json(); {problem}. Received: {received}"


def default_directory():
    """Return the on-disk cache folder: $XDG_CACHE_HOME/lesson6-grader/training, else ~/.cache/..."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lesson6-grader" / "training"


# --- the canonical form ---------------------------------------------------------------------------------


def canonical_model(config_json):
    """Return a JSON-able form of a model config that is equal for models that train identically."""
    try:
        config = json.loads(config_json) if isinstance(config_json, str) else config_json
    except ValueError as error:
        raise ValueError(UNREADABLE_CONFIG.format(problem=f"invalid JSON ({error})",
                                                  received=str(config_json)[:80])) from None
    if not isinstance(config, dict):
        raise ValueError(UNREADABLE_CONFIG.format(problem="expected a JSON object", received=str(config_json)[:80]))
    try:
        return _canonical_graph(config)
    except _NotAGraph:
        # Shared layers, odd call arguments, hand-edited configs: keep everything, names as numbers.
        return {"opaque": _without_names(config, _layer_numbers(config))}


class _NotAGraph(Exception):
    """The config is not a plain graph of single-use layers; fall back to the opaque form."""


def _canonical_graph(config):
    """Return {"ops": [...], "outputs": [...], "model": {...}} for a Sequential or Functional model."""
    graph = _Graph()
    outputs = graph.add_model(config, inputs=None)
    graph.merge_activations(outputs)
    return graph.render(outputs, _model_settings(config))


def _model_settings(config):
    """Return what a model's own config adds to its layers': trainable, and a dtype other than float32."""
    inner = config.get("config") or {}
    settings = {"trainable": inner.get("trainable", True)}
    dtype = inner.get("dtype")
    if dtype is not None and _dtype_name(dtype) != "float32":
        settings["dtype"] = _without_names(dtype)
    return settings


def _dtype_name(dtype):
    """Return the policy name of a layer's dtype entry (a string or a DTypePolicy object)."""
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


class _Graph:
    """Operations (one call of one layer each) in call order; tensors are (op index, output index)."""

    def __init__(self):
        self.ops = []   # {"layer": canonical layer, "inputs": [tensor refs], "kwargs": {...}}

    def add(self, layer, inputs, kwargs=None):
        self.ops.append({"layer": layer, "inputs": list(inputs), "kwargs": kwargs or {}})
        return (len(self.ops) - 1, 0)

    def add_model(self, config, inputs):
        """Add a model's layers; return its output tensors. inputs=None: the model's own inputs."""
        kind = config.get("class_name")
        inner = config.get("config")
        if kind not in MODEL_CLASSES or not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
            raise _NotAGraph
        if kind == "Sequential":
            return self._add_sequential(inner["layers"], inputs)
        return self._add_functional(inner, inputs)

    def _add_sequential(self, layers, inputs):
        current = None
        for index, layer in enumerate(layers):
            if not isinstance(layer, dict):
                raise _NotAGraph
            if layer.get("class_name") == "InputLayer":
                if index != 0:
                    raise _NotAGraph
                current = self._input(layer, inputs)
                continue
            if current is None:
                if inputs is None:
                    # A Sequential without an InputLayer: its input is implied by the first call.
                    current = [self.add({"class": "Input"}, [])]
                else:
                    current = list(inputs)
            current = self._add_layer(layer, current, {})
        return current or list(inputs or [])

    def _add_functional(self, inner, inputs):
        tensors = {}   # (layer name, node index) -> output tensor refs of that call
        input_names = _names(inner.get("input_layers"))
        for layer in inner["layers"]:
            if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
                raise _NotAGraph
            nodes = layer.get("inbound_nodes") or []
            if layer.get("class_name") == "InputLayer":
                if layer["name"] not in input_names or nodes:
                    raise _NotAGraph
                position = input_names.index(layer["name"])
                outer = None if inputs is None else [inputs[position]] if position < len(inputs) else None
                if inputs is not None and outer is None:
                    raise _NotAGraph
                tensors[(layer["name"], 0)] = self._input(layer, outer)
                continue
            if len(nodes) != 1:  # a shared layer (or an unused one): its weights tie calls together
                raise _NotAGraph
            args, kwargs = _call(nodes[0], tensors)
            tensors[(layer["name"], 0)] = self._add_layer(layer, args, kwargs)
        outputs = []
        for name, node, index in _references(inner.get("output_layers")):
            found = tensors.get((name, node))
            if found is None or index >= len(found):
                raise _NotAGraph
            outputs.append(found[index])
        if inputs is not None and len(input_names) != len(inputs):
            raise _NotAGraph
        return outputs

    def _input(self, layer, outer):
        """Return the tensors an InputLayer stands for: the outer tensors when nested, else a new input."""
        config = dict(layer.get("config") or {})
        config.pop("name", None)
        if outer is not None:
            if _dtype_name(config.get("dtype", "float32")) != "float32" or config.get("sparse") or config.get("ragged"):
                raise _NotAGraph
            return list(outer)
        return [self.add({"class": "Input", "config": _without_names(config)}, [])]

    def _add_layer(self, layer, inputs, kwargs):
        """Add one call of a layer (inlining a nested model); return its output tensors."""
        kind = layer.get("class_name")
        if kind in MODEL_CLASSES:
            settings = _model_settings(layer)
            if settings == {"trainable": True} and not kwargs:
                return self.add_model(layer, inputs)
            nested = _Graph()
            nested_outputs = nested.add_model(layer, None)
            nested.merge_activations(nested_outputs)
            return [self.add({"class": "Model", "graph": nested.render(nested_outputs, settings)}, inputs, kwargs)]
        return [self.add(_canonical_layer(layer), inputs, kwargs)]

    def merge_activations(self, outputs):
        """Fold a ReLU layer into the linear Conv2D or Dense it follows (what `activation="relu"` does)."""
        consumers = {}
        for index, op in enumerate(self.ops):
            for ref in op["inputs"]:
                consumers.setdefault(ref, []).append(index)
        for ref in outputs:
            consumers.setdefault(ref, []).append(None)
        replaced = {}
        for index, op in enumerate(self.ops):
            if not _is_plain_relu(op) or len(op["inputs"]) != 1:
                continue
            source = replaced.get(op["inputs"][0], op["inputs"][0])
            producer = self.ops[source[0]]
            config = producer["layer"].get("config") or {}
            if (source[1] != 0 or config.get("activation") != "linear" or consumers.get(source) != [index]
                    or _dtype_name(config.get("dtype")) != _dtype_name(op["layer"]["config"].get("dtype"))):
                continue
            config["activation"] = "relu"
            replaced[(index, 0)] = source
            op["merged"] = True
        if not replaced:
            return
        for op in self.ops:
            op["inputs"] = [_follow(replaced, ref) for ref in op["inputs"]]
        outputs[:] = [_follow(replaced, ref) for ref in outputs]

    def render(self, outputs, settings):
        """Return the graph with merged ops removed and tensors renumbered."""
        kept = [index for index, op in enumerate(self.ops) if not op.get("merged")]
        number = {old: new for new, old in enumerate(kept)}
        ops = []
        for index in kept:
            op = self.ops[index]
            ops.append({"layer": op["layer"], "inputs": [[number[ref[0]], ref[1]] for ref in op["inputs"]],
                        "kwargs": op["kwargs"]})
        return {"model": settings, "ops": ops, "outputs": [[number[ref[0]], ref[1]] for ref in outputs]}


def _follow(replaced, ref):
    while ref in replaced:
        ref = replaced[ref]
    return ref


def _is_plain_relu(op):
    """Return whether an op is ReLU() or Activation("relu") with default settings."""
    layer = op["layer"]
    config = layer.get("config") or {}
    if op["kwargs"]:
        return False
    if layer.get("class") == "ReLU":
        return (config.get("max_value") is None and not config.get("negative_slope")
                and not config.get("threshold"))
    return layer.get("class") == "Activation" and config.get("activation") == "relu"


def _names(references):
    """Return the layer names of a Functional config's input_layers entry."""
    return [name for name, _node, _index in _references(references)]


def _references(references):
    """Return [(layer name, node index, tensor index)] from input_layers / output_layers in any nesting."""
    if isinstance(references, list) and len(references) == 3 and isinstance(references[0], str):
        references = [references]
    if not isinstance(references, list):
        raise _NotAGraph
    found = []
    for reference in references:
        if not (isinstance(reference, list) and len(reference) == 3 and isinstance(reference[0], str)
                and isinstance(reference[1], int) and isinstance(reference[2], int)):
            raise _NotAGraph
        found.append(tuple(reference))
    return found


def _call(node, tensors):
    """Return (input tensor refs, canonical kwargs) of one inbound node of a Functional config."""
    if not isinstance(node, dict) or not isinstance(node.get("args"), list):
        raise _NotAGraph
    args = node["args"]
    if len(args) == 1 and isinstance(args[0], list):  # a merge layer called on a list of tensors
        args = args[0]
    refs = []
    for arg in args:
        history = (arg.get("config") or {}).get("keras_history") if isinstance(arg, dict) else None
        if not (isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__" and isinstance(history, list)
                and len(history) == 3):
            raise _NotAGraph
        name, node_index, index = history
        found = tensors.get((name, node_index))
        if found is None or not isinstance(index, int) or index >= len(found):
            raise _NotAGraph
        refs.append(found[index])
    kwargs = node.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise _NotAGraph
    # mask=None and training=None are what a plain call passes; anything else changes the call.
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if any(isinstance(value, (dict, list)) for value in kwargs.values()):
        raise _NotAGraph  # a tensor passed by keyword
    return refs, kwargs


def _canonical_layer(layer):
    """Return a layer's class and config without its name, build shapes or module path."""
    config = dict(layer.get("config") or {})
    config.pop("name", None)
    if str(layer.get("class_name", "")).endswith("2D"):
        for key in PER_AXIS_KEYS:
            if isinstance(config.get(key), int) and not isinstance(config.get(key), bool):
                config[key] = [config[key], config[key]]
    if config.get("activation") is None and "activation" in config:
        config["activation"] = "linear"
    found = {"class": layer.get("class_name"), "config": _without_names(config)}
    if layer.get("registered_name") not in (None, layer.get("class_name")):
        found["registered_name"] = layer["registered_name"]
    return found


def _layer_numbers(node, found=None):
    """Return {layer name: "#n"} for every layer of a config, numbered in the order they appear."""
    found = {} if found is None else found
    if isinstance(node, list):
        for item in node:
            _layer_numbers(item, found)
    elif isinstance(node, dict):
        config = node.get("config")
        name = node.get("name", config.get("name") if isinstance(config, dict) else None)
        if "class_name" in node and isinstance(name, str) and node.get("class_name") not in (
                "DTypePolicy", "FloatDTypePolicy", "__keras_tensor__"):
            found.setdefault(name, f"#{len(found)}")
        for value in node.values():
            _layer_numbers(value, found)
    return found


def _without_names(node, numbers=None):
    """Return a copy of a config fragment without layer names, build shapes or module paths.

    numbers maps layer names to stand-ins, for the [name, node, tensor] references of a Functional config.
    """
    numbers = numbers or {}
    if isinstance(node, list):
        if (len(node) == 3 and isinstance(node[0], str) and node[0] in numbers
                and all(isinstance(item, int) for item in node[1:])):
            return [numbers[node[0]], node[1], node[2]]
        return [_without_names(item, numbers) for item in node]
    if not isinstance(node, dict):
        return node
    is_object = "class_name" in node and "config" in node
    result = {}
    for key, value in node.items():
        if key in ("build_config", "compile_config", "module") and is_object:
            continue
        if key == "name" and is_object:
            continue
        if key == "registered_name" and value in (None, node.get("class_name")):
            continue
        if key == "config" and is_object and isinstance(value, dict) and node.get("class_name") not in (
                "DTypePolicy", "FloatDTypePolicy"):
            value = {k: v for k, v in value.items() if k != "name"}
        result[key] = _without_names(value, numbers)
    return result


# --- the key ----------------------------------------------------------------------------------------------


def kit_fingerprint(files: dict[str, str] | None = None) -> str:
    """Return the one fingerprint of the kit every cache key holds: its version, Keras's, and its files' digests.

    files: checker.inputs.fingerprint() taken earlier; taken now if None. Bytecode is left out (it comes and goes
    with the interpreter); any other change to the grader package (a hidden test, the training code, this file's
    canonical form, the calibration) makes every entry a miss.
    """
    from importlib.metadata import PackageNotFoundError, version

    from grader.checker.inputs import fingerprint

    try:
        kit = version("lesson6-grader")
    except PackageNotFoundError:  # running from a checkout that is not installed
        kit = "unknown"
    sources = {name: digest for name, digest in (fingerprint() if files is None else files).items()
               if not name.endswith(".pyc")}
    material = {"format": FORMAT, "kit": kit, "keras": version("keras"), "files": sources}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def budget_fingerprint(dataset: str, seed: int) -> dict:
    """Return what the training check says its result depends on besides the model: budget, threshold, versions."""
    from grader.training.check import fingerprint

    return fingerprint(dataset, seed)


def model_key(config_json, *, dataset, seed, budget):
    """Return the cache key of one training run: canonical model, data set, seed, kit and budget."""
    material = {"model": canonical_model(config_json), "dataset": dataset, "seed": seed, "budget": budget}
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- outcomes as JSON -------------------------------------------------------------------------------------


def outcome_to_data(outcome):
    """Return a TrainingOutcome (a dataclass) as JSON-able data, arrays included."""
    import numpy as np

    from grader.protocol import encode_array

    def plain(value):
        if isinstance(value, np.ndarray):
            return {"__array__": encode_array(value)}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return {field.name: plain(getattr(outcome, field.name)) for field in dataclasses.fields(outcome)}


def outcome_from_data(data, outcome_class):
    """Rebuild the outcome outcome_to_data described."""
    from grader.protocol import decode_array

    def rich(value):
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return decode_array(value["__array__"], max_elements=10_000_000).copy()
            return {k: rich(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rich(v) for v in value]
        return value

    names = {field.name for field in dataclasses.fields(outcome_class)}
    if set(data) != names:
        raise ValueError(f"cache entry has fields {sorted(data)}, expected {sorted(names)}")
    return outcome_class(**{name: rich(value) for name, value in data.items()})


# --- the store --------------------------------------------------------------------------------------------


class SignedStore:
    """JSON entries in a folder, each signed with the folder's key, written atomically, one lock per entry.

    A training entry lives at <folder>/<key[:2]>/<key>.json, a verdict entry under <folder>/verdicts/. An entry
    that is missing, damaged, for another key or kind, or not signed with the folder's key reads as None: whoever
    could write into the folder without the key (a probe, were the sandbox to fail) cannot choose a grade.
    """

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._secret: bytes | None = None

    def path(self, kind: str, key: str) -> Path:
        """Return the file of an entry."""
        folder = self.directory if kind == "training" else self.directory / kind
        return folder / key[:2] / f"{key}.json"

    def secret(self) -> bytes:
        """Return the folder's signing key, creating it (0600, whole or not at all) on first use."""
        if self._secret is None:
            self._secret = self._read_or_make_secret()
        return self._secret

    def _read_or_make_secret(self) -> bytes:
        path = self.directory / KEY_FILE
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{KEY_FILE}.")  # mode 0600
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(os.urandom(32))
            os.link(temporary, path)  # fails if another worker made it first: theirs is the key
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
        return path.read_bytes()

    def sign(self, kind: str, key: str, entry: dict) -> str:
        """Return the HMAC of an entry: its kind, its key and its canonical content (the hmac field left out)."""
        content = json.dumps({k: v for k, v in entry.items() if k != "hmac"}, sort_keys=True, separators=(",", ":"))
        return hmac.new(self.secret(), f"{kind}\0{key}\0{content}".encode(), hashlib.sha256).hexdigest()

    @contextlib.contextmanager
    def locked(self, kind: str, key: str) -> Iterator[None]:
        """Hold an entry's lock, so a second worker waits for the first one's entry instead of making it too."""
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self, kind: str, key: str) -> dict | None:
        """Return the entry stored under key if it verifies, else None (missing, damaged or not signed by us)."""
        try:
            entry = json.loads(self.path(kind, key).read_text(encoding="utf-8"))
            if (not isinstance(entry, dict) or entry.get("key") != key
                    or not hmac.compare_digest(str(entry.get("hmac")), self.sign(kind, key, entry))):
                return None
        except (OSError, ValueError):
            return None
        return entry

    def write(self, kind: str, key: str, entry: dict) -> None:
        """Store a signed entry atomically (a reader sees the old file or the whole new one); OSError if it cannot."""
        from grader.store import atomic_write

        entry = json.loads(json.dumps({**entry, "key": key}, default=str))  # sign exactly what a later read sees
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({**entry, "hmac": self.sign(kind, key, entry)}))


# --- the training cache -----------------------------------------------------------------------------------


class TrainingCache:
    """A trainer that trains each distinct model once: memory first, then a SignedStore."""

    def __init__(self, trainer: Callable | None = None, *, directory: Path | str | None = None, seed: int = 0,
                 budget: Callable[[str, int], dict] | None = None, outcome_class: type | None = None,
                 kit: str | None = None):
        if trainer is None or outcome_class is None:
            from grader.training.check import TrainingOutcome, run_training_check
        self.trainer: Callable = run_training_check if trainer is None else trainer
        self.store = SignedStore(directory) if directory else None
        self.seed = seed
        # budget(dataset, seed) -> dict; the training check's own fingerprint unless a test passes another.
        self.budget_of = budget or budget_fingerprint
        self._kit = kit
        self._budgets: dict[str, dict] = {}
        self.outcome_class: type = TrainingOutcome if outcome_class is None else outcome_class
        self.memory: dict[str, Any] = {}
        self.hits = self.misses = 0

    def kit(self) -> str:
        """Return the kit's fingerprint (computed once)."""
        if self._kit is None:
            self._kit = kit_fingerprint()
        return self._kit

    def budget(self, dataset: str) -> dict:
        """Return the kit's fingerprint and the training check's budget for a data set (computed once)."""
        if dataset not in self._budgets:
            self._budgets[dataset] = {"kit": self.kit(), **self.budget_of(dataset, self.seed)}
        return self._budgets[dataset]

    def key(self, config_json: str, dataset: str = "synthetic") -> str:
        """Return the key this config trains under."""
        return model_key(config_json, dataset=dataset, seed=self.seed, budget=self.budget(dataset))

    def known(self, config_json: str, *, dataset: str = "synthetic") -> tuple[str, Any] | None:
        """Return (key, outcome) of an equivalent model trained before (memory or folder), None if there is none.

        The config is validated as the checker validates it; anything unusual answers None (train as usual).
        """
        from grader.checker.rebuild import ConfigRejected, validate_config

        try:
            validate_config(config_json, "build_cnn")
            key = self.key(config_json, dataset)
        except (ConfigRejected, ValueError, RecursionError):
            return None
        outcome = self._lookup(key)
        return None if outcome is None else (key, outcome)

    def __call__(self, config_json: str, *, dataset: str = "synthetic", **options: Any) -> Any:
        """Return the training outcome of a model config, training it only when no one has yet."""
        if options:  # a caller asking for something unusual gets a fresh run
            return self.trainer(config_json, dataset=dataset, seed=self.seed, **options)
        try:
            key = self.key(config_json, dataset)
        except ValueError:
            return self.trainer(config_json, dataset=dataset, seed=self.seed)
        outcome = self._lookup(key)
        if outcome is not None:
            return outcome
        with self.store.locked("training", key) if self.store else contextlib.nullcontext():
            outcome = self._lookup(key)  # another worker may have trained it while this one waited
            if outcome is None:
                self.misses += 1
                outcome = self.trainer(config_json, dataset=dataset, seed=self.seed)
                self._write(key, dataset, outcome)
        self.memory[key] = outcome
        return outcome

    def _lookup(self, key: str) -> Any:
        """Return the outcome stored under key (memory, then folder), counting a hit; None if there is none."""
        outcome = self.memory.get(key) or self._read(key)
        if outcome is not None:
            self.hits += 1
            self.memory[key] = outcome
        return outcome

    def _path(self, key: str) -> Path:
        """Return the file of a training entry (there is one only with a folder)."""
        assert self.store is not None
        return self.store.path("training", key)

    def _read(self, key: str) -> Any:
        """Return the stored outcome, or None when there is none or it cannot be read or verified."""
        entry = self.store.read("training", key) if self.store else None
        if entry is None:
            return None
        try:
            return outcome_from_data(entry["outcome"], self.outcome_class)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # damaged: train again and overwrite it

    def _write(self, key: str, dataset: str, outcome: Any) -> None:
        """Store an outcome; a cache that cannot be written only costs speed."""
        if self.store is None:
            return
        with contextlib.suppress(OSError, TypeError, ValueError):
            self.store.write("training", key, {"budget": self.budget(dataset), "outcome": outcome_to_data(outcome)})


# --- the hidden tests' verdicts ----------------------------------------------------------------------------

# The parts whose hidden tests read only the model one builder returned, and that builder.
VERDICT_PARTS = {"augmentation": "build_augmentation", "build_cnn": "build_cnn", "build_cnn_v2": "build_cnn_v2"}
# Parts whose hidden tests read nothing but what their functions returned: keyed on those outcomes as they are.
VALUE_PARTS = {"shape_math": SHAPE_MATH, "filters": FILTERS}
def _spelling(config, part):
    """Return what the checks read that the canonical form leaves out (build shapes, nesting, fixed training=)."""
    found: dict[str, list] = {"build": [], "models": [], "fixed_training": []}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("class_name") in MODEL_CLASSES:
            config_of = node.get("config")
            inner = config_of if isinstance(config_of, dict) else {}
            # the augmentation block's own tests read its class and name; the CNNs' read the nesting, and which
            # layers a nested model holds (Rescaling inside the augmentation block is a mistake, after it is not)
            children = [] if node is config else [layer.get("class_name") for layer in inner.get("layers") or []
                                                  if isinstance(layer, dict)]
            found["models"].append([node["class_name"], inner.get("name"), children] if part == "augmentation"
                                   else [node["class_name"], children])
        if "build_config" in node:
            found["build"].append(node["build_config"])
        nodes = node.get("inbound_nodes")
        inbound = nodes if isinstance(nodes, list) else []
        for call in inbound:
            kwargs = call.get("kwargs") if isinstance(call, dict) else None
            training = kwargs.get("training") if isinstance(kwargs, dict) else None
            if isinstance(training, bool):  # the checks name the layer called with a fixed training=
                found["fixed_training"].append([(node.get("config") or {}).get("name"), training])
        for value in node.values():
            walk(value)

    walk(config)
    return found


def verdict_key(part, outcome, fingerprint):
    """Return the key of a part's verdicts on the probe's outcome, or None where they are not cached.

    Only a builder that returned models whose configs pass the checker's validation is cached: what the hidden
    tests reject, or an error, a timeout or a crash, is checked afresh (it is cheap).
    """
    from grader.checker.rebuild import ConfigRejected, validate_config
    from grader.protocol import OK

    if outcome.status != OK or not isinstance(outcome.value, dict) or not isinstance(outcome.value.get("config"), str):
        return None
    forms = {}
    for field in ("config", "config_num_classes"):
        data = outcome.value.get(field)
        if isinstance(data, str):
            try:
                config = validate_config(data, part)
                forms[field] = {"model": canonical_model(config), "spelling": _spelling(config, part)}
            except (ConfigRejected, ValueError):
                return None
        elif data is not None:
            forms[field] = data   # {"error": ...}: its message is part of the verdict
    material = {"part": part, "forms": forms, "tests": fingerprint}
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def value_key(part, outcomes, fingerprint):
    """Return the key of a part's verdicts on exactly these function outcomes (status, value, message)."""
    material = {"part": part, "tests": fingerprint,
                "outcomes": [[outcome.name, outcome.status, outcome.value, outcome.message] for outcome in outcomes]}
    try:
        text = json.dumps(material, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


class VerdictCache:
    """The hidden tests' verdicts per part and equivalent model: memory first, then a SignedStore."""

    def __init__(self, directory: Path | str | None = None, *, kit: str | None = None):
        self.store = SignedStore(directory) if directory else None
        self.memory: dict[str, list] = {}
        self.hits = self.misses = 0
        self._kit = kit

    def kit(self) -> str:
        """Return the kit's fingerprint (computed once)."""
        if self._kit is None:
            self._kit = kit_fingerprint()
        return self._kit

    def keys(self, probe: Any, training: str | None = None) -> dict[str, str]:
        """Return {part: key} for the parts of a probe's data whose verdicts can be cached.

        training: the training cache's key of build_cnn's outcome, where it is known (its verdict follows from it).
        """
        found = {"training": self.training_key(training)} if training else {}
        for part, function in VERDICT_PARTS.items():
            key = verdict_key(part, probe.outcome(function), self.kit())
            called = CALLS.get(function, ())
            if key and called:  # its verdicts also compare it with what it calls (the student's or the lesson's)
                material = [key, sorted(probe.outcome(function).substituted)]
                material += [verdict_key(name, probe.outcome(name), self.kit()) or probe.outcome(name).status
                             for name in called]
                key = hashlib.sha256(json.dumps(material).encode()).hexdigest()
            if key:
                found[part] = key
        for part, functions in VALUE_PARTS.items():
            key = value_key(part, [probe.outcome(function) for function in functions], self.kit())
            if key:
                found[part] = key
        return found

    def training_key(self, training: str) -> str:
        """Return the key of the training check's verdict on the outcome the training cache keeps under training."""
        material = {"part": "training", "training": training, "tests": self.kit()}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> list | None:
        """Return the stored verdicts (a list of CheckResult) under key, or None."""
        from grader.results import CheckResult

        if key not in self.memory and self.store is not None:
            entry = self.store.read("verdicts", key)
            with contextlib.suppress(KeyError, TypeError, ValueError):
                if entry is not None:
                    self.memory[key] = [CheckResult(**fields) for fields in entry["verdicts"]]
        found = self.memory.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return [dataclasses.replace(result) for result in found]

    def put(self, key: str, verdicts: list) -> None:
        """Store a part's verdicts; a folder that cannot be written only costs speed."""
        self.memory[key] = [dataclasses.replace(result) for result in verdicts]
        if self.store is None:
            return
        with contextlib.suppress(OSError, TypeError, ValueError), self.store.locked("verdicts", key):
            self.store.write("verdicts", key, {"verdicts": [dataclasses.asdict(result) for result in verdicts]})


_VERDICT_CACHES: dict[str | None, VerdictCache] = {}


def verdict_cache(directory: Path | str | None = None) -> VerdictCache:
    """Return this process's VerdictCache for a cache folder (None: memory only), so a batch worker keeps one."""
    key = str(directory) if directory else None
    if key not in _VERDICT_CACHES:
        _VERDICT_CACHES[key] = VerdictCache(directory)
    return _VERDICT_CACHES[key]
