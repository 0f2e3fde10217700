"""The one filter that keeps TensorFlow's start-up lines out of any output a student reads."""

import re

# ---------------------------------------------------------------------------------------------
# TensorFlow's start-up lines: its C++ core prints them while TensorFlow is imported, before Python can silence
# them (TF_CPP_MIN_LOG_LEVEL silences only what comes later), and never because of the student's code. Wherever
# a student reads captured output (the grader's "What your code printed", `pytest exercises`), they are left out.
# ---------------------------------------------------------------------------------------------

TENSORFLOW_STARTUP_LINES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # absl's C++ log, e.g. "I0000 00:00:1795321218.202723    5856 port.cc:153] oneDNN custom operations are on."
    # (also cuda drivers, cuInit, the CPU-feature note)
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] ",
    # TensorFlow's own C++ log before 2.16: "2024-01-31 10:00:00.123456: I tensorflow/core/...cc:182] ..."
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./-]+:\d+\] ",
    # the second line of the CPU-feature note, printed without a log prefix
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
)
_TENSORFLOW_STARTUP = re.compile("|".join(f"(?:{pattern})" for pattern in TENSORFLOW_STARTUP_LINES))


def without_tensorflow_startup(text: str) -> str:
    """Return text without the lines TensorFlow's C++ core prints at start-up."""
    return "".join(line for line in text.splitlines(keepends=True) if not _TENSORFLOW_STARTUP.match(line))
