"""What a student reads as their code's output holds their own lines and none of TensorFlow's start-up lines."""

from grader.checker.checks.output import without_tensorflow_startup
from grader.sandbox.watch import Output

# Recorded from TensorFlow 2.21 on this kit's CI machine (no GPU), and from the CPU-feature note and the log
# format of TensorFlow before 2.16.
TENSORFLOW_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795321218.202723    5856 port.cc:153] oneDNN custom operations are on. You may see slightly different \
numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the \
environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795321218.203494    5856 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be \
used.
E0000 00:00:1795321271.536068    6388 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to \
cuInit: UNKNOWN ERROR (303)
I0000 00:00:1718190000.123456   12345 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available \
CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler \
flags.
2024-01-31 10:00:00.123456: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on. You may see slightly \
different numerical results due to floating-point round-off errors from different computation orders.
2024-01-31 10:00:01.654321: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] Unable to register cuDNN \
factory: Attempting to register factory for plugin cuDNN when one has already been registered
"""
# Lines a student may print, some of them close to TensorFlow's.
STUDENT = """\
Hello from my shape_math.py
WARNING: my model has 140714 parameters
I0000 is not a log line without its time and source
Epoch 1/3 - loss 2.30
To enable the following instructions, read the lesson.
"""


def test_tensorflow_startup_lines_are_left_out_and_the_student_s_lines_kept():
    startup = TENSORFLOW_STARTUP.splitlines(keepends=True)
    mixed = "".join(startup[:3]) + STUDENT + "".join(startup[3:])
    assert without_tensorflow_startup(mixed) == STUDENT
    assert without_tensorflow_startup(TENSORFLOW_STARTUP) == ""


def test_the_probe_s_captured_output_leaves_out_tensorflow_startup_lines():
    output = Output(10_000)
    output.add((TENSORFLOW_STARTUP + STUDENT).encode())
    assert output.text() == STUDENT
