#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (with network access).
# It installs the Lesson 6 grader, bundled in this zip, and its dependencies into a virtual environment.
# Made by `grader gradescope`; see run_autograder for what happens to each submission.
set -euo pipefail

AUTOGRADER_ROOT="${AUTOGRADER_ROOT:-/autograder}"
GRADER_VENV="${GRADER_VENV:-/opt/lesson6-grader}"
KIT="$AUTOGRADER_ROOT/source/@KIT_PATH@"
PROBE_USER="${PROBE_USER:-lesson6-probe}"

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip
fi

python3 -m venv "$GRADER_VENV"
"$GRADER_VENV/bin/python" -m pip install --quiet --upgrade pip
"$GRADER_VENV/bin/python" -m pip install "$KIT"

# What the checker compares with, derived from the lesson's reference and recorded for the Keras just installed:
# every grade reads it, so run_autograder's --import-after-probe runs one TensorFlow process at a time.
LESSON=(@LESSON_ARGS@)  # the lesson baked into the zip by `grader gradescope --lesson`, if one was
TF_CPP_MIN_LOG_LEVEL=3 "$GRADER_VENV/bin/grader" calibrate --expectations "${LESSON[@]}"

# Student code runs as this account, never as root: it cannot write the kit, signal the grader or read its files.
if ! id -u "$PROBE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PROBE_USER" \
        || echo "setup.sh: could not create the user $PROBE_USER; student code will run as nobody" >&2
fi

# The kit's files are the grader's alone (root): only the runner that sits beside student code, and the
# protocol it speaks, stay readable for the probe's account. keras, numpy and the rest of the venv stay readable.
GRADER_PACKAGE=$("$GRADER_VENV/bin/python" -c "import grader, pathlib; print(pathlib.Path(grader.__file__).parent)")
chmod -R go-rwx "$GRADER_PACKAGE" "$AUTOGRADER_ROOT/source"
chmod go+x "$GRADER_PACKAGE"
chmod go+rx "$GRADER_PACKAGE/untrusted"
chmod go+r "$GRADER_PACKAGE/protocol.py" "$GRADER_PACKAGE/untrusted/"*.py

# Fail the image build now, not the first submission later: grade the bundled known-correct submission with the
# flags every student gets, and require full marks.
SMOKE="$AUTOGRADER_ROOT/source/@SMOKE_PATH@"
SMOKE_REPORT=$(mktemp --suffix=.json)
read -r -a EXTRA <<< @GRADE_ARGS@
TF_CPP_MIN_LOG_LEVEL=3 "$GRADER_VENV/bin/grader" grade "$SMOKE" --format json --output "$SMOKE_REPORT" "${EXTRA[@]}" \
    "${LESSON[@]}"
"$GRADER_VENV/bin/python" - "$SMOKE_REPORT" <<'PYTHON'
import json, sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
failed = [test["name"] + ": " + test.get("output", "") for test in report["tests"] if test["status"] != "passed"]
if failed or report["score"] < report["max_score"] or not report["tests"]:
    sys.exit("setup.sh: the known-correct submission got {score} / {max_score}, not full marks; the grader is broken "
             "in this image:\n  ".format(**report) + "\n  ".join(failed or [report.get("output", "no tests ran")]))
print("setup.sh: the known-correct submission got {score} / {max_score}".format(**report))
PYTHON
rm -rf "$SMOKE" "$SMOKE_REPORT"
