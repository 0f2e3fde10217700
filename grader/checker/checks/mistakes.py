"""A network's mistakes, counted: where it differs from the lesson's in one place only, every check of it that fails
fails for that one reason, and the report tells it once (the cause of each of those failures)."""

from grader.checker.checks.augmentation import check_augmentation_inside, fixed_training, fixed_training_calls
from grader.checker.checks.comparison import layer_mistakes
from grader.checker.checks.network import check_input_shape
from grader.checker.checks.preconditions import check_has_convolutions


def network_mistakes(model, call, builder, block=None):
    """Return a network's differences from the lesson's, one list of sentences per mistake.

    Everything the checks of a network judge: its input, the augmentation it holds (against `block`, what
    build_augmentation() returns), how it calls it, and its other layers and their settings (layer_mistakes).
    """
    missing = check_has_convolutions(model, call)
    if missing:
        return [missing]
    mistakes = [found for found in (check_input_shape(model, call), check_augmentation_inside(model, call, block))
                if found]
    mistakes += [[fixed_training(call, name, training)] for name, training in fixed_training_calls(model)[:1]]
    return mistakes + layer_mistakes(model, call, builder)


def one_mistake(model, call, builder, block=None):
    """Return the one mistake of a network that differs from the lesson's in one place only, in one line; else ''.

    A model without a Conv2D is not counted here: its checks share cause_of's NO_CONVOLUTION.
    """
    mistakes = network_mistakes(model, call, builder, block)
    if len(mistakes) != 1 or check_has_convolutions(model, call):
        return ""
    return f"{call.partition('(')[0]}(): {mistakes[0][0].removeprefix(f'Called {call}. ')}"
