"""What the hidden tests see of one submission: the probe's data, rebuilt models, the training outcome.

The hidden tests reach this object through the `grading` fixture. Each accessor either returns something
the checker built itself or fails the calling test with a sentence that says why.
"""

import contextlib

import pytest

from grader import protocol
from grader.checker.checks.augmentation import exception_hint
from grader.checker.checks.preconditions import cause_of
from grader.checker.rebuild import ConfigRejected, rebuild
from grader.lesson.manifest import CALLS, TRAINING_BUILDER

STATUS_MESSAGES = {
    protocol.NOT_IMPLEMENTED: "{call} is not implemented yet (it raises NotImplementedError).",
    protocol.MISSING: "The submission does not define {name}().",
}


def expect(problems):
    """Fail the calling test with the problems in plain words, if there are any."""
    if problems:
        message = "\n".join(problems)
        fail(message, cause_of(problems) or message)


def fail(message, cause):
    """Fail the calling test with a message, naming its root cause (the tests sharing one are told as one)."""
    error = pytest.fail.Exception(message, pytrace=False)
    error.cause = cause
    raise error


def function_cause(name, outcome):
    """Return the root cause of every test that fails because an API function itself failed, as one line.

    A function the probe never reached (the submission could not be imported) shares its cause with all the others.
    """
    if outcome.status == protocol.NOT_RUN:
        return f"not checked: {outcome.message or 'the submission could not be imported'}".splitlines()[0]
    return f"{name}(): {outcome.message or outcome.status}".splitlines()[0]


SUBSTITUTED = "{parts} graded with the lesson's {names}, since yours {why}"
WHY = {
    protocol.ERROR: "raises {message}",
    protocol.NOT_IMPLEMENTED: "is not implemented yet",
    protocol.MISSING: "is missing",
    protocol.NOT_RUN: "could not be imported ({message})",
}


def words(items):
    """Return 'a', 'a and b', 'a, b and c'."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def substitution_notes(probe, graded=None):
    """Return one line per function the probe replaced by the lesson's: which parts were graded with it, and why.

    graded: the parts graded (default all of the lesson's).
    """
    from grader.lesson.manifest import PARTS, USES

    graded_with = {}
    for name, outcome in probe.outcomes.items():
        for called in outcome.substituted:
            graded_with.setdefault(called, []).append(name)
    notes = []
    for called, names in graded_with.items():
        parts = [part for part in PARTS if (part in names or USES.get(part) in names) and part in (graded or PARTS)]
        own = probe.outcome(called)
        why = WHY.get(own.status, "{message}").format(message=(own.message or own.status).splitlines()[0].rstrip("."))
        notes.append(SUBSTITUTED.format(parts=words(parts) + (" were" if len(parts) > 1 else " was"),
                                        names=f"{called}()", why=why))
    return notes


def with_hint(message):
    """Return a message about an exception, followed by the kit's hint for it where there is one."""
    hint = exception_hint(message)
    return f"{message} {hint}" if hint else message


class GradingSession:
    """Data and memoized work for one submission's hidden tests (a pytest plugin object)."""

    def __init__(self, probe, *, training=True, dataset="synthetic", report_dir=None, trainer=None, drawn=None):
        self.probe = probe
        self.drawn = drawn  # training pictures drawn before, kept by the Grader (grader.training.pictures)
        self.training = training
        self.dataset = dataset
        self.report_dir = report_dir
        self.trainer = trainer
        self.artifacts = {}
        self._models = {}
        self._training_outcome = None
        self._training_key = None

    def require(self, name, call=None):
        """Return the probe's outcome for a function, or fail the test with what went wrong there."""
        outcome = self.probe.outcome(name)
        if outcome.status == protocol.OK:
            return outcome
        call = call or f"{name}()"
        template = STATUS_MESSAGES.get(outcome.status)
        if template:
            message = template.format(call=call, name=name)
        elif outcome.status == protocol.NOT_RUN:
            message = f"{call} was not checked: {outcome.message or 'the submission could not be imported.'}"
        elif outcome.status == protocol.WRONG_TYPE:
            message = f"Called {call}. It {outcome.message.rstrip('.')}."
        elif outcome.status == protocol.ERROR:
            message = f"Called {call}. It raised {outcome.message.rstrip('.')}."
        else:  # timed out or crashed: the probe's message says how and where
            message = f"Called {call}: {outcome.message.rstrip('.')}."
        fail(with_hint(message), function_cause(name, outcome))

    def model(self, name, num_classes=None):
        """Return the model a builder returned, rebuilt by the checker, or fail the test with the reason."""
        key = (name, num_classes)
        if key not in self._models:
            call = f"{name}(num_classes={num_classes})" if num_classes else f"{name}()"
            value = self.require(name, call).value
            field = "config_num_classes" if num_classes else "config"
            data = value.get(field) if isinstance(value, dict) else None
            try:
                if isinstance(data, dict) and "error" in data:
                    raise ConfigRejected(with_hint(f"Called {call}. It raised {data['error']}"))
                if not isinstance(data, str):
                    raise ConfigRejected(f"Called {call}. It did not return a Keras model.")
                self._models[key] = rebuild(data, call)
            except ConfigRejected as error:
                self._models[key] = error
        found = self._models[key]
        if isinstance(found, ConfigRejected):
            fail(str(found), f"{name}(): {found}".splitlines()[0])  # every test of this model fails with it
        return found

    def called_model(self, name, called):
        """Return the model of `called` that `name` was built with: the student's, or the lesson's stand-in.

        The lesson's where the probe substituted it (the student's could not be used) or where the student's failed;
        the tests judging `name` compare what it holds with this, so a mistake in `called` is charged to its own part.
        """
        from grader.checker.hidden_tests.cases import substitutes

        if called not in self.probe.outcome(name).substituted and self.probe.outcome(called).status == protocol.OK:
            return self.model(called)
        key = (called, "lesson")
        if key not in self._models:
            self._models[key] = rebuild(substitutes()[called], f"the lesson's {called}()")
        return self._models[key]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Name a network's one mistake as the cause of each of its checks that fails on it (told once, not N times).

        A network that differs from the lesson's in one place only (network_mistakes: its input, its augmentation,
        one layer or one setting) fails every check of what it returns for that one reason, each in its own words.
        """
        error = call.excinfo.value if call.excinfo is not None else None
        if isinstance(error, pytest.fail.Exception) and getattr(error, "cause", None) is not None:
            from grader.checker.hidden_tests.conftest import part_of
            from grader.lesson.manifest import BUILDER_PARTS

            builder = BUILDER_PARTS.get(part_of(item))
            said = [line for line in str(error.msg).splitlines() if line.strip()]
            if builder and said and all(line.startswith(f"Called {builder}()") for line in said):
                error.cause = self.one_mistake(builder) or error.cause
        return (yield)

    def one_mistake(self, builder):
        """Return the one mistake of the network a builder returned, in one line; '' where it has none or several."""
        from grader.checker.checks.mistakes import one_mistake

        key = (builder, "one mistake")
        if key not in self._models:
            try:
                called = [self.called_model(builder, name) for name in CALLS.get(builder, ())]
                found = one_mistake(self.model(builder), f"{builder}()", builder, *called[:1])
            except (pytest.fail.Exception, ConfigRejected, KeyError):  # no model, or not one of the lesson's networks
                found = ""
            self._models[key] = found
        return self._models[key]

    def config(self, name):
        """Return the JSON config a builder returned (after the model was rebuilt successfully)."""
        self.model(name)
        return self.probe.outcome(name).value["config"]

    def known_training(self):
        """Return the trainer's key of the trained network's outcome where the outcome is known already, else None.

        A trainer that knows an equivalent network's outcome (grader.cache.TrainingCache.known) answers before the
        checker rebuilds the model: that network was rebuilt and trained before.
        """
        known = getattr(self.trainer, "known", None)
        if self.training and self._training_outcome is None and known is not None:
            outcome = self.probe.outcome(TRAINING_BUILDER)
            value = outcome.value if outcome.status == protocol.OK and isinstance(outcome.value, dict) else {}
            config = value.get("config")
            found = known(config, dataset=self.dataset) if isinstance(config, str) else None
            if found is not None:
                self._training_key, self._training_outcome = found
        return self._training_key

    def training_outcome(self):
        """Return the training check's outcome for the lesson's trained builder, trained at most once per session."""
        self.known_training()
        if self._training_outcome is None:
            config = self.config(TRAINING_BUILDER)
            self._training_outcome = self.trainer(config, dataset=self.dataset)
            key = getattr(self.trainer, "key", None)
            with contextlib.suppress(ValueError):
                self._training_key = key(config, self.dataset) if key is not None else None
        return self._training_outcome

    def save_training_pictures(self, outcome):
        """Write the training curve, filter grid and feature-map panel into the report folder, if there is one."""
        if not self.report_dir:
            return
        from grader.training.pictures import save_outcome_pictures

        pictures = save_outcome_pictures(outcome, self.report_dir, self.drawn)
        self.artifacts.update({name: str(path) for name, path in pictures.items()})
