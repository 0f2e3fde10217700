"""The generic checks: each compares a model, a block or a function's answer with the lesson's expectations and
returns a list of problems in plain words (an empty list means the check passed).

Shared by the grader's hidden tests and, through a generated copy, the visible tests in exercises/, so both explain a
mistake in the same words. Expected values come from Keras itself (shape math) or from the lesson's reference.
The copy holds code only, the same for every lesson, and public Keras API only: not keras_truth, which answers shape
math for any arguments, nor what only the grader uses; the lesson's expectations and the visible tests' own answers
are recorded beside it as data, in lesson_checks.json (grader.lesson.stubs).
"""
