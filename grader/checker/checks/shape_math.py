"""Shape math: the message when a student's answer differs from what Keras gives.

What Keras gives, and the usual mistakes' answers, come from grader.checker.checks.keras_truth for any arguments
(the grader's), or from the data recorded for the visible tests' own cases (the students' copy, recorded_cases).
"""

import numpy as np

from grader.checker.checks.expectations import recorded


def recorded_cases():
    """Return {call as call_repr writes it: (Keras's answer, [(wrong answer, hint)])} for the visible tests' own cases.

    Recorded beside the students' copy of these checks when it is made (grader.lesson.stubs); empty in the grader.
    """
    return recorded().get("shape_math_cases", {})


def call_repr(function, args=(), kwargs=None):
    """Return how a call reads in a message: conv_output_size(32, 3, strides=2, padding='same')."""
    parts = [repr(tuple(a) if isinstance(a, list) else a) for a in args]
    parts += [f"{key}={value!r}" for key, value in (kwargs or {}).items()]
    return f"{function}({', '.join(parts)})"


def check_recorded_answer(function, args, kwargs, returned):
    """Return the problem with the answer to one of the visible tests' calls, or [] when it is Keras's."""
    call = call_repr(function, args, kwargs)
    cases = recorded_cases()
    if call not in cases:
        raise KeyError(f"No answer is recorded for {call}: the visible tests hold answers only for their own cases.")
    expected, mistakes = cases[call]
    return answer_problems(function, args, kwargs, returned, expected, mistakes)


def answer_problems(function, args, kwargs, returned, expected, mistakes):
    """Return the problem with one shape-math answer, or [] when it equals what Keras gives.

    mistakes: [(wrong answer, hint)] the usual mistakes give for this call; the first that returned matches is shown.
    """
    call = call_repr(function, args, kwargs)
    if isinstance(returned, bool) or not isinstance(returned, (int, float, np.integer, np.floating)):
        return [f"Called {call}. It returned {returned!r} ({type(returned).__name__}), but Keras gives "
                f"{expected}: return a whole number."]
    if returned != expected:
        return [f"Called {call}. It returned {returned!r}, but Keras gives {expected}."
                f"{likely_mistake(function, returned, expected, mistakes)}"]
    return []


SHAPE_MATH_HINTS = {
    "conv_output_size": " Valid: floor((n - k) / s) + 1; same: ceil(n / s).",
    "pool_output_size": " The stride defaults to pool_size, then the conv formula applies.",
    "conv_params": " A Conv2D has k*k*C_in*F weights plus F biases.",
    "dense_params": " A Dense layer has in_features*units weights plus units biases.",
    "head_params": (" GAP keeps `channels` features, Flatten keeps height*width*channels; then Dense adds a bias "
                    "per class."),
}


def likely_mistake(function, returned, expected, mistakes):
    """Return the hint of the usual mistake that gives `returned`, else the function's formula."""
    for answer, hint in mistakes:
        if answer == returned and answer != expected:
            return hint
    return SHAPE_MATH_HINTS.get(function, "")
