"""Attack a real child started with a Plan's preexec, as the launcher starts the probe, and check what each layer stops.

Every attack also runs once without the layer that should stop it (a control), so a test cannot pass because the
attack was broken. A layer this machine cannot provide is skipped with the plan's own reason, never passed.
"""

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from grader.sandbox import account, isolation, kernel, rules

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation layers are Linux's")

KIT_ROOT = Path(__file__).resolve().parents[1]
SITE = Path(importlib.util.find_spec("numpy").origin).parents[1]
IS_ROOT = os.geteuid() == 0
EVERYTHING_BUT = {
    isolation.USER: {"landlock", isolation.NETNS, isolation.IPC, isolation.CGROUP},
    isolation.LANDLOCK_FS: {isolation.USER, isolation.NETNS, isolation.IPC, isolation.CGROUP},
    isolation.LANDLOCK_NET: {isolation.USER, isolation.NETNS, isolation.IPC, isolation.CGROUP},
    isolation.LANDLOCK_SCOPE: {isolation.USER, isolation.NETNS, isolation.IPC, isolation.CGROUP},
    isolation.NETNS: {isolation.USER, "landlock", isolation.IPC, isolation.CGROUP},
    isolation.IPC: {isolation.USER, "landlock", isolation.NETNS, isolation.CGROUP},
    isolation.CGROUP: {isolation.USER, "landlock", isolation.NETNS, isolation.IPC},
    "none": {isolation.USER, "landlock", isolation.NETNS, isolation.IPC, isolation.NPROC, isolation.CGROUP},
}
PRELUDE = """
import json, os, sys
sys.path.append({site!r})
results = {{}}
def attempt(key, action):
    try:
        value = action()
        results[key] = "ok" if value is None else value
    except Exception as error:
        results[key] = type(error).__name__
"""


@pytest.fixture
def area():
    """Return a folder in /tmp that any user may traverse (pytest's tmp_path is closed to other users)."""
    path = Path(tempfile.mkdtemp(prefix="lesson6-isolation-test-"))
    path.chmod(0o755)
    (path / "scratch").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def candidate_pythons():
    """Return interpreters the tests may run: this one, and the system's of the same version (for numpy's ABI)."""
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    return [Path(sys.executable)] + ([system] if system.exists() else [])


def make_plan(area, *, skip=(), **options):
    """Return a Plan for area/scratch that reads numpy's site-packages and blocks the kit."""
    options.setdefault("blocked", rules.kit_paths(KIT_ROOT, [SITE]))
    return isolation.plan(area / "scratch", [SITE, *options.pop("readable", [])], skip=skip, **options)


def plan_holding(area, layer, **options):
    """Return (plan, python) with the named layer held, or skip the test with the reason it cannot hold here."""
    reason = ""
    for python in candidate_pythons() if layer == isolation.USER else [Path(sys.executable)]:
        plan = make_plan(area, python=python, skip=EVERYTHING_BUT.get(layer, ()), **options)
        if plan.held(layer):
            return plan, python
        reason = next(found.reason for found in plan.layers if found.name == layer)
        plan.close()
    pytest.skip(f"the {layer} layer cannot hold on this machine: {reason}")


def run_child(plan, code, python=sys.executable, **format_args):
    """Run `python -I -S -c PRELUDE+code` under the plan, as the launcher does; return the results it printed."""
    source = PRELUDE.format(site=str(SITE)) + code.format(**format_args) + "\nprint(json.dumps(results))\n"
    with plan:
        done = subprocess.run([str(python), "-I", "-S", "-c", source], check=False, cwd=plan.scratch,
                              capture_output=True, text=True, timeout=120, start_new_session=True,
                              preexec_fn=plan.preexec(),
                              env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert done.returncode == 0, f"the child failed with status {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.splitlines()[-1])


# --- the plan itself -----------------------------------------------------------------------------------------


def test_the_plan_names_every_layer_with_a_reason(area):
    with make_plan(area) as plan:
        names = [layer.name for layer in plan.layers]
        assert names[:2] == [isolation.RLIMITS, isolation.USER]
        assert set(names) >= {isolation.NO_NEW_PRIVS, isolation.LANDLOCK_FS, isolation.LANDLOCK_NET,
                              isolation.LANDLOCK_SCOPE, isolation.NETNS, isolation.IPC, isolation.NPROC,
                              isolation.CGROUP}
        assert all(layer.reason for layer in plan.layers), plan.layers
        assert plan.as_dict()["layers"][0] == {"name": "rlimits", "held": True, "reason": plan.layers[0].reason}


def test_an_unknown_layer_to_skip_is_refused(area):
    with pytest.raises(ValueError, match=r"Expected layers to skip among .*received skip=\['seccomp'\]"):
        isolation.plan(area / "scratch", skip={"seccomp"})


def test_require_refuses_with_the_need_and_the_layers_that_did_not_hold(area):
    with pytest.raises(RuntimeError) as raised:
        isolation.plan(area / "scratch", [SITE], require=True, skip={"landlock"})
    message = str(raised.value)
    assert message.startswith("The sandbox is required but cannot be set up on this machine. Expected writes only "
                              "inside scratch and nothing of the kit readable"), message
    assert "landlock_fs: left out by the caller" in message


def test_without_landlock_the_layers_say_so_and_the_child_still_runs(area, monkeypatch):
    without_landlock = dataclasses.replace(isolation.host(), landlock_abi=0)
    monkeypatch.setattr(isolation, "host", lambda: without_landlock)
    plan = make_plan(area)
    reasons = {layer.name: (layer.held, layer.reason) for layer in plan.layers}
    assert reasons[isolation.LANDLOCK_FS] == (False, "Landlock is not available in this kernel")
    assert reasons[isolation.LANDLOCK_NET] == (False, "Landlock is not available in this kernel")
    assert run_child(plan, "attempt('numpy', lambda: __import__('numpy').__name__)") == {"numpy": "numpy"}


def test_cover_allows_the_siblings_of_a_blocked_folder_and_lists_its_parents(tmp_path):
    for name in ("site/numpy/core", "site/grader/hidden", "site/other", "elsewhere"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "site/link").symlink_to(tmp_path / "site/grader")
    found = rules.cover([tmp_path / "site", tmp_path / "elsewhere"], [tmp_path / "site/grader"])
    assert found.whole == [tmp_path / "site/numpy", tmp_path / "site/other", tmp_path / "elsewhere"]
    assert found.listed == [tmp_path / "site"]


def test_kit_paths_finds_the_kits_entries_in_site_packages(tmp_path):
    names = ["grader", "solutions", "exercises", "lesson6_grader-0.1.0.dist-info",
             "__editable___lesson6_grader_0_1_0_finder.py", "__editable__.lesson6_grader-0.1.0.pth", "numpy"]
    for name in names:
        (tmp_path / name).mkdir()
    found = rules.kit_paths(tmp_path / "kit", [tmp_path])
    assert sorted(path.name for path in found) == sorted(names[:-1])


def test_a_closed_plan_refuses_to_start_a_child(area):
    plan = make_plan(area)
    if not plan.held(isolation.LANDLOCK_FS):
        pytest.skip(f"only a plan with Landlock rules can lose them: {plan.layers}")
    plan.close()
    with pytest.raises(RuntimeError, match="Expected an open plan; received one already closed"):
        plan.preexec()


def test_kill_uid_refuses_the_graders_own_uid():
    with pytest.raises(ValueError, match=f"received uid={os.getuid()}, which would kill the grader too"):
        account.kill_uid(os.getuid())


# --- what each layer stops -------------------------------------------------------------------------------------

WRITE = """
for key, path in (("scratch", "in_scratch.txt"), ("outside", {outside!r}), ("etc", {etc!r})):
    attempt(key, lambda: open(path, "w").write("planted") and None)
"""


@pytest.mark.parametrize("layer", [isolation.LANDLOCK_FS, isolation.USER, "none"])
def test_writes_outside_scratch_fail(area, layer):
    outside = area / "outside"
    outside.mkdir(mode=0o777)
    outside.chmod(0o777 if layer != isolation.USER else 0o755)  # world-writable: only Landlock stands in the way
    plan, python = plan_holding(area, layer) if layer != "none" else (make_plan(area, skip=EVERYTHING_BUT["none"]),
                                                                      sys.executable)
    etc = Path(f"/etc/lesson6-isolation-test-{uuid.uuid4().hex}")
    try:
        results = run_child(plan, WRITE, python, outside=str(outside / "planted.txt"), etc=str(etc))
        planted_in_etc = etc.exists()
    finally:
        etc.unlink(missing_ok=True)
    assert results["scratch"] == "ok"
    if layer == "none":
        assert results["outside"] == "ok", "control: without a layer the child writes outside scratch"
        return
    assert results["outside"] == "PermissionError"
    assert not (outside / "planted.txt").exists()
    if IS_ROOT:
        assert results["etc"] == "PermissionError"
        assert not planted_in_etc


READ = """
for key, path in (("kit", {kit!r}), ("sibling", {sibling!r}), ("solutions", {solutions!r}),
                  ("dist_info", {dist_info!r})):
    attempt(key, lambda: open(path).read())
attempt("numpy", lambda: __import__("numpy").ones(3).sum().item())
attempt("environ", lambda: open(f"/proc/{{os.getppid()}}/environ", "rb").read() and None)  # the grader's secrets
attempt("listing", lambda: sorted(os.listdir({site!r})))
"""


@pytest.mark.parametrize("layer", [isolation.LANDLOCK_FS, "none"])
def test_the_kit_is_unreadable_while_numpy_imports(area, layer):
    fake_site = area / "site"
    for name in ("grader/hidden_tests", "other"):
        (fake_site / name).mkdir(parents=True)
    (fake_site / "grader/hidden_tests/points.toml").write_text("secret = 1\n")
    (fake_site / "other/ok.txt").write_text("fine\n")
    for path in [fake_site, *fake_site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    blocked = [*rules.kit_paths(KIT_ROOT, [SITE]), fake_site / "grader"]
    options = {"readable": [fake_site], "blocked": blocked}
    plan = plan_holding(area, layer, **options)[0] if layer != "none" else make_plan(
        area, skip=EVERYTHING_BUT["none"], **options)
    dist_info = next(iter(SITE.glob("lesson6_grader-*.dist-info/METADATA")), KIT_ROOT / "pyproject.toml")
    results = run_child(plan, READ, kit=str(fake_site / "grader/hidden_tests/points.toml"),
                        sibling=str(fake_site / "other/ok.txt"), solutions=str(KIT_ROOT / "solutions/cnn.py"),
                        dist_info=str(dist_info), site=str(fake_site))
    assert results["numpy"] == 3.0
    assert results["sibling"] == "fine\n"
    assert results["listing"] == ["grader", "other"]  # a folder holding a blocked path shows its names, no contents
    if layer == "none":
        assert results["kit"] == "secret = 1\n", "control: without Landlock the child reads the kit"
        return
    assert results["kit"] == "PermissionError"
    assert results["solutions"] == "PermissionError"
    assert results["dist_info"] == "PermissionError"
    assert results["environ"] == "PermissionError"


CONNECT = """
import socket
def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=5) as connection:
        connection.sendall(b"stolen")
attempt("connect", connect)
"""


@pytest.mark.parametrize("layer", [isolation.NETNS, isolation.LANDLOCK_NET, "none"])
def test_no_tcp_connection_reaches_a_local_listener(area, layer):
    plan = plan_holding(area, layer)[0] if layer != "none" else make_plan(area, skip=EVERYTHING_BUT["none"])
    with socket.create_server(("127.0.0.1", 0)) as listener:
        results = run_child(plan, CONNECT, port=listener.getsockname()[1])
        listener.settimeout(0.5)
        try:
            connection, _address = listener.accept()
            with connection:
                heard = connection.recv(100)
        except TimeoutError:
            heard = b""
    if layer == "none":
        assert (results["connect"], heard) == ("ok", b"stolen"), "control: without a layer the listener hears it"
        return
    assert results["connect"] in ("PermissionError", "OSError")  # Landlock: EACCES; netns: ENETUNREACH
    assert heard == b""


SIGNAL = """
attempt("parent", lambda: os.kill(os.getppid(), 0))
attempt("stop", lambda: os.kill({victim}, {stop}))
"""


@pytest.mark.parametrize("layer", [isolation.USER, isolation.LANDLOCK_SCOPE, "none"])
def test_the_probe_cannot_signal_the_grader(area, layer):
    plan, python = plan_holding(area, layer) if layer != "none" else (make_plan(area, skip=EVERYTHING_BUT["none"]),
                                                                      sys.executable)
    victim = subprocess.Popen(["sleep", "60"])  # stands in for the grader: a stopped pytest would hang the suite
    try:
        results = run_child(plan, SIGNAL, python, victim=victim.pid, stop=int(signal.SIGSTOP))
        time.sleep(0.1)
        state = Path(f"/proc/{victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    finally:
        victim.kill()
        victim.wait()
    if layer == "none":
        assert (results, state) == ({"parent": "ok", "stop": "ok"}, "T"), "control: without a layer it stops"
        return
    assert results == {"parent": "PermissionError", "stop": "PermissionError"}
    assert state != "T"


def test_the_probe_runs_as_its_own_unprivileged_user(area):
    if not IS_ROOT:
        pytest.skip("the user layer needs a grader running as root; this test runs as uid " + str(os.getuid()))
    plan, python = plan_holding(area, isolation.USER)
    uid, user = plan.uid, plan.user
    results = run_child(plan, "attempt('uid', os.getuid); attempt('groups', os.getgroups)", python)
    assert results == {"uid": uid, "groups": []}
    assert uid != 0 and (area / "scratch").stat().st_uid == uid, f"scratch should belong to {user}"


def test_a_probe_that_stays_root_has_no_capability_and_no_new_privileges(area):
    if not IS_ROOT:
        pytest.skip("capabilities are dropped only when the probe would otherwise run as root")
    plan = make_plan(area, skip={isolation.USER})
    assert plan.held(isolation.CAPABILITIES) and plan.held(isolation.NO_NEW_PRIVS), plan.layers
    status = "attempt('status', lambda: open('/proc/self/status').read())"
    lines = dict(line.split(":\t", 1) for line in run_child(plan, status)["status"].splitlines() if ":\t" in line)
    assert {key: lines[key].strip() for key in ("Uid", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs")} == {
        "Uid": "0\t0\t0\t0", "CapEff": "0" * 16, "CapPrm": "0" * 16, "CapBnd": "0" * 16, "NoNewPrivs": "1"}


FORK = """
import time
def fork_many():
    started = 0
    for _ in range(50):
        try:
            if os.fork() == 0:
                os.close(1), os.close(2)  # the test reads the child's output to its end
                time.sleep(60)
                os._exit(0)
        except BlockingIOError:
            break
        started += 1
    return started
attempt("started", fork_many)
"""


@pytest.mark.parametrize("layer", [isolation.NPROC, "none"])
def test_a_fork_attempt_is_capped_and_kill_uid_ends_every_process(area, layer):
    plan, python = plan_holding(area, isolation.USER, max_processes=20)
    if layer == "none":
        plan.close()
        plan = make_plan(area, python=python, max_processes=20, skip={"landlock", isolation.NETNS, isolation.NPROC,
                                                                           isolation.IPC, isolation.CGROUP})
    uid = plan.uid
    assert plan.held(isolation.NPROC) == (layer == isolation.NPROC), plan.layers
    try:
        results = run_child(plan, FORK, python)
        assert account.processes_of(uid), "the forked children should still be sleeping"
    finally:
        account.kill_uid(uid)
    if layer == "none":
        assert results["started"] == 50, "control: without RLIMIT_NPROC all 50 processes start"
    else:
        assert results["started"] < 20
    deadline = time.monotonic() + 5
    while account.processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert account.processes_of(uid) == []


ESCAPE = """
import subprocess
attempt("escape", lambda: subprocess.Popen(["sleep", {marker!r}], start_new_session=True, env={{}},
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) and None)
"""


def sleepers(marker):
    """Return the pids of the `sleep marker` processes still alive (not zombies)."""
    return [pid for pid in account.processes_of(os.getuid()) + account.processes_of(account.worker_uid())
            if command_line(pid) == f"sleep\0{marker}\0".encode()]


def command_line(pid):
    """Return the command line of a process, b"" once it is gone (another user's process may end at any time)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("layer", [isolation.CGROUP, "none"])
def test_closing_the_plan_kills_what_escaped_into_a_session_of_its_own(area, layer):
    plan = plan_holding(area, layer)[0] if layer != "none" else make_plan(area, skip=EVERYTHING_BUT["none"])
    cgroup, marker = plan.cgroup, f"{uuid.uuid4().int % 10**6 + 10**6}"
    try:
        assert run_child(plan, ESCAPE, marker=marker) == {"escape": "ok"}  # run_child closes the plan
        left = sleepers(marker)
    finally:
        for pid in sleepers(marker):
            os.kill(pid, signal.SIGKILL)
    if layer == "none":
        assert len(left) == 1 and cgroup is None, "control: without a cgroup the escaped process lives on"
        return
    assert left == [] and not cgroup.exists(), f"escaped: {left}; cgroup {cgroup} left: {cgroup.exists()}"


def test_the_launcher_puts_the_probe_in_a_cgroup_and_removes_it(tmp_path):
    from grader.checker.hidden_tests.cases import probe_request
    from grader.sandbox import run_probe

    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    (tmp_path / "shape_math.py").write_text(
        "import os, subprocess\n"
        "print(open('/proc/self/cgroup').read().splitlines()[-1])\n"
        f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True, env={{}}, stdout=subprocess.DEVNULL)\n")
    result = run_probe(tmp_path, probe_request())
    [layer] = [layer for layer in result.isolation if layer["name"] == isolation.CGROUP]
    if not layer["held"]:
        pytest.skip(f"the cgroup layer cannot hold here: {layer['reason']}")
    base = Path(isolation.host().cgroup_base)
    name = result.output.split("/")[-1].strip()
    assert name.startswith(kernel.CGROUP_PREFIX), result.output  # the probe saw itself in a cgroup of its own
    assert not (base / name).exists() and sleepers(marker) == []


@pytest.mark.slow  # the zygote imports Keras first (about 10 s here); the launcher's test above runs by default
def test_a_zygote_child_gets_a_cgroup_too_and_the_zygote_removes_it(tmp_path):
    from grader.checker.hidden_tests.cases import probe_request
    from grader.sandbox import run_probe
    from grader.sandbox.zygote import Zygote

    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    (tmp_path / "shape_math.py").write_text(
        "import os, subprocess\n"
        "print(open('/proc/self/cgroup').read().splitlines()[-1])\n"
        f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True, env={{}}, stdout=subprocess.DEVNULL)\n")
    zygote = Zygote()
    try:
        result = run_probe(tmp_path, probe_request(), zygote=zygote)
        assert zygote.alive()
    finally:
        zygote.close()
    [layer] = [layer for layer in result.isolation if layer["name"] == isolation.CGROUP]
    if not layer["held"]:
        pytest.skip(f"the cgroup layer cannot hold here: {layer['reason']}")
    name = result.output.split("/")[-1].strip()
    assert name.startswith(kernel.CGROUP_PREFIX), result.output
    assert not (Path(isolation.host().cgroup_base) / name).exists() and sleepers(marker) == []


# --- IPC: nothing passes between probes, nothing outlives one -------------------------------------------------

IPC_CHILD = """
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
def read_shm():
    shmid = libc.shmget({key}, 0, 0)
    assert shmid >= 0, "no such segment"
    return ctypes.string_at(libc.shmat(shmid, None, 0o10000), {size}).decode()
def read_mq():
    mqd, buffer = libc.mq_open({name!r}.encode(), os.O_RDONLY | os.O_NONBLOCK), ctypes.create_string_buffer(1 << 16)
    assert mqd >= 0, "no such queue"
    size = libc.mq_receive(mqd, buffer, len(buffer), None)
    return buffer.raw[:size].decode() if size >= 0 else f"errno {{ctypes.get_errno()}}"
def make_own():
    made = libc.shmget({own_key}, 64, 0o1000 | 0o666), libc.mq_open({own_name!r}.encode(), 0o102, 0o666, None)
    assert min(made) >= 0, made  # 0o102: O_CREAT | O_RDWR
attempt("shm", read_shm)
attempt("mq", read_mq)
attempt("own", make_own)
"""


def ipc_objects(secret):
    """Make a System V segment and a POSIX queue holding secret in this process's namespace; return their names."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    key, name = 0x6C370000 + uuid.uuid4().int % 0xFFFF, f"/lesson6-isolation-{uuid.uuid4().hex[:12]}"
    shmid = libc.shmget(key, 4096, 0o1000 | 0o666)
    assert shmid >= 0, ctypes.get_errno()
    ctypes.memmove(libc.shmat(shmid, None, 0), secret.encode(), len(secret))
    mqd = libc.mq_open(name.encode(), os.O_CREAT | os.O_RDWR, 0o666, None)
    assert mqd >= 0 and libc.mq_send(mqd, secret.encode(), len(secret), 0) == 0, ctypes.get_errno()
    return key, name


def remove_ipc_objects(*keys_and_names):
    """Remove System V segments (by key) and POSIX queues (by name) from this process's namespace."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for item in keys_and_names:
        if isinstance(item, int):
            subprocess.run(["ipcrm", "-M", str(item)], capture_output=True, check=False)
        else:
            libc.mq_unlink(item.encode())


def queue_exists(name):
    """Return whether a POSIX queue of that name exists in this process's namespace."""
    import ctypes

    mqd = ctypes.CDLL(None, use_errno=True).mq_open(name.encode(), os.O_RDONLY)
    if mqd >= 0:
        os.close(mqd)
    return mqd >= 0


def shm_keys():
    """Return the keys of the System V segments in this process's namespace."""
    return {int(line.split()[0]) & 0xFFFFFFFF for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]}


@pytest.mark.parametrize("layer", [isolation.IPC, "none"])
def test_the_probe_sees_no_ipc_object_of_the_machine_and_leaves_none(area, layer):
    # Landlock off: its file rules refuse POSIX queues on their own; this test is about the namespace alone.
    plan = plan_holding(area, layer)[0] if layer != "none" else make_plan(area, skip=EVERYTHING_BUT["none"])
    secret, own_key = f"secret-{uuid.uuid4().hex}", 0x6C380000 + uuid.uuid4().int % 0xFFFF
    own_name = f"/lesson6-isolation-own-{uuid.uuid4().hex[:12]}"
    key, name = ipc_objects(secret)
    try:
        results = run_child(plan, IPC_CHILD, key=key, name=name, size=len(secret), own_key=own_key,
                            own_name=own_name)
        left = (own_key in shm_keys(), queue_exists(own_name))
    finally:
        remove_ipc_objects(key, name, own_key, own_name)
    assert results["own"] == "ok", results  # the probe could make objects of its own
    if layer == "none":
        assert (results["shm"], results["mq"], left) == (secret, secret, (True, True)), (
            "control: without the layer the probe reads the machine's objects and its own outlive it", results)
        return
    assert (results["shm"], results["mq"], left) == ("AssertionError", "AssertionError", (False, False)), results


# Run under `unshare --mount` (a throwaway mount namespace): mount an mqueue file system, which shows this (the
# machine's) IPC namespace's queues, then let a child under a plan with and without the ipc layer look through it.
MQUEUE_MOUNT = r'''
import json, os, subprocess, sys, uuid, tempfile
sys.path.insert(0, {tests!r})
from pathlib import Path
from grader.sandbox import isolation
import test_isolation as t
mount = tempfile.mkdtemp(prefix="lesson6-mqueue-")
subprocess.run(["mount", "-t", "mqueue", "none", mount], check=True)
secret = "secret-" + uuid.uuid4().hex
key, name = t.ipc_objects(secret)
code = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def read():
    fd, buffer = os.open(MOUNT + NAME, os.O_RDONLY | os.O_NONBLOCK), ctypes.create_string_buffer(1 << 16)
    size = libc.mq_receive(fd, buffer, len(buffer), None)  # an mqueue file's descriptor is a queue descriptor
    return buffer.raw[:size].decode() if size >= 0 else "errno %d" % ctypes.get_errno()
attempt("listing", lambda: sorted(os.listdir(MOUNT)))
attempt("read", read)
print(json.dumps(results))
""".replace("MOUNT", repr(mount)).replace("NAME", repr(name))
answer = {{"mounts": list(isolation.host().mqueue_mounts), "secret": secret, "name": name.lstrip("/")}}
for layer in ("ipc", "none"):
    scratch = tempfile.mkdtemp()
    with isolation.plan(scratch, skip=t.EVERYTHING_BUT[layer]) as plan:
        answer[layer + "_held"] = plan.held("ipc")
        done = subprocess.run([sys.executable, "-I", "-S", "-c", t.PRELUDE.format(site=str(t.SITE)) + code],
                              preexec_fn=plan.preexec(), capture_output=True, text=True, cwd=scratch)
    answer[layer] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-2000:]
t.remove_ipc_objects(key, name)
print(json.dumps(answer))
'''


def test_an_mqueue_mount_shows_the_probe_its_own_queues_not_the_machines():
    if not IS_ROOT or not shutil.which("unshare"):
        pytest.skip("mounting an mqueue file system (in a throwaway mount namespace) needs root and unshare(1)")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                           MQUEUE_MOUNT.format(tests=str(Path(__file__).parent))], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert len(answer["mounts"]) == 1 and answer["ipc_held"] and not answer["none_held"], answer
    assert answer["none"] == {"listing": [answer["name"]], "read": answer["secret"]}, (
        "control: without the layer the probe reads the machine's queue through the mount", answer)
    assert answer["ipc"] == {"listing": [], "read": "FileNotFoundError"}, answer
