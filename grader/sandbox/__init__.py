"""The sandbox: start the untrusted runner beside student code, isolate it, police it, and kill it at the end."""

from grader.sandbox.launcher import Limits, run_probe

__all__ = ["Limits", "run_probe"]
