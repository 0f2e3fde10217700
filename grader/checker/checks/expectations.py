"""The lesson's expectations the checks compare with: derived from its reference solutions by the grader, or
recorded from them in the students' copy of these checks (lesson_checks.json beside it)."""

import functools
import json
from pathlib import Path

# The students' copy reads the lesson's data from this file beside it, written with it (grader.lesson.stubs): the
# lesson's expectations, and Keras's answers to the visible tests' own shape-math calls. The grader has no such file.
RECORDED_FILE = "lesson_checks.json"


def as_tuples(value):
    """Return JSON data with its lists as tuples, as the checks hold shapes and settings."""
    if isinstance(value, list):
        return tuple(as_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: as_tuples(item) for key, item in value.items()}
    return value


NO_RECORDED_DATA = ("The visible tests compare with the lesson's data, expected at {path}. Received: no such file; "
                    "restore it from the assignment's repository.")


@functools.cache
def recorded():
    """Return the lesson's data recorded beside the students' copy of these checks ({} in the grader, which derives
    it from the reference)."""
    if __name__.startswith("grader."):
        return {}
    path = Path(__file__).with_name(RECORDED_FILE)
    if not path.is_file():
        raise FileNotFoundError(NO_RECORDED_DATA.format(path=path))
    return as_tuples(json.loads(path.read_text(encoding="utf-8")))


def lesson():
    """Return the lesson's expectations: input shape, networks (stages, counts, layers), augmentation, Rescaling."""
    return recorded().get("expectations") or derived()


# BEGIN GRADER ONLY: the students' copy has its recorded data instead, and no reference to derive from.
def derived():
    """Return the lesson's expectations, derived from its reference (grader.checker.reference)."""
    from grader.checker.reference import expectations

    return expectations()
# END GRADER ONLY


def network(builder):
    """Return the expectations of one builder's network (stages, counts, layers, outputs)."""
    return lesson()["networks"][builder]


def input_shape():
    """Return the shape of one input image of the lesson's networks, e.g. (32, 32, 3)."""
    return tuple(lesson()["input_shape"])


def rescale():
    """Return the factor of the lesson's Rescaling layer (None if its networks have none)."""
    return lesson()["rescale"]


def dataset_name():
    """Return the name of the lesson's images in messages, e.g. "CIFAR-10"."""
    return lesson()["dataset_name"]


def lesson_augmentation():
    """Return the lesson's augmentation block as [(kind, settings)]."""
    return [(kind, dict(settings)) for kind, settings in lesson()["augmentation"]]


def augmentation_text():
    """Return the lesson's augmentation block as code: RandomFlip('horizontal'), RandomRotation(0.05), ..."""
    return ", ".join(lesson()["augmentation_code"])


def _fraction(value):
    """Return (numerator, denominator) of a factor such as 1/255, or None if it is no simple fraction."""
    from fractions import Fraction

    if value is None:
        return None
    found = Fraction(value).limit_denominator(10_000)
    return (found.numerator, found.denominator) if abs(float(found) - value) <= 1e-9 * max(abs(value), 1) else None


def pixel_range():
    """Return the raw pixels' range the lesson's Rescaling maps to 0-1, e.g. "0-255"."""
    found = _fraction(rescale())
    return f"0-{found[1]}" if found and found[0] == 1 else "raw"


def lesson_rotation():
    """Return the factor of the lesson's RandomRotation, or None if its block has none."""
    return next((settings["factor"] for kind, settings in lesson_augmentation() if kind == "RandomRotation"), None)


def lesson_augmentation_others(kind):
    """Return the settings of the lesson's augmentation layer of this kind beyond its main ones (fill mode...)."""
    return next((dict(others) for (found, _), others in zip(lesson()["augmentation"], lesson()["augmentation_others"])
                 if found == kind), {})


def lesson_layer_code(kind):
    """Return how the lesson writes its augmentation layer of this kind, e.g. "RandomZoom(0.1)"."""
    return next((code for (found, _), code in zip(lesson()["augmentation"], lesson()["augmentation_code"])
                 if found == kind), kind)


def rescale_text(spaced=False):
    """Return the lesson's Rescaling factor as code: "1/255", or "1.0 / 255" when spaced."""
    found = _fraction(rescale())
    if found is None or found[0] != 1:
        return f"{rescale():g}"
    return f"1.0 / {found[1]}" if spaced else f"1/{found[1]}"
