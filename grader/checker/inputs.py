"""Fix the trusted side's inputs before student code runs: fingerprint the kit's files, verify them afterwards.

The hidden tests, their points, the lesson's checks and reference, and the training calibration decide every grade.
They are hashed before the probe starts and compared before the checker loads them; a changed, added or removed file
(a bytecode cache that existed before included) means the grade would be computed from something student code
may have touched, so it is refused. The sandbox is what stops such writes; this is how a grade knows they did not
happen.
"""

import hashlib
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent   # the grader package
LESSON_DATA = ("lesson.toml", "points.toml", "hidden_cases.json", "calibration.json")  # besides the reference
WATCHED_SUFFIXES = (".py", ".toml", ".json", ".pyc", ".sh", ".yml", ".md", "")


class KitChanged(RuntimeError):
    """A file that decides grades changed between the fingerprint and the check; the message names it."""


def fingerprint(root: Path = KIT) -> dict[str, str]:
    """Return {relative path: sha256} of every file of the grader package, and of the lesson's reference."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in WATCHED_SUFFIXES:
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    if root == KIT:  # the reference decides what every hidden test compares with
        from grader.checker.reference import reference_files

        for path in reference_files():
            if path.is_file():
                found[f"lesson reference {path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        from grader.lesson.manifest import DEFAULT_LESSON, lesson_dir

        if lesson_dir().resolve() != DEFAULT_LESSON.resolve():  # another lesson's data lies outside the package
            for name in LESSON_DATA:
                path = lesson_dir() / name
                if path.is_file():
                    found[f"lesson {name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def verify(before: dict[str, str], root: Path = KIT) -> None:
    """Raise KitChanged if a file of the fingerprint changed or vanished, or a new source file appeared.

    New bytecode caches are the grader's own doing (it imports modules while the probe runs); a changed one is not.
    """
    after = fingerprint(root)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    added = [name for name in after if name not in before and not name.endswith(".pyc")]
    if changed or added:
        names = sorted(changed + added)
        raise KitChanged(", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
