"""Build hook: the wheel carries the kit's solutions/ and exercises/ as package data of grader (grader/kit_sources/).

An installed kit then holds all it needs: `grader gradescope` takes its smoke submission and `grader release` its
reference and visible tests from there. Inside grader/ they stay behind the sandbox like the hidden tests.
The rest of the build is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

KIT_FOLDERS = ("solutions", "exercises")
PACKAGED_AS = Path("grader", "kit_sources")


class BuildWithKitSources(build_py):
    """Copy solutions/ and exercises/ into the built grader package (not in editable installs: the tree is there)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in KIT_FOLDERS:
            target = Path(self.build_lib, PACKAGED_AS, name)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithKitSources})
