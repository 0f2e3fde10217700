"""The trusted side's own limits: model size from the config, config depth, source size, notebook extraction,
the batch worker's memory, the training cache's signed entries, and every reading of what a student sent
(notebook JSON and cells, zips, the probe's answer): code as deep as Python compiles is read, deeper or larger
input gets a one-line message naming the limit, and the report is always written."""

import csv
import io
import json
import resource
import subprocess
import sys
import warnings
import zipfile

import nbformat
import pytest

from grader import protocol
from grader.cache import KEY_FILE
from grader.checker.rebuild import MAX_CONFIG_DEPTH, ConfigRejected, check_size, rebuild, validate_config
from grader.grade import grade
from grader.integrations.notebook import exercise_cell_source
from grader.lesson.stubs import STUB_MODULES
from grader.notebook_cells import MAX_CELL_MAGICS, MAX_NESTING, MAX_NOTEBOOK_DEPTH, needed_statements, notebook_source
from grader.options import NO_TRAINING
from grader.render.text import to_text
from grader.results import PASSED
from grader.sandbox.watch import parse_event
from grader.submission import MAX_FILES, MAX_SOURCE_BYTES, MAX_ZIP_PATH_PARTS, MAX_ZIP_RATIO, SubmissionError, prepare
from grader.worker import limit_memory
from tests.conftest import SOLUTIONS, run_python
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


# --- reading what a student sent: bounded, and code as deep as Python compiles is read ------------------------


def reference_cells():
    """Return the reference solution as notebook cells, one per module (sibling imports become comments)."""
    return [exercise_cell_source((SOLUTIONS / name).read_text()) for name in STUB_MODULES]


def long_sum(terms):
    """Return a helper whose body is a sum of `terms` ones: one expression nesting `terms` levels deep."""
    return "def helper():\n    return " + " + ".join(["1"] * terms) + "\n"


def write_cells(path, cells):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells]), str(path))
    return path


def python_compiles(code):
    """Return whether this Python compiles code in a fresh interpreter, as the probe does on import."""
    done = subprocess.run([sys.executable, "-c", "import sys; compile(sys.stdin.read(), 'm.py', 'exec')"],
                          input=code, capture_output=True, text=True, timeout=60)
    return done.returncode == 0


def grade_json(path, tmp_path):
    done = run_python("-m", "grader", "grade", str(path), "--no-training", "--format", "json",
                      "--output", str(tmp_path / f"{path.name}.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / f"{path.name}.json").read_text())


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_notebook_with_a_3000_term_sum_grades_like_the_same_py(tmp_path):
    # The case: ast.parse in the grader raised RecursionError on it, exit 1 and no report.
    cells = reference_cells() + [long_sum(3000)]
    notebook = grade_json(write_cells(tmp_path / "long.ipynb", cells), tmp_path)
    (tmp_path / "long.py").write_text("\n\n".join(cells))
    script = grade_json(tmp_path / "long.py", tmp_path)
    assert [(t["name"], t["status"]) for t in notebook["tests"]] == [(t["name"], t["status"]) for t in script["tests"]]
    assert notebook["score"] == script["score"]
    if python_compiles("\n\n".join(cells)):  # 3.13 compiles it; 3.11 and 3.12 stop near 2,990 terms
        assert notebook["score"] == notebook["max_score"] + 5, notebook["tests"]


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_notebook_with_a_long_sum_python_compiles_gets_full_marks(tmp_path):
    cells = reference_cells() + [long_sum(2900)]
    assert python_compiles("\n\n".join(cells))  # every supported Python compiles this one
    results = grade(write_cells(tmp_path / "long.ipynb", cells), NO_TRAINING)
    assert results.tests and all(test.status == PASSED for test in results.tests), to_text(results)


@pytest.mark.parametrize("cell", [long_sum(25_000), "x = " + "-" * 25_000 + "1\n"], ids=["sum", "unary"])
def test_a_cell_deeper_than_the_grader_reads_gets_a_message_naming_the_cell(tmp_path, cell):
    path = write_cells(tmp_path / "deep.ipynb", ["import math", cell])
    with pytest.raises(SubmissionError) as raised:
        prepare(path, tmp_path / "scratch")
    said = str(raised.value)
    assert said.startswith("cell 2 of ") and "nests expressions" in said
    assert f"more than {MAX_NESTING:,} levels deep; the grader reads at most {MAX_NESTING:,}" in said or \
        "deeper than Python 3." in said


def test_a_huge_single_line_is_read_up_to_the_source_limit(tmp_path):
    line = "TABLE = [" + "0, " * (MAX_SOURCE_BYTES // 4) + "]"  # 1.5 MiB on one line
    source = notebook_source(write_cells(tmp_path / "line.ipynb", [line, "def f():\n    return TABLE"]), "line.ipynb")
    assert line in source and "def f():" in source
    with pytest.raises(SubmissionError, match="at most 2 MiB of code; received 'big.ipynb' with 3,"):
        notebook_source(write_cells(tmp_path / "big.ipynb", [line * 2]), "big.ipynb")


@pytest.mark.parametrize("levels, received", [(MAX_NOTEBOOK_DEPTH + 50, "nesting 152 levels"),
                                              (50_000, "nesting deeper than Python's JSON reader goes")])
def test_a_notebook_whose_json_nests_deeply_is_refused_with_its_depth(tmp_path, levels, received):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")], metadata={"deep": "here"})
    path = tmp_path / "deep.ipynb"  # the notebook's object, its metadata, then the lists: levels + 2
    path.write_text(nbformat.writes(notebook).replace('"here"', "[" * levels + "]" * levels))
    with pytest.raises(SubmissionError) as raised:
        prepare(path, tmp_path / "scratch")
    assert str(raised.value) == (f"Expected a Jupyter notebook whose JSON nests at most {MAX_NOTEBOOK_DEPTH} levels; "
                                 f"received {str(path)!r} {received}")


def test_cell_magics_wrapped_too_often_are_refused(tmp_path):
    cell = "%%time\n" * (MAX_CELL_MAGICS + 1) + "x = 1\n"
    with pytest.raises(SubmissionError, match=f"cell 1 of .* the grader reads at most {MAX_CELL_MAGICS}"):
        prepare(write_cells(tmp_path / "wrapped.ipynb", [cell]), tmp_path / "scratch")


def write_zip(path, entries):
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": one test writes a name twice on purpose
        for name, data in entries:
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("entries, expected", [
    ([("bomb.py", b"0" * (20 * 2**20))], f"compress at most {MAX_ZIP_RATIO}:1; received"),
    ([(f"f{i}.py", b"") for i in range(MAX_FILES + 1)], f"at most {MAX_FILES} files"),
    ([("/".join(["d"] * (MAX_ZIP_PATH_PARTS + 1)) + "/cnn.py", b"")], f"folders at most {MAX_ZIP_PATH_PARTS} deep"),
    ([("n" * 300 + ".py", b"")], "names of at most 255 bytes"),
    ([("cnn.py", b"a = 1"), ("cnn.py", b"a = 2")], "holds each path once; received"),
], ids=["ratio", "entries", "depth", "name", "twice"])
def test_a_zip_past_a_limit_is_refused_before_anything_is_written(tmp_path, entries, expected):
    archive = write_zip(tmp_path / "class.zip", entries)
    with pytest.raises(SubmissionError, match=expected):
        prepare(archive, tmp_path / "scratch")
    assert not list((tmp_path / "scratch").rglob("*.py"))


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_batch_goes_on_past_every_unreadable_submission(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    write_cells(folder / "deep_cell.ipynb", reference_cells() + [long_sum(30_000)])
    (folder / "deep_json.ipynb").write_text('{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}")
    write_zip(folder / "bomb.zip", [("cnn.py", b"#" * (40 * 2**20))])
    (folder / "reference.py").write_text("\n\n".join(reference_cells()))
    gradebook = tmp_path / "grades.csv"
    done = run_python("-m", "grader", "batch", str(folder), "--jobs", "1", "--no-training", "--output",
                      str(gradebook), "--reports", str(tmp_path / "reports"), timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(gradebook.read_text()))}
    assert sorted(rows) == ["bomb", "deep_cell", "deep_json", "reference"]
    assert float(rows["reference"]["score"]) > 0
    for name, said in (("deep_cell", "nests expressions"), ("deep_json", "nests at most 100 levels"),
                       ("bomb", "compress at most 100:1")):
        assert float(rows[name]["score"]) == 0 and said in rows[name]["message"], rows[name]


# --- the probe's answer ----------------------------------------------------------------------------------


def done_line(value):
    return json.dumps({"event": "done", "name": "conv_output_size", "status": "ok", "value": value}).encode()


def test_a_probe_answer_nesting_too_deep_becomes_a_wrong_type_that_says_so():
    deep = 0
    for _ in range(200):
        deep = [deep]
    event = parse_event(done_line([{"ok": deep}]), ["conv_output_size"])
    assert event["status"] == protocol.WRONG_TYPE and "value" not in event
    assert event["message"] == ("returned a value that nests 202 levels deep; "
                                f"the grader reads values at most {protocol.MAX_EVENT_DEPTH - 2} deep")


def test_the_lesson_s_answers_are_within_the_probe_answer_limits():
    event = parse_event(done_line([{"ok": [[1, 2], [3, 4]]}, {"error": "ValueError: no"}]), ["conv_output_size"])
    assert event["status"] == "ok" and event["value"][0] == {"ok": [[1, 2], [3, 4]]}


@pytest.mark.parametrize("line", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"event": "imported", "x": "' + b"a" * (protocol.MAX_EVENT_BYTES + 1) + b'"}'],
                         ids=["past-the-json-parser", "too-long"])
def test_a_probe_answer_past_the_readers_reach_is_dropped_not_raised(line):
    assert parse_event(line, ["conv_output_size"]) is None
