"""What the hidden tests see of one submission: the probe's data, rebuilt models, the training outcome.

The hidden tests reach this object through the `grading` fixture. Each accessor either returns something
the checker built itself or fails the calling test with a sentence that says why.
"""

import contextlib

import pytest

from grader import protocol
from grader.checker.rebuild import ConfigRejected, rebuild
from grader.lesson.checks import exception_hint
from grader.lesson.manifest import TRAINING_BUILDER

STATUS_MESSAGES = {
    protocol.NOT_IMPLEMENTED: "{call} is not implemented yet (it raises NotImplementedError).",
    protocol.MISSING: "The submission does not define {name}().",
}


def expect(problems):
    """Fail the calling test with the problems in plain words, if there are any."""
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def with_hint(message):
    """Return a message about an exception, followed by the kit's hint for it where there is one."""
    hint = exception_hint(message)
    return f"{message} {hint}" if hint else message


class GradingSession:
    """Data and memoized work for one submission's hidden tests (a pytest plugin object)."""

    def __init__(self, probe, *, training=True, dataset="synthetic", report_dir=None, trainer=None):
        self.probe = probe
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
        pytest.fail(with_hint(message), pytrace=False)

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
            pytest.fail(str(found), pytrace=False)
        return found

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

        pictures = save_outcome_pictures(outcome, self.report_dir)
        self.artifacts.update({name: str(path) for name, path in pictures.items()})
