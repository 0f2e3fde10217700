"""Code that runs beside student code, inside the sandbox. The grader never imports it: the launcher runs it by path."""
