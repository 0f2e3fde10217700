"""The untrusted probe: import a submission in a sandboxed child process and report data only."""

from grader.probe.launcher import Limits, run_probe
from grader.probe.result import FunctionOutcome, ProbeResult

__all__ = ["FunctionOutcome", "Limits", "ProbeResult", "run_probe"]
