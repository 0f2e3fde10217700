"""Hidden test for build_cnn_v2's new block: the lesson's hand math, checked one number at a time."""

from grader.checker.session import expect
from grader.lesson.checks import check_has_convolutions, layer_params, stages

PART = "build_cnn_v2"
CALL = "build_cnn_v2()"


def test_new_block(grading):
    """new block: Conv2D(256) with 295,168 parameters, pool to (2, 2, 256), head 2,570"""
    model = grading.model("build_cnn_v2")
    expect(check_has_convolutions(model, CALL, "its new block"))
    found = stages(model)
    convs = [(layer, shape) for kind, layer, shape in found if kind == "conv"]
    pools = [shape for kind, _, shape in found if kind == "pool"]
    dense = [layer for kind, layer, _ in found if kind == "dense"]
    problems = []
    if len(convs) < 6 or convs[5][1][-1] != 256:
        problems.append(f"Called {CALL}. The lesson's v2 adds a new block after the (4, 4, 128) pool: "
                        f"Conv2D(256, 3, padding='same', activation='relu'), then MaxPooling2D(2). Your model has "
                        f"{len(convs)} Conv2D layers; the sixth should have 256 filters.")
    elif layer_params(convs[5][0]) != 295_168:
        problems.append(f"Called {CALL}. The new Conv2D(256) has {layer_params(convs[5][0]):,} parameters; "
                        f"the lesson's hand math gives 3*3*128*256 + 256 = 295,168.")
    elif len(pools) >= 4 and pools[3][-1] != 256:  # the fourth pool acts on fewer channels: it comes first
        problems.append(f"Called {CALL}. The fourth MaxPooling2D gives {tuple(pools[3])}, before the new "
                        f"Conv2D(256): the order is wrong. The lesson's v2 adds Conv2D(256, 3, padding='same', "
                        f"activation='relu') first, then MaxPooling2D(2).")
    elif len(pools) < 4 or tuple(pools[3]) != (None, 2, 2, 256):
        last = tuple(pools[-1]) if pools else None
        problems.append(f"Called {CALL}. After the new Conv2D(256) the lesson's v2 has a MaxPooling2D(2) giving "
                        f"(None, 2, 2, 256); your last pool gives {last}. Did you forget the new block's pool?")
    if not dense or layer_params(dense[-1]) != 2_570:
        got = f"{layer_params(dense[-1]):,}" if dense else "no"
        problems.append(f"Called {CALL}. The Dense head has {got} parameters; with 256 channels after GAP the lesson "
                        f"gives 256*10 + 10 = 2,570.")
    expect(problems)
