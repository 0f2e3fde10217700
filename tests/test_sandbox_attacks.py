"""Attack the grader end to end the way issue 11's list did, each attack a small hostile submission.

Every attack is the untouched stubs plus a few lines that know where the kit lives (on Gradescope the path is
predictable; here each test computes it and embeds it). Each test asserts: the score is at most 10 % of the
maximum, every file of the grader package and of solutions/ is byte-identical afterwards, nothing of the
solutions shows in any report format, and the grader reports normally. An attack is tested only where a layer
that should stop it holds on this machine; elsewhere it is skipped with the layer's own reason, never passed.
"""

import compileall
import hashlib
import json
import marshal
import os
import socket
import stat
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import keras  # noqa: F401  (imported before any test changes HOME: Keras keeps its config in ~/.keras)
import pytest

from grader.batch import grade_batch
from grader.cache import KEY_FILE, TrainingCache
from grader.grade import grade
from grader.lesson.stubs import STUB_MODULES, make_stub
from grader.options import GradingOptions
from grader.render import FORMATS, render
from grader.render.text import to_text
from grader.results import GradingResults
from grader.sandbox import Limits, ProbePolicy, isolation
from grader.sandbox.launcher import sandbox_plan
from grader.sandbox.processes import process_table
from grader.store import from_json
from tests.conftest import ROOT, SOLUTIONS, run_python
from tests.test_adversarial_grading import STUBS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation layers are Linux's")

KIT = ROOT / "grader"
LIMITS = Limits(import_seconds=30, function_seconds=10, total_seconds=90, memory_bytes=3 * 2**30)
OPTIONS = GradingOptions(limits=LIMITS, training=False)
CLI_LIMITS = ("--import-timeout", "30", "--function-timeout", "10", "--total-timeout", "90", "--memory", "3")
WRITES_STOPPED_BY = (isolation.LANDLOCK_FS, isolation.USER)
READS_STOPPED_BY = (isolation.LANDLOCK_FS,)
NETWORK_STOPPED_BY = (isolation.LANDLOCK_NET, isolation.NETNS)
SIGNALS_STOPPED_BY = (isolation.LANDLOCK_SCOPE, isolation.USER)


# --- what must hold after every attack --------------------------------------------------------------------


def kit_files():
    """Return {path: sha256} of every file of the grader package and of solutions/."""
    found = {}
    for folder in (KIT, SOLUTIONS):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                found[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def solution_lines():
    """Return the lines of the solutions that the stubs do not share (code only the reference has)."""
    lines = set()
    for name in STUB_MODULES:
        source = (SOLUTIONS / name).read_text()
        stub = set(make_stub(source).splitlines())
        lines |= {line.strip() for line in source.splitlines() if line not in stub and len(line.strip()) >= 24}
    return sorted(lines)


@pytest.fixture(scope="module")
def settled_kit():
    """Write every bytecode cache the grader itself writes (compileall, one benign grading) before any snapshot."""
    compileall.compile_dir(str(KIT), quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "submission.py"
        path.write_text(STUBS)
        grade(path, OPTIONS)
    return kit_files()


@pytest.fixture(scope="module")
def layers():
    """Return {layer name: Layer} as the probe's plan finds them on this machine."""
    with tempfile.TemporaryDirectory() as folder, sandbox_plan(Path(folder), ProbePolicy(limits=LIMITS)) as plan:
        return {layer.name: layer for layer in plan.layers}


def require_any(layers, names):
    """Skip the test unless one of the named isolation layers holds here; the reason quotes each layer's own."""
    if not any(layers[name].held for name in names):
        pytest.skip("no layer that stops this attack holds on this machine: "
                    + "; ".join(f"{name}: {layers[name].reason}" for name in names))


def assert_graded_normally(results: GradingResults, before: dict) -> None:
    """Check the score, the kit's files, the reports' contents and that a normal report came out."""
    assert results.status != "error", to_text(results)
    assert results.max_score > 0 and results.tests, to_text(results)
    assert results.score <= 0.1 * results.max_score, to_text(results)
    assert kit_files() == before, "a file of the kit changed"
    leaked = [(fmt, line) for fmt in FORMATS for line in solution_lines() if line in render(results, fmt)]
    assert leaked == [], leaked[:3]


def graded(tmp_path, attack, options=OPTIONS):
    """Grade the stubs plus an attack (a source string); return the GradingResults."""
    path = tmp_path / "submission.py"
    path.write_text(STUBS + "\n\n" + textwrap.dedent(attack))
    return grade(path, options)


def outside_area():
    """Return a fresh folder outside the probe's scratch that only this test process's user may enter."""
    return Path(tempfile.mkdtemp(prefix="lesson6-attack-target-"))


# --- the kit's own files ----------------------------------------------------------------------------------


def test_rewriting_a_hidden_test_and_the_points_changes_nothing(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    hidden = KIT / "checker" / "hidden_tests"
    results = graded(tmp_path, f"""
        HOOK = '''
        import pytest
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
        '''
        for target, text in (({str(hidden / "conftest.py")!r}, HOOK), ({str(ROOT / "points.toml")!r}, "\\n# x\\n"),
                             ({str(hidden / "test_builders.py")!r}, "\\ndef test_free(): pass\\n")):
            try:
                with open(target, "a") as handle:
                    handle.write(text)
                print("WROTE", target)
            except OSError as error:
                print("blocked:", error)
        """)
    assert "WROTE" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


def test_planting_bytecode_in_the_grader_changes_nothing(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    existing = sorted(KIT.rglob("__pycache__/*.pyc"))
    assert existing, "the settled kit has bytecode caches to poison"
    target = next((path for path in existing if path.name.startswith("conftest.")), existing[0])
    # What the attacker wrote: the real header (so the source's timestamp matches) and hostile code.
    poisoned = target.read_bytes()[:16] + marshal.dumps(compile("raise SystemExit('poisoned')", "x", "exec"))
    planted = KIT / "__pycache__" / "planted.cpython-311.pyc"
    results = graded(tmp_path, f"""
        for target in ({str(target)!r}, {str(planted)!r}):
            try:
                with open(target, "wb") as handle:
                    handle.write(bytes.fromhex({poisoned.hex()!r}))
                print("WROTE", target)
            except OSError as error:
                print("blocked:", error)
        """)
    assert "WROTE" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


def test_dropping_a_file_into_the_grader_changes_nothing(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    results = graded(tmp_path, f"""
        import os
        for target in ({str(KIT / "planted.py")!r}, {str(KIT / "checker" / "hidden_tests" / "test_planted.py")!r}):
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b"def test_free():\\n    pass\\n")
                os.close(fd)
                print("WROTE", target)
            except OSError as error:
                print("blocked:", error)
        """)
    assert "WROTE" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


def test_reading_the_solutions_shows_nothing_of_them(tmp_path, settled_kit, layers):
    require_any(layers, READS_STOPPED_BY)
    results = graded(tmp_path, f"""
        for target in ({str(SOLUTIONS / "cnn.py")!r}, {str(KIT / "checker" / "hidden_tests" / "test_cnn.py")!r}):
            try:
                print(open(target).read())
            except OSError as error:
                print("blocked:", error)
        """)
    assert "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


# --- the machine outside the scratch folder ---------------------------------------------------------------


def test_writing_outside_scratch_leaves_no_file(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    target = outside_area()
    try:
        results = graded(tmp_path, f"""
            try:
                open({str(target / "planted.txt")!r}, "w").write("escaped")
            except OSError as error:
                print("blocked:", error)
            """)
        assert list(target.iterdir()) == []
        assert "blocked:" in results.probe_output, results.probe_output
    finally:
        for path in target.iterdir():
            path.unlink()
        target.rmdir()
    assert_graded_normally(results, settled_kit)


@pytest.mark.skipif(os.geteuid() != 0, reason="/etc is writable only by root; the grader does not run as root here")
def test_writing_etc_as_root_leaves_no_file(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    target = Path("/etc") / f"lesson6-attack-{uuid.uuid4().hex}"
    try:
        results = graded(tmp_path, f"""
            try:
                open({str(target)!r}, "w").write("escaped")
            except OSError as error:
                print("blocked:", error)
            """)
        assert not target.exists()
        assert "blocked:" in results.probe_output, results.probe_output
    finally:
        target.unlink(missing_ok=True)
    assert_graded_normally(results, settled_kit)


def test_a_local_listener_hears_nothing(tmp_path, settled_kit, layers):
    require_any(layers, NETWORK_STOPPED_BY)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        results = graded(tmp_path, f"""
            import socket
            try:
                with socket.create_connection(("127.0.0.1", {port}), timeout=3) as connection:
                    connection.sendall(open(__file__).read().encode())
                print("CONNECTED")
            except OSError as error:
                print("blocked:", error)
            """)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # a completed connection would wait here even after the probe ended
    assert "CONNECTED" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


# --- the grader's own processes ---------------------------------------------------------------------------


def grade_with_cli(tmp_path, attack):
    """Run `python -m grader grade` on the stubs plus an attack, JSON to a file; return (process, report path)."""
    submission, output = tmp_path / "submission.py", tmp_path / "report.json"
    submission.write_text(STUBS + "\n\n" + textwrap.dedent(attack))
    done = run_python("-m", "grader", "grade", str(submission), "--format", "json", "--output", str(output),
                      "--no-training", *CLI_LIMITS, timeout=300)
    return done, output


def report_from(done, output):
    """Return the GradingResults the CLI wrote, after checking it exited normally."""
    assert done.returncode == 0, done.stderr[-3000:]
    return from_json(output.read_text())


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGSTOP"])
def test_signalling_the_grader_does_not_stop_it(tmp_path, settled_kit, layers, signal_name):
    require_any(layers, SIGNALS_STOPPED_BY)
    done, output = grade_with_cli(tmp_path, f"""
        import os, signal
        for pid in (os.getppid(), os.getpgid(os.getppid())):
            try:
                os.kill(pid, signal.{signal_name})
                print("SIGNALLED", pid)
            except OSError as error:
                print("blocked:", error)
        """)
    results = report_from(done, output)
    assert "SIGNALLED" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    assert_graded_normally(results, settled_kit)


def test_an_escaped_process_cannot_rewrite_the_report(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    output = tmp_path / "report.json"
    fake = json.dumps({"score": 100, "max_score": 100, "tests": []})
    rewrite = (f"import time\ntime.sleep(4)\n"
               f"open({str(output)!r}, 'w').write({fake!r})\n")
    done, output = grade_with_cli(tmp_path, f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execve(sys.executable, [sys.executable, "-c", {rewrite!r}], {{}})
            os._exit(0)
        """)
    written = output.read_bytes()
    time.sleep(6)  # the escaped process meant to strike 4 s after the import, long after the grader exited
    assert output.read_bytes() == written
    assert_graded_normally(report_from(done, output), settled_kit)


def test_fifty_processes_are_all_gone_afterwards(tmp_path, settled_kit):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    results = graded(tmp_path, f"""
        import subprocess
        started = 0
        for _ in range(50):
            try:
                subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
                started += 1
            except OSError as error:
                print("blocked:", error)
                break
        print("started", started)
        """)
    assert "started" in results.probe_output, results.probe_output
    table = process_table()
    assert [pid for pid in table if cmdline(pid) == ["sleep", marker]] == []
    assert_graded_normally(results, settled_kit)


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


# --- the training cache -----------------------------------------------------------------------------------


def test_poisoning_the_training_cache_from_a_batch_is_refused(tmp_path, settled_kit, layers):
    require_any(layers, WRITES_STOPPED_BY)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    reference = keras_config_of_the_reference()
    key = TrainingCache(lambda *args, **kwargs: None, directory=cache_dir).key(reference)
    entry = cache_dir / key[:2] / f"{key}.json"
    fake = json.dumps({"key": key, "budget": {}, "outcome": {"passed": False, "accuracy": 0.081}})
    listing_before = sorted(str(path) for path in cache_dir.rglob("*"))
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "mallory.py").write_text(STUBS + "\n\n" + textwrap.dedent(f"""
        import os
        try:
            os.makedirs({str(entry.parent)!r}, exist_ok=True)
            open({str(entry)!r}, "w").write({fake!r})
            print("WROTE")
        except OSError as error:
            print("blocked:", error)
        """))
    options = GradingOptions(limits=LIMITS, training=True, cache_dir=str(cache_dir))
    summary = grade_batch([submissions / "mallory.py"], jobs=1, options=options)
    [results] = summary.results
    assert "WROTE" not in results.probe_output and "blocked:" in results.probe_output, results.probe_output
    # The grader writes its own verdicts under verdicts/, signed with hmac.key; nothing else may appear, the forged
    # entry least of all.
    assert not entry.exists()
    assert sorted(str(path) for path in cache_dir.rglob("*")
                  if "verdicts" not in path.parts and path.name != KEY_FILE) == listing_before
    assert_graded_normally(results, settled_kit)


def keras_config_of_the_reference():
    """Return the reference build_cnn()'s config, as the probe would send it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_cnn", SOLUTIONS / "cnn.py")
    sys.path.insert(0, str(SOLUTIONS))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.build_cnn().to_json()
    finally:
        sys.path.remove(str(SOLUTIONS))


def test_a_report_written_to_a_device_or_pipe_leaves_it_in_place(tmp_path):
    # `--output /dev/null` once replaced the machine's /dev/null with a regular file (a rename over the device).
    from grader.store import atomic_write

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    atomic_write(pipe, "the report")
    reader.join(10)
    assert stat.S_ISFIFO(pipe.stat().st_mode) and received == ["the report"]
