"""What a check needs before it can judge: a model with a Conv2D, a block holding some of the lesson's
augmentation; and the one root cause a check's problems share when it is missing."""

import functools

from grader.checker.checks.expectations import lesson
from grader.checker.checks.models import flat_layers

NO_CONVOLUTION = ("Called {call}. Your model has no Conv2D layer, so it is not the lesson's CNN: {judged} earns "
                  "nothing until the model is built from the lesson's {convolution} blocks.")
# How the checks at inference begin to tell a block holding more than random layers (augmentation's
# _acts_at_inference): the block's check and both networks' fail for that one reason.
ACTS_AT_INFERENCE = "The augmentation block also holds "
# How a shape-math problem tells Keras's answer; the hint naming the likely mistake follows it (shape_math).
KERAS_GIVES = ", but Keras gives "
NOT_A_MODEL = ("Called {call}. It returned {got}, but the lesson's builders return a keras.Model: end with "
               "return keras.Model(inputs, outputs).")


def lesson_convolution():
    """Return the lesson's first Conv2D as written, its filters left open: Conv2D(..., 3, activation='relu')."""
    for network in lesson()["networks"].values():
        for code in network["layer_code"]:
            if code.startswith("Conv2D("):
                settings = code.removeprefix("Conv2D(").partition(", ")[2]
                return f"Conv2D(..., {settings}" if settings else "Conv2D(...)"
    return "Conv2D(...)"


def no_convolution():
    """Return NO_CONVOLUTION naming the lesson's own convolution, {call} and {judged} left to fill."""
    return NO_CONVOLUTION.replace("{convolution}", lesson_convolution())


def check_has_convolutions(model, call, judged="the network"):
    """Return a problem if the model has no Conv2D layer (or is no model): no network check can judge it then."""
    if not hasattr(model, "layers"):
        return [NOT_A_MODEL.format(call=call, got=type(model).__name__)]
    if not any(type(layer).__name__ == "Conv2D" for layer in flat_layers(model)):
        return [no_convolution().format(call=call, judged=judged)]
    return []


def cause_of(problems):
    """Return the root cause a check's problems share with other checks' ('' if none), in one line.

    A model without a Conv2D, or no model at all, fails every network check for that one reason; a block holding
    more than random layers fails the checks at inference of the block and of both networks (ACTS_AT_INFERENCE); one
    shape-math misconception (one hint after every wrong answer) fails the tests of every function sharing a formula.
    """
    import re

    for template in (no_convolution(), NOT_A_MODEL, NO_LESSON_AUGMENTATION):
        said = max(re.split(r"\{\w+\}", template), key=len)  # its longest fixed words
        called = re.match(r"Called (\w+)\(", problems[0]) if problems else None
        if called and all(said in problem for problem in problems):
            return f"{called.group(1)}(): {said.strip(' .:')}"
    inside = {problem[problem.find(ACTS_AT_INFERENCE):] for problem in problems if ACTS_AT_INFERENCE in problem}
    if problems and len(inside) == 1 and all(ACTS_AT_INFERENCE in problem for problem in problems):
        return f"build_augmentation(): {inside.pop()}"
    said = [problem for problem in problems if not problem.startswith("... and ")]
    hints = {problem.partition(KERAS_GIVES)[2].partition(". ")[2] for problem in said}
    if said and len(hints) == 1 and "" not in hints:
        return hints.pop()
    return ""


def needs_convolutions(judged):
    """Make a network check fail with NO_CONVOLUTION for a model without a Conv2D, instead of passing vacuously."""

    def decorate(check):
        @functools.wraps(check)
        def checked(model, call, *args, **kwargs):
            return check_has_convolutions(model, call, judged) or check(model, call, *args, **kwargs)

        return checked

    return decorate


NO_LESSON_AUGMENTATION = ("Called {call}. The block has {found}, but none of the lesson's {lesson}, so {judged} is not "
                          "the lesson's augmentation's: it earns nothing until the block holds at least one of them.")
