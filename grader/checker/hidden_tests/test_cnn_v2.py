"""Hidden test for build_cnn_v2's new block: the lesson's hand math, checked one number at a time.

The new block is what the reference's v2 adds to its first network before the head; its numbers come from there.
"""

import math

from grader.checker.checks.expectations import network
from grader.checker.checks.models import ORDINALS, layer_params, stages
from grader.checker.checks.preconditions import check_has_convolutions
from grader.checker.session import expect

PART = "build_cnn_v2"
BASE = "build_cnn"
CALL = "build_cnn_v2()"


def new_block():
    """Return what the lesson's v2 adds: its conv and pool stages (index, code, shape, params), the shape before."""
    base, v2 = network(BASE), network(PART)
    start = next(index for index, (old, new) in enumerate(zip(base["stages"], v2["stages"])) if old != new)
    conv = start
    pool = next(index for index in range(start, len(v2["stages"])) if v2["stages"][index][0] == "pool")
    head = [index for index, stage in enumerate(v2["stages"]) if stage[0] == "dense"][-1]

    def stage(index):
        kind, shape, params = v2["stages"][index]
        return {"code": v2["layer_code"][index], "shape": tuple(shape), "params": params,
                "number": sum(1 for other in v2["stages"][:index + 1] if other[0] == kind)}

    return {"before": tuple(v2["stages"][start - 1][1]), "conv": stage(conv), "pool": stage(pool),
            "head": stage(head)}


def _conv_math(block):
    """Return the lesson's hand math of the new Conv2D: 'k*k*C_in*F + F = total'."""
    filters, channels, params = block["conv"]["shape"][-1], block["before"][-1], block["conv"]["params"]
    kernel = math.isqrt((params - filters) // (channels * filters))
    return f"{kernel}*{kernel}*{channels}*{filters} + {filters} = {params:,}"


def _head_math(block):
    """Return the lesson's hand math of the head: 'channels*units + units = total'."""
    channels, units = block["pool"]["shape"][-1], block["head"]["shape"][-1]
    return f"{channels}*{units} + {units} = {block['head']['params']:,}"


def _filters_of(code):
    return code.split(",")[0] + ")"


def test_new_block(grading):
    model = grading.model(PART)
    block = new_block()
    conv, pool, head = block["conv"], block["pool"], block["head"]
    filters, pooled = conv["shape"][-1], (None, *pool["shape"])
    short = _filters_of(conv["code"])
    expect(check_has_convolutions(model, CALL, "its new block"))
    found = stages(model)
    convs = [(layer, shape) for kind, layer, shape in found if kind == "conv"]
    pools = [shape for kind, _, shape in found if kind == "pool"]
    dense = [layer for kind, layer, _ in found if kind == "dense"]
    problems = []
    nth_conv, nth_pool = conv["number"] - 1, pool["number"] - 1
    if len(convs) <= nth_conv or convs[nth_conv][1][-1] != filters:
        problems.append(f"Called {CALL}. The lesson's v2 adds a new block after the {block['before']} pool: "
                        f"{conv['code']}, then {pool['code']}. Your model has {len(convs)} Conv2D layers; the "
                        f"{ORDINALS[nth_conv]} should have {filters} filters.")
    elif layer_params(convs[nth_conv][0]) != conv["params"]:
        problems.append(f"Called {CALL}. The new {short} has {layer_params(convs[nth_conv][0]):,} parameters; "
                        f"the lesson's hand math gives {_conv_math(block)}.")
    elif len(pools) > nth_pool and pools[nth_pool][-1] != filters:  # the new pool acts on fewer channels: it is first
        problems.append(f"Called {CALL}. The {ORDINALS[nth_pool]} MaxPooling2D gives {tuple(pools[nth_pool])}, "
                        f"before the new {short}: the order is wrong. The lesson's v2 adds {conv['code']} first, "
                        f"then {pool['code']}.")
    elif len(pools) <= nth_pool or tuple(pools[nth_pool]) != pooled:
        last = tuple(pools[-1]) if pools else None
        problems.append(f"Called {CALL}. After the new {short} the lesson's v2 has a {pool['code']} giving "
                        f"{pooled}; your last pool gives {last}. Did you forget the new block's pool?")
    if not dense or layer_params(dense[-1]) != head["params"]:
        got = f"{layer_params(dense[-1]):,}" if dense else "no"
        problems.append(f"Called {CALL}. The Dense head has {got} parameters; with {pool['shape'][-1]} channels "
                        f"after GAP the lesson gives {_head_math(block)}.")
    expect(problems)


def _name():
    block = new_block()
    return (f"new block: {_filters_of(block['conv']['code'])} with {block['conv']['params']:,} parameters, pool to "
            f"{block['pool']['shape']}, head {block['head']['params']:,}")


# The test's name in reports holds the lesson's numbers, derived from its reference.
test_new_block.__doc__ = _name()
