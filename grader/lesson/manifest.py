"""The lesson's API, defined once: the modules a student writes, their functions, and the parts they are graded in.

Every other place derives from here: the untrusted runner (which receives this map in its request), the stubs,
the visible tests' loader, the reports' part columns, the kit's tests and the benchmarks.
"""

from pathlib import Path

# The parts of the lesson, in report order; each hidden test is tagged with one.
PARTS = ("shape_math", "augmentation", "build_cnn", "build_cnn_v2", "training", "filters")

# The student's modules and the functions each one defines, in the order the probe calls them.
MODULES = {
    "shape_math": ("conv_output_size", "pool_output_size", "conv_params", "dense_params", "head_params"),
    "augmentation": ("build_augmentation",),
    "cnn": ("build_cnn", "build_cnn_v2"),
    "filters": ("first_layer_filters", "feature_maps"),
}
# The signatures every stub, solution and submission shares (checked against solutions/ by the kit's tests).
SIGNATURES = {
    "conv_output_size": "(n, kernel_size, strides=1, padding='valid')",
    "pool_output_size": "(n, pool_size=2, strides=None, padding='valid')",
    "conv_params": "(kernel_size, in_channels, filters, use_bias=True)",
    "dense_params": "(in_features, units, use_bias=True)",
    "head_params": "(feature_shape, num_classes, pooling)",
    "build_augmentation": "()",
    "build_cnn": "(num_classes=10)",
    "build_cnn_v2": "(num_classes=10)",
    "first_layer_filters": "(model)",
    "feature_maps": "(model, images)",
}
# A submission may also put everything into one file of this name (or a notebook, which becomes this file).
SINGLE_FILE_MODULE = "submission"

HOME_MODULE = {function: module for module, functions in MODULES.items() for function in functions}
API = tuple(HOME_MODULE)
SHAPE_MATH = MODULES["shape_math"]
CNN_BUILDERS = MODULES["cnn"]
BUILDERS = MODULES["augmentation"] + CNN_BUILDERS
FILTERS = MODULES["filters"]
MODULE_FILES = tuple(f"{module}.py" for module in MODULES)

# How the probe calls each function: with the request's list of shape-math cases, to build a model, or on the
# checker's seeded model (the bonus).
CALL_KIND = {**{name: "shape_math" for name in SHAPE_MATH}, **{name: "builder" for name in BUILDERS},
             **{name: "filters" for name in FILTERS}}

# The API functions a function calls (the networks call build_augmentation()). Where the student's own fails, the
# probe calls the function again with the lesson's version of the one it calls, so each mistake costs its own part.
CALLS = {"build_cnn": ("build_augmentation",), "build_cnn_v2": ("build_augmentation",)}
# The parts that judge another part's result and so keep its substitution: the training check trains build_cnn (a
# network that learns needs the lesson's block where the student's cannot be built).
USES = {"training": "build_cnn"}

# Where the points of every hidden test are kept.
POINTS_FILE = Path(__file__).resolve().parent.parent / "checker" / "hidden_tests" / "points.toml"


def module_list(functions=API):
    """Return 'shape_math.py, augmentation.py, cnn.py and filters.py' (the modules holding functions)."""
    names = [f"{module}.py" for module in MODULES if set(MODULES[module]) & set(functions)]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
