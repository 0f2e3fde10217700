"""What a check needs before it can judge: a model with a Conv2D, a block holding some of the lesson's
augmentation; and the one root cause a check's problems share when it is missing."""

import functools

from grader.checker.checks.models import flat_layers

NO_CONVOLUTION = ("Called {call}. Your model has no Conv2D layer, so it is not the lesson's CNN: {judged} earns "
                  "nothing until the model is built from the lesson's Conv2D(..., 3, padding='same', "
                  "activation='relu') blocks.")
NOT_A_MODEL = ("Called {call}. It returned {got}, but the lesson's builders return a keras.Model: end with "
               "return keras.Model(inputs, outputs).")


def check_has_convolutions(model, call, judged="the network"):
    """Return a problem if the model has no Conv2D layer (or is no model): no network check can judge it then."""
    if not hasattr(model, "layers"):
        return [NOT_A_MODEL.format(call=call, got=type(model).__name__)]
    if not any(type(layer).__name__ == "Conv2D" for layer in flat_layers(model)):
        return [NO_CONVOLUTION.format(call=call, judged=judged)]
    return []


def cause_of(problems):
    """Return the root cause a check's problems share with other checks' ('' if none), in one line.

    A model without a Conv2D, or no model at all, fails every network check for that one reason.
    """
    import re

    for template in (NO_CONVOLUTION, NOT_A_MODEL, NO_LESSON_AUGMENTATION):
        said = max(re.split(r"\{\w+\}", template), key=len)  # its longest fixed words
        called = re.match(r"Called (\w+)\(", problems[0]) if problems else None
        if called and all(said in problem for problem in problems):
            return f"{called.group(1)}(): {said.strip(' .:')}"
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
