"""The tree's seams hold: what runs beside student code imports nothing of the kit, nothing imports the CLI,
library code never imports a command, and the lesson's API is spelled out in one place."""

import ast
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
