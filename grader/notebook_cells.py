"""Read a notebook as a module: its code cells as IPython reads them, less what would train or run for minutes.

The grader keeps the imports, the definitions and the assignments they need; it skips line magics and shell
escapes (and says which), grades a Python cell magic's body, and refuses cells nested deeper than it can parse.
"""

import ast
import json
import symtable
import sys
import threading
from pathlib import Path

import nbformat

from grader import magics
from grader.protocol import json_depth
from grader.submission import SubmissionError, check_source_size

MAX_NOTEBOOK_DEPTH = 100          # JSON levels of a notebook: nbformat 4's own are 6, widget metadata ~20
MAX_NESTING = 20_000              # AST levels of one cell: CPython compiles ~3,000 (3.11, 3.12), ~10,000 (3.13)
MAX_CELL_MAGICS = 8               # cell magics wrapped around one cell (%%capture around %%time: 2)
PARSE_STACK_BYTES = 512 * 2**20   # the parsing thread's stack: 3.10's parser has no depth check (~100 B a level)
NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)


# Calls that mean "train, evaluate or download": a notebook statement containing one is never kept.
HEAVY_CALLS = frozenset({"fit", "fit_generator", "train_on_batch", "evaluate", "predict", "load_data",
                         "get_file", "download", "urlretrieve", "system", "run", "Popen"})

BAD_NOTEBOOK = "Expected a Jupyter notebook (nbformat 4); could not read {path!r}: {error}"
NOTEBOOK_TOO_DEEP = ("Expected a Jupyter notebook whose JSON nests at most {limit} levels; received {path!r} "
                     "nesting {depth}")

CELL_TOO_DEEP = ("cell {cell} of {path!r} nests expressions more than {limit:,} levels deep; "
                 "the grader reads at most {limit:,}")

CELL_BEYOND_PYTHON = ("cell {cell} of {path!r} nests expressions deeper than Python {version} can parse ({error}); "
                      "the grader reads code Python compiles: split the expression (e.g. sum() over a list)")

TOO_MANY_MAGICS = "cell {cell} of {path!r} wraps {count} cell magics around its code; the grader reads at most {limit}"
NO_PARSER = "The grader could not start a thread to read {path!r}: {error}"
SKIPPED = "The grader skipped {count} IPython command{s} it does not run (magics and shell escapes): {listed}{more}."
SKIPPED_SHOWN = 5                 # skipped lines a report names; the rest are counted


def notebook_source(path, shown, notes=None):
    """Return a module with the notebook's imports, definitions and the assignments they need.

    notes: a list that gets a line naming the magics and shell commands the grader skipped, if any.
    """
    cells = code_cells(path, shown)
    check_source_size(sum(len(cell.encode()) for cell in cells), shown)
    skipped, found = [], []
    module = in_deep_stack(module_from_cells, cells, shown, skipped, found, shown=shown)
    if notes is not None:
        notes += found + ([skipped_note(skipped)] if skipped else [])
    return module


def code_cells(path, shown):
    """Return the sources of a notebook's code cells, read with bounded JSON nesting (nbformat 4, or converted)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except RecursionError:
        raise SubmissionError(NOTEBOOK_TOO_DEEP.format(limit=MAX_NOTEBOOK_DEPTH, path=shown,
                                                       depth="deeper than Python's JSON reader goes")) from None
    except (ValueError, OSError) as error:
        raise SubmissionError(BAD_NOTEBOOK.format(path=shown, error=error)) from None
    depth = json_depth(data)
    if depth > MAX_NOTEBOOK_DEPTH:
        raise SubmissionError(NOTEBOOK_TOO_DEEP.format(limit=MAX_NOTEBOOK_DEPTH, path=shown, depth=f"{depth:,} levels"))
    try:
        major, minor = nbformat.reader.get_version(data)
        notebook = nbformat.convert(nbformat.versions[major].to_notebook_json(data, minor=minor), 4)
        cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    except Exception as error:  # nbformat raises many kinds of errors on malformed notebooks
        raise SubmissionError(BAD_NOTEBOOK.format(path=shown, error=error)) from None
    if not all(isinstance(cell, str) for cell in cells):
        raise SubmissionError(BAD_NOTEBOOK.format(path=shown, error="a code cell's source is not text"))
    return cells


def in_deep_stack(function, *args, shown):
    """Return function(*args), run in a thread whose stack and recursion limit fit MAX_NESTING levels of code.

    Python's parser and symtable recurse once per level of nesting; from the main thread's stack they give up
    (or, on 3.10, crash) far sooner than the probe's Python compiles. The limit is raised for this thread's run
    only, while the calling thread waits.
    """
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread as it is
            outcome["error"] = error

    limit = sys.getrecursionlimit()
    try:
        size = threading.stack_size(PARSE_STACK_BYTES)
        try:
            thread = threading.Thread(target=run, name="notebook-reader", daemon=True)
            sys.setrecursionlimit(max(limit, MAX_NESTING + 1000))
            thread.start()
        finally:
            threading.stack_size(size)
        thread.join()
    except (RuntimeError, MemoryError, ValueError) as error:
        raise SubmissionError(NO_PARSER.format(path=shown, error=error)) from None
    finally:
        sys.setrecursionlimit(limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def module_from_cells(cells, shown, skipped, notes):
    """Return the module source a notebook's code cells give (see notebook_source)."""
    chunks, statements = [], []
    for number, cell in enumerate(cells, start=1):
        read, broken = read_cell(cell, number, shown, skipped, notes)
        statements += read
        if broken:
            chunks.append(broken)
    kept = needed_statements([statement for _number, statement, _lines in statements], sources(statements))
    for number, statement, lines in statements:
        if id(statement) in kept:
            start = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
            chunks.append(f"# --- cell {number} ---\n" + "\n".join(lines[start - 1:statement.end_lineno]) + "\n")
    return "\n".join(chunks)


def read_cell(cell, number, shown, skipped, notes):
    """Return ([(number, statement, lines)], broken chunk or '') for one cell read as IPython reads it.

    A cell magic whose body is Python gives its body's statements; any other cell magic, and each top-level
    line magic or shell escape, is recorded in skipped as (cell number, how it was written).
    """
    for _wrapper in range(MAX_CELL_MAGICS + 1):
        code = magics.to_python(cell)
        tree = parse_cell(code, number, shown)
        if tree is None:  # kept whole: the probe then reports the syntax error instead of "missing"
            return [], f"# --- cell {number} (does not parse) ---\n{code}\n"
        call = magics.magic_call(tree.body[0]) if len(tree.body) == 1 else None
        if not call or call[0] != "run_cell_magic":
            break
        name, _line, body = (call[1] + ["", "", ""])[:3]
        if name not in magics.PYTHON_CELL_MAGICS:
            skipped.append((number, magics.shown(*call) + " cell"))
            return [], ""
        if name == "timeit":
            notes.append(magics.TIMEIT_NOTE.format(cell=number))
        cell = body
    else:
        raise SubmissionError(TOO_MANY_MAGICS.format(cell=number, path=shown, count=f"more than {MAX_CELL_MAGICS}",
                                                     limit=MAX_CELL_MAGICS))
    lines, read = code.splitlines(), []
    for statement in tree.body:
        call = magics.magic_call(statement)
        if call:
            skipped.append((number, magics.shown(*call)))
        else:
            read.append((number, statement, lines))
    return read, ""


def parse_cell(code, number, shown):
    """Return the cell's AST, None if it has a syntax error; refuse code nested deeper than MAX_NESTING."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    except (RecursionError, MemoryError) as error:  # MemoryError: "Parser stack overflowed"
        version = ".".join(map(str, sys.version_info[:2]))
        said = ": ".join(filter(None, [type(error).__name__, str(error)]))
        raise SubmissionError(CELL_BEYOND_PYTHON.format(cell=number, path=shown, version=version, error=said)) from None
    # Each level of nesting takes at least one character, so shorter code is shallower than the limit.
    if len(code) > MAX_NESTING and ast_depth(tree, MAX_NESTING) > MAX_NESTING:
        raise SubmissionError(CELL_TOO_DEEP.format(cell=number, path=shown, limit=MAX_NESTING))
    return tree


def ast_depth(tree, limit):
    """Return how many levels of nodes an AST nests, or limit + 1 as soon as it is known to nest deeper."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def skipped_note(skipped):
    """Return the report's line naming the skipped magics and shell commands: the first few, then a count."""
    listed = "; ".join(f"{short(text)} (cell {number})" for number, text in skipped[:SKIPPED_SHOWN])
    more = f"; and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return SKIPPED.format(count=len(skipped), s="" if len(skipped) == 1 else "s", listed=listed, more=more)


def short(text, limit=60):
    """Return text on one line, cut to limit characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def sources(statements):
    """Return a function giving a top-level statement's own source text, read from its cell's lines."""
    texts = {id(statement): (statement, lines) for _number, statement, lines in statements}

    def source(statement):
        node, lines = texts[id(statement)]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if first == node.end_lineno:
            return lines[first - 1].encode()[node.col_offset:node.end_col_offset].decode(errors="replace")
        head = lines[first - 1].encode()[node.col_offset if first == node.lineno else 0:].decode(errors="replace")
        tail = lines[node.end_lineno - 1].encode()[:node.end_col_offset].decode(errors="replace")
        return "\n".join([head, *lines[first:node.end_lineno - 1], tail])

    return source


def needed_statements(statements, source=ast.unparse):
    """Return the ids of the definitions and of the imports and assignments they need, transitively.

    A worklist over names: each needed name is looked up once, so a long chain of assignments costs linear time.
    source(statement) gives a statement's text (for symtable); the cells' own text is cheaper than unparsing.
    """
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    kept = {id(s) for s in statements if isinstance(s, definitions)}
    kept |= {id(s) for s in statements if isinstance(s, ast.ImportFrom) and s.module == "__future__"}
    binders = {}
    for statement in statements:
        if id(statement) not in kept and is_keepable(statement):
            for name in bound_names(statement):
                binders.setdefault(name, []).append(statement)
    pending = [name for s in statements if id(s) in kept for name in free_names(s, source)]
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for statement in binders.get(name, ()):
            if id(statement) not in kept:
                kept.add(id(statement))
                pending.extend(free_names(statement, source))
    return kept


def is_keepable(statement):
    """Return whether a top-level statement may be kept: an import or an assignment without heavy calls."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return True
    if not isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return False
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in HEAVY_CALLS:
                return False
    return True


def bound_names(statement):
    """Return the module-level names a statement binds."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    return {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}


def free_names(statement, source=ast.unparse):
    """Return the module-level names a statement reads, including those its functions read as globals."""
    nodes = list(ast.walk(statement))
    names = {node.id for node in nodes if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store)}
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
        names.add(statement.target.id)
    if not any(isinstance(node, NEW_SCOPES) for node in nodes):  # no inner scope: every name read is global
        return names
    try:
        table = symtable.symtable(source(statement), "<cell>", "exec")
    except SyntaxError:  # e.g. a top-level await, which IPython allows: every name it reads may be global
        return names
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_referenced() and s.is_global()}
        stack.extend(scope.get_children())
    return names
