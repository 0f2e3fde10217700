"""Probe a submission folder inside the test process: the untrusted runner's own functions, without its sandbox.

For the kit's tests of the checker, where dozens of trusted variants of the reference are graded: grading
them through the sandboxed subprocess costs seconds each. The data is made exactly as the probe makes it
(grader/untrusted/runner.py's run_function, with the envelope the launcher sends), then handed to the
trusted checker with grader.grade.check.
"""

import functools
import importlib
import sys
from pathlib import Path

from grader import protocol
from grader.checker.hidden_tests.cases import probe_request
from grader.lesson.manifest import API, CNN_BUILDERS, MODULES
from grader.protocol import FunctionOutcome, ProbeResult
from grader.sandbox.launcher import runner_envelope
from grader.untrusted import runner
from grader.untrusted.weights import SeededModel


def import_submission(folder):
    """Import a folder's API modules (they import each other by plain name); leave sys.modules as it was."""
    names = [name for name in MODULES if (Path(folder) / f"{name}.py").is_file()]
    saved = {name: sys.modules.pop(name) for name in MODULES if name in sys.modules}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        return {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(folder))
        for name in MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@functools.lru_cache(maxsize=4)
def seeded_model(config, seed):
    """Return the filters' seeded model for a request, built once per test process (the runner builds it per probe)."""
    return SeededModel(config, seed)


def probe_in_process(folder, functions=API, reuse=None):
    """Return the ProbeResult the probe's runner gives for a folder's functions, on top of `reuse`'s outcomes."""
    envelope = runner_envelope(probe_request(), folder)
    lesson = runner.Lesson(envelope)
    modules = import_submission(folder)
    outcomes = dict(reuse.outcomes) if reuse else {}
    failed = {name for name, outcome in outcomes.items() if outcome.status != protocol.OK}
    filters = envelope["request"].get("filters")
    seeded = seeded_model(filters["model_config"], filters["weights_seed"]) if filters else None

    def run_once(name, substituted):
        fields = runner.run_function(name, modules, envelope, lesson, protocol, seeded)
        outcomes[name] = FunctionOutcome(name, fields["status"], fields.get("value"), fields.get("message", ""),
                                         substituted=dict(substituted))
        return fields

    for name in functions:  # as the runner does: a function that fails is run again with the lesson's callees
        runner.run_on_its_own(name, run_once, modules, envelope, lesson, protocol, failed, {})
    return ProbeResult(outcomes=outcomes)


def functions_of(module, *, builders_too=False):
    """Return the API functions a module defines, plus the CNN builders when they call into it."""
    names = set(MODULES[module])
    if builders_too:
        names |= set(CNN_BUILDERS)
    return [name for name in API if name in names]
