"""Grade the rest of a submission when part of it fails to import (loaded by the runner, beside which it lies).

Two rescues: a module whose own imports fail is run again with a placeholder for each name they could not give, and
a module that fails only because a module it imports failed is imported again with the lesson's stand-ins for the
functions it calls. Like the runner, it imports nothing of the kit: the runner loads it by path.
"""

import builtins
import contextlib
import difflib
import importlib.util
import linecache
import os
import sys
import types


class MissingImport(ImportError):
    """A name whose import failed was used: the function using it is reported as not run, with the import error."""


class Placeholder:
    """Stands for a name a submission could not import: any use of it raises MissingImport with the import error."""

    def __init__(self, message):
        self._message = message

    def __getattr__(self, name):
        if name.startswith("__"):  # copy, pickle and class creation probe for dunders: they fail like any use
            raise MissingImport(self._message)
        return Placeholder(self._message)  # `np.zeros` of a failed `import numpy as np` fails when called

    def _fail(self, *args, **kwargs):
        raise MissingImport(self._message)

    __call__ = __getitem__ = __iter__ = __len__ = __mro_entries__ = _fail


class PartialModule:
    """A module from which some names could not be imported: those are placeholders, the rest the module's own."""

    def __init__(self, module, missing):
        self._module, self._missing = module, missing

    def __getattr__(self, name):
        return self._missing[name] if name in self._missing else getattr(self._module, name)


def failed_import(text, submission_dir):
    """Return 'ImportError: text (file.py:line: the import statement)' for the import the submission runs now."""
    frame = sys._getframe(2)
    where = os.path.relpath(frame.f_code.co_filename, submission_dir)
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{text} ({where}:{frame.f_lineno}: {line})" if line else f"{text} ({where}:{frame.f_lineno})"


def import_with_placeholders(name, path, submission_dir):
    """Run a module again with a placeholder bound to each name its imports cannot give; return (module, missing).

    missing: {name: the import error, as describe_exception words it}. (None, {}) when the module fails again.
    """
    missing = {}

    def tolerant_import(module_name, globals=None, locals=None, fromlist=(), level=0):
        try:
            module = builtins.__import__(module_name, globals, locals, fromlist, level)
        except ImportError as error:
            message = failed_import(f"{type(error).__name__}: {error}", submission_dir)
            bound = fromlist or [module_name.partition(".")[0]]
            missing.update((item, message) for item in bound if item != "*")
            return Placeholder(message)
        absent = [item for item in fromlist or () if item != "*" and not hasattr(module, item)]
        if not absent:
            return module
        stand_ins = {}
        for item in absent:
            close = difflib.get_close_matches(item, [n for n in dir(module) if not n.startswith("_")], n=1)
            text = f"ImportError: cannot import name {item!r} from {module.__name__!r}" + (
                f"; did you mean {close[0]!r}?" if close else "")
            missing[item] = failed_import(text, submission_dir)
            stand_ins[item] = Placeholder(missing[item])
        return PartialModule(module, stand_ins)

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__builtins__ = {**vars(builtins), "__import__": tolerant_import}
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - it fails for another reason too: the first import error stands
        sys.modules.pop(name, None)
        return None, {}
    return module, missing


def stand_in(name, config):
    """Return the lesson's version of an API function: it rebuilds the model from the reference's config."""

    def function(*args, **kwargs):
        import keras

        return keras.models.model_from_json(config)

    function.__name__ = function.__qualname__ = name
    function.lesson_stand_in = True
    return function


@contextlib.contextmanager
def substituted(stand_ins, modules):
    """Replace the named functions by their stand-ins in every submission module that holds them, then restore."""
    saved = [(module, name, getattr(module, name)) for module in modules.values() for name in stand_ins
             if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, stand_ins[name])
    try:
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def stand_ins_for(functions, envelope):
    """Return the lesson's stand-ins for those of the functions the request has the reference's config of."""
    configs = envelope["request"].get("substitutes", {})
    return {name: stand_in(name, configs[name]) for name in sorted(functions) if isinstance(configs.get(name), str)}


def import_with_stand_ins(modules, failures, envelope, lesson):
    """Import again each module that failed only because a module it imports failed, with the lesson's stand-ins.

    A cnn.py that does `from augmentation import build_augmentation` fails to import when augmentation.py does; with a
    stand-in augmentation module holding the lesson's build_augmentation it imports, and its functions are graded on
    their own. Return {module: [stand-in function, ...]} for the modules imported this way.
    """
    rescued = {}
    for broken in [name for name in failures if name in lesson.modules]:
        called = {target for targets in lesson.calls.values() for target in targets if target in lesson.modules[broken]}
        stand_ins = stand_ins_for(called, envelope)
        if not stand_ins:
            continue
        sys.modules[broken] = types.ModuleType(broken)
        for name, function in stand_ins.items():
            setattr(sys.modules[broken], name, function)
        for name in [name for name in failures if name in lesson.modules and name != broken]:
            try:
                modules[name] = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - it fails for a reason of its own: that first error stands
                sys.modules.pop(name, None)
                continue
            del failures[name]
            rescued[name] = sorted(stand_ins)
    return rescued
