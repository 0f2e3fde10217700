"""The trusted side's own limits: model size from the config, config depth, source size, notebook extraction,
the batch worker's memory, and the training cache's signed entries."""

import json
import resource
import sys

import nbformat
import pytest

from grader.batch import limit_memory
from grader.cache import KEY_FILE
from grader.checker.rebuild import MAX_CONFIG_DEPTH, ConfigRejected, check_size, rebuild, validate_config
from grader.submission import MAX_SOURCE_BYTES, SubmissionError, needed_statements, notebook_source, prepare
from tests.conftest import SOLUTIONS
from tests.test_cache import CountingTrainer, configs, make_cache  # noqa: F401  (configs: a fixture)


def reference(name):
    sys.path.insert(0, str(SOLUTIONS))
    try:
        import cnn

        return getattr(cnn, name)()
    finally:
        sys.path.remove(str(SOLUTIONS))


@pytest.mark.parametrize("builder", ["build_cnn", "build_cnn_v2"])
def test_the_lessons_networks_are_sized_exactly_and_rebuilt(builder):
    model = reference(builder)
    assert rebuild(model.to_json(), f"{builder}()").count_params() == model.count_params()


def test_a_huge_dense_layer_is_refused_before_any_weight_exists():
    import keras

    small = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(25)])
    huge = small.to_json().replace('"units": 25', '"units": 250000')
    with pytest.raises(ConfigRejected, match="768,250,000 parameters; the grader rebuilds models of at most"):
        rebuild(huge, "build_cnn()")


def test_a_deeply_nested_config_is_refused():
    text = "[" * 5000 + "]" * 5000
    with pytest.raises(ConfigRejected, match=f"nests more than {MAX_CONFIG_DEPTH} levels"):
        validate_config(text, "build_cnn()")


def test_too_many_layers_are_refused():
    import keras

    layers = [keras.Input((32, 32, 3))] + [keras.layers.ReLU() for _ in range(250)]
    with pytest.raises(ConfigRejected, match="at most 200 layers"):
        check_size(json.loads(keras.Sequential(layers).to_json()), "build_cnn()")


def test_a_huge_single_source_file_is_refused(tmp_path):
    path = tmp_path / "submission.py"
    path.write_text("x = 1\n" * (MAX_SOURCE_BYTES // 6 + 10))
    with pytest.raises(SubmissionError, match="at most 2 MiB of code"):
        prepare(path, tmp_path / "scratch")


def test_a_long_assignment_chain_keeps_every_link(tmp_path):
    links = 8000
    code = "a0 = 1\n" + "\n".join(f"a{i} = a{i - 1} + 1" for i in range(1, links)) + "\n"
    code += f"unused = 2\ndef build_cnn(num_classes=10):\n    return a{links - 1}\n"
    path = tmp_path / "chain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), str(path))
    source = notebook_source(path, "chain.ipynb")
    assert f"a{links - 1} = a{links - 2} + 1" in source and "a0 = 1" in source and "unused" not in source


def test_needed_statements_follows_names_through_functions():
    import ast

    tree = ast.parse("import keras\nW = 3\nV = W\nunused = 1\ndef f():\n    return V\n")
    kept = needed_statements(tree.body)
    assert [type(s).__name__ for s in tree.body if id(s) in kept] == ["Assign", "Assign", "FunctionDef"]


def test_a_worker_limits_its_address_space():
    before = resource.getrlimit(resource.RLIMIT_AS)
    try:
        limit_memory(8 * 2**30)
        assert resource.getrlimit(resource.RLIMIT_AS)[0] == 8 * 2**30
    finally:
        resource.setrlimit(resource.RLIMIT_AS, before)


def test_a_cache_entry_that_does_not_verify_is_trained_again(configs, tmp_path):  # noqa: F811
    trainer = CountingTrainer()
    make_cache(trainer, tmp_path)(configs["reference"])
    assert len(trainer.calls) == 1 and (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    cache = make_cache(trainer, tmp_path)
    entry = cache._path(cache.key(configs["reference"]))
    data = json.loads(entry.read_text())
    data["outcome"]["passed"] = not data["outcome"]["passed"]
    entry.write_text(json.dumps(data))
    found = make_cache(trainer, tmp_path)(configs["reference"])
    assert len(trainer.calls) == 2 and found.passed != data["outcome"]["passed"]  # the tampered entry was ignored
    make_cache(trainer, tmp_path)(configs["reference"])
    assert len(trainer.calls) == 2  # the entry written again verifies
