"""The lesson, defined once: its API (manifest) and the stubs (its checks are grader.checker.checks)."""
