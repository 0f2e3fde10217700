"""A class as a real one hands it in: 1,000 submissions, 3 in 4 correct in twelve styles, 1 in 4 with one of the
kit's single mistakes (over forty, in every part), graded with `grader batch` from empty caches.

The correct styles and the mistakes are the kit's own, so they stay in step with the tests that pin their grades:
the code and form styles of tests/test_styles.py, two more of benchmarks/class_folder.py, and the mutants of
tests/test_mutants.py (shape math, augmentation, both builders, the filters). A fixed seed picks each student's
style or mistake. Unlike benchmarks/class_of_1000.py (eight mistakes: eight trainings), most mistakes in
build_cnn or the augmentation make a network of their own, so the class needs ~30 training runs.

    python benchmarks/real_class.py [--sample 100] [--jobs 2] [--keep DIR] [--before DIR] [-- batch flags]

It prints wall and CPU seconds, the trainings done and reused, and the workers' time by phase (the batch's
closing lines). --sample 1000 grades the whole class (about 17 minutes on 2 cores before issue 25).
"""

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT_ROOT))

from benchmarks.class_folder import SEQUENTIAL_CNN, single_file  # noqa: E402
from benchmarks.class_of_1000 import FIRST_NAMES, RELU_AS_ACTIVATION, RELU_CONV, grade_sample  # noqa: E402
from tests.test_mutants import MUTANTS, write_mutant  # noqa: E402
from tests.test_styles import CODE_STYLES, FORM_STYLES  # noqa: E402

CLASS_SIZE = 1000
SEED = 25


def _one_file_sequential(folder):
    path = folder / "sequential.py"
    folder.mkdir(parents=True)
    path.write_text(single_file().replace("import keras\n", "from tensorflow import keras\n") + SEQUENTIAL_CNN)
    return path


def _one_file_activation_layers(folder):
    path = folder / "activation_layers.py"
    folder.mkdir(parents=True)
    path.write_text(single_file([(RELU_CONV.format(f=f), RELU_AS_ACTIVATION.format(f=f)) for f in (32, 64, 128, 256)]))
    return path


# style -> writer(folder) returning the submission it wrote (the folder itself or a file in it): twelve styles.
STYLES = {**CODE_STYLES, **FORM_STYLES, "one_file_sequential_relu_layers": _one_file_sequential,
          "one_file_activation_layers": _one_file_activation_layers}


def make_real_class(out, size=CLASS_SIZE, seed=SEED):
    """Write the class into out; return [(path, kind)], kind a style of STYLES or a mutant id of MUTANTS."""
    out, rng = Path(out), random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="lesson6-real-class-") as scratch:
        for number in range(size):
            student = f"{rng.choice(FIRST_NAMES)}_{number:04d}"
            work = Path(scratch) / student
            if rng.random() < 0.25:
                mutant = rng.choice(MUTANTS)
                kind, made = mutant.id, write_mutant(mutant, work)
            else:
                kind = rng.choice(sorted(STYLES))
                made = STYLES[kind](work)
            path = out / (student + (made.suffix if made.is_file() else ""))
            shutil.move(made, path)
            written.append((path, kind))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="submissions graded (default: 100; 1000: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="write the class and the gradebook here instead of a temporary folder")
    parser.add_argument("--before", help="another checkout of the kit that grades the same sample after this one")
    args, extra = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="lesson6-real-class-") as scratch:
        root = Path(args.keep or scratch)
        shutil.rmtree(root / "class", ignore_errors=True)
        written = make_real_class(root / "class")
        kinds = {kind for _path, kind in written}
        mistakes = sorted(kinds - set(STYLES))
        print(f"class of {len(written)}: {sum(kind in STYLES for _p, kind in written)} correct in "
              f"{len(kinds & set(STYLES))} styles, {sum(kind not in STYLES for _p, kind in written)} with one of "
              f"{len(mistakes)} distinct mistakes (seed {SEED})", flush=True)
        return grade_sample(written, root, sample=args.sample, jobs=args.jobs, before=args.before,
                            extra=[flag for flag in extra if flag != "--"], is_mistake=lambda kind: kind not in STYLES)


if __name__ == "__main__":
    sys.exit(main())
