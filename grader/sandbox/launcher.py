"""Start the untrusted probe in a child process, police it, and turn what it reports into a ProbeResult.

This is the trusted side of the probe. The child runs grader/untrusted/runner.py with `python -I -S -B` (no user site,
no PYTHON* variables, no .pth files, so the kit's editable install is invisible), a clean environment,
cwd/HOME/TMPDIR inside a scratch folder, an address-space limit, and its own session. The launcher
reads results only from a dedicated pipe, enforces the import, per-function and total time limits from
the child's start events, polls the memory of the child's process tree, and afterwards kills every
process the probe started, including ones that escaped with setsid or a double fork. When the child
dies or hangs in one function, it is restarted without that function, so a bad function costs only
its own tests.
"""

import contextlib
import json
import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

from grader import protocol
from grader.lesson import manifest
from grader.protocol import CRASHED, ERROR, NOT_RUN, TIMEOUT, FunctionOutcome, ProbeResult
from grader.sandbox import account, isolation, rules
from grader.sandbox.policy import ProbePolicy
from grader.sandbox.processes import TOKEN_VARIABLE, ProbeProcesses, become_subreaper
from grader.sandbox.watch import (
    BETWEEN_FUNCTIONS,
    DURING_IMPORT,
    EXITED,
    MAX_MESSAGE_CHARS,
    Output,
    RunnerWatch,
    format_seconds,
)

KIT_ROOT = Path(__file__).resolve().parents[2]   # the folder holding the grader package (site-packages in a wheel)
UNTRUSTED = Path(__file__).resolve().parent.parent / "untrusted"
RUNNER = UNTRUSTED / "runner.py"
WEIGHTS = UNTRUSTED / "weights.py"
RESCUE = UNTRUSTED / "rescue.py"  # the runner loads it from beside its own file
PROTOCOL = Path(protocol.__file__).resolve()
BLOCKED_PACKAGES = ("grader", "solutions", "exercises")
API = manifest.API
MAX_RESTARTS = 4
KILLED_BY = (TIMEOUT, CRASHED)  # a function that ended its child: those calling it get the lesson's
MAX_ARRAY_BYTES = protocol.MAX_ARRAY_BYTES
COPY_IGNORE = ("__pycache__", "*.pyc", "conftest.py", "pytest.ini")
IMPORT_FAILED = "could not import {module}.py: {message}"
NOT_RUN_TOTAL = "not run: the probe's total time limit of {seconds} ran out first"
NOT_RUN_RESTARTS = "not run: the probe was restarted {count} times and gave up"
NOT_RUN_REIMPORT = "not run: re-importing the submission after a crash failed: {message}"
WORKDIR_INSIDE = "Expected a probe workdir outside the submission; received workdir={workdir} inside {submission_dir}"
RESTARTED = "\n[probe restarted after {where}]\n"


def child_environment(workdir, token):
    """Return the child's whole environment: nothing from the grader's own."""
    bin_dir = Path(sys.executable).parent
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        TOKEN_VARIABLE: token,
    }


def site_dirs():
    """Return the installed-package folders the child imports from (keras, numpy...).

    In a wheel install the kit itself lives in one of them: the runner's import blocker refuses the kit's
    packages, and the sandbox's file rules keep their files unreadable, so the folder can stay on the path.
    """
    paths = site.getsitepackages() + [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    result = []
    for path in paths:
        resolved = Path(path).resolve()
        if resolved.is_dir() and str(resolved) not in result:
            result.append(str(resolved))
    return result


def start_runner(workdir, envelope, plan, token, python=sys.executable, runner=RUNNER, before_envelope=None):
    """Start the runner child inside the sandbox plan's layers; return (process, result pipe read end).

    The child runs the plan's interpreter (python, or its real file where the probe's user can run only that).
    before_envelope: called once the child has started and read the envelope but its request (the child imports
    Keras before it reads the request, so what this computes overlaps that import).
    """
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [str(plan.python or python), "-I", "-S", "-B", str(runner), str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=workdir, env=child_environment(workdir, token), pass_fds=(write_fd,),
            start_new_session=True, preexec_fn=plan.preexec(),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    # Two lines (see runner.main): the envelope without its request, then the request.
    sent = send_line(process, {**envelope, "request": None})
    if before_envelope is not None:
        try:
            before_envelope()
        except BaseException:
            process.kill()
            process.wait()
            os.close(read_fd)
            raise
    if sent:
        send_line(process, envelope["request"])
    with contextlib.suppress(OSError):
        process.stdin.close()
    return process, read_fd


def send_line(process, data):
    """Write data as one JSON line to the child's stdin; return False when the child is gone (its exit says how)."""
    try:
        process.stdin.write(json.dumps(data).encode() + b"\n")
        process.stdin.flush()
        return True
    except OSError:
        return False


# --- the probe ------------------------------------------------------------------------------------------


def prepare_workdir(submission_dir, workdir):
    """Copy the submission into workdir/submission and make the child's home and tmp folders."""
    workdir, submission_dir = Path(workdir).resolve(), Path(submission_dir).resolve()
    if workdir == submission_dir or submission_dir in workdir.parents:
        raise ValueError(WORKDIR_INSIDE.format(workdir=workdir, submission_dir=submission_dir))
    target = workdir / "submission"
    shutil.copytree(submission_dir, target, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    (workdir / "home").mkdir(exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    return target


def import_result(result, imported):
    """Fill the import status and message from the runner's imported event."""
    failures = imported.get("failures") if isinstance(imported.get("failures"), dict) else {}
    messages = [str(message) if not module else IMPORT_FAILED.format(module=module, message=message)
                for module, message in failures.items()]
    if messages:
        result.import_status = ERROR
        result.import_message = "; ".join(messages)[:MAX_MESSAGE_CHARS]


def give_up(result, names, message):
    """Mark every function without an outcome as not run."""
    for name in names:
        result.outcomes.setdefault(name, FunctionOutcome(name, NOT_RUN, message=message))


def world_readable(path):
    """Return whether every user may read path: it is readable by others and every folder above it enterable."""
    path = Path(os.path.realpath(path))
    return bool(path.stat().st_mode & stat.S_IROTH) and all(
        folder.stat().st_mode & stat.S_IXOTH for folder in path.parents)


def runner_files(workdir):
    """Return (runner, protocol, weights, rescue): the files the probe reads by path.

    The kit's own where every user may read them; as root with the kit in a folder closed to others (a clone under
    /root or in a mode-700 folder), copies in workdir/runner, which the probe's user owns with the rest of scratch
    (never is a folder of the instructor's opened up). Grades do not depend on them: the probe is untrusted anyway.
    """
    files = (RUNNER, PROTOCOL, WEIGHTS, RESCUE)
    if os.geteuid() != 0 or all(world_readable(path) for path in files):
        return files
    folder = Path(workdir) / "runner"
    folder.mkdir(exist_ok=True)
    return tuple(Path(shutil.copy2(path, folder / path.name)) for path in files)


def runner_envelope(request, submission_dir, files=(RUNNER, PROTOCOL, WEIGHTS, RESCUE)):
    """Return what the runner reads on stdin: the request, the lesson's module map and the probe's settings."""
    return {
        "request": request, "functions": list(API), "skip": [], "submission_dir": str(submission_dir),
        "modules": {module: list(functions) for module, functions in manifest.MODULES.items()},
        "single_file_module": manifest.SINGLE_FILE_MODULE, "call_kind": dict(manifest.CALL_KIND),
        "num_classes_builders": list(manifest.CNN_BUILDERS), "calls": {k: list(v) for k, v in manifest.CALLS.items()},
        "site_dirs": site_dirs(),
        "image_functions": [name for name in manifest.FILTERS if "images" in manifest.SIGNATURES[name]],
        "protocol_path": str(files[1]), "weights_path": str(files[2]), "blocked": list(BLOCKED_PACKAGES),
        "max_array_bytes": MAX_ARRAY_BYTES,
    }


def sandbox_plan(workdir, policy=ProbePolicy(), *, sites=None, python=sys.executable,
                 files=(RUNNER, PROTOCOL, WEIGHTS, RESCUE)):
    """Return the isolation plan of one probe: scratch writable, the kit unreadable but for the runner's files.

    policy: the probe's limits, user and requirement; with uid_per_process, a uid of this process's own (worker_uid).
    sites: the installed-package folders the probe reads (default: this interpreter's, see site_dirs()).
    files: the files of the kit the probe reads by path (see runner_files()).
    python: the interpreter the probe runs (the probe's user must be able to run it for the user layer to hold).
    """
    sites = [Path(path) for path in (site_dirs() if sites is None else sites)]
    # In a wheel install the grader package sits in site-packages itself: block the package, not the folder that
    # also holds keras and numpy (kit_paths adds the kit's entries of every site-packages folder anyway).
    kit = KIT_ROOT / "grader" if KIT_ROOT in sites else KIT_ROOT
    # A lesson outside the kit (--lesson) holds its reference too: the probe reads none of it.
    lesson = manifest.lesson_dir().resolve()
    outside = [] if lesson == kit or kit in lesson.parents else [lesson]
    return isolation.plan(workdir, readable=[*sites, *files], blocked=[*rules.kit_paths(kit, sites), *outside],
                          probe_user=policy.user, memory_bytes=policy.limits.memory_bytes,
                          max_processes=policy.limits.max_processes, require=policy.require, python=python,
                          probe_uid=account.worker_uid() if policy.uid_per_process else None)


def run_probe(submission_dir, request, policy=ProbePolicy(), *, workdir=None, zygote=None, python=sys.executable,
              on_start=None):
    """Import a submission in a sandboxed child process and report what every API function produced.

    request: what the probe calls (grader.checker.hidden_tests.cases.probe_request()), or a function returning it:
    a fresh child then gets it computed while it imports Keras (the grader derives it from the lesson's reference,
    which needs Keras too).
    policy: the probe's limits, the user it runs as, whether every isolation layer is required (see ProbePolicy).

    python: the interpreter of a fresh child (default this one); another of the same Python version can read the
    same site-packages, e.g. one the probe's user may run where this one lives in a folder closed to it.

    zygote: a grader.sandbox.zygote.Zygote whose forked children run the probe (Keras already imported), each
    under the same isolation plan a fresh child gets; None starts a fresh interpreter.
    on_start: called once the first child runs (the grader imports Keras then, not while the child is being set up).
    Raises RuntimeError when policy.require is set and the machine cannot give the probe every isolation layer.
    """
    started = time.monotonic()
    become_subreaper()
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="lesson6-probe-") if own_workdir else workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    limits = policy.limits
    output, result, plan, processes = Output(limits.output_chars), ProbeResult(), None, None
    try:
        files = runner_files(workdir)
        envelope = runner_envelope(None if callable(request) else request, prepare_workdir(submission_dir, workdir),
                                   files)

        def complete_request():
            if callable(request) and envelope["request"] is None:
                envelope["request"] = request()

        if zygote is None:
            plan = sandbox_plan(workdir, policy, python=python, files=files)
            result.isolation = plan.as_dict()["layers"]
            processes = ProbeProcesses(token, uid=plan.uid, cgroup=plan.cgroup)

            def start():
                return start_runner(workdir, envelope, plan, token, python, files[0], complete_request)
        else:
            processes = ProbeProcesses(zygote.token, keep={zygote.pid} if zygote.pid else ())

            def start():
                complete_request()  # a forked child has Keras already: nothing to overlap
                child, result_fd, layers, uid = zygote.spawn(workdir, envelope, policy)
                result.isolation, processes.uid = layers, uid
                processes.keep.add(zygote.pid)  # the zygote carries the token too, but it is not the probe's
                return child, result_fd
        probe_loop(envelope, start, limits, processes, output, result, started, on_start)
    finally:
        if processes is not None:
            processes.kill_all()
        if plan is not None:
            plan.close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result.output = output.text()
    result.seconds = round(time.monotonic() - started, 3)
    return result


def probe_loop(envelope, start, limits, processes, output, result, started, on_start=None):
    """Run the child, restarting it without the function that killed it, until every function is reported.

    start() starts one runner child on the envelope as it is then; it returns (process, result pipe read end).
    on_start() is called after the first start().
    """
    total_deadline = started + limits.total_seconds
    for restart in range(MAX_RESTARTS + 1):
        process, result_fd = start()
        if restart == 0 and on_start is not None:
            on_start()
        processes.sessions.add(process.pid)
        attempt = RunnerWatch(process, result_fd, limits, processes, output, total_deadline).watch()
        result.outcomes.update(attempt.done)
        if attempt.imported is None:
            return end_in_import(result, attempt, restart)
        if restart == 0:
            import_result(result, attempt.imported)
        if attempt.finished or not attempt.failure_status:
            return
        if attempt.current:
            result.outcomes[attempt.current] = FunctionOutcome(
                attempt.current, attempt.failure_status, message=attempt.failure_message)
        if time.monotonic() >= total_deadline:
            return give_up(result, API, NOT_RUN_TOTAL.format(seconds=format_seconds(limits.total_seconds)))
        envelope["skip"] = sorted(result.outcomes)
        envelope["killed"] = sorted(name for name, outcome in result.outcomes.items() if outcome.status in KILLED_BY)
        output.note(RESTARTED.format(where=attempt.current or BETWEEN_FUNCTIONS))
    give_up(result, API, NOT_RUN_RESTARTS.format(count=MAX_RESTARTS))


def end_in_import(result, attempt, restart):
    """Record a child that never finished importing: the import failed, or a restart could not re-import."""
    message = attempt.failure_message or EXITED.format(code="unknown", where=DURING_IMPORT)
    if restart == 0:
        result.import_status = attempt.failure_status or CRASHED
        result.import_message = message
    else:
        give_up(result, API, NOT_RUN_REIMPORT.format(message=message))
