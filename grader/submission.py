"""Turn whatever a student handed in into a scratch folder of plain modules for the probe.

A submission may be one .py file, a folder of modules, a repository with an exercises/ folder, a Jupyter
notebook, or a .zip of any of these. The original is never touched: prepare() writes a fresh copy into
the scratch folder. It never copies test configuration (conftest.py, pytest.ini) or bytecode, and keeps
other .py files (a student's helpers); the probe decides what to import. Source files are copied as
they are: a syntax error, a non-UTF-8 file or an empty file becomes the probe's import error (or
"missing" functions), never a rejection here. A notebook keeps only what the API functions need, so the
grader never runs its training or downloads; its cells are read as IPython reads them (grader.magics).

Everything read here comes from a student, so every reading is bounded (the limits below): a file, a zip
or a notebook past one becomes a SubmissionError that says which limit, what was expected and what was
received; the report says it and the batch goes on. A notebook's cells are parsed in a thread with a deep
stack, so code as deep as Python compiles is read, not refused.
"""

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from grader.lesson.manifest import MODULE_FILES, SINGLE_FILE_MODULE

API_MODULES = MODULE_FILES
SINGLE_FILE = f"{SINGLE_FILE_MODULE}.py"
NEVER_COPIED = ("conftest.py", "pytest.ini", "__pycache__")
SKIPPED_FOLDERS = ("__pycache__", "__MACOSX", "venv", "node_modules")
MAX_FILES = 500
MAX_BYTES = 50 * 2**20
MAX_SOURCE_BYTES = 2 * 2**20      # one .py file, or a notebook's code cells together (the lesson's are ~20 KB)
MAX_ZIP_RATIO = 100               # a zip entry's size over its compressed size (text compresses ~5:1)
MAX_ZIP_PATH_PARTS = 32           # folders deep in a zip (a repository's exercises/ is 2)
MAX_NAME_BYTES = 255              # one file or folder name, as Linux allows
EXPECTED_KINDS = "Expected a .py file, a folder, a .ipynb notebook or a .zip; received {path!r}"
NOT_FOUND = "Expected a .py file, a folder, a .ipynb notebook or a .zip; received {path!r}, which does not exist"
EMPTY_FOLDER = ("Expected a folder with shape_math.py, augmentation.py, cnn.py, filters.py (or an exercises/ "
                "folder, or one .py file or notebook); received {path!r} containing {listing}")
ZIP_UNSAFE = "Expected a .zip with relative paths inside it; received {path!r} with an unsafe entry {entry!r} ({why})"
ZIP_BAD = "Expected a readable .zip; could not open {path!r}: {error}"
TOO_BIG = "Expected a submission of at most {files} files and {size} MiB; received {path!r} with more"
ZIP_BOMB = ("Expected a .zip whose entries compress at most {limit}:1; received {path!r} with {entry!r}, "
            "{size:,} bytes from {packed:,} ({ratio:,}:1)")
ZIP_TOO_DEEP = ("Expected a .zip with folders at most {limit} deep and names of at most {name_limit} bytes; "
                "received {path!r} with the entry {entry!r}")
ZIP_TWICE = "Expected a .zip that holds each path once; received {path!r} with {entry!r} twice"
SOURCE_TOO_BIG = "Expected a source file of at most {size} MiB of code; received {path!r} with {received:,} bytes"
SYMLINK = "Expected plain files; received {path!r} containing a symbolic link {entry!r}"


class SubmissionError(ValueError):
    """The submission is not something the grader can read."""


def prepare(path, scratch_dir, notes=None):
    """Copy the submission at path into a fresh folder of plain modules inside scratch_dir; return that folder.

    notes: a list that gets one line for the report about what the reading set aside (a notebook's magics).
    """
    source = Path(path)
    scratch = Path(scratch_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="submission-", dir=scratch))
    prepare_into(source, target, scratch, shown=str(path), notes=[] if notes is None else notes)
    return target


def prepare_into(source, target, scratch, shown, notes):
    """Dispatch on the kind of submission and write its modules into target."""
    if not source.exists() and not source.is_symlink():
        raise SubmissionError(NOT_FOUND.format(path=shown))
    if source.is_symlink():
        raise SubmissionError(SYMLINK.format(path=shown, entry=source.name))
    if source.is_dir():
        copy_folder(module_root(source, shown), target, shown, notes)
    elif source.suffix == ".py":
        check_source_size(source.stat().st_size, shown)
        shutil.copyfile(source, target / SINGLE_FILE)
    elif source.suffix == ".ipynb":
        if source.stat().st_size > MAX_BYTES:
            raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
        from grader.notebook_cells import notebook_source  # it reads SubmissionError from here

        (target / SINGLE_FILE).write_text(notebook_source(source, shown, notes), encoding="utf-8")
    elif source.suffix == ".zip":
        extracted = Path(tempfile.mkdtemp(prefix="unzipped-", dir=scratch))
        extract_zip(source, extracted, shown)
        prepare_into(single_child(extracted), target, scratch, shown, notes)
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


def copy_folder(root, target, shown, notes):
    """Copy a folder's files (or one file) into target, without test configuration, bytecode or links."""
    if root.is_file():
        return prepare_into(root, target, target.parent, shown, notes)
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


def check_entries(infos, shown):
    """Refuse a zip whose entries are unsafe, too many, too large, too deep, named twice or compressed like a bomb.

    A zip inside the zip is never opened: it is copied as a file like any other.
    """
    if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_BYTES:
        raise SubmissionError(TOO_BIG.format(files=MAX_FILES, size=MAX_BYTES // 2**20, path=shown))
    seen = set()
    for info in infos:
        why = unsafe_reason(info)
        if why:
            raise SubmissionError(ZIP_UNSAFE.format(path=shown, entry=info.filename, why=why))
        parts = [part for part in info.filename.replace("\\", "/").split("/") if part]
        if len(parts) > MAX_ZIP_PATH_PARTS or any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
            raise SubmissionError(ZIP_TOO_DEEP.format(limit=MAX_ZIP_PATH_PARTS, name_limit=MAX_NAME_BYTES,
                                                      path=shown, entry=info.filename[:300]))
        if "/".join(parts) in seen:
            raise SubmissionError(ZIP_TWICE.format(path=shown, entry=info.filename))
        seen.add("/".join(parts))
        if info.file_size > 2**20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise SubmissionError(ZIP_BOMB.format(limit=MAX_ZIP_RATIO, path=shown, entry=info.filename,
                                                  size=info.file_size, packed=info.compress_size,
                                                  ratio=info.file_size // max(info.compress_size, 1)))


def extract_zip(archive, folder, shown):
    """Extract a zip into folder after checking every entry; enforce the file-count and size caps."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            check_entries(infos, shown)
            extract_entries(zipped, infos, folder, shown)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
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

