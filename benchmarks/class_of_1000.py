"""How fast a class of 1,000 is graded: write it, grade a sample with `grader batch`, project the whole class.

The class: three in four submissions are correct, in the styles students hand in (folder of modules, one .py
file, Sequential with ReLU layers, notebook, zip, Activation("relu") layers) with their own model and layer
names; one in four has a single mistake (no Rescaling, softmax, shape math rounding down, vertical flips,
average pooling, Flatten head, a "valid" convolution, a large rotation). The sample is graded with an empty
training cache and `--jobs 2`; the projection multiplies its seconds per submission by 1,000 (a whole class
shares more cache entries, so the projection is pessimistic).

    python benchmarks/class_of_1000.py [--sample 100] [--jobs 2] [--keep DIR] [--before DIR] [-- batch flags]

--before DIR grades the same sample, right after, with another checkout of the kit (its baseline), so that a
change is compared under the same load.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT_ROOT))

from benchmarks.class_folder import (  # noqa: E402
    SEQUENTIAL_CNN,
    single_file,
    write_folder,
    write_notebook,
    write_zip,
)

CLASS_SIZE = 1000
FIRST_NAMES = ("ada", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivo", "jun", "kofi", "lena", "mo",
               "nia", "omar", "pia", "quin", "rosa", "sami", "tara", "uma", "vik", "wen", "xena", "yusuf", "zoe")
RELU_CONV = 'layers.Conv2D({f}, 3, padding="same", activation="relu")(x)'
RELU_AS_ACTIVATION = 'layers.Activation("relu")(layers.Conv2D({f}, 3, padding="same")(x))'
# name -> text edits of the reference; each is one mistake a student makes.
MISTAKES = {
    "no_rescaling": [("    x = layers.Rescaling(1.0 / 255)(x)\n", "")],
    "softmax": [("outputs = layers.Dense(num_classes)(x)",
                 'outputs = layers.Dense(num_classes, activation="softmax")(x)')],
    "shape_math_floor": [("math.ceil(n / strides)", "math.floor(n / strides)")],
    "vertical_flips": [('layers.RandomFlip("horizontal")', 'layers.RandomFlip("horizontal_and_vertical")')],
    "average_pooling": [("x = layers.MaxPooling2D(2)(x)", "x = layers.AveragePooling2D(2)(x)")],
    "flatten_head": [("x = layers.GlobalAveragePooling2D()(x)", "x = layers.Flatten()(x)")],
    "valid_conv": [('x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)\n    x = layers.Conv2D(64',
                    'x = layers.Conv2D(64, 3, padding="valid", activation="relu")(x)\n    x = layers.Conv2D(64')],
    "large_rotation": [("layers.RandomRotation(0.05)", "layers.RandomRotation(0.5)")],
}
CORRECT_STYLES = ("folder", "functional_py", "sequential_py", "notebook", "zip", "activation_layers")


def own_names(text, rng):
    """Give the models and the Conv2D layers a student's own names."""
    model = rng.choice(("cnn", "my_cnn", "lesson6", "cifar_net", "convnet", "model"))
    text = text.replace('name="cifar10_cnn"', f'name="{model}"').replace('name="cifar10_cnn_v2"', f'name="{model}_v2"')
    count = 0

    def named(match):
        nonlocal count
        count += 1
        return f'activation="relu", name="conv_{count}")(x)'

    import re

    return re.sub(r'activation="relu"\)\(x\)', named, text) if rng.random() < 0.5 else text


def write_correct(path, style, rng):
    """Write one correct submission in a style, with its own names."""
    if style == "folder":
        write_folder(path)
        cnn = path / "cnn.py"
        cnn.write_text(own_names(cnn.read_text(), rng))
    elif style == "functional_py":
        path.write_text(own_names(single_file(), rng))
    elif style == "sequential_py":
        name = rng.choice(("seq", "my_sequential_cnn", "stack"))
        path.write_text(single_file().replace("import keras\n", "from tensorflow import keras\n")
                        + SEQUENTIAL_CNN.replace('name="my_sequential_cnn"', f'name="{name}"'))
    elif style == "notebook":
        write_notebook(path, own_names(single_file(), rng))
    elif style == "zip":
        folder = path.with_suffix(".parts")
        write_folder(folder)
        write_zip(path, folder)
        shutil.rmtree(folder)
    else:
        edits = [(RELU_CONV.format(f=f), RELU_AS_ACTIVATION.format(f=f)) for f in (32, 64, 128, 256)]
        path.write_text(single_file(edits))


def make_class_of(out, size=CLASS_SIZE, seed=0):
    """Write a class of `size` submissions into out; return [(path, kind)] where kind is a style or a mistake."""
    out, rng = Path(out), random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number in range(size):
        student = f"{rng.choice(FIRST_NAMES)}_{number:04d}"
        if number % 4 == 3:
            kind = rng.choice(sorted(MISTAKES))
            path = out / f"{student}.py"
            path.write_text(own_names(single_file(MISTAKES[kind]), rng))
        else:
            kind = rng.choice(CORRECT_STYLES)
            suffix = {"folder": "", "notebook": ".ipynb", "zip": ".zip"}.get(kind, ".py")
            path = out / f"{student}{suffix}"
            write_correct(path, kind, rng)
        written.append((path, kind))
    return written


def grade_sample(written, root, *, sample, jobs, before=None, extra=(), is_mistake=lambda kind: kind in MISTAKES):
    """Grade a sample of a written class with `grader batch` from empty caches (and with --before's kit); print it."""
    if sample >= len(written):
        sample_dir, chosen = written[0][0].parent, written
    else:
        sample_dir = root / "sample"
        shutil.rmtree(sample_dir, ignore_errors=True)
        sample_dir.mkdir(parents=True)
        chosen = random.Random(1).sample(written, sample)
        for path, _kind in chosen:
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, sample_dir / path.name)
    wrong = sum(1 for _path, kind in chosen if is_mistake(kind))
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    print(f"class of {len(written)} written; sample of {len(chosen)} ({wrong} with a mistake, "
          f"{len({kind for _path, kind in chosen if is_mistake(kind)})} distinct)", flush=True)
    kits = [("this kit", KIT_ROOT)] + ([("before", Path(before).resolve())] if before else [])
    timings = {}
    for label, kit in kits:
        command = [sys.executable, "-m", "grader", "batch", str(sample_dir), "--jobs", str(jobs),
                   "--output", str(root / "grades.csv"), "--cache-dir", str(root / "cache"),
                   *extra]  # flags for both kits (e.g. --no-training)
        shutil.rmtree(root / "cache", ignore_errors=True)
        started, times_before = time.perf_counter(), os.times()
        done = subprocess.run(command, cwd=kit, capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"})
        seconds, after = time.perf_counter() - started, os.times()
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        cpu = ((after.children_user - times_before.children_user)
               + (after.children_system - times_before.children_system))
        each = timings[label] = seconds / len(chosen)
        closing = [line for line in done.stderr.strip().splitlines()
                   if line.startswith(("Graded ", "Worker time", "Class summary"))]
        for line in closing:  # the batch's closing lines: training runs, errors, time by phase
            print(f"{label}: {line}")
        print(f"{label}: grader batch --jobs {jobs}, empty cache: {seconds:.1f} s for {len(chosen)}, "
              f"{each:.2f} s per submission, {cpu:.0f} CPU-s; load {os.getloadavg()[0]:.2f}", flush=True)
        if len(chosen) < len(written):
            print(f"{label}: linear projection for {len(written)}: {each * len(written) / 60:.1f} min (an upper "
                  f"bound: the sample trains nearly every distinct network the whole class has; "
                  f"--sample {len(written)} grades the whole class)", flush=True)
    if before:
        print(f"ratio this kit / before: {timings['this kit'] / timings['before']:.2f} x")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="submissions graded (default: 100)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="write the class and the gradebook here instead of a temporary folder")
    parser.add_argument("--before", help="another checkout of the kit that grades the same sample after this one")
    args, extra = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="lesson6-class1000-") as scratch:
        root = Path(args.keep or scratch)
        written = make_class_of(root / "class")
        return grade_sample(written, root, sample=args.sample, jobs=args.jobs, before=args.before,
                            extra=[flag for flag in extra if flag != "--"])


if __name__ == "__main__":
    sys.exit(main())
