"""Turn whatever a student handed in into a scratch folder of plain modules for the probe.

A submission may be one .py file, a folder of modules, a repository with an exercises/ folder, a Jupyter
notebook, or a .zip of any of these. The original is never touched: prepare() writes a fresh copy into
the scratch folder. It never copies test configuration (conftest.py, pytest.ini) or bytecode, and keeps
other .py files (a student's helpers); the probe decides what to import. Source files are copied as
they are: a syntax error, a non-UTF-8 file or an empty file becomes the probe's import error (or
"missing" functions), never a rejection here. A notebook keeps only what the API functions need, so the
grader never runs its training or downloads.
"""

import ast
import shutil
import stat
import symtable
import tempfile
import zipfile
from pathlib import Path

import nbformat

from grader.lesson.manifest import MODULE_FILES, SINGLE_FILE_MODULE

API_MODULES = MODULE_FILES
SINGLE_FILE = f"{SINGLE_FILE_MODULE}.py"
NEVER_COPIED = ("conftest.py", "pytest.ini", "__pycache__")
SKIPPED_FOLDERS = ("__pycache__", "__MACOSX", "venv", "node_modules")
MAX_FILES = 500
MAX_BYTES = 50 * 2**20
MAX_SOURCE_BYTES = 2 * 2**20      # one .py file, or a notebook's code cells together (the lesson's are ~20 KB)

NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)
# Calls that mean "train, evaluate or download": a notebook statement containing one is never kept.
HEAVY_CALLS = frozenset({"fit", "fit_generator", "train_on_batch", "evaluate", "predict", "load_data",
                         "get_file", "download", "urlretrieve", "system", "run", "Popen"})

EXPECTED_KINDS = "Expected a .py file, a folder, a .ipynb notebook or a .zip; received {path!r}"
NOT_FOUND = "Expected a .py file, a folder, a .ipynb notebook or a .zip; received {path!r}, which does not exist"
EMPTY_FOLDER = ("Expected a folder with shape_math.py, augmentation.py, cnn.py, filters.py (or an exercises/ "
                "folder, or one .py file or notebook); received {path!r} containing {listing}")
BAD_NOTEBOOK = "Expected a Jupyter notebook (nbformat 4); could not read {path!r}: {error}"
ZIP_UNSAFE = "Expected a .zip with relative paths inside it; received {path!r} with an unsafe entry {entry!r} ({why})"
ZIP_BAD = "Expected a readable .zip; could not open {path!r}: {error}"
TOO_BIG = "Expected a submission of at most {files} files and {size} MiB; received {path!r} with more"
SOURCE_TOO_BIG = "Expected a source file of at most {size} MiB of code; received {path!r} with {received:,} bytes"
SYMLINK = "Expected plain files; received {path!r} containing a symbolic link {entry!r}"


class SubmissionError(ValueError):
    """The submission is not something the grader can read."""


def prepare(path, scratch_dir):
    """Copy the submission at path into a fresh folder of plain modules inside scratch_dir; return that folder."""
    source = Path(path)
    scratch = Path(scratch_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="submission-", dir=scratch))
    prepare_into(source, target, scratch, shown=str(path))
    return target


def prepare_into(source, target, scratch, shown):
    """Dispatch on the kind of submission and write its modules into target."""
    if not source.exists() and not source.is_symlink():
        raise SubmissionError(NOT_FOUND.format(path=shown))
    if source.is_symlink():
        raise SubmissionError(SYMLINK.format(path=shown, entry=source.name))
    if source.is_dir():
        copy_folder(module_root(source, shown), target, shown)
    elif source.suffix == ".py":
        check_source_size(source.stat().st_size, shown)
        shutil.copyfile(source, target / SINGLE_FILE)
    elif source.suffix == ".ipynb":
        if source.stat().st_size > MAX_BYTES:
            raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
        (target / SINGLE_FILE).write_text(notebook_source(source, shown), encoding="utf-8")
    elif source.suffix == ".zip":
        extracted = Path(tempfile.mkdtemp(prefix="unzipped-", dir=scratch))
        extract_zip(source, extracted, shown)
        prepare_into(single_child(extracted), target, scratch, shown)
    else:
        raise SubmissionError(EXPECTED_KINDS.format(path=shown))


def check_source_size(size, shown):
    """Refuse a single source file larger than MAX_SOURCE_BYTES (the trusted side parses notebooks' code)."""
    if size > MAX_SOURCE_BYTES:
        raise SubmissionError(SOURCE_TOO_BIG.format(size=MAX_SOURCE_BYTES // 2**20, path=shown, received=size))


def single_child(folder):
    """Return the one folder a zip wraps everything in, or the folder itself."""
    entries = [e for e in folder.iterdir() if e.name not in SKIPPED_FOLDERS]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    if len(entries) == 1 and entries[0].suffix in (".py", ".ipynb"):
        return entries[0]
    return folder


def module_root(folder, shown):
    """Return the folder that holds the modules: exercises/ in a repository, else the folder itself."""
    if (folder / "exercises").is_dir():
        return folder / "exercises"
    names = {entry.name for entry in folder.iterdir()}
    if names & set(API_MODULES + (SINGLE_FILE,)):
        return folder
    scripts = sorted(folder.glob("*.py"))
    notebooks = sorted(p for p in folder.glob("*.ipynb"))
    if len(scripts) == 1 or (not scripts and len(notebooks) == 1):
        return (scripts or notebooks)[0]
    listing = ", ".join(sorted(names)) or "nothing"
    raise SubmissionError(EMPTY_FOLDER.format(path=shown, listing=listing))


def copy_folder(root, target, shown):
    """Copy a folder's files (or one file) into target, without test configuration, bytecode or links."""
    if root.is_file():
        return prepare_into(root, target, target.parent, shown)
    files, size = 0, 0
    for entry in sorted(root.rglob("*")):
        relative = entry.relative_to(root)
        if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts):
            continue
        if entry.is_symlink():
            raise SubmissionError(SYMLINK.format(path=shown, entry=str(relative)))
        if entry.is_dir() or entry.name in NEVER_COPIED or entry.suffix == ".pyc":
            continue
        files, size = files + 1, size + entry.stat().st_size
        if entry.suffix == ".py":
            check_source_size(entry.stat().st_size, f"{shown}/{relative}")
        if files > MAX_FILES or size > MAX_BYTES:
            raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry, target / relative)
    return None


# --- zip ------------------------------------------------------------------------------------------------


def unsafe_reason(info):
    """Return why a zip entry must not be extracted, or '' if it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "path leaves the folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return ""


def extract_zip(archive, folder, shown):
    """Extract a zip into folder after checking every entry; enforce the file-count and size caps."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            for info in infos:
                why = unsafe_reason(info)
                if why:
                    raise SubmissionError(ZIP_UNSAFE.format(path=shown, entry=info.filename, why=why))
            if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_BYTES:
                raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
            extract_entries(zipped, infos, folder, shown)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(ZIP_BAD.format(path=shown, error=error)) from None


def extract_entries(zipped, infos, folder, shown):
    """Write the entries, counting the bytes actually read (a zip may lie about its sizes)."""
    written = 0
    for info in infos:
        target = folder / info.filename.replace("\\", "/")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(info) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > MAX_BYTES:
                    raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
                sink.write(chunk)


# --- notebooks ------------------------------------------------------------------------------------------


def notebook_source(path, shown):
    """Return a module with the notebook's imports, definitions and the assignments they need."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
        cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    except Exception as error:  # nbformat raises many kinds of errors on malformed JSON
        raise SubmissionError(BAD_NOTEBOOK.format(path=shown, error=error)) from None
    check_source_size(sum(len(cell.encode()) for cell in cells), shown)
    chunks = []
    statements = []
    for number, cell in enumerate(cells, start=1):
        code = strip_magics(cell)
        try:
            tree = ast.parse(code)
        except SyntaxError:
            # Keep the broken cell whole: the probe then reports the syntax error instead of "missing".
            chunks.append(f"# --- cell {number} (does not parse) ---\n{code}\n")
            continue
        lines = code.splitlines()
        statements += [(number, statement, lines) for statement in tree.body]
    kept = needed_statements([statement for _number, statement, _lines in statements])
    for number, statement, lines in statements:
        if id(statement) in kept:
            start = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
            chunks.append(f"# --- cell {number} ---\n" + "\n".join(lines[start - 1:statement.end_lineno]) + "\n")
    return "\n".join(chunks)


def strip_magics(code):
    """Blank out IPython magics and shell escapes (%, %%, !) so the cell parses as Python."""
    lines = code.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def needed_statements(statements):
    """Return the ids of the definitions and of the imports and assignments they need, transitively.

    A worklist over names: each needed name is looked up once, so a long chain of assignments costs linear time.
    """
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    kept = {id(s) for s in statements if isinstance(s, definitions)}
    kept |= {id(s) for s in statements if isinstance(s, ast.ImportFrom) and s.module == "__future__"}
    binders = {}
    for statement in statements:
        if id(statement) not in kept and is_keepable(statement):
            for name in bound_names(statement):
                binders.setdefault(name, []).append(statement)
    pending = [name for s in statements if id(s) in kept for name in free_names(s)]
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for statement in binders.get(name, ()):
            if id(statement) not in kept:
                kept.add(id(statement))
                pending.extend(free_names(statement))
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


def free_names(statement):
    """Return the module-level names a statement reads, including those its functions read as globals."""
    nodes = list(ast.walk(statement))
    if not any(isinstance(node, NEW_SCOPES) for node in nodes):  # no inner scope: every name read is global
        names = {node.id for node in nodes if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store)}
        if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            names.add(statement.target.id)
        return names
    table = symtable.symtable(ast.unparse(statement), "<cell>", "exec")
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_referenced() and s.is_global()}
        stack.extend(scope.get_children())
    return names
