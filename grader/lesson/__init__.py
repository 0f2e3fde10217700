"""The lesson, defined once: its API (manifest), the checks that compare work with it, and the stubs."""
