"""Build Gradescope's autograder.zip: setup.sh and run_autograder at its root, the kit bundled beside them.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once to build its image (installing the
bundled kit from that folder, so no private repository or token is needed), then runs run_autograder for
every submission. run_autograder always writes /autograder/results/results.json, even when the grader
itself cannot run: a silent Gradescope error teaches a student nothing.
"""

import base64
import hashlib
import io
import json
import shlex
import stat
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from grader.integrations import chosen_lesson, kit_folder, kit_root, render, source_tree, template

KIT_DIR = "kit"                                      # where the kit lies inside the zip
LESSON_DIR = "lesson"                                # where a lesson chosen with --lesson lies inside the zip
# What of a lesson folder the grader reads (never its exercises/): the probe cannot read any of it (setup.sh).
LESSON_FILES = ("lesson.toml", "points.toml", "hidden_cases.json", "calibration.json", "expectations.json", "solutions")
DISTRIBUTION = "lesson6-grader"
# What building the kit needs: pyproject names the README, setup.py copies solutions/ and exercises/ into the wheel.
BUNDLED = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "grader", "solutions", "exercises")
INSTALLER_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")   # pip's own, not the wheel's
SKIPPED = ("__pycache__", ".pytest_cache")
PACKAGES = (".whl", ".tar.gz", ".zip")
SMOKE_DIR = "smoke"                                  # the known-correct submission setup.sh grades, then deletes
# Gradescope's default autograder timeout is 10 minutes: run_autograder stops the grader well before, so that
# results.json is always written.
DEFAULT_TIMEOUT = 540
EXECUTABLE = 0o755 << 16                             # rwxr-xr-x in a zip entry's external attributes
FILE = 0o644 << 16

GRADER_FAILED = ("The autograder could not grade this submission: the grader stopped (exit code {code}) without "
                 "writing a report. This is not your score; please tell your instructor.")
GRADER_TIMED_OUT = ("The autograder ran out of time ({seconds} s) before it finished grading this submission. "
                    "This is not your score; please tell your instructor.")
# Written by printf if even python3 is missing: the last resort, so it has no placeholders.
STATIC_RESULTS = {"score": 0, "output": GRADER_FAILED.replace(" (exit code {code})", ""), "tests": [],
                  "extra_data": {"status": "error"}}

KIT_SOURCE_HELP = ("the kit to bundle: its source folder, or a wheel or sdist built from it "
                   "(default: the source tree this grader runs from, or a wheel of the installed kit)")
GRADE_ARGS_HELP = ("flags run_autograder passes to `grader grade`, e.g. --grade-args=--no-training "
                   "(default: none; the GRADER_ARGS environment variable overrides them)")
TIMEOUT_HELP = ("seconds before run_autograder stops the grader and reports it; keep it a minute under the "
                "assignment's autograder timeout on Gradescope (default: %(default)s, for Gradescope's 10 minutes)")
SMOKE_HELP = ("a known-correct submission that setup.sh grades while the image is built, failing the build unless it "
              "gets full marks (default: the kit's solutions/ folder, which an installed wheel carries too)")
NO_SMOKE = ("Expected a known-correct submission for --smoke-submission, a file or a folder that setup.sh grades. "
            "Received: {path}, which does not exist")
BAD_GRADE_ARGS = "Invalid --grade-args {args!r}: {why}"
# What an instructor must choose in the assignment's autograder settings (figures: benchmarks/README.md).
SETTINGS = """Gradescope settings for this autograder:
  - Autograder timeout: at least {minutes} minutes (run_autograder stops the grader after {timeout} s and still
    writes results.json; change it with --timeout).
  - Memory: the default 768 MB is enough. One grade gets full marks in a 600 MiB memory cgroup, with no OOM kill.
  - CPU: one grade takes about 33 CPU-seconds with the training check (8 without); at the default 0.5 vCPU that
    is about 70 seconds."""


def build_autograder_zip(out, *, kit_source=None, grade_args="", timeout=DEFAULT_TIMEOUT, smoke_submission=None):
    """Write Gradescope's autograder zip to out; return its path."""
    check_grade_args(grade_args)
    lesson = chosen_lesson()
    default_smoke = lesson / "solutions" if lesson else kit_folder("solutions", flag="--smoke-submission")
    smoke = Path(smoke_submission) if smoke_submission else default_smoke
    if not smoke.exists():
        raise FileNotFoundError(NO_SMOKE.format(path=smoke))
    source = Path(kit_source) if kit_source else source_tree()
    if source and source.is_file() and not source.name.endswith(PACKAGES):
        raise ValueError(f"Expected a kit folder, a wheel or an sdist for --kit-source. Received: {source}")
    if source and not source.is_file():
        source = kit_root(source, needs=("pyproject.toml", "grader", "solutions", "exercises"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if source is None:
            name, wheel = installed_wheel()
            kit_path = f"{KIT_DIR}/{name}"
            archive.writestr(kit_path, wheel)
        elif source.is_file():
            kit_path = f"{KIT_DIR}/{source.name}"
            archive.write(source, kit_path)
        else:
            kit_path = KIT_DIR
            add_kit_tree(archive, source)
        smoke_path = add_smoke_submission(archive, smoke)
        if lesson:
            add_lesson(archive, lesson)
        add_text(archive, "setup.sh", render(template("setup.sh"), {
            "KIT_PATH": kit_path, "SMOKE_PATH": smoke_path, "GRADE_ARGS": shlex.quote(grade_args),
            "LESSON_ARGS": lesson_args(lesson, '"$AUTOGRADER_ROOT/source')}), EXECUTABLE)
        add_text(archive, "run_autograder", run_autograder_script(grade_args, timeout, lesson), EXECUTABLE)
    return out


def add_lesson(archive, folder):
    """Add the lesson's data the checker needs (manifest, points, cases, calibration, reference) under LESSON_DIR."""
    for entry in sorted(Path(folder).rglob("*")):
        relative = entry.relative_to(folder)
        if entry.is_file() and relative.parts[0] in LESSON_FILES and "__pycache__" not in relative.parts:
            archive.write(entry, f"{LESSON_DIR}/{relative.as_posix()}")


def lesson_args(lesson, root):
    """Return the shell words that point `grader grade` at the zip's lesson ('' for the kit's own lesson)."""
    return f'--lesson {root}/{LESSON_DIR}"' if lesson else ""


def run_autograder_script(grade_args="", timeout=DEFAULT_TIMEOUT, lesson=None):
    """Return run_autograder with its defaults and messages filled in."""
    return render(template("run_autograder"), {
        "LESSON_ARGS": lesson_args(lesson, '"$ROOT/source'),
        "GRADE_ARGS": shlex.quote(grade_args),
        "TIMEOUT": int(timeout),
        "GRADER_FAILED": shlex.quote(GRADER_FAILED),
        "GRADER_TIMED_OUT": shlex.quote(GRADER_TIMED_OUT),
        "STATIC_RESULTS": shlex.quote(json.dumps(STATIC_RESULTS)),
    })


def check_grade_args(grade_args):
    """Fail now, at build time, on flags that `grader grade` would refuse on every submission."""
    import argparse

    from grader import options

    words = grade_args.split()
    if shlex.split(grade_args) != words:
        raise ValueError(BAD_GRADE_ARGS.format(args=grade_args, why="quotes and escapes are not supported"))
    if {"--format", "--output"} & {word.split("=")[0] for word in words}:
        raise ValueError(BAD_GRADE_ARGS.format(args=grade_args, why="run_autograder sets --format and --output"))
    try:
        parser = argparse.ArgumentParser(prog="grader grade", exit_on_error=False)
        options.add_arguments(parser)
        parser.parse_args(words)
    except (SystemExit, argparse.ArgumentError):
        raise ValueError(BAD_GRADE_ARGS.format(args=grade_args, why="`grader grade` does not accept them")) from None


def add_kit_tree(archive, root):
    """Add the files that building the kit needs, without tests, caches or the student-facing folders."""
    for name in BUNDLED:
        path = root / name
        if path.is_file():
            archive.write(path, f"{KIT_DIR}/{name}")
            continue
        for entry in sorted(path.rglob("*")):
            relative = entry.relative_to(root)
            if entry.is_dir() or any(part in SKIPPED or part.endswith(".egg-info") for part in relative.parts):
                continue
            if entry.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo.from_file(entry, f"{KIT_DIR}/{relative.as_posix()}")
            info.external_attr = EXECUTABLE if entry.stat().st_mode & stat.S_IXUSR else FILE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.read_bytes())


def installed_wheel():
    """Return (file name, bytes) of a wheel rebuilt from the installed kit's files, with a fresh RECORD."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"Expected the kit installed as {DISTRIBUTION}, or its source for --kit-source. "
                                f"Received: no {DISTRIBUTION} in this Python's site-packages") from None
    info_dir = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
    files = [file for file in dist.files or () if not file.parts[0] == ".." and "__pycache__" not in file.parts
             and not (file.parts[0] == info_dir and file.name in INSTALLER_FILES)]
    # An editable install (or a source tree's egg-info) lists no installed grader package: nothing to rebuild.
    if dist.read_text("RECORD") is None or not any(file.parts[0] == "grader" for file in files):
        raise FileNotFoundError(f"Expected the installed {DISTRIBUTION} to hold the grader package (an editable "
                                f"install does not): give the kit's source for --kit-source. Received: {info_dir}")
    buffer, record = io.BytesIO(), []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for file in sorted(files, key=str):
            data = Path(dist.locate_file(file)).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{file.as_posix()},sha256={digest},{len(data)}")
            wheel.writestr(file.as_posix(), data)
        record.append(f"{info_dir}/RECORD,,")
        wheel.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return f"{info_dir.removesuffix('.dist-info')}-py3-none-any.whl", buffer.getvalue()


def add_smoke_submission(archive, smoke):
    """Add the known-correct submission (a file or a folder's .py files); return its path under source/."""
    if smoke.is_file():
        archive.write(smoke, f"{SMOKE_DIR}/{smoke.name}")
        return f"{SMOKE_DIR}/{smoke.name}"
    for entry in sorted(smoke.glob("*.py")):
        archive.write(entry, f"{SMOKE_DIR}/{entry.name}")
    return SMOKE_DIR


def add_text(archive, name, text, mode):
    """Add a text file with the given permission bits."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = mode
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def gradescope_main(*, out, kit_source=None, grade_args="", timeout=DEFAULT_TIMEOUT, smoke_submission=None):
    """Build the autograder zip and say what is in it; return the exit code."""
    try:
        path = build_autograder_zip(out, kit_source=kit_source, grade_args=grade_args, timeout=timeout,
                                    smoke_submission=smoke_submission)
    except (ValueError, FileNotFoundError) as error:
        print(f"grader gradescope: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"Wrote {path} ({count} files): upload it as the assignment's autograder (Ubuntu, Python 3.10+).",
          file=sys.stderr)
    print(SETTINGS.format(timeout=timeout, minutes=(timeout + 60 + 59) // 60), file=sys.stderr)
    return 0
