"""Run a command under a memory limit, as a container runs it (Docker's --memory, Gradescope's 768 MB default).

A container's limit is a memory cgroup: it charges what the processes in it use, anonymous memory and the file pages
they bring into the page cache (TensorFlow's libraries among them), reclaims clean file pages when the limit is near
and kills a process (the OOM killer) only when nothing more can be reclaimed. Summing the processes' resident memory
counts those library pages in full, once per process that maps them; a cgroup with a limit is the measure a platform
applies. Used by `benchmarks/grade_resources.py --memory-limit` and `tests/test_memory_limit.py`.

Both cgroup versions: v1's memory hierarchy (`memory.limit_in_bytes`, as on older Docker hosts) and v2's
(`memory.max`, where this process's cgroup lets a child have the memory controller). Root only.
"""

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.kernel import cgroup_folder

MIB = 2**20


@dataclass
class MemoryCgroup:
    folder: Path
    version: int

    def enter(self) -> None:
        """Move the calling process into the cgroup (a Popen preexec_fn): all it starts is charged there."""
        (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mib(self) -> float:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return int((self.folder / name).read_text()) / MIB

    def counts(self, name: str) -> dict[str, int]:
        """Return a flat-keyed cgroup file (memory.events, memory.oom_control) as {key: count}."""
        pairs = (line.split() for line in (self.folder / name).read_text().splitlines() if line.strip())
        return {key: int(value) for key, value in pairs}

    def oom_kills(self) -> int:
        return self.counts("memory.oom_control" if self.version == 1 else "memory.events").get("oom_kill", 0)

    def limit_hits(self) -> int:
        """How often the limit was reached (and the kernel reclaimed instead of charging more)."""
        if self.version == 1:
            return int((self.folder / "memory.failcnt").read_text())
        return self.counts("memory.events").get("max", 0)

    def remove(self) -> None:
        try:
            self.folder.rmdir()
        except OSError:
            pass  # a process is still in it: left for the machine's own cleanup


def make_memory_cgroup(limit_mib: int) -> MemoryCgroup:
    """Make a cgroup with a memory limit of limit_mib (swap off); raise OSError saying why none can be made."""
    if os.geteuid() != 0:
        raise OSError(f"making a cgroup needs root; this is uid {os.geteuid()}")
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = next((line for line in lines if line.split(":")[1].split(",").count("memory")), None)
    name = f"lesson6-memory-{uuid.uuid4().hex[:12]}"
    if v1 and Path("/sys/fs/cgroup/memory").is_dir():
        folder = Path("/sys/fs/cgroup/memory") / v1.rsplit(":", 1)[1].lstrip("/") / name
        folder.mkdir()
        group = MemoryCgroup(folder, 1)
        (folder / "memory.limit_in_bytes").write_text(str(limit_mib * MIB))
        if (folder / "memory.memsw.limit_in_bytes").exists():
            (folder / "memory.memsw.limit_in_bytes").write_text(str(limit_mib * MIB))  # no swapping past the limit
        return group
    folder = cgroup_folder() / name  # v2: OSError saying why there is none
    folder.mkdir()
    group = MemoryCgroup(folder, 2)
    if not (folder / "memory.max").exists():
        group.remove()
        raise OSError(f"cgroup v2 at {folder.parent} does not give its children the memory controller")
    (folder / "memory.max").write_text(str(limit_mib * MIB))
    if (folder / "memory.swap.max").exists():
        (folder / "memory.swap.max").write_text("0")
    return group


def evict_from_page_cache(*folders: Path) -> int:
    """Drop the cached pages of every file under folders that no process maps; return how many files were read.

    A file's pages in the page cache are charged to the cgroup that first read them, so without this a grade in a new
    cgroup would not be charged for the TensorFlow libraries an earlier process left in the cache; a fresh container
    reads them from its image and is.
    """
    count = 0
    for folder in folders:
        for path in Path(folder).rglob("*"):
            try:
                if not path.is_file() or path.is_symlink():
                    continue
                descriptor = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(descriptor)
    return count


def interpreter_folders() -> tuple[Path, ...]:
    """Return the folders whose files a grade maps or reads: the venv's (its packages) and the base Python's."""
    return tuple(dict.fromkeys(Path(folder) for folder in (sys.prefix, sys.base_prefix)))
