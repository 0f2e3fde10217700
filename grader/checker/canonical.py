"""One canonical form of a model config, owned by the checker: equal for models that compute and train identically.

Functional or Sequential, any layer names, `kernel_size=3` or `(3, 3)`, relu inside Conv2D or as a separate ReLU
layer, the augmentation block nested or inline: all give one form. Anything the form does not understand is kept as
it is, so two models share a form only when they train the same way. The training cache's keys, the verdict cache's
and the checker's size bounds (rebuild.check_size) read this form. The lesson comparison reads the same form modulo
style from the live layers (grader.checker.checks.comparison.canonical_layers: also seeds, a relu after a relu and a
linear Activation are style there); both fold a relu by comparison.is_plain_relu and read a dtype with
comparison.dtype_name.
"""

import json

from grader.checker.checks.comparison import dtype_name, is_plain_relu

MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Keras stores these as one number per spatial axis; a config written by hand may give one int.
PER_AXIS_KEYS = ("kernel_size", "strides", "pool_size", "dilation_rate", "size")
UNREADABLE_CONFIG = "Expected a model config written by model.to_json(); {problem}. Received: {received}"


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
    if dtype is not None and dtype_name(dtype) != "float32":
        settings["dtype"] = _without_names(dtype)
    return settings


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
            if dtype_name(config.get("dtype", "float32")) != "float32" or config.get("sparse") or config.get("ragged"):
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
                    or dtype_name(config.get("dtype")) != dtype_name(op["layer"]["config"].get("dtype"))):
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
    return not op["kwargs"] and is_plain_relu(layer.get("class"), config)


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
