"""The tree's seams hold: what runs beside student code imports nothing of the kit, nothing imports the CLI,
library code never imports a command, the judgement never imports its display, no module borrows another's
private names, only the sandbox opens grader/untrusted/, and the lesson's API is spelled out in one place."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADER = ROOT / "grader"
ENTRY_POINTS = {GRADER / "cli.py", GRADER / "__main__.py"}


def imported_modules(path):
    """Return every module a file imports, at any depth (absolute names; relative imports as '.name')."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if node.module in ("grader", None))
    return names


def grader_files():
    return sorted(GRADER.rglob("*.py"))


@pytest.mark.parametrize("path", sorted((GRADER / "untrusted").glob("*.py")), ids=lambda p: p.name)
def test_code_beside_student_code_imports_nothing_of_the_kit(path):
    kit = [name for name in imported_modules(path) if name.split(".")[0] in ("grader", "solutions", "exercises")
           or name.startswith(".")]
    assert not kit, f"{path.relative_to(ROOT)} imports {kit}: it runs beside student code and must load by path"


def test_the_protocol_needs_only_the_standard_library_and_numpy():
    # The runner loads grader/protocol.py by path inside the sandbox, where the kit cannot be imported.
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    outside = [name for name in imported_modules(GRADER / "protocol.py") if name.split(".")[0] not in allowed]
    assert not outside, f"grader/protocol.py imports {outside}"


def test_nothing_imports_the_cli():
    offenders = [str(path.relative_to(ROOT)) for path in grader_files() + sorted((ROOT / "benchmarks").glob("*.py"))
                 if path not in ENTRY_POINTS and "grader.cli" in imported_modules(path)]
    assert not offenders, f"these import grader.cli, which only gathers the commands: {offenders}"


def test_library_code_never_imports_a_command():
    commands = GRADER / "commands"
    offenders = [str(path.relative_to(ROOT)) for path in grader_files()
                 if path not in ENTRY_POINTS and commands not in path.parents
                 and any(name.startswith("grader.commands") for name in imported_modules(path))]
    assert not offenders, f"these import a command (an import that runs back up): {offenders}"


def test_the_lesson_api_is_spelled_out_only_in_the_manifest():
    # A second literal list of the API functions is how a new function gets forgotten somewhere.
    spelled = []
    for path in grader_files() + sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        if path in (GRADER / "lesson" / "manifest.py", Path(__file__).resolve()):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {element.value for element in node.elts if isinstance(element, ast.Constant)}
                if {"conv_output_size", "pool_output_size", "conv_params"} <= values or \
                        {"shape_math.py", "augmentation.py", "cnn.py"} <= values:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not spelled, f"the lesson's API is listed again at {spelled}: derive it from grader.lesson.manifest"


def test_each_command_owns_its_parser_and_main():
    from grader.commands import COMMANDS

    for name in COMMANDS:
        source = (GRADER / "commands" / f"{name}.py").read_text(encoding="utf-8")
        assert "def add_parser(" in source and "def from_args(" in source, name


# The engine: what grades any lesson. It must not know lesson 6 (or any lesson): no function of its API, no layer
# of its reference as written there (nor with its filters left open, as a hint writes it), no number of its networks.
# The hidden tests (grader/checker/hidden_tests) are the engine's too, the same for every lesson; grader/lesson/ holds
# the manifest reader and the stubs. The generic checks (grader/checker/checks/, which the students' copy is made of)
# name no layer of the lesson either (their hints derive it from the reference), but still name its shape-math
# functions and its augmentation block's builder.
CHECKS = tuple(sorted((GRADER / "checker" / "checks").glob("*.py")))
ENGINE = (*sorted((GRADER / "sandbox").glob("*.py")), *sorted((GRADER / "untrusted").glob("*.py")),
          *sorted((GRADER / "checker").glob("*.py")), *sorted((GRADER / "checker" / "hidden_tests").glob("*.py")),
          *sorted((GRADER / "integrations").glob("*.py")),
          *sorted((GRADER / "render").glob("*.py")), *sorted((GRADER / "results").glob("*.py")),
          *[GRADER / f"{name}.py" for name in ("store", "exports", "summary", "batch", "worker", "shards", "grade",
                                                "notebook_cells", "submission", "protocol", "cache", "verdicts")])
# Lesson text the student release still carries inside the integrations (its notebook's sections, its README).
LESSON_TEXT = {GRADER / "integrations" / "notebook.py", GRADER / "integrations" / "templates" / "README_students.md"}


# Names that are the engine's own and only happen to spell an API function: the training check's pictures, and the
# filters bonus's two checks (what the call kind "filters" asks of a lesson's two functions).
ENGINE_OWN = {("grader/render/html.py", "first_layer_filters"), ("grader/render/html.py", "feature_maps"),
              # Keras's shape math explained (a pool's stride defaults to its size), not the lesson's layer:
              ("grader/checker/checks/keras_truth.py", "MaxPooling2D(2)"),
              ("grader/checker/hidden_tests/test_filters.py", "first_layer_filters"),
              ("grader/checker/hidden_tests/test_filters.py", "feature_maps")}


def lesson_tokens():
    """Return the lesson's names and layers (from its manifest and reference) and its networks' numbers."""
    from grader.checker.reference import expectations
    from grader.lesson import manifest

    found = expectations()
    names = set(manifest.API)
    codes = {code for network in found["networks"].values()
             for code in (*network["layer_code"], *network["augmentation_code"])}
    # Conv2D(32, 3, padding='same') is also named as Conv2D(..., 3, padding='same'): its settings without its width.
    layers = codes | {f"{code.partition('(')[0]}(..., {code.partition(', ')[2]}" for code in codes if ", " in code}
    counts = {number for network in found["networks"].values()
              for number in [network["total_params"]] + [params for _kind, _shape, params in network["stages"]]
              if number >= 1000}
    numbers = {spelled for number in counts for spelled in (str(number), f"{number:,}", f"{number:_}")}
    return names, layers, numbers


def code_strings(path):
    """Return the identifiers and string constants of a Python file's code (docstrings and comments left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append(node.value)
        elif isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
    return found


def test_the_engine_names_no_lesson_function_or_layer():
    names, layers, _numbers = lesson_tokens()
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    offenders = []
    for path in (*ENGINE, *CHECKS):
        if path in LESSON_TEXT:
            continue
        for text in code_strings(path):
            hits = set() if path in CHECKS else set(pattern.findall(text))
            hits |= {layer for layer in layers if layer in text}
            offenders += [f"{path.relative_to(ROOT)}: {hit}" for hit in sorted(hits)
                          if (path.relative_to(ROOT).as_posix(), hit) not in ENGINE_OWN]
    assert not offenders, f"the engine names the lesson's functions or layers: {offenders}; read them from " \
                          f"grader.lesson.manifest or derive them from the reference (grader.checker.reference)"


def test_no_lesson_number_in_the_grader():
    # Not even in the student release's lesson text (its README and notebook): they derive the numbers from the
    # reference (@PARAMS:builder:stage@), so an edited reference ships its own.
    _names, _layers, numbers = lesson_tokens()
    offenders = []
    for path in sorted(GRADER.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".md", ".toml", ".yml", ".sh") \
                or GRADER / "lesson" / "default" in path.parents:  # the default lesson's own folder (links)
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {number}" for number in sorted(numbers)
                      if re.search(rf"(?<![\d,_.]){re.escape(number)}(?![\d,_])", text)]
    assert not offenders, f"the grader writes the lesson's numbers: {offenders}; derive them from the reference"


def test_the_lesson_tokens_are_found_where_the_lesson_is():
    # The two rules above can fail: the lesson's own reference names its functions and numbers.
    names, layers, numbers = lesson_tokens()
    reference = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "solutions").glob("*.py")))
    assert names and layers and numbers
    assert all(name in reference for name in names)
    assert any(number in reference for number in numbers)


def module_name(path):
    """Return a grader file's dotted module name (a package's __init__.py as the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# The judgement and how it is reached: they produce data and never decide how it is shown or which command runs.
JUDGEMENT = [path for path in grader_files()
             if {"checker", "results"} & set(path.relative_to(GRADER).parts[:1])
             or path in (GRADER / "grade.py", GRADER / "batch.py", GRADER / "worker.py")]


@pytest.mark.parametrize("path", JUDGEMENT, ids=lambda p: str(p.relative_to(GRADER)))
def test_the_checker_results_and_grading_never_import_renderers_or_commands(path):
    offenders = [name for name in imported_modules(path) if name.split(".")[:2] in (["grader", "render"],
                                                                                    ["grader", "commands"])]
    assert not offenders, f"{path.relative_to(ROOT)} imports {offenders}: judgement must not depend on its display"


def test_no_module_imports_another_module_s_private_names():
    offenders = []
    for path in grader_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != module_name(path):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                              for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not offenders, f"these import another module's private names (make the name public or move it): {offenders}"


def test_only_the_sandbox_and_the_seam_import_untrusted_code():
    allowed = {*(GRADER / "sandbox").glob("*.py"), *(GRADER / "untrusted").glob("*.py"), GRADER / "protocol.py"}
    offenders = [str(path.relative_to(ROOT)) for path in grader_files() if path not in allowed
                 and any(name.startswith("grader.untrusted") for name in imported_modules(path))]
    assert not offenders, f"these import grader/untrusted/ directly; go through grader.sandbox: {offenders}"


def test_the_layout_rules_can_fail(tmp_path):
    # The rules above read imports with imported_modules: it must see each kind they forbid.
    sample = tmp_path / "sample.py"
    sample.write_text("from grader.render.text import to_text\nfrom grader.grade import _private\n"
                      "def f():\n    import grader.untrusted.runner\n", encoding="utf-8")
    assert {"grader.render.text", "grader.grade", "grader.untrusted.runner"} <= imported_modules(sample)


# --- size and state -------------------------------------------------------------------------------------------------

MAX_MODULE_LINES = 450
# Modules still over the limit, each with what its split needs. Remove an entry once it is short.
LONG_FOR_NOW: dict[str, str] = {}


def test_every_module_of_the_grader_is_shorter_than_the_limit():
    lengths = {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in grader_files()}
    too_long = {name: lines for name, lines in lengths.items()
                if lines >= MAX_MODULE_LINES and name not in LONG_FOR_NOW}
    assert not too_long, f"these modules have {MAX_MODULE_LINES} lines or more; split them at a real seam: {too_long}"
    done = sorted(name for name in LONG_FOR_NOW if lengths.get(name, 0) < MAX_MODULE_LINES)
    assert not done, f"remove {done} from LONG_FOR_NOW: they are gone or short now"


MUTATING_METHODS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "clear",
                              "remove", "discard", "sort", "reverse"})
CONTAINER_CALLS = frozenset({"dict", "list", "set", "bytearray", "defaultdict", "OrderedDict", "Counter", "deque",
                             "WeakValueDictionary", "WeakKeyDictionary"})


def module_containers(tree):
    """Return the names a module binds at its top level to a mutable container (a literal or a constructor call)."""
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        value = getattr(node, "value", None)
        called = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else \
            value.func.attr if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) else None
        if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or \
                called in CONTAINER_CALLS:
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def module_state(path):
    """Return where a file keeps state at module level: `global` statements and changes to module containers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    containers, found = module_containers(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"{path.name}:{node.lineno} global {', '.join(node.names)}")
        changed = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING_METHODS:
            changed = [node.func.value]
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            changed = [target.value for target in getattr(node, "targets", [getattr(node, "target", None)])
                       if isinstance(target, ast.Subscript)]
        found += [f"{path.name}:{node.lineno} changes {item.id}" for item in changed
                  if isinstance(item, ast.Name) and item.id in containers]
    return found


def test_no_module_of_the_grader_keeps_state_at_module_level():
    # What lives as long as a process (the kit's fingerprint, the zygote, the trainer, the verdicts) is the Grader's
    # (grader/grade.py); a module global would leak it between Graders, tests and the workers that fork.
    offenders = [found for path in grader_files() for found in module_state(path)]
    assert not offenders, f"module-level state in grader/: {offenders}; keep it on an object the caller owns"


def test_the_state_rule_can_fail(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("SEEN = {}\nORDER: list = []\nFIXED = (1, 2)\nZYGOTE = None\n"
                      "def f(key):\n    global ZYGOTE\n    ZYGOTE = key\n    SEEN[key] = 1\n    ORDER.append(key)\n"
                      "    local = {}\n    local[key] = FIXED\n", encoding="utf-8")
    assert module_state(sample) == ["sample.py:6 global ZYGOTE", "sample.py:8 changes SEEN",
                                    "sample.py:9 changes ORDER"]
