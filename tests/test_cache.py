"""The training-result cache: one key for equivalent spellings, another for a different model, same scores; the
signed store both caches keep their entries in: forged entries ignored, concurrent writers never half an entry."""

import functools
import json
import multiprocessing
import os
import threading
import time
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.cache import (  # noqa: E402
    KEY_FILE,
    SignedStore,
    TrainingCache,
    kit_fingerprint,
    model_key,
)
from grader.checker.canonical import canonical_model  # noqa: E402
from grader.verdicts import VerdictCache  # noqa: E402

BUDGET = {"epochs": 3}


def key_of(model):
    return model_key(model.to_json(), dataset="synthetic", seed=0, budget=BUDGET)


# --- models in several spellings ---------------------------------------------------------------------------


def augmentation(keras, layers, seed=None):
    return keras.Sequential([layers.RandomFlip("horizontal", seed=seed), layers.RandomRotation(0.05),
                             layers.RandomZoom(0.1)], name="augmentation")


def functional(rescale=True, softmax=False, kernel=3, freeze_first=False, aug_seed=None, first_conv_name=None):
    """The lesson's network, Functional API, relu inside Conv2D (the reference's spelling)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(32, 32, 3))
    x = augmentation(keras, layers, aug_seed)(inputs)
    if rescale:
        x = layers.Rescaling(1.0 / 255)(x)
    for index, filters in enumerate((32, 32, "pool", 64, 64, "pool", 128, "pool")):
        if filters == "pool":
            x = layers.MaxPooling2D(2)(x)
        else:
            x = layers.Conv2D(filters, kernel, padding="same", activation="relu",
                              trainable=not (freeze_first and index == 0),
                              name=first_conv_name if index == 0 else None)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs, name="cifar10_cnn")


def sequential(relu="layer", inline_augmentation=False):
    """The same network, Sequential API, kernel_size=(3, 3), relu as a ReLU or Activation layer, own names."""
    import keras
    from keras import layers

    aug = augmentation(keras, layers)
    body = [keras.Input((32, 32, 3))] + (list(aug.layers) if inline_augmentation else [aug])
    body.append(layers.Rescaling(1 / 255, name="scale"))
    for filters in (32, 32, "pool", 64, 64, "pool", 128, "pool"):
        if filters == "pool":
            body.append(layers.MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
            continue
        body.append(layers.Conv2D(filters, kernel_size=(3, 3), padding="same", name=f"conv_{len(body)}"))
        body.append(layers.ReLU() if relu == "layer" else layers.Activation("relu"))
    body += [layers.GlobalAveragePooling2D(), layers.Dense(10, name="logits")]
    return keras.Sequential(body, name="my_model")


EQUIVALENT = {
    "sequential_relu_layers": lambda: sequential("layer"),
    "sequential_activation_layers": lambda: sequential("activation"),
    "sequential_inline_augmentation": lambda: sequential("layer", inline_augmentation=True),
    "functional_own_names": lambda: functional(first_conv_name="first_conv"),
}
DIFFERENT = {
    "no_rescaling": lambda: functional(rescale=False),
    "softmax_output": lambda: functional(softmax=True),
    "kernel_5": lambda: functional(kernel=5),
    "frozen_first_conv": lambda: functional(freeze_first=True),
    "seeded_augmentation": lambda: functional(aug_seed=1),
}


@pytest.fixture(scope="module")
def reference_key():
    return key_of(functional())


@pytest.mark.parametrize("build", EQUIVALENT.values(), ids=EQUIVALENT.keys())
def test_equivalent_spellings_share_a_key(build, reference_key):
    assert key_of(build()) == reference_key


@pytest.mark.parametrize("build", DIFFERENT.values(), ids=DIFFERENT.keys())
def test_a_different_model_gets_another_key(build, reference_key):
    assert key_of(build()) != reference_key


def test_dataset_seed_and_budget_are_part_of_the_key():
    text = functional().to_json()
    keys = {model_key(text, dataset="synthetic", seed=0, budget=BUDGET),
            model_key(text, dataset="cifar10", seed=0, budget=BUDGET),
            model_key(text, dataset="synthetic", seed=1, budget=BUDGET),
            model_key(text, dataset="synthetic", seed=0, budget={"epochs": 4})}
    assert len(keys) == 4


def test_augmentation_called_inline_with_training_true_is_not_the_nested_block():
    """Keras records training=True for a random layer called in a Functional graph: it trains differently."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(32, 32, 3))
    x = inputs
    for layer in augmentation(keras, layers).layers:
        x = layer(x)
    outputs = layers.Dense(10)(layers.GlobalAveragePooling2D()(x))
    nested = keras.Sequential([keras.Input((32, 32, 3)), augmentation(keras, layers),
                               layers.GlobalAveragePooling2D(), layers.Dense(10)])
    assert key_of(keras.Model(inputs, outputs)) != key_of(nested)


def test_shared_layers_fall_back_to_the_config_without_names():
    import keras
    from keras import layers

    def tied(name):
        shared = layers.Dense(4, name=name)
        inputs = keras.Input((4,))
        return keras.Model(inputs, shared(shared(inputs)))

    canonical = canonical_model(tied("a").to_json())
    assert "opaque" in canonical and '"a"' not in json.dumps(canonical)
    assert canonical == canonical_model(tied("b").to_json())


def test_unreadable_config_says_what_was_expected():
    with pytest.raises(ValueError, match="Expected a model config written by model.to_json"):
        canonical_model("not json")


# --- the cache with a stand-in trainer ---------------------------------------------------------------------


@dataclass
class FakeOutcome:
    accuracy: float
    passed: bool
    history: dict
    dataset: str
    first_kernel: np.ndarray = field(default=None, repr=False)


class CountingTrainer:
    """Stand in for run_training_check: the accuracy depends on the config, and every call is counted."""

    def __init__(self, seconds=0.0):
        self.calls = []
        self.seconds = seconds

    def __call__(self, config_json, *, dataset="synthetic", seed=0):
        self.calls.append(config_json)
        time.sleep(self.seconds)
        accuracy = 0.1 + (len(config_json) % 1000) / 1234.5
        kernel = np.random.default_rng(len(config_json)).normal(size=(3, 3, 3, 32)).astype("float32")
        return FakeOutcome(accuracy=accuracy, passed=accuracy > 0.5, dataset=dataset, first_kernel=kernel,
                           history={"loss": [2.3, 1.7 + accuracy / 7], "accuracy": [0.2, accuracy]})


def make_cache(trainer, directory=None):
    return TrainingCache(trainer, directory=directory, budget=lambda dataset, seed: BUDGET,
                         outcome_class=FakeOutcome)


def assert_same_outcome(found, expected):
    assert (found.accuracy, found.passed, found.history, found.dataset) == (
        expected.accuracy, expected.passed, expected.history, expected.dataset)
    assert found.first_kernel.dtype == expected.first_kernel.dtype
    np.testing.assert_array_equal(found.first_kernel, expected.first_kernel)


@pytest.fixture(scope="module")
def configs():
    return {"reference": functional().to_json(), "variant": sequential().to_json(),
            "mistake": functional(rescale=False).to_json()}


def test_memory_cache_trains_each_distinct_model_once(configs):
    trainer = CountingTrainer()
    cache = make_cache(trainer)
    first = cache(configs["reference"], dataset="synthetic")
    assert cache(configs["variant"], dataset="synthetic") is first
    cache(configs["mistake"], dataset="synthetic")
    assert len(trainer.calls) == 2 and (cache.misses, cache.hits) == (2, 1)


def test_disk_cache_is_shared_by_later_runs_and_keeps_outcomes_exact(configs, tmp_path):
    trained = make_cache(CountingTrainer(), tmp_path)(configs["reference"], dataset="synthetic")
    later_trainer = CountingTrainer()
    later = make_cache(later_trainer, tmp_path)
    assert_same_outcome(later(configs["variant"], dataset="synthetic"), trained)
    assert later_trainer.calls == [] and later.hits == 1


def test_damaged_entry_is_trained_again(configs, tmp_path):
    cache = make_cache(CountingTrainer(), tmp_path)
    cache(configs["reference"], dataset="synthetic")
    for entry in tmp_path.rglob("*.json"):
        entry.write_text("{not json")
    trainer = CountingTrainer()
    make_cache(trainer, tmp_path)(configs["reference"], dataset="synthetic")
    assert len(trainer.calls) == 1


def test_two_workers_needing_one_model_train_it_once(configs, tmp_path):
    trainer = CountingTrainer(seconds=0.5)
    caches = [make_cache(trainer, tmp_path) for _ in range(2)]
    found = []
    threads = [threading.Thread(target=lambda cache=cache: found.append(cache(configs["reference"])))
               for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trainer.calls) == 1
    assert_same_outcome(found[0], found[1])


# --- the cache never changes a score ------------------------------------------------------------------------


@pytest.mark.slow
def test_cache_on_and_off_give_identical_results(tmp_path):
    """Grade a correct submission, a variant of it and a mistake with and without the cache: same tests."""
    from benchmarks.class_folder import make_class
    from grader.grade import check, probe_submission
    from grader.training.check import Budget, TrainingOutcome, run_training_check

    # The real training check on a smaller budget: the cache's reuse is what is under test, not learning.
    trainer = functools.partial(run_training_check, budget=Budget(n_train=1024, n_test=256, epochs=2,
                                                                  batch_size=64), threshold=0.3)
    calls = []

    def counted(config_json, **options):
        calls.append(config_json)
        return trainer(config_json, **options)

    paths = make_class(tmp_path / "class", ["bob.py", "carol.py", "grace"])
    probes = {path.name: probe_submission(path) for path in paths}
    cache = TrainingCache(counted, directory=tmp_path / "cache", outcome_class=TrainingOutcome,
                          budget=lambda dataset, seed: {"budget": "test"})
    without, cached = {}, {}
    for name, probe in probes.items():
        without[name] = check(probe, submission=name, trainer=trainer)
        cached[name] = check(probe, submission=name, trainer=cache)
    assert (cache.misses, cache.hits) == (2, 1), "carol.py's Sequential spelling should reuse bob.py's entry"
    for name in probes:
        plain = [(t.name, t.score, t.max_score, t.status, t.output) for t in without[name].tests]
        reused = [(t.name, t.score, t.max_score, t.status, t.output) for t in cached[name].tests]
        assert reused == plain, name
        assert any(t.part == "training" for t in cached[name].tests)


@pytest.mark.parametrize("unfinished_parts", [set(), {"filters"}])
def test_a_part_whose_check_did_not_finish_keeps_no_verdict(monkeypatch, unfinished_parts):
    """What a timed-out or crashed check says is not a verdict on the model: run_checks must not store it."""
    import grader.checker.run
    from grader.grade import run_checks
    from grader.results import FAILED, CheckResult

    def hidden_tests(session, *, skip_parts=(), unfinished=None):
        unfinished.update(unfinished_parts)
        return [CheckResult(name=f"{part}: a check", part=part, score=0, max_score=1, status=FAILED, output="no")
                for part in ("shape_math", "filters")]

    class Verdicts:
        stored = {}

        def keys(self, probe, training=None):
            return {"shape_math": "key-1", "filters": "key-2"}

        def get(self, key):
            return None

        def put(self, key, verdicts):
            self.stored[key] = verdicts

    verdicts = Verdicts()
    monkeypatch.setattr(grader.checker.run, "run_hidden_tests", hidden_tests)
    session = types.SimpleNamespace(probe=None, training=False, known_training=lambda: None)
    tests = run_checks(session=session, verdicts=verdicts)
    assert [test.part for test in tests] == ["shape_math", "filters"]
    assert sorted(verdicts.stored) == (["key-1"] if unfinished_parts else ["key-1", "key-2"])


# --- the signed store -------------------------------------------------------------------------------------


def a_verdict(score):
    from grader.results import FAILED, PASSED, CheckResult

    return CheckResult(name="filters: a check", part="filters", score=score, max_score=1.0,
                       status=PASSED if score else FAILED, output="what the check said")


def test_a_forged_or_unsigned_verdict_entry_is_ignored(tmp_path):
    key = "ab" * 32
    VerdictCache(tmp_path, kit="kit").put(key, [a_verdict(0.0)])
    assert VerdictCache(tmp_path, kit="kit").get(key)[0].score == 0.0  # the grader's own entry is read back
    path = SignedStore(tmp_path).path("verdicts", key)
    entry = json.loads(path.read_text(encoding="utf-8"))
    forged = {**entry, "verdicts": [{**entry["verdicts"][0], "score": 1.0, "status": "passed"}]}
    unsigned = {name: value for name, value in forged.items() if name != "hmac"}
    signed_elsewhere = {**unsigned, "hmac": SignedStore(tmp_path / "elsewhere").sign("verdicts", key, unsigned)}
    as_training = {**unsigned, "hmac": SignedStore(tmp_path).sign("training", key, unsigned)}
    for attempt in (forged, unsigned, signed_elsewhere, as_training):
        path.write_text(json.dumps(attempt), encoding="utf-8")
        cache = VerdictCache(tmp_path, kit="kit")
        assert cache.get(key) is None and cache.misses == 1, attempt
    path.write_text(json.dumps(entry), encoding="utf-8")
    assert VerdictCache(tmp_path, kit="kit").get(key)[0].score == 0.0  # the test can tell a good entry apart


def test_a_poisoned_verdict_never_changes_a_grade(tmp_path, monkeypatch):
    """A probe that wrote a full-marks entry under the key of a failing part gets the tests' own verdict."""
    from grader.grade import run_checks

    cache = VerdictCache(tmp_path, kit="kit")
    key = "cd" * 32
    store = SignedStore(tmp_path)
    store.path("verdicts", key).parent.mkdir(parents=True)
    store.path("verdicts", key).write_text(json.dumps({"key": key, "verdicts": [vars(a_verdict(1.0))]}))

    class Keys(VerdictCache):
        def keys(self, probe, training=None):
            return {"filters": key}

    verdicts = Keys(tmp_path, kit="kit")
    session = types.SimpleNamespace(probe=None, training=False, known_training=lambda: None)
    monkeypatch.setattr("grader.checker.run.run_hidden_tests",
                        lambda session, *, skip_parts=(), unfinished=None: [a_verdict(0.0)])
    [test] = run_checks(session=session, verdicts=verdicts)
    assert test.score == 0.0 and verdicts.misses == 1
    assert cache.get(key)[0].score == 0.0  # the tests' verdict replaced the forgery, signed


def write_many(directory, key, writer, times):
    """Write big entries of one writer's own content under one key (a child process of the test below)."""
    store = SignedStore(directory)
    for time_ in range(times):
        with store.locked("verdicts", key):
            store.write("verdicts", key, {"writer": writer, "time": time_, "padding": "x" * 2_000_000})


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_concurrent_writers_never_leave_half_an_entry(tmp_path):
    """Four processes write one entry (and race to make the folder's key) while this one reads it raw."""
    key = "ef" * 32
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_many, args=(tmp_path, key, writer, 15)) for writer in range(4)]
    for process in writers:
        process.start()
    path, seen = SignedStore(tmp_path).path("verdicts", key), set()
    while any(process.is_alive() for process in writers):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        entry = json.loads(text)  # never a truncated file
        assert SignedStore(tmp_path).read("verdicts", key) is not None  # and what is there verifies
        seen.add((entry["writer"], entry["time"]))
    for process in writers:
        process.join()
        assert process.exitcode == 0
    assert seen, "the reader never saw an entry: the test proved nothing"
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600 and len((tmp_path / KEY_FILE).read_bytes()) == 32
    assert SignedStore(tmp_path).read("verdicts", key)["time"] == 14
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{key}.json", f"{key}.lock"]  # no temporary left


def test_one_kit_fingerprint_keys_both_caches(tmp_path, monkeypatch):
    files = {"checker/hidden_tests/test_filters.py": "1" * 64, "training/check.py": "2" * 64}
    kit = kit_fingerprint(files)
    assert kit == kit_fingerprint({**files, "checker/__pycache__/run.cpython-312.pyc": "3" * 64})  # bytecode aside
    for name in files:  # a hidden test or the training code changed: every key changes
        assert kit_fingerprint({**files, name: "4" * 64}) != kit
    training = TrainingCache(CountingTrainer(), budget=lambda dataset, seed: BUDGET, kit=kit)
    assert training.budget("synthetic") == {"kit": kit, **BUDGET}
    other = TrainingCache(CountingTrainer(), budget=lambda dataset, seed: BUDGET, kit=kit_fingerprint({}))
    config = sequential().to_json()
    assert training.key(config) != other.key(config)
    assert VerdictCache(kit=kit).training_key("k") != VerdictCache(kit=kit_fingerprint({})).training_key("k")
    monkeypatch.setattr("grader.checker.inputs.fingerprint", lambda: files)
    assert VerdictCache().kit() == TrainingCache(CountingTrainer()).kit() == kit  # taken from the kit's one hash
