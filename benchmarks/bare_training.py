"""The model work of grading one correct submission, with no grader around it: the floor to compare against.

Import TensorFlow, build the reference network, make the synthetic data, train the training check's
budget and evaluate, in one plain process. No sandbox, no probe, no hidden tests, no reports.

    python benchmarks/bare_training.py
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
KIT_ROOT = Path(__file__).resolve().parents[1]
started = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path[:0] = [str(KIT_ROOT / "solutions"), str(KIT_ROOT)]
from cnn import build_cnn  # noqa: E402

from grader.training.check import BUDGETS, EVAL_BATCH_SIZE, LEARNING_RATE  # noqa: E402  (numbers only)
from grader.training.synthetic_shapes import make_dataset  # noqa: E402

budget = BUDGETS["synthetic"]
images, labels = make_dataset(budget.n_train + budget.n_test, 0)
keras.utils.set_random_seed(0)
model = build_cnn()
model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(images[: budget.n_train].astype("float32"), labels[: budget.n_train], batch_size=budget.batch_size,
          epochs=budget.epochs, shuffle=True, verbose=0)
logits = model.predict(images[budget.n_train:].astype("float32"), batch_size=EVAL_BATCH_SIZE, verbose=0)
accuracy = float(np.mean(np.argmax(logits, axis=-1) == labels[budget.n_train:]))
print(f"accuracy {accuracy:.3f} in {time.perf_counter() - started:.1f} s after interpreter start")
