"""One mistake, one charge: a mistake costs the part it is in, once, and the report tells it once.

The table: for each of the kit's mutants and for single mistakes that make a function raise, the parts that lose
points and how many root causes the report tells. The rule: only the part the mistake is in loses points, except
where the lesson's data (grader/lesson/manifest.py USES) says a part judges another's result.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.grade import check, grade  # noqa: E402
from grader.lesson.manifest import CALLS, USES  # noqa: E402
from grader.options import NO_TRAINING, GradingOptions  # noqa: E402
from grader.results import FAILED  # noqa: E402
from grader.sandbox import Limits  # noqa: E402
from grader.summary import summarise  # noqa: E402
from tests.probe_in_process import probe_in_process  # noqa: E402
from tests.test_adversarial_grading import one_file  # noqa: E402
from tests.test_mutants import (  # noqa: E402
    AUGMENTATION_BLOCK,
    BY_ID,
    CNN_AUGMENT,
    CONV,
    GRADED_PARTS,
    MUTANTS,
    SOLUTIONS,
    Mutant,
    functions_touched,
    write_mutant,
)

ROOT = Path(__file__).resolve().parents[1]
REORDERED_BLOCK = ('            layers.RandomZoom(0.1),\n            layers.RandomRotation(0.05),\n'
                   '            layers.RandomFlip("horizontal"),\n')
SUBSTITUTED = "graded with the lesson's build_augmentation(), since yours"
SINGLE_FILE = "submission.py"
KERAS_LAYERS = "from keras import layers\n"

# New single mistakes that make a function raise (or its module fail to import).
RAISING = (
    Mutant("wrong_import", "augmentation.py", "from keras import layers", "from keras import layer",
           ("augmentation",), "ImportError"),
    Mutant("name_error_in_block", "augmentation.py", "layers.RandomZoom(0.1)", "layers.RandomZoom(zoom)",
           ("augmentation",), "NameError: name 'zoom' is not defined", count=0),
    Mutant("block_not_implemented", "augmentation.py", "    return keras.Sequential(",
           "    raise NotImplementedError('todo')\n    return keras.Sequential(", ("augmentation",),
           "not implemented yet"),
    Mutant("builder_raises", "cnn.py", CONV.format(filters=32), CONV.format(filters=32).replace('"relu"', '"rellu"'),
           ("build_cnn",), "rellu"),
    Mutant("reordered_block", "augmentation.py", AUGMENTATION_BLOCK, REORDERED_BLOCK, ("augmentation",),
           "in this order"),
    Mutant("inline_block_differs", "cnn.py", CNN_AUGMENT,
           'x = keras.Sequential([layers.RandomFlip("vertical")], name="augmentation")(inputs)\n', ("build_cnn",),
           "but build_augmentation() returns"),
    # Killed by the probe's per-call limit: the builders are graded with the lesson's block, as for one that raises.
    Mutant("block_loops_forever", "augmentation.py", "    return keras.Sequential(",
           "    while True:\n        pass\n    return keras.Sequential(", ("augmentation",), "timed out after"),
    Mutant("block_sleeps_past_the_limit", "augmentation.py", "    return keras.Sequential(",
           "    import time\n    time.sleep(1000)\n    return keras.Sequential(", ("augmentation",), "timed out after"),
    # Everything in one submission.py, with one import that fails: the file's other definitions are graded.
    Mutant("single_file_wrong_import", SINGLE_FILE, "            layers.RandomRotation(0.05),",
           "            RandomRotaton(0.05),", ("augmentation",), "did you mean 'RandomRotation'?",
           also=(SINGLE_FILE, KERAS_LAYERS, KERAS_LAYERS + "from keras.layers import RandomRotaton\n", 1)),
    Mutant("single_file_wrong_import_in_both_networks", SINGLE_FILE, CONV.format(filters=128),
           CONV.format(filters=128).replace("layers.Conv2D", "Conv2DD"), ("build_cnn", "build_cnn_v2"),
           "cannot import name 'Conv2DD'", count=0,
           also=(SINGLE_FILE, KERAS_LAYERS, KERAS_LAYERS + "from keras.layers import Conv2DD\n", 1)),
    Mutant("single_file_unused_wrong_import", SINGLE_FILE, KERAS_LAYERS, KERAS_LAYERS + "import numpyy\n", (), ""),
)
NEW = {mutant.id: mutant for mutant in RAISING}
KILLED = ("block_loops_forever", "block_sleeps_past_the_limit")  # only the sandboxed probe stops them
SINGLE_FILE_MISTAKES = tuple(mutant.id for mutant in RAISING if mutant.file == SINGLE_FILE)
END_TO_END = ("wrong_import", *KILLED, *SINGLE_FILE_MISTAKES)

# mistake -> (the parts that lose points, the root causes the report tells). The rule: one part, except a mistake
# whose edit touches two modules (rescaling_inside_augmentation), or a wrong import used by both networks. One line
# per mistake: a network that differs from the lesson's in one place fails its checks for that one cause; a shape-math
# hint names one misconception in both functions. vertical_flip_only is two mistakes (a vertical flip, and a block
# without the lesson's rotation and zoom), and its behaviour checks have none of the lesson's layers to judge.
TABLE = {
    'same_padding_floor': (('shape_math',), 1),
    'pool_stride_ignores_default': (('shape_math',), 1),
    'conv_params_without_bias': (('shape_math',), 1),
    'dense_params_ignores_use_bias': (('shape_math',), 1),
    'head_flatten_channels_only': (('shape_math',), 1),
    'flip_horizontal_and_vertical': (('augmentation',), 1),
    'flip_vertical': (('augmentation',), 1),
    'rotation_half_turn': (('augmentation',), 1),
    'no_random_zoom': (('augmentation',), 1),
    'extra_random_grayscale': (('augmentation',), 1),
    'vertical_flip_only': (('augmentation',), 3),
    'rotation_in_degrees': (('augmentation',), 1),
    'rescaling_inside_augmentation': (('augmentation', 'build_cnn', 'build_cnn_v2'), 1),
    'no_rescaling': (('build_cnn',), 1),
    'rescaling_scale_one': (('build_cnn',), 1),
    'rescaling_before_augmentation': (('build_cnn',), 1),
    'softmax_output': (('build_cnn',), 1),
    'conv_without_relu': (('build_cnn',), 1),
    'average_pooling': (('build_cnn',), 1),
    'augmentation_training_true': (('build_cnn',), 1),
    'no_augmentation_in_model': (('build_cnn',), 1),
    'dense_ignores_num_classes': (('build_cnn',), 1),
    'relu_head': (('build_cnn',), 1),
    'rescaling_twice': (('build_cnn',), 1),
    'first_conv_dilated': (('build_cnn',), 1),
    'first_conv_frozen': (('build_cnn',), 1),
    'pool_3_stride_2_same': (('build_cnn',), 1),
    'valid_padding_one_conv': (('build_cnn',), 1),
    'flatten_instead_of_gap': (('build_cnn',), 1),
    'missing_pool': (('build_cnn',), 1),
    'wrong_filter_count': (('build_cnn',), 1),
    'input_28x28': (('build_cnn',), 1),
    'no_convolution': (('build_cnn',), 1),
    'v2_block_without_pool': (('build_cnn_v2',), 1),
    'v2_without_new_conv': (('build_cnn_v2',), 1),
    'v2_pool_before_new_conv': (('build_cnn_v2',), 1),
    'v2_no_convolution': (('build_cnn_v2',), 1),
    'first_conv_l2_regularizer': (('build_cnn',), 1),
    'head_zeros_initializer': (('build_cnn',), 1),
    'first_conv_max_norm': (('build_cnn',), 1),
    'zoom_fill_constant': (('augmentation',), 1),
    'v2_sigmoid_head': (('build_cnn_v2',), 1),
    'v2_dropout_before_head': (('build_cnn_v2',), 1),
    'filters_not_normalised': (('filters',), 1),
    'feature_maps_training_true': (('filters',), 1),
    'feature_maps_rescales_images': (('filters',), 1),
    'name_error_in_block': (('augmentation',), 1),
    'block_not_implemented': (('augmentation',), 1),
    'builder_raises': (('build_cnn',), 1),
    'reordered_block': (('augmentation',), 1),
    'inline_block_differs': (('build_cnn',), 1),
    'wrong_import': (('augmentation',), 1),
    'block_loops_forever': (('augmentation',), 1),
    'block_sleeps_past_the_limit': (('augmentation',), 1),
    'single_file_wrong_import': (('augmentation',), 1),
    'single_file_wrong_import_in_both_networks': (('build_cnn', 'build_cnn_v2'), 1),
    'single_file_unused_wrong_import': ((), 0),  # no function uses it: the report's note tells it, no part pays
}


def lost_parts(results):
    """Return the parts that lost points, sorted."""
    return sorted(part for part, (score, maximum) in results.part_scores().items()
                  if part in GRADED_PARTS and score < maximum)


def causes(results):
    """Return the root causes the report tells, in order."""
    found = []
    for test in results.tests:
        if test.status == FAILED and test.cause not in found:
            found.append(test.cause)
    return found


RAISED = "Called build_augmentation(). It raised ValueError: factor=18 (augmentation.py:28)."


def one_cause_results():
    """Return results where one raising block fails three tests (one cause) and another test fails on its own."""
    from grader.results import PASSED, CheckResult, GradingResults

    cause = "build_augmentation(): ValueError: factor=18"
    tests = [CheckResult(f"augmentation: check {n}", "augmentation", 0, 2, FAILED, RAISED, cause=cause)
             for n in range(3)]
    tests += [CheckResult("build_cnn: logits", "build_cnn", 0, 2, FAILED, "Called build_cnn(). Softmax.",
                          cause="Called build_cnn(). Softmax."),
              CheckResult("build_cnn: input", "build_cnn", 1, 1, PASSED)]
    return GradingResults(submission="one", tests=tests)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json", "junit"])
def test_every_format_tells_a_cause_once(fmt):
    from grader.render import render

    out = render(one_cause_results(), fmt)
    told = 2 if fmt == "junit" else 1  # a JUnit failure holds its first line in `message` and the whole in its text
    assert out.count("factor=18 (augmentation.py:28)") == told, out
    assert "Softmax" in out
    if fmt in ("text", "markdown", "html"):
        assert "and 2 tests that fail for the same reason (4 points)" in out, out
    else:
        assert out.count("Fails for the same reason as “augmentation: check 0”") == 2 * told, out


def test_results_json_keeps_each_test_s_cause():
    import json

    from grader.render.gradescope_json import to_json
    from grader.store import from_json

    text = to_json(one_cause_results())
    assert [test.get("extra_data", {}).get("cause", "") for test in json.loads(text)["tests"]][:4] == [
        "build_augmentation(): ValueError: factor=18"] * 3 + ["Called build_cnn(). Softmax."]
    assert [test.cause for test in from_json(text).tests] == [test.cause for test in one_cause_results().tests]


@pytest.fixture(scope="module")
def reference_probe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference") / "solutions"
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return probe_in_process(folder)


def test_the_table_covers_every_mutant_and_every_new_mistake():
    assert set(TABLE) == {mutant.id for mutant in MUTANTS} | set(NEW)


def test_the_lesson_says_which_function_calls_which_and_which_part_uses_another():
    assert CALLS == {"build_cnn": ("build_augmentation",), "build_cnn_v2": ("build_augmentation",)}
    assert USES == {"training": "build_cnn"}


@pytest.mark.parametrize("mutant", [*MUTANTS, *(m for m in RAISING if m.id not in END_TO_END)],
                         ids=lambda mutant: mutant.id)
def test_a_mistake_costs_its_own_part_and_is_told_once(mutant, reference_probe, tmp_path):
    folder = write_mutant(mutant, tmp_path / mutant.id)
    probe = probe_in_process(folder, functions_touched(mutant), reuse=reference_probe)
    results = check(probe, submission=mutant.id, options=NO_TRAINING)
    parts, lines = TABLE[mutant.id]
    failures = [test.output for test in results.tests if test.status == FAILED]
    assert lost_parts(results) == sorted(parts), (mutant.id, results.part_scores(), failures)
    assert len(causes(results)) == lines, (mutant.id, causes(results))
    assert any(mutant.phrase in output for output in failures), (mutant.id, failures)


def test_two_mistakes_in_one_network_are_never_told_as_one(reference_probe, tmp_path):
    # Only a network that differs from the lesson's in one place has one cause for all its failed checks.
    softmax, no_rescaling = BY_ID["softmax_output"], BY_ID["no_rescaling"]
    folder = write_mutant(softmax, tmp_path / "two")
    cnn = folder / no_rescaling.file
    cnn.write_text(cnn.read_text().replace(no_rescaling.old, no_rescaling.new, no_rescaling.count or -1))
    results = check(probe_in_process(folder, functions_touched(softmax), reuse=reference_probe), submission="two",
                    options=NO_TRAINING)
    assert lost_parts(results) == ["build_cnn"], results.part_scores()
    cause = {test.name.split(": ")[1].split(" ")[0]: test.cause for test in results.tests if test.status == FAILED}
    assert cause["Rescaling(1/255)"] != cause["logits"], cause


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_pytest_exercises_tells_a_network_s_one_mistake_once(tmp_path):
    folder = write_mutant(BY_ID["flatten_instead_of_gap"], tmp_path / "flatten")
    run = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "exercises" / "test_cnn.py"), "--impl",
                          str(folder), "-q", "-p", "no:randomly", "-rfs"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    out = run.stdout
    assert "\n1 failed, " in out, out[-3000:]  # output shapes, counts, layer by layer and the head: 4 before
    assert out.count("one mistake, reported once") == 3, out[-3000:]


@pytest.mark.parametrize("mutant_id", ["rotation_in_degrees", "name_error_in_block", "block_not_implemented"])
def test_the_builders_are_graded_with_the_lesson_s_block_and_the_report_says_so_once(mutant_id, reference_probe,
                                                                                      tmp_path):
    mutant = BY_ID.get(mutant_id) or NEW[mutant_id]
    probe = probe_in_process(write_mutant(mutant, tmp_path / mutant_id), functions_touched(mutant),
                             reuse=reference_probe)
    assert {name for name, outcome in probe.outcomes.items() if outcome.substituted} == {"build_cnn", "build_cnn_v2"}
    results = check(probe, submission=mutant_id, options=NO_TRAINING)
    notes = [note for note in results.notes if SUBSTITUTED in note]
    assert len(notes) == 1 and notes[0].startswith("build_cnn and build_cnn_v2 were graded"), notes
    assert [test.cause for test in results.tests if test.status == FAILED].count(causes(results)[0]) == 6


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_rotation_in_degrees_end_to_end_costs_the_augmentation_alone(tmp_path):
    results = grade(write_mutant(BY_ID["rotation_in_degrees"], tmp_path / "degrees"), NO_TRAINING)
    assert lost_parts(results) == ["augmentation"], results.part_scores()
    assert len(causes(results)) == 1
    assert "18 degrees is 0.05" in results.tests[[t.status for t in results.tests].index(FAILED)].output
    assert [note for note in results.notes if SUBSTITUTED + " raises ValueError" in note], results.notes
    summary = summarise([results])
    assert len(summary.mistakes) == 1 and summary.mistakes[0].students == ["degrees"], summary.mistakes


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_wrong_import_in_the_block_s_module_costs_the_augmentation_alone(tmp_path):
    # cnn.py imports augmentation.py, which fails: cnn.py is imported again with the lesson's block in its place.
    results = grade(write_mutant(NEW["wrong_import"], tmp_path / "wrong_import"), NO_TRAINING)
    assert lost_parts(results) == ["augmentation"], (results.part_scores(), results.notes)
    assert len(causes(results)) == 1, causes(results)
    assert [note for note in results.notes if SUBSTITUTED + " could not be imported" in note], results.notes


@pytest.mark.parametrize("mutant_id", KILLED)
@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_block_killed_by_the_time_limit_costs_the_augmentation_alone(mutant_id, tmp_path):
    # The child is stopped in build_augmentation and restarted: the builders run with the lesson's block at once.
    mutant = NEW[mutant_id]
    options = GradingOptions(limits=Limits(import_seconds=60, function_seconds=8, total_seconds=120), training=False,
                             cache=False, verdict_cache=False)
    results = grade(write_mutant(mutant, tmp_path / mutant_id), options)
    parts, lines = TABLE[mutant_id]
    failures = [test.output for test in results.tests if test.status == FAILED]
    assert lost_parts(results) == sorted(parts), (results.part_scores(), results.notes, failures)
    assert len(causes(results)) == lines, causes(results)
    assert any(mutant.phrase in output for output in failures), failures
    told = "build_cnn and build_cnn_v2 were " + SUBSTITUTED + " timed out after 8 s"
    assert [note for note in results.notes if note.startswith(told)], results.notes


def write_single_file(mutant, folder):
    """Write the reference as one submission.py with the mutant's edits; fail if an edit does not apply."""
    folder.mkdir(parents=True)
    text = one_file(lambda source: source)
    for old, new, count in [(mutant.old, mutant.new, mutant.count), *([mutant.also[1:]] if mutant.also else [])]:
        assert old in text, f"{mutant.id}: {old!r} is not in {SINGLE_FILE}"
        text = text.replace(old, new, count or -1)
    (folder / SINGLE_FILE).write_text(text)
    return folder / SINGLE_FILE


@pytest.mark.parametrize("mutant_id", SINGLE_FILE_MISTAKES)
@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_wrong_import_in_a_single_file_costs_only_the_functions_using_it(mutant_id, tmp_path):
    mutant = NEW[mutant_id]
    results = grade(write_single_file(mutant, tmp_path / mutant_id), NO_TRAINING)
    parts, lines = TABLE[mutant_id]
    failures = [test.output for test in results.tests if test.status == FAILED]
    assert lost_parts(results) == sorted(parts), (results.part_scores(), results.notes, failures)
    assert len(causes(results)) == lines, causes(results)
    assert all(mutant.phrase in output for output in failures), failures
    imported = [note for note in results.notes if note.startswith("could not import submission.py")]
    assert len(imported) == 1 and "the rest of submission.py was run without" in imported[0], results.notes


def test_the_class_summary_counts_one_student_s_one_mistake_once(reference_probe, tmp_path):
    graded = []
    for mutant in (BY_ID["rotation_in_degrees"], BY_ID["no_rescaling"], NEW["builder_raises"]):
        probe = probe_in_process(write_mutant(mutant, tmp_path / mutant.id), functions_touched(mutant),
                                 reuse=reference_probe)
        graded.append(check(probe, submission=mutant.id, options=NO_TRAINING))
    summary = summarise(graded)
    by_student = {}
    for mistake in summary.mistakes:
        for student in mistake.students:
            by_student[student] = by_student.get(student, 0) + 1
    assert by_student["rotation_in_degrees"] == 1 and by_student["builder_raises"] == 1, summary.mistakes


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_pytest_exercises_tells_a_raising_block_once(tmp_path):
    folder = write_mutant(BY_ID["rotation_in_degrees"], tmp_path / "degrees")
    run = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "exercises"), "--impl", str(folder), "-q",
                          "-p", "no:randomly", "-rfs", "-k", "augmentation or cnn"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    out = run.stdout
    assert "\n1 failed, 22 skipped" in out, out[-3000:]  # the block's tests and both builders': 23 before
    assert len([line for line in out.splitlines() if line.startswith("FAILED")]) == 1, out[-3000:]
    # Told once; pytest's own FAILED summary line (-rf) repeats it, as long as the terminal is wide.
    told = [line for line in out.splitlines() if "RandomRotation(18)" in line and not line.startswith("FAILED")]
    assert len(told) == 1, out[-3000:]
    assert "one mistake, reported once" in out, out[-3000:]


@pytest.mark.slow
def test_the_training_check_trains_the_network_with_the_lesson_s_block(tmp_path):
    results = grade(write_mutant(BY_ID["rotation_in_degrees"], tmp_path / "degrees"),
                    GradingOptions(cache=False, verdict_cache=False))
    assert results.status == "graded", results.notes
    training = results.part_scores()["training"]
    assert training[1] > 0 and training[0] == training[1], (training, [t.output for t in results.tests])
    assert lost_parts(results) == ["augmentation"], results.part_scores()
    assert [note for note in results.notes if note.startswith("build_cnn, build_cnn_v2 and training were graded")]
