"""Remember the hidden tests' verdicts per part, so an equivalent model is judged once, not once per student.

A part's key is the canonical form of the models its hidden tests read (or the exact outcomes, for parts that read
values), with what the canonical form leaves out but the checks read, and the kit's fingerprint: a change to the
hidden tests, the points or the checker makes every old verdict unreachable. Entries live in the same signed store
as the training cache (grader/cache.py).
"""

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from grader.cache import SignedStore, kit_fingerprint
from grader.checker.canonical import MODEL_CLASSES, canonical_model
from grader.lesson.manifest import BUILDER_PARTS, CALLS, FILTERS, SHAPE_MATH

# The parts whose hidden tests read only the model one builder returned, and that builder.
VERDICT_PARTS = BUILDER_PARTS


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

        training: the training cache's key of the trained builder's outcome, where known (its verdict follows from it).
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
