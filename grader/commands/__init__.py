"""The instructor's commands, one module each: its flags (add_parser), and a keyword-only main that does the work.

grader/cli.py only collects these modules into one parser; nothing here imports it.
"""

COMMANDS = ("grade", "batch", "merge", "calibrate", "ci", "gradescope", "release")
