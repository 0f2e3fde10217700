#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (with network access).
# It installs the Lesson 6 grader, bundled in this zip, and its dependencies into a virtual environment.
# Made by `grader gradescope`; see run_autograder for what happens to each submission.
set -euo pipefail

AUTOGRADER_ROOT="${AUTOGRADER_ROOT:-/autograder}"
GRADER_VENV="${GRADER_VENV:-/opt/lesson6-grader}"
KIT="$AUTOGRADER_ROOT/source/@KIT_PATH@"

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip
fi

python3 -m venv "$GRADER_VENV"
"$GRADER_VENV/bin/python" -m pip install --quiet --upgrade pip
"$GRADER_VENV/bin/python" -m pip install "$KIT"

# Fail the image build now, not the first submission later, if the kit does not import.
TF_CPP_MIN_LOG_LEVEL=3 "$GRADER_VENV/bin/python" -c "import keras, grader.grade; print('keras', keras.__version__)"
"$GRADER_VENV/bin/grader" --help >/dev/null
