"""Remember training-check outcomes, so each distinct model is trained once per class, not once per student.

The training check is the slowest part of grading, and most of a class hands in the same network in
different spellings: Functional or Sequential, any layer names, `kernel_size=3` or `(3, 3)`, relu inside
Conv2D or as a separate ReLU layer, the augmentation block nested or inline. `model_key` maps all of those
to one key, made of a canonical form of the model's config (what trains identically gets one form), the
data set, the seed, the kit's version, the training code and its budget. Anything the canonical form
does not understand is kept as it is, so two models share a key only when they train the same way.

`TrainingCache` wraps the trainer the checker calls (`trainer(config_json, dataset=...)`): an in-memory
dict per process, then JSON files in a folder shared by every worker (and by later runs), with a file
lock so that two workers needing the same model train it once.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path

from grader.checker.canonical import MODEL_CLASSES, canonical_model
from grader.lesson.manifest import BUILDER_PARTS, FILTERS, SHAPE_MATH, TRAINING_BUILDER

FORMAT = 1                      # bump when the entry layout or the canonical form changes
TRAINING_SOURCES = Path(__file__).resolve().parent / "training"

KEY_FILE = "hmac.key"            # made 0600 in the cache folder on first use; entries are signed with it


def default_directory():
    """Return the on-disk cache folder: $XDG_CACHE_HOME/lesson6-grader/training, else ~/.cache/..."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lesson6-grader" / "training"


# --- the key ----------------------------------------------------------------------------------------------


def kit_fingerprint():
    """Return the kit's version and a digest of the training check's source (any change re-trains)."""
    try:
        from importlib.metadata import version

        kit = version("lesson6-grader")
    except Exception:  # running from a checkout that is not installed
        kit = "unknown"
    digest = hashlib.sha256()
    for path in sorted(TRAINING_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"kit": kit, "training_sources": digest.hexdigest()[:16], "format": FORMAT}


def budget_fingerprint(dataset, seed):
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


# --- the cache ---------------------------------------------------------------------------------------------


class TrainingCache:
    """A trainer that trains each distinct model once: memory first, then a folder of JSON entries."""

    def __init__(self, trainer=None, *, directory=None, seed=0, fingerprint=None, outcome_class=None):
        if trainer is None:
            from grader.training.check import run_training_check as trainer
        if outcome_class is None:
            from grader.training.check import TrainingOutcome as outcome_class
        self.trainer = trainer
        self.directory = Path(directory) if directory else None
        self.seed = seed
        # fingerprint(dataset, seed) -> dict; the training check's own one unless a test passes another.
        self.fingerprint = fingerprint or budget_fingerprint
        self._budgets = {}
        self.outcome_class = outcome_class
        self.memory = {}
        self.hits = self.misses = 0

    def budget(self, dataset):
        """Return the kit's and the training check's fingerprint for a data set (computed once)."""
        if dataset not in self._budgets:
            self._budgets[dataset] = {**kit_fingerprint(), **self.fingerprint(dataset, self.seed)}
        return self._budgets[dataset]

    def key(self, config_json, dataset="synthetic"):
        """Return the key this config trains under."""
        return model_key(config_json, dataset=dataset, seed=self.seed, budget=self.budget(dataset))

    def known(self, config_json, *, dataset="synthetic"):
        """Return (key, outcome) of an equivalent model trained before (memory or folder), None if there is none.

        The config is validated as the checker validates it; anything unusual answers None (train as usual).
        """
        from grader.checker.rebuild import ConfigRejected, validate_config

        try:
            validate_config(config_json, TRAINING_BUILDER)
            key = self.key(config_json, dataset)
        except (ConfigRejected, ValueError, RecursionError):
            return None
        outcome = self._lookup(key)
        return None if outcome is None else (key, outcome)

    def __call__(self, config_json, *, dataset="synthetic", **options):
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
        with self._locked(key):
            outcome = self._lookup(key)  # another worker may have trained it while this one waited
            if outcome is None:
                self.misses += 1
                outcome = self.trainer(config_json, dataset=dataset, seed=self.seed)
                self._write(key, dataset, outcome)
        self.memory[key] = outcome
        return outcome

    def _lookup(self, key):
        """Return the outcome stored under key (memory, then folder), counting a hit; None if there is none."""
        outcome = self.memory.get(key) or self._read(key)
        if outcome is not None:
            self.hits += 1
            self.memory[key] = outcome
        return outcome

    def _secret(self):
        """Return the cache folder's signing key, creating it (0600, atomically) on first use."""
        path = self.directory / KEY_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            secret = os.urandom(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another worker made it first
                return path.read_bytes()
            with os.fdopen(fd, "wb") as handle:
                handle.write(secret)
            return secret

    def _sign(self, key, data):
        """Return the HMAC of an entry: its model key and its canonical content (the hmac field left out)."""
        content = json.dumps({k: v for k, v in data.items() if k != "hmac"}, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._secret(), f"{key}\0{content}".encode(), hashlib.sha256).hexdigest()

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.json"

    @contextlib.contextmanager
    def _locked(self, key):
        """Hold the entry's lock, so a second worker waits for the first one's result instead of training too."""
        if self.directory is None:
            yield
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, key):
        """Return the stored outcome, or None when there is none or it cannot be read."""
        if self.directory is None:
            return None
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            if data.get("key") != key or not hmac.compare_digest(str(data.get("hmac")), self._sign(key, data)):
                return None  # not written by a grader holding the key: train again
            return outcome_from_data(data["outcome"], self.outcome_class)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing or damaged: train again and overwrite it

    def _write(self, key, dataset, outcome):
        """Store an outcome atomically; a cache that cannot be written only costs speed."""
        if self.directory is None:
            return
        path = self._path(key)
        try:
            data = {"key": key, "budget": self.budget(dataset), "outcome": outcome_to_data(outcome)}
            data = json.loads(json.dumps(data, default=str))  # sign exactly what a later read will see
            text = json.dumps({**data, "hmac": self._sign(key, data)})
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False,
                                             encoding="utf-8") as handle:
                handle.write(text)
            os.replace(handle.name, path)
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(handle.name)


# --- the hidden tests' verdicts ----------------------------------------------------------------------------

# The parts whose hidden tests read only the model one builder returned, and that builder.
VERDICT_PARTS = BUILDER_PARTS
# Parts whose hidden tests read nothing but what their functions returned: keyed on those outcomes as they are.
VALUE_PARTS = {"shape_math": SHAPE_MATH, "filters": FILTERS}
CHECKER = Path(__file__).resolve().parent / "checker"
VERDICT_SOURCES = (*sorted((CHECKER / "hidden_tests").glob("*.py")), CHECKER / "hidden_tests" / "points.toml",
                   CHECKER / "rebuild.py", CHECKER / "session.py", CHECKER / "run.py", CHECKER / "canonical.py",
                   CHECKER / "reference.py", Path(__file__).resolve().parent / "lesson" / "checks.py")


def tests_fingerprint():
    """Return a digest of what decides a builder's verdicts: the hidden tests, their points and checks, the lesson's
    manifest and reference, Keras."""
    from importlib.metadata import version

    from grader.checker.reference import fingerprint as reference_fingerprint
    from grader.lesson.manifest import MANIFEST, POINTS_FILE, lesson_dir

    digest = hashlib.sha256(f"{FORMAT}\0keras {version('keras')}\0".encode())
    for path in (*VERDICT_SOURCES, POINTS_FILE, lesson_dir() / MANIFEST):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"reference {reference_fingerprint()}".encode())
    return digest.hexdigest()


def _spelling(config, part):
    """Return what the checks read that the canonical form leaves out (build shapes, nesting, fixed training=)."""
    found = {"build": [], "models": [], "fixed_training": []}

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("class_name") in MODEL_CLASSES:
            inner = node.get("config") if isinstance(node.get("config"), dict) else {}
            # the augmentation block's own tests read its class and name; the CNNs' read the nesting, and which
            # layers a nested model holds (Rescaling inside the augmentation block is a mistake, after it is not)
            children = [] if node is config else [layer.get("class_name") for layer in inner.get("layers") or []
                                                  if isinstance(layer, dict)]
            found["models"].append([node["class_name"], inner.get("name"), children] if part == "augmentation"
                                   else [node["class_name"], children])
        if "build_config" in node:
            found["build"].append(node["build_config"])
        inbound = node.get("inbound_nodes") if isinstance(node.get("inbound_nodes"), list) else []
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
    """The hidden tests' verdicts per part and equivalent model: memory first, then a folder of JSON entries."""

    def __init__(self, directory=None):
        self.directory = Path(directory) if directory else None
        self.memory = {}
        self.hits = self.misses = 0
        self._fingerprint = None

    def fingerprint(self):
        """Return the hidden tests' fingerprint (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = tests_fingerprint()
        return self._fingerprint

    def keys(self, probe, training=None):
        """Return {part: key} for the parts of a probe's data whose verdicts can be cached.

        training: the training cache's key of the trained builder's outcome, where known (its verdict follows from it).
        """
        found = {"training": self.training_key(training)} if training else {}
        for part, function in VERDICT_PARTS.items():
            key = verdict_key(part, probe.outcome(function), self.fingerprint())
            if key:
                found[part] = key
        for part, functions in VALUE_PARTS.items():
            key = value_key(part, [probe.outcome(function) for function in functions], self.fingerprint())
            if key:
                found[part] = key
        return found

    def training_key(self, training):
        """Return the key of the training check's verdict on the outcome the training cache keeps under training."""
        material = {"part": "training", "training": training, "tests": self.fingerprint()}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def get(self, key):
        """Return the stored verdicts (a list of CheckResult) under key, or None."""
        from grader.results import CheckResult

        if key not in self.memory and self.directory is not None:
            try:
                data = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
                if data.get("key") == key:
                    self.memory[key] = [CheckResult(**entry) for entry in data["verdicts"]]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # missing or damaged: the tests run again
        found = self.memory.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return [dataclasses.replace(result) for result in found]

    def put(self, key, verdicts):
        """Store a part's verdicts; a folder that cannot be written only costs speed."""
        self.memory[key] = [dataclasses.replace(result) for result in verdicts]
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"key": key, "verdicts": [dataclasses.asdict(result) for result in verdicts]})
            with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".tmp", delete=False,
                                             encoding="utf-8") as handle:
                handle.write(text)
            os.replace(handle.name, self.directory / f"{key}.json")
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(handle.name)


_VERDICT_CACHES = {}


def verdict_cache(directory=None):
    """Return this process's VerdictCache for a folder (None: memory only), so a batch worker keeps one."""
    key = str(directory) if directory else None
    if key not in _VERDICT_CACHES:
        _VERDICT_CACHES[key] = VerdictCache(directory)
    return _VERDICT_CACHES[key]
