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
the same model train it once. `grader.verdicts.VerdictCache` keeps the hidden tests' verdicts in the same store.
Both key their entries from one fingerprint of the kit (`kit_fingerprint`).
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

from grader.checker.canonical import canonical_model
from grader.lesson.manifest import TRAINING_BUILDER

FORMAT = 2                      # bump when the entry layout or the canonical form changes
KEY_FILE = "hmac.key"            # made 0600 in the cache folder on first use; entries are signed with it


def default_directory():
    """Return the on-disk cache folder: $XDG_CACHE_HOME/lesson6-grader/training, else ~/.cache/..."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lesson6-grader" / "training"


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
            validate_config(config_json, TRAINING_BUILDER)
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
