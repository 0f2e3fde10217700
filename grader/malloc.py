"""glibc malloc settings for the grader's own processes (the checker, a batch's workers), set before TensorFlow starts.

glibc gives each thread that finds the heap busy an arena of its own, up to 8 per core, and memory freed into one
arena stays there: TensorFlow's intra- and inter-op threads spread the training check's buffers over many arenas.
Two arenas held the check's peak ~50-90 MiB lower, with the same results (benchmarks/README.md, issue 25). A no-op
where the C library is not glibc.
"""

import ctypes

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def limit_arenas(count=ARENAS):
    """Let malloc use at most `count` arenas from now on (it takes effect before other threads have allocated)."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, count)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc (macOS, Windows): nothing to set
