"""A probe zygote: one process imports Keras once and forks an isolated probe child per submission.

Without it every probe child starts an interpreter and imports TensorFlow (seconds of CPU per submission). The
zygote is started by a trusted batch worker in a clean environment (`python -I -S -B`, no PYTHON* variables, its own
session, killed with the worker). It imports Keras (as the runner does), matplotlib.pyplot, numpy and the sandbox's
own modules, and never imports student code. For each probe the worker sends the scratch folder, the runner's
envelope and two pipe ends (results, output); the zygote builds that probe's isolation plan exactly as the launcher
does (grader.sandbox.launcher.sandbox_plan) and forks. The child puts itself in a session of its own, takes the
pipes as its result pipe and stdout/stderr, applies every layer of the plan (the same `Plan.preexec()` a fresh child
runs between fork and exec), closes every other descriptor, forgets the kit's modules, and only then runs the
untrusted runner, which imports the submission. The zygote reports the child's pid, the plan's layers, and later its
exit status; the launcher polices the child as it polices a fresh one.
"""

import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from grader.sandbox import kernel
from grader.sandbox.launcher import KIT_ROOT, RUNNER, child_environment, sandbox_plan, site_dirs
from grader.sandbox.policy import Limits, ProbePolicy

START_SECONDS = 180            # importing Keras on a loaded machine
HEADER = struct.Struct("!I")
MAX_FDS = 2
BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[2]); "
        "from grader.sandbox.zygote import serve; serve(int(sys.argv[1]), sys.argv[3])")
ZYGOTE_FAILED = "The probe zygote stopped ({why}); expected it to start a probe child."
RUNTIME_STARTED = "building a model without weights started TensorFlow's runtime, which forked children cannot use"


class ZygoteError(RuntimeError):
    """The zygote could not start a child (it died, or refused the plan)."""


def send(sock, message, fds=()):
    """Send one length-prefixed JSON message, with file descriptors attached."""
    data = json.dumps(message).encode()
    socket.send_fds(sock, [HEADER.pack(len(data))], list(fds))
    sock.sendall(data)


def receive(sock):
    """Return (message, fds) of one message, or (None, []) at end of file."""
    header, fds, _flags, _address = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if len(header) < HEADER.size:
        header += _exactly(sock, HEADER.size - len(header)) if header else b""
    if len(header) < HEADER.size:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(_exactly(sock, HEADER.unpack(header)[0])), fds


def _exactly(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# --- the trusted side (in the batch worker) ---------------------------------------------------------------


class ZygoteChild:
    """The Popen-like handle of one forked probe child: pid, stdout, poll() and wait() through the zygote."""

    def __init__(self, zygote, pid, stdout_fd):
        self.zygote, self.pid, self.returncode = zygote, pid, None
        self.stdout = os.fdopen(stdout_fd, "rb", buffering=0)

    def poll(self):
        """Return the exit status if the zygote reported it, else None (without waiting)."""
        if self.returncode is None:
            self.returncode = self.zygote.exit_status(self.pid, block=False)
        return self.returncode

    def wait(self, timeout=None):
        """Wait for the exit status the zygote reports; raise subprocess.TimeoutExpired after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if deadline is not None and not self.zygote.readable(max(0.0, deadline - time.monotonic())):
                raise subprocess.TimeoutExpired(f"probe child {self.pid}", timeout)
            self.returncode = self.zygote.exit_status(self.pid, block=True)
        return self.returncode


class Zygote:
    """The trusted side's handle of one zygote process (started on first use, restarted if it dies)."""

    def __init__(self):
        self.process = self.sock = None
        self.ready = False
        self.failed = ""  # why the zygote could not start, once it could not
        self.token = uuid.uuid4().hex
        self.home = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def launch(self):
        """Start the zygote process; it imports Keras while the caller does other work."""
        self.close()
        mine, theirs = socket.socketpair()
        self.home = Path(tempfile.mkdtemp(prefix="lesson6-zygote-"))
        for name in ("home", "tmp"):
            (self.home / name).mkdir()
        paths = [str(KIT_ROOT), *site_dirs()]
        # The network the zygote warms up on, made here: the zygote never imports the lesson's reference.
        from grader.checker.hidden_tests.cases import warm_up_config

        warm_config = warm_up_config()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", BOOT, str(theirs.fileno()), json.dumps(paths), warm_config],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.home,
                env=zygote_environment(self.home, self.token), pass_fds=(theirs.fileno(),), start_new_session=True)
        finally:
            theirs.close()
        self.sock, self.ready = mine, False

    def _await_ready(self):
        """Wait until the zygote has imported Keras."""
        self.sock.settimeout(START_SECONDS)
        try:
            message, _fds = receive(self.sock)
        except OSError:
            message = None
        self.sock.settimeout(None)
        if not message or not message.get("ready"):
            self.close()
            self.failed = (message or {}).get("error") or "it did not start"
            raise ZygoteError(ZYGOTE_FAILED.format(why=self.failed))
        self.ready = True

    def spawn(self, workdir, envelope, policy):
        """Fork one probe child; return (ZygoteChild, result pipe read end, the plan's layers, the probe's uid)."""
        if self.failed:  # a zygote that could not start once will not start next time: fresh children grade
            raise ZygoteError(ZYGOTE_FAILED.format(why=self.failed))
        if not self.alive():
            self.launch()
        if not self.ready:
            self._await_ready()
        result_read, result_write = os.pipe()
        output_read, output_write = os.pipe()
        request = {"workdir": str(workdir), "envelope": envelope, "limits": policy.limits.__dict__,
                   "require": policy.require, "environment": child_environment(Path(workdir), self.token),
                   "probe_user": policy.user, "uid_per_process": policy.uid_per_process}
        try:
            send(self.sock, request, [result_write, output_write])
            reply, _fds = receive(self.sock)
        except OSError as error:
            reply = {"error": ZYGOTE_FAILED.format(why=error)}
        finally:
            os.close(result_write)
            os.close(output_write)
        if not reply or "started" not in reply:
            os.close(result_read)
            os.close(output_read)
            if reply and reply.get("refused"):
                raise RuntimeError(reply["refused"])  # require_sandbox: the same error a fresh child gives
            self.close()
            raise ZygoteError((reply or {}).get("error") or ZYGOTE_FAILED.format(why="no answer"))
        return ZygoteChild(self, reply["started"], output_read), result_read, reply["layers"], reply["uid"]

    def readable(self, timeout):
        """Return whether the zygote has a message (or closed its socket) within timeout seconds."""
        return self.sock is None or bool(select.select([self.sock], [], [], timeout)[0])

    def exit_status(self, pid, *, block):
        """Return the exit status of the child pid when the zygote reports it; None if not yet (block=False)."""
        if not block and not self.readable(0):
            return None
        if self.sock is None:
            return -9
        try:
            message, _fds = receive(self.sock)
        except OSError:
            message = None
        if message is None:  # the zygote died; its children die with it (death signal)
            self.close()
            return -9
        return message["code"] if message.get("exited") == pid else None

    def close(self):
        """Stop the zygote (its children die with it) and forget it."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.process is not None:
            from grader.sandbox.processes import kill_tree

            kill_tree(self.process.pid)
            self.process.wait()
            self.process = None
        if self.home is not None:
            import shutil

            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


# --- the zygote process ---------------------------------------------------------------------------------------


def zygote_environment(home, token):
    """Return the zygote's environment: a child's, and the lesson being graded (its probes' plans block its folder)."""
    from grader.lesson.manifest import LESSON_ENV

    environment = child_environment(home, token)
    if os.environ.get(LESSON_ENV):
        environment[LESSON_ENV] = os.environ[LESSON_ENV]
    return environment


def _load_runner():
    """Load the untrusted runner by path, as the fresh child runs it (never as part of the grader package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_lesson6_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime_started():
    """Return whether TensorFlow's runtime has started in this process (its thread pools do not survive fork)."""
    from tensorflow.python.eager import context

    return getattr(context.context(), "_initialized", True)


def warm_up(config):
    """Build the lesson's network from its config once, without weights; return False if that started TensorFlow.

    A child's first Keras build pays for Python-side caches (layer signatures, serialization registries) that the
    zygote can fill once for all of them. Nothing here may start TensorFlow's runtime: a forked child would wait
    forever on thread pools that exist only in the zygote.
    """
    import keras

    with keras.StatelessScope(initialize_variables=False):
        keras.models.model_from_json(config).to_json()
    return not runtime_started()


def serve(fd, warm_config):
    """Import Keras, then fork one isolated probe child per request until the worker closes the socket."""
    base_path = [path for path in sys.path if not path.startswith(str(KIT_ROOT))]
    kernel.prctl(kernel.PR_SET_PDEATHSIG, 9)  # die with the worker that started this zygote
    runner = _load_runner()
    runner.import_keras()  # the point of the zygote: children start with Keras imported, as the runner imports it
    import matplotlib.pyplot  # noqa: F401  - the lesson draws with it: a submission that does too gets it free here
    import numpy  # noqa: F401

    sock = socket.socket(fileno=fd)
    if not warm_up(warm_config):
        send(sock, {"ready": False, "error": RUNTIME_STARTED})
        os._exit(1)
    send(sock, {"ready": True})
    while True:
        request, fds = receive(sock)
        if request is None:
            os._exit(0)
        workdir = Path(request["workdir"])
        try:
            envelope = request["envelope"]  # the child reads the protocol and weights by path, never the runner
            # A batch worker's uid per process is the zygote's own (worker_uid() of the zygote's pid).
            policy = ProbePolicy(limits=Limits(**request["limits"]), user=request["probe_user"],
                                 require=request["require"], uid_per_process=request["uid_per_process"])
            plan = sandbox_plan(workdir, policy, sites=envelope["site_dirs"],
                                files=[Path(envelope["protocol_path"]), Path(envelope["weights_path"])])
            apply = plan.preexec()
        except RuntimeError as error:
            send(sock, {"refused": str(error)})
            for item in fds:
                os.close(item)
            continue
        except Exception as error:  # noqa: BLE001 - the worker falls back on a fresh child
            send(sock, {"error": f"{type(error).__name__}: {error}"})
            for item in fds:
                os.close(item)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, fds, apply, runner, base_path)
        plan.close_ruleset()
        for item in fds:
            os.close(item)
        send(sock, {"started": pid, "layers": plan.as_dict()["layers"], "uid": plan.uid})
        _pid, status = os.waitpid(pid, 0)
        plan.close()  # kills whatever the child left in its cgroup (escaped with setsid, an emptied environment...)
        send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _child(request, fds, apply, runner, base_path):
    """In the forked child: take the pipes, apply every isolation layer, forget the kit, run the runner."""
    code = 1
    try:
        os.setsid()
        result_fd, output_fd = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.chdir(request["workdir"])
        os.environ.clear()
        os.environ.update(request["environment"])
        tempfile.tempdir = None
        apply()  # rlimits, network namespace, user, death signal, no_new_privs, Landlock: as for a fresh child
        os.closerange(3, result_fd)  # the socket to the worker, the Landlock ruleset, the zygote's own files
        os.closerange(result_fd + 1, 1 << 16)
        for name in [name for name in sys.modules if name.partition(".")[0] in ("grader", "solutions", "exercises")]:
            del sys.modules[name]
        sys.path[:] = base_path
        runner.run(request["envelope"], result_fd)
        sys.stdout.flush()
        sys.stderr.flush()
        code = 0
    finally:
        os._exit(code)
