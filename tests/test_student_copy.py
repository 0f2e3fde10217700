"""What the release gives students answers nothing it was not written for, and uses only public Keras API.

The visible tests' shape-math answers and hints are recorded for their own cases, as data (lesson_checks.json, written
by grader.lesson.stubs); the functions that compute them for any arguments (grader.checker.checks.keras_truth) stay
with the grader.
"""

import ast
import importlib.util
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.checker.checks.keras_truth import KERAS_TRUTH
from grader.checker.hidden_tests.cases import shape_math_cases
from grader.integrations.release import build_release
from grader.lesson.manifest import SHAPE_MATH
from grader.lesson.stubs import STUB_MODULES
from tests.conftest import run_python
from tests.test_mutants import BY_ID, write_mutant

# What a file the students receive may import: the standard library, the lesson's own dependencies, its own files.
ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"numpy", "keras", "tensorflow", "pytest", "lesson_checks",
                                                   "shape_math", "augmentation", "cnn", "filters"}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Return the exercises/ folder of a student release built by `grader release`'s own function."""
    out = tmp_path_factory.mktemp("release") / "student"
    build_release(out)
    return out / "exercises"


def released_sources(exercises):
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(exercises.glob("*.py"))}


def released_data(exercises):
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(exercises.glob("*.json"))}


def api_problems(text):
    """Return what a file reaches beyond the public API: private attributes, private modules, imports not allowed."""
    problems = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            problems.append(f"the private attribute .{node.attr}")
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                   [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        for module in modules:
            parts = module.split(".")
            if parts[0] not in ALLOWED_IMPORTS:
                problems.append(f"an import of {module}")
            elif "src" in parts[1:] or any(part.startswith("_") for part in parts):
                problems.append(f"the private module {module}")
    return problems + (["keras.src"] if "keras.src" in text else [])


def test_the_release_uses_only_public_keras_api_and_no_grader_code(release):
    sources = released_sources(release)
    assert {"lesson_checks.py", "conftest.py", "test_shape_math.py"} <= set(sources)
    found = {name: api_problems(text) for name, text in sources.items()}
    assert not any(found.values()), found


def test_the_release_s_checks_are_code_and_the_lesson_s_data_is_json(release):
    # The same checks for every lesson: no literal of the lesson's in their code, its data beside them as JSON.
    checks = (release / "lesson_checks.py").read_text(encoding="utf-8")
    data = released_data(release)["lesson_checks.json"]
    totals = [network["total_params"] for network in data["expectations"]["networks"].values() if network["stages"]]
    assert len(totals) == 2 and not [total for total in totals if str(total) in checks or f"{total:,}" in checks]
    assert "conv_output_size(32, 3, padding='valid')" in data["shape_math_cases"]
    assert "padding='valid')" not in checks.replace("conv_output_size(32, 3, strides=2, padding='same')", "")
    assert "def layer_code(" not in checks and "grader.checker.reference" not in checks  # the grader's only


def test_the_api_rule_can_fail():
    # The rule above must catch what the grader's own shape-math truth uses, and a grader import.
    from grader.checker.checks import keras_truth

    assert "the private module keras.src.backend.common" in api_problems(Path(keras_truth.__file__).read_text())
    assert api_problems("import grader.cache\nx._cache\n") == ["an import of grader.cache",
                                                                "the private attribute ._cache"]


def load(path, name):
    """Import a released file as a module of its own name; return it, or None if it cannot be imported here."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # a stub importing what a student has not written yet: nothing of it to call
        return None
    return module


def released_callables(exercises):
    """Return {name: callable} for every function, class and callable held in a container of the released files."""
    stems = [path.stem for path in sorted(exercises.glob("*.py"))]
    saved = {stem: sys.modules.pop(stem) for stem in stems if stem in sys.modules}
    sys.path.insert(0, str(exercises))
    try:
        modules = {stem: load(exercises / f"{stem}.py", stem) for stem in stems}
    finally:
        sys.path.remove(str(exercises))
        for stem in stems:
            sys.modules.pop(stem, None)
        sys.modules.update(saved)
    found = {}
    for stem, module in modules.items():
        for name, value in vars(module or object()).items():
            values = (value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple))
                      else [value])
            for index, item in enumerate(values):
                if callable(item) and getattr(item, "__module__", None) == stem:
                    found[f"{stem}.{name}" + (f"[{index}]" if item is not value else "")] = item
    return found


def number(value):
    """Return a result as the number a student would return from it, or None."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def answers(candidate, function, args, kwargs):
    """Return the numbers a callable gives for one shape-math call, called as a student could call it."""
    calls = [lambda: candidate(*args, **kwargs), lambda: candidate(function, args, kwargs),
             lambda: candidate(function, tuple(args), kwargs)]
    found = []
    for call in calls:
        try:
            found.append(number(call()))
        except (Exception, pytest.fail.Exception, pytest.skip.Exception):  # the wrong arguments for this callable
            continue
    return found


def hidden_calls_answered(callables, recorded):
    """Return {callable's name: [hidden shape-math calls it answers]}, leaving out the calls recorded for students."""
    from grader.checker.checks.shape_math import call_repr

    found = {}
    for function in SHAPE_MATH:
        for args, kwargs in shape_math_cases()[function]:
            call = call_repr(function, args, kwargs)
            truth = KERAS_TRUTH[function](*args, **kwargs)
            for name, candidate in callables.items():
                if call not in recorded and truth in answers(candidate, function, args, kwargs):
                    found.setdefault(name, []).append(call)
    return found


def test_no_released_callable_answers_a_hidden_shape_math_case(release):
    callables = released_callables(release)
    assert len(callables) > 100 and "lesson_checks.check_recorded_answer" in callables
    recorded = callables["lesson_checks.recorded_cases"]()
    assert recorded, "the released checks read no recorded case from their lesson_checks.json"
    answered = hidden_calls_answered(callables, recorded)
    assert not answered, f"released callables answer hidden shape-math calls: {answered}"


def test_the_sweep_finds_a_copied_helper_that_answers(release, tmp_path):
    # The sweep above must catch a released file holding what answers shape math: here the grader's own truth.
    from grader.checker.checks import keras_truth

    leaky = tmp_path / "exercises"
    leaky.mkdir()
    (leaky / "lesson_helpers.py").write_text(Path(keras_truth.__file__).read_text(encoding="utf-8"))
    answered = hidden_calls_answered(released_callables(leaky), {})
    assert {"lesson_helpers.keras_conv_output_size", "lesson_helpers.KERAS_TRUTH[4]"} <= set(answered), answered
    assert len(answered["lesson_helpers.keras_dense_params"]) == len(shape_math_cases()["dense_params"])


ATTACK = '''
SOURCES = {sources!r}
DATA = {data!r}
CANDIDATES = []
for _name, _text in SOURCES.items():
    _namespace = {{"__name__": "copied_" + _name}}
    try:
        exec(compile(_text, _name, "exec"), _namespace)
    except Exception:
        continue
    for _value in list(_namespace.values()):
        _items = _value.values() if isinstance(_value, dict) else [_value]
        CANDIDATES += [item for item in _items if callable(item)]
    _call_repr = _namespace.get("call_repr")
    for _data in DATA.values():
        _recorded = _data.get("shape_math_cases") if isinstance(_data, dict) else None
        if _recorded and _call_repr:
            CANDIDATES.append(lambda function, args, kwargs, _r=_recorded, _c=_call_repr: _r[_c(function, args,
                                                                                                kwargs)])


def _answer(function, args, kwargs):
    for candidate in CANDIDATES:
        for call in (lambda: candidate(*args, **kwargs), lambda: candidate(function, args, kwargs)):
            try:
                result = call()
            except Exception:
                continue
            if isinstance(result, (tuple, list)) and result:
                result = result[0]
            if isinstance(result, (int, float)) and not isinstance(result, bool):
                return result
    return 0
'''
WRAPPER = """

def {name}(*args, **kwargs):
    return _answer({name!r}, args, kwargs)
"""


def attack_source(exercises):
    """Return a shape_math.py that copies every released file, its data too, and answers with the first callable
    giving a number."""
    wrappers = "".join(WRAPPER.format(name=name) for name in SHAPE_MATH)
    return ATTACK.format(sources=released_sources(exercises), data=released_data(exercises)) + wrappers


def graded(folder, tmp_path):
    done = run_python("-m", "grader", "grade", str(folder), "--no-training", "--format", "json",
                      "--cache-dir", str(tmp_path / "cache"), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    return report["score"], {test["name"]: test["score"] for test in report["tests"]}


@pytest.mark.slow
def test_copying_the_release_into_shape_math_earns_no_point(release, tmp_path):
    from grader.checker.checks import keras_truth

    folders = {name: tmp_path / name for name in ("stub", "attack", "leaky")}
    for folder in folders.values():
        folder.mkdir()
        for module in STUB_MODULES:
            (folder / module).write_text((release / module).read_text(encoding="utf-8"), encoding="utf-8")
    (folders["attack"] / "shape_math.py").write_text(attack_source(release), encoding="utf-8")
    # The same attack on a release that would hold the grader's own truth: it must earn the shape-math points.
    leaky = tmp_path / "leaky_release"
    shutil.copytree(release, leaky)
    truth = Path(keras_truth.__file__).read_text(encoding="utf-8")
    (leaky / "lesson_helpers.py").write_text(truth.replace("from grader.checker.checks.shape_math import", "# "))
    (folders["leaky"] / "shape_math.py").write_text(attack_source(leaky), encoding="utf-8")
    stub, attack, leaked = (graded(folder, tmp_path) for folder in folders.values())
    assert attack == stub
    assert leaked[0] > stub[0], (leaked, stub)


# What the visible tests said for these mistakes before the students' copy recorded its own cases (`pytest exercises
# --impl MUTANT` on the kit at 68fd767): every failure, word for word. The release's tests must say the same.
VISIBLE_MESSAGES = {
    "head_flatten_channels_only": {
        "test_shape_math::test_matches_keras[head_params((4, 4, 128), 10, 'flatten')]":
            "Called head_params((4, 4, 128), 10, 'flatten'). It returned 1290, but Keras gives 20490. Flatten keeps "
            "every position, so Dense sees height*width*channels features; did you count only the channels?",
        "test_shape_math::test_gap_head_is_sixteen_times_smaller_than_flatten":
            "Called head_params((4, 4, 128), 10, ...). It returned 1,290 for 'gap' and 1,290 for 'flatten', but the "
            "lesson gives 1,290 and 20,490.",
    },
    "zoom_fill_constant": {
        "test_augmentation::test_has_the_lessons_layers":
            "Called build_augmentation(). The RandomZoom has fill_mode='constant'; the lesson's uses 'reflect' (it "
            "changes the pixels the augmentation fills in).",
    },
}


def failures(root, impl, report):
    """Run the release's `pytest exercises` on impl; return {test id: failure message} of the tests that failed."""
    run_python("-m", "pytest", "exercises", "-q", "-p", "no:cacheprovider", "--impl", str(impl),
               f"--junitxml={report}", cwd=root, timeout=600)
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = case.find("failure")
        problem = case.find("error") if problem is None else problem
        if problem is not None:
            found[f"{case.get('classname').split('.')[-1]}::{case.get('name')}"] = problem.get("message")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("mutant_id", sorted(VISIBLE_MESSAGES))
def test_the_release_s_visible_tests_say_what_they_said(release, mutant_id, tmp_path):
    impl = write_mutant(BY_ID[mutant_id], tmp_path / mutant_id)
    assert failures(release.parent, impl, tmp_path / "visible.xml") == VISIBLE_MESSAGES[mutant_id]
