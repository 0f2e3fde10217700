"""Shards: one batch grades a deterministic 1/N of a folder; `grader merge` joins them."""

import hashlib
import json
import os
from pathlib import Path

from grader.store import atomic_write

SHARD_SUFFIX = ".shard.json"   # beside a shard's gradebook: grades.csv -> grades.shard.json
BAD_SHARD = "--shard expects K/N, two whole numbers with 1 <= K <= N. Received: {received!r}"


def parse_shard(text):
    """Return (k, n) of a shard written K/N; raise ValueError saying what was expected."""
    try:
        k, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ValueError(BAD_SHARD.format(received=text)) from None
    if not 1 <= k <= n:
        raise ValueError(BAD_SHARD.format(received=text))
    return k, n


def shard_of(name, count):
    """Return the shard (1 to count) of a folder entry: a hash of its name alone.

    A hash rather than every N-th of the sorted names: a student's shard stays where it was when late
    submissions join the folder, so a shard re-run grades the same students and finds their cache entries.
    """
    return int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()[:8], "big") % count + 1


def shard_manifest_path(gradebook):
    """Return where a shard's manifest goes: beside its gradebook, grades.csv -> grades.shard.json."""
    gradebook = Path(gradebook)
    return gradebook.with_name(gradebook.stem + SHARD_SUFFIX)


def write_shard_manifest(gradebook, *, shard, count, total, graded, reports):
    """Write what `grader merge` needs of a shard: which one, the folder's size, its (entry, id) pairs, where."""
    path = shard_manifest_path(gradebook)
    folder = path.parent.resolve()
    data = {"shard": shard, "of": count, "folder_entries": total,
            "submissions": [{"entry": name, "id": submission} for name, submission in graded],
            "gradebook": os.path.relpath(Path(gradebook).resolve(), folder),
            "reports": os.path.relpath(Path(reports).resolve(), folder) if reports else None}
    atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path
