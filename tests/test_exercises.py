"""The foundation: solutions pass every visible test, stubs fail each one, and the two never drift apart."""

import ast
import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from grader.checker.checks.output import without_tensorflow_startup
from grader.lesson.manifest import MODULES, SIGNATURES
from grader.lesson.stubs import (
    KIT_PYTEST_INI,
    NOT_IMPLEMENTED,
    STUB_MODULES,
    STUDENT_CHECKS,
    STUDENT_DATA,
    make_stub,
    recorded_data,
    student_checks,
)
from tests.conftest import EXERCISES, SOLUTIONS, run_python


def visible_tests(tmp_path, *extra):
    """Run `pytest exercises` with extra options; return (exit code, {test id: failure message or None}, output)."""
    report = tmp_path / "visible.xml"
    done = run_python("-m", "pytest", "exercises", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *extra)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = case.find("failure")
        problem = case.find("error") if problem is None else problem
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = None if problem is None else problem.get("message")
    return done.returncode, outcomes, done.stdout + done.stderr


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_solutions_pass_every_visible_test(tmp_path):
    code, outcomes, printed = visible_tests(tmp_path, "--impl", "solutions")
    failed = {name: message for name, message in outcomes.items() if message is not None}
    assert code == 0 and not failed, failed
    assert len(outcomes) >= 40
    assert "warnings summary" not in printed, printed  # the reference makes Keras warn about nothing


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_each_stub_fails_with_a_not_implemented_message(tmp_path):
    code, outcomes, printed = visible_tests(tmp_path)
    assert code == 1
    assert without_tensorflow_startup(printed) == printed, "TensorFlow's start-up lines reached the student"
    errors = [case.get("name") for case in ET.parse(tmp_path / "visible.xml").getroot().iter("testcase")
              if case.find("error") is not None]
    assert not errors, f"untouched stubs must read as failures, not errors at setup: {errors}"
    assert outcomes and all(message is not None for message in outcomes.values()), outcomes
    for name, message in outcomes.items():
        # The stub's own sentence, once: "conv_output_size() is not implemented yet. Return ...".
        assert re.match(r"\w+\(\) is not implemented yet\. \S", message), (name, message)
        assert message.lower().count("not implemented yet") == 1, (name, message)
@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_an_exception_that_is_not_the_student_s_reads_as_one_line(tmp_path):
    # build_augmentation returns a tuple of layers: the kit's checks then raise on a value of an unexpected type,
    # and the student's cnn.py raises calling it. Every failure must read as one line, never a traceback.
    impl = tmp_path / "odd"
    shutil.copytree(SOLUTIONS, impl, ignore=shutil.ignore_patterns("__pycache__"))
    augmentation = impl / "augmentation.py"
    augmentation.write_text(augmentation.read_text().replace("return keras.Sequential(", "return (")
                            .replace('name="augmentation",', ""))
    code, outcomes, printed = visible_tests(tmp_path, "--impl", str(impl), "-k", "augmentation")
    errors = [case.get("name") for case in ET.parse(tmp_path / "visible.xml").getroot().iter("testcase")
              if case.find("error") is not None]
    assert code == 1 and not errors, errors
    messages = [message for message in outcomes.values() if message is not None]
    assert len(messages) >= 5 and all("\n" not in message for message in messages), messages
    assert "\nE   " not in printed and "site-packages" not in printed, printed  # no traceback's "E   " lines
    assert "AttributeError: 'tuple' object has no attribute 'layers' (the kit's lesson_checks.py:" in printed
    assert "TypeError: 'tuple' object is not callable (cnn.py:" in printed


REGENERATE = ("python -c \"from grader.lesson.stubs import write_student_files; "
              "write_student_files('solutions', 'exercises')\"")


@pytest.mark.parametrize("module", STUB_MODULES)
def test_stub_is_generated_from_the_solution(module):
    assert (EXERCISES / module).read_text() == make_stub((SOLUTIONS / module).read_text()), (
        f"exercises/{module} drifted from solutions/{module}: run "
        f"{REGENERATE}")


def test_students_checks_are_generated_from_the_graders():
    assert (EXERCISES / STUDENT_CHECKS).read_text() == student_checks(), (
        "exercises/lesson_checks.py drifted from grader/checker/checks/: run "
        f"{REGENERATE}")
    assert (EXERCISES / STUDENT_DATA).read_text() == recorded_data(), (
        f"exercises/lesson_checks.json drifted from the reference: run {REGENERATE}")
    assert (EXERCISES / "pytest.ini").read_text() == KIT_PYTEST_INI, f"exercises/pytest.ini drifted: run {REGENERATE}"


def test_solutions_define_the_manifests_api_with_its_signatures():
    for module, functions in MODULES.items():
        defined = public_functions(SOLUTIONS / f"{module}.py")
        for name in functions:
            assert name in defined, f"solutions/{module}.py does not define {name}()"
            assert f"({defined[name][0]})" == SIGNATURES[name], (name, defined[name][0])


def public_functions(path):
    """Return {name: (signature source, docstring)} for a module's public functions."""
    tree = ast.parse(path.read_text())
    return {node.name: (ast.unparse(node.args), ast.get_docstring(node))
            for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


@pytest.mark.parametrize("module", STUB_MODULES)
def test_stub_and_solution_share_signatures_and_docstrings(module):
    stub, solution = public_functions(EXERCISES / module), public_functions(SOLUTIONS / module)
    assert stub == solution
    assert all(docstring for _, docstring in solution.values())


def test_make_stub_replaces_bodies_and_drops_private_helpers():
    source = (
        "def area(w, h):\n    \"\"\"Return w*h.\"\"\"\n    # TODO: Multiply.\n    # BEGIN SOLUTION\n"
        "    return _times(w, h)\n    # END SOLUTION\n\n\n# BEGIN SOLUTION\ndef _times(a, b):\n    return a * b\n"
        "# END SOLUTION\n")
    stub = make_stub(source)
    message = NOT_IMPLEMENTED.format(function="area", todo="Multiply.")
    assert f"    raise NotImplementedError({message!r})\n" in stub
    assert "_times" not in stub and "return" not in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="area\\(\\) is not implemented yet. Multiply."):
        namespace["area"](2, 3)


def test_make_stub_rejects_unbalanced_markers():
    with pytest.raises(ValueError, match="without '# END SOLUTION'"):
        make_stub("def f():\n    # BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(ValueError, match="at line 2"):
        make_stub("def f():\n    # END SOLUTION\n")


COUNTS_SCRIPT = """
import json, keras, cnn, shape_math
from keras import layers
inputs = keras.Input(shape=(4, 4, 128))
head = lambda pool: keras.Model(inputs, layers.Dense(10)(pool(inputs))).count_params()
v1, v2 = cnn.build_cnn(), cnn.build_cnn_v2()
print(json.dumps({
    "build_cnn": v1.count_params(),
    "new_conv": [l for l in v2.layers if isinstance(l, layers.Conv2D)][-1].count_params(),
    "v2_head": v2.layers[-1].count_params(),
    "v2_last_pool": list(v2.layers[-3].output.shape[1:]),
    "gap_head": head(layers.GlobalAveragePooling2D()),
    "flatten_head": head(layers.Flatten()),
    "shape_math": [shape_math.head_params((4, 4, 128), 10, "gap"), shape_math.head_params((4, 4, 128), 10, "flatten"),
                   shape_math.conv_params(3, 128, 256)],
}))
"""


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_the_lessons_counts_come_out_of_keras_for_the_solutions():
    done = run_python("-c", COUNTS_SCRIPT, cwd=SOLUTIONS)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts == {
        "build_cnn": 140_714, "new_conv": 295_168, "v2_head": 2_570, "v2_last_pool": [2, 2, 256],
        "gap_head": 1_290, "flatten_head": 20_490, "shape_math": [1_290, 20_490, 295_168],
    }
