"""Hostile submissions against the probe: each case checks statuses, messages, time and leftover processes."""

import json
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from grader.lesson.manifest import API, SHAPE_MATH
from grader.protocol import CRASHED, ERROR, MISSING, NOT_RUN, OK, TIMEOUT
from grader.sandbox import Limits, ProbePolicy, run_probe
from grader.sandbox.processes import TOKEN_VARIABLE
from grader.sandbox.watch import MEMORY_EXCEEDED, TIMED_OUT, TIMED_OUT_IMPORT, TOTAL_TIMED_OUT
from grader.untrusted.runner import BLOCKED_IMPORT, MISSING_FUNCTION
from tests.conftest import leftover_probe_processes

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
REQUEST = {
    "shape_math": {"conv_output_size": [[[32, 3], {}]], "pool_output_size": [[[32], {}]],
                   "conv_params": [[[3, 3, 32], {}]], "dense_params": [[[128, 10], {}]],
                   "head_params": [[[[4, 4, 128], 10, "gap"], {}]]},
    "num_classes": 7,
}
KILL_SLACK_SECONDS = 5
FAST = Limits(import_seconds=40, function_seconds=20, total_seconds=90)

# A correct single-file submission without the filters bonus; cases append hostile code to it.
CORRECT = textwrap.dedent('''
    import keras
    from keras import layers


    def conv_output_size(n, kernel_size, strides=1, padding="valid"):
        return (n - kernel_size) // strides + 1 if padding == "valid" else -(-n // strides)


    def pool_output_size(n, pool_size=2, strides=None, padding="valid"):
        return conv_output_size(n, pool_size, strides or pool_size, padding)


    def conv_params(kernel_size, in_channels, filters, use_bias=True):
        return kernel_size * kernel_size * in_channels * filters + filters * use_bias


    def dense_params(in_features, units, use_bias=True):
        return in_features * units + units * use_bias


    def head_params(feature_shape, num_classes, pooling):
        return dense_params(feature_shape[2], num_classes)


    def build_augmentation():
        return keras.Sequential([layers.RandomFlip("horizontal")], name="augmentation")


    def build_cnn(num_classes=10):
        inputs = keras.Input((32, 32, 3))
        outputs = layers.Dense(num_classes)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inputs)))
        return keras.Model(inputs, outputs)


    build_cnn_v2 = build_cnn
''')


def pid_alive(pid):
    """Return whether pid is a live (non-zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def probe_source(tmp_path, source, limits=FAST, name="submission.py", **kwargs):
    """Write one file and probe it; return (result, seconds) after checking no process was left."""
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(source) if isinstance(source, str) else (folder / name).write_bytes(source)
    started = time.monotonic()
    result = run_probe(folder, REQUEST, ProbePolicy(limits=limits), **kwargs)
    seconds = time.monotonic() - started
    assert leftover_probe_processes() == []
    assert seconds < limits.total_seconds + KILL_SLACK_SECONDS  # a guarantee of the launcher, not a benchmark
    return result, seconds


def statuses(result):
    """Return {function: status} for every API function."""
    return {name: result.outcome(name).status for name in API}


def with_statuses(**changed):
    """Return the statuses of CORRECT (filters missing) with some functions changed."""
    expected = {name: OK for name in API}
    expected.update(first_layer_filters=NOT_RUN, feature_maps=NOT_RUN)  # the request has no filters
    expected.update(changed)
    return expected


# --- the process ends itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("code, status", [("import sys\nsys.exit(0)", 0), ("import os\nos._exit(3)", 3)])
def test_exit_during_import(tmp_path, code, status):
    result, _seconds = probe_source(tmp_path, code)
    assert result.import_status == CRASHED
    assert result.import_message == f"exited with status {status} during import"
    assert statuses(result) == {name: NOT_RUN for name in API}


EXITS_IN_BUILDERS = CORRECT + textwrap.dedent('''
    def build_cnn(num_classes=10):
        import sys
        sys.exit(0)


    def build_cnn_v2(num_classes=10):
        import os
        os._exit(0)


    def build_augmentation():
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
''')


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_exit_or_kill_inside_functions_costs_only_those_functions(tmp_path):
    result, _seconds = probe_source(tmp_path, EXITS_IN_BUILDERS)
    assert statuses(result) == with_statuses(build_augmentation=CRASHED, build_cnn=CRASHED, build_cnn_v2=CRASHED)
    assert result.outcome("build_augmentation").message == "killed by signal 9 in build_augmentation"
    assert result.outcome("build_cnn").message == "exited with status 0 in build_cnn"
    assert result.outcome("build_cnn_v2").message == "exited with status 0 in build_cnn_v2"
    assert "[probe restarted after build_cnn]" in result.output


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_on_start_is_called_once_the_first_child_runs_and_not_again_after_a_restart(tmp_path):
    """grader grade imports Keras from on_start: once, while the first child imports the submission."""
    calls = []
    result, _seconds = probe_source(tmp_path, EXITS_IN_BUILDERS,
                                    on_start=lambda: calls.append(leftover_probe_processes()))
    assert "[probe restarted after build_cnn]" in result.output
    assert len(calls) == 1
    assert calls[0], "on_start ran before the probe's child was running"


# --- time and memory ------------------------------------------------------------------------------------

HANGS_IN_BUILD_CNN = CORRECT.replace("build_cnn_v2 = build_cnn", "") + textwrap.dedent('''
    def build_cnn_v2(num_classes=10):
        inputs = keras.Input((32, 32, 3))
        return keras.Model(inputs, layers.Dense(num_classes)(layers.Flatten()(inputs)))


    def build_cnn(num_classes=10):
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
''')


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_infinite_loop_ignoring_signals_times_out(tmp_path):
    limits = Limits(import_seconds=40, function_seconds=3, total_seconds=60)
    result, _seconds = probe_source(tmp_path, HANGS_IN_BUILD_CNN, limits=limits)
    assert statuses(result) == with_statuses(build_cnn=TIMEOUT)
    assert result.outcome("build_cnn").message == TIMED_OUT.format(seconds="3 s", name="build_cnn")
    assert result.outcome("build_cnn").message == "timed out after 3 s in build_cnn"


def test_hang_during_import_times_out(tmp_path):
    result, _seconds = probe_source(tmp_path, "while True:\n    pass\n", limits=Limits(import_seconds=2))
    assert result.import_status == TIMEOUT
    assert result.import_message == TIMED_OUT_IMPORT.format(seconds="2 s")
    assert result.import_message == "timed out after 2 s while importing the submission"


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_total_time_limit_stops_the_probe(tmp_path):
    limits = Limits(import_seconds=14, function_seconds=60, total_seconds=15)
    result, _seconds = probe_source(tmp_path, HANGS_IN_BUILD_CNN, limits=limits)
    assert result.outcome("build_cnn").status == TIMEOUT
    assert result.outcome("build_cnn").message == TOTAL_TIMED_OUT.format(seconds="15 s", where="in build_cnn")
    assert result.outcome("build_cnn_v2").status == NOT_RUN
    assert "total time limit of 15 s" in result.outcome("build_cnn_v2").message
    assert all(result.outcome(name).status == OK for name in SHAPE_MATH)


MEMORY_BOMBS = CORRECT.replace("build_cnn_v2 = build_cnn", "") + textwrap.dedent('''
    def build_cnn(num_classes=10):
        return bytearray(64 * 2**30)


    def build_cnn_v2(num_classes=10):
        import numpy as np
        hoard = []
        while True:
            hoard.append(np.ones(2**27))  # 1 GiB, touched


    def build_augmentation():
        import os, time
        import numpy as np
        children = []
        for _ in range(3):  # every process stays under the address-space limit; together they do not
            pid = os.fork()
            if pid == 0:
                block = np.ones(2**27 // 2)  # 512 MiB, touched
                time.sleep(100)
                os._exit(0)
            children.append(pid)
        # Then the parent takes 1 GiB more: the group is over the limit, and the parent, the biggest, is the process the
        # OOM killer picks (with four children the limit was crossed while they grew, and it could pick one of them).
        hoard = np.ones(2**27)
        time.sleep(100)
''')


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_memory_bombs_are_stopped(tmp_path):
    limits = Limits(import_seconds=40, function_seconds=20, total_seconds=120, memory_bytes=3 * 2**30)
    result, _seconds = probe_source(tmp_path, MEMORY_BOMBS, limits=limits)
    forks = result.outcome("build_augmentation")
    # The forking bomb is stopped either way: the OOM killer takes the parent (the biggest), or, on a loaded machine
    # (seen in CI with two test workers), a child, and the parent then sleeps into the time limit.
    assert (forks.status, forks.message) in {
        (CRASHED, MEMORY_EXCEEDED.format(limit="3 GiB", where="in build_augmentation")),
        (TIMEOUT, TIMED_OUT.format(seconds="20 s", name="build_augmentation"))}, (forks.status, forks.message)
    assert statuses(result) == with_statuses(build_augmentation=forks.status, build_cnn=CRASHED, build_cnn_v2=CRASHED)
    for name in ("build_cnn", "build_cnn_v2"):
        expected = MEMORY_EXCEEDED.format(limit="3 GiB", where=f"in {name}")
        assert result.outcome(name).message == expected == f"memory limit of 3 GiB exceeded in {name}"


# --- output, fake results, files, environment, escaped processes ------------------------------------------

# Both spying submissions below embed this: it reports whether a package imports inside the probe.
TRY_IMPORT = textwrap.dedent('''
    import importlib

    def _try_import(name):
        try:
            importlib.import_module(name)
            return "imported"
        except ImportError as error:
            return str(error)
''')

NEIGHBOUR = CORRECT.replace("build_cnn_v2 = build_cnn", "") + TRY_IMPORT + textwrap.dedent('''
    import json, os, sys, tempfile
    from pathlib import Path

    Path("report.json").write_text(json.dumps({
        "environ": sorted(k.split(b"=")[0].decode()
                          for k in Path("/proc/self/environ").read_bytes().split(b"\\0") if k),
        "cwd": os.getcwd(), "home": str(Path.home()), "tmp": tempfile.gettempdir(),
        "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.ignore_environment],
        "imports": {name: _try_import(name) for name in ("solutions", "grader", "exercises", "grader.sandbox")},
    }))
    (Path.home() / "home.txt").write_text("written at home")
    (Path(tempfile.gettempdir()) / "tmp.txt").write_text("written in tmp")
    print(json.dumps({"event": "done", "name": "build_cnn", "status": "ok", "value": {"config": "FAKE"}}))
    print(json.dumps({"event": "finished"}), flush=True)


    def build_augmentation():
        sys.stderr.write("E" * 100_000)
        for _ in range(50_000):
            print("flood " * 20)
        return keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augmentation")


    def build_cnn(num_classes=10):
        print(json.dumps({"event": "done", "name": "build_cnn", "status": "ok", "value": {"config": "FAKE"}}))
        raise ValueError("really broken")


    def build_cnn_v2(num_classes=10):
        import subprocess, time
        Path("popen.pid").write_text(str(subprocess.Popen(["sleep", "1000"], start_new_session=True).pid))
        cleared = subprocess.Popen(["sleep", "1001"], start_new_session=True, env={})
        Path("cleared.pid").write_text(str(cleared.pid))
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                Path("forked.pid").write_text(str(os.getpid()))
                os.execvp("sleep", ["sleep", "1002"])
            os._exit(0)
        time.sleep(0.8)  # the launcher polls the process tree while the function runs
        return build_cnn_v1(num_classes)


    def build_cnn_v1(num_classes=10):
        inputs = keras.Input((32, 32, 3))
        return keras.Model(inputs, layers.Dense(num_classes)(layers.Flatten()(inputs)))
''')


@pytest.fixture(scope="module")
def neighbour(tmp_path_factory):
    """Probe the hostile neighbour once; return (result, seconds, workdir)."""
    tmp_path = tmp_path_factory.mktemp("neighbour")
    workdir = tmp_path / "work"
    limits = Limits(import_seconds=40, function_seconds=20, total_seconds=90, output_chars=5_000)
    result, seconds = probe_source(tmp_path, NEIGHBOUR, limits=limits, workdir=workdir)
    return result, seconds, workdir


def test_flood_is_truncated_and_the_probe_still_finishes(neighbour):
    result, _seconds, _workdir = neighbour
    assert statuses(result) == with_statuses(build_cnn=ERROR)
    assert len(result.output) < 5_000 + 200
    assert "more characters of output not shown]" in result.output


def test_fake_results_on_stdout_are_ignored(neighbour):
    result, _seconds, _workdir = neighbour
    assert result.outcome("build_cnn").status == ERROR
    assert result.outcome("build_cnn").message.startswith("ValueError: really broken (submission.py:")
    assert '"FAKE"' in result.output  # shown to the instructor, never parsed


def test_files_stay_inside_the_scratch_folder(neighbour):
    _result, _seconds, workdir = neighbour
    report = json.loads((workdir / "report.json").read_text())
    assert report["cwd"] == str(workdir)
    assert report["home"] == str(workdir / "home") and (workdir / "home" / "home.txt").exists()
    assert report["tmp"] == str(workdir / "tmp") and (workdir / "tmp" / "tmp.txt").exists()


def test_environment_is_clean_and_isolated(neighbour):
    _result, _seconds, workdir = neighbour
    report = json.loads((workdir / "report.json").read_text())
    assert report["flags"] == [1, 1, 1]
    assert set(report["environ"]) == {"PATH", "HOME", "TMPDIR", "LANG", "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES",
                                      TOKEN_VARIABLE}


def test_kit_packages_cannot_be_imported(neighbour):
    _result, _seconds, workdir = neighbour
    imports = json.loads((workdir / "report.json").read_text())["imports"]
    assert imports == {name: BLOCKED_IMPORT.format(name=name.split(".")[0]) for name in imports}


def test_escaped_processes_are_killed(neighbour):
    _result, _seconds, workdir = neighbour
    for name in ("popen.pid", "cleared.pid", "forked.pid"):
        pid = int((workdir / name).read_text())
        assert not pid_alive(pid), name


# --- shadowing and odd files ------------------------------------------------------------------------------


SPY = TRY_IMPORT + textwrap.dedent('''
    import json
    from pathlib import Path

    Path("imports.json").write_text(json.dumps({n: _try_import(n) for n in ("solutions", "grader")}))
''')


def test_numpy_and_conftest_in_the_submission_do_not_take_over(tmp_path):
    folder = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "numpy.py").write_text("raise SystemExit('numpy hijacked')\n")
    (folder / "conftest.py").write_text("import os\nos._exit(1)\n")
    for package in ("grader", "solutions"):
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text("SECRET = 1\n")
    (folder / "shape_math.py").write_text((folder / "shape_math.py").read_text() + SPY)
    workdir = tmp_path / "work"
    result = run_probe(folder, REQUEST, ProbePolicy(limits=FAST), workdir=workdir)
    assert leftover_probe_processes() == []
    assert result.import_status == OK, result.import_message
    assert statuses(result) == with_statuses()
    imports = json.loads((workdir / "imports.json").read_text())
    assert imports == {name: BLOCKED_IMPORT.format(name=name) for name in imports}
    assert not (workdir / "submission" / "conftest.py").exists()


@pytest.mark.parametrize("source, message", [
    ("def build_cnn(:\n    pass\n", "SyntaxError: invalid syntax (submission.py, line 1)"),
    (b"x = 'caf\xe9'\ndef build_cnn():\n    pass\n", "SyntaxError: (unicode error)"),
], ids=["syntax-error", "latin-1"])
def test_unimportable_source_is_an_import_error(tmp_path, source, message):
    result, _seconds = probe_source(tmp_path, source)
    assert result.import_status == ERROR
    assert result.import_message.startswith(f"could not import submission.py: {message}")
    assert "submission.py" in result.import_message and str(tmp_path) not in result.import_message
    assert statuses(result) == {name: NOT_RUN for name in API}
    assert result.outcome("build_cnn").message == result.import_message


def test_empty_file_defines_nothing(tmp_path):
    result, _seconds = probe_source(tmp_path, "")
    assert result.import_status == OK
    builders = SHAPE_MATH + ("build_augmentation", "build_cnn", "build_cnn_v2")
    assert statuses(result) == {name: MISSING for name in builders} | {
        "first_layer_filters": NOT_RUN, "feature_maps": NOT_RUN}
    assert result.outcome("build_cnn").message == MISSING_FUNCTION.format(name="build_cnn")


def test_folder_without_modules_is_an_import_error(tmp_path):
    result, _seconds = probe_source(tmp_path, "print('hello')\n", name="notes.py")
    assert result.import_status == ERROR
    assert result.import_message.startswith("found no module to import: expected submission.py")
    assert "notes.py" in result.import_message
