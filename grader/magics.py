"""Read a notebook cell as IPython reads it: cell magics, line magics and shell escapes become Python.

IPython's own input transformer does the reading where IPython is installed (it is not a dependency of the kit);
a small reader below covers what course notebooks use where it is not. Both give the same Python: each magic
becomes a `get_ipython()` call, as in Jupyter. The grader then grades the body of a cell magic whose body is
Python (`%%time`, `%%capture`, ...) and skips everything else IPython would hand to a magic or to the shell.
"""

import ast
import functools
import re

# Cell magics that run their body as Python in the notebook's namespace (timeit runs it inside a function).
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun", "debug")
IPYTHON_CALLS = {"run_cell_magic", "run_line_magic", "system", "getoutput"}
# A cell needs reading only if a line may start with a magic or a shell escape, or end with a help `?`.
MAYBE_IPYTHON = re.compile(r"^\s*[%!]|^\s*[\w.]+\s*=\s*[%!]|\?\s*$", re.MULTILINE)
ASSIGNED = re.compile(r"^(\s*)([\w.]+(?:\s*,\s*[\w.]+)*)\s*=\s*([%!])(.*)$")
HELP = re.compile(r"^(\s*)\?*([\w.]+)\?{1,2}\s*$")

TIMEIT_NOTE = ("cell {cell} is a %%timeit cell: Jupyter runs its body inside a timing function, so what it defines "
               "is not kept in the notebook; the grader reads it as ordinary code.")

@functools.cache
def ipython_transformer():
    """Return IPython's TransformerManager (looked for once), or None where IPython is not installed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except Exception:  # noqa: BLE001 - not installed, or broken: the kit's own reader takes over
        return None
    return TransformerManager()


def to_python(cell):
    """Return the cell as the Python IPython would run: magics and shell escapes as get_ipython() calls."""
    if not MAYBE_IPYTHON.search(cell):
        return cell
    transformer = ipython_transformer()
    if transformer is not None:
        try:
            return transformer.transform_cell(cell)
        except Exception:  # noqa: BLE001 - IPython gave up on it: read it the kit's way
            pass
    return kit_transform(cell)


def kit_transform(cell):
    """Return the cell as Python the way IPython's transformer writes it, for the magics course notebooks use."""
    lines = cell.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].startswith("%%"):
        name, _, line = lines[0][2:].partition(" ")
        body = "".join(f"{text}\n" for text in lines[1:])
        return f"get_ipython().run_cell_magic({name!r}, {line.strip()!r}, {body!r})\n"
    out = []
    for text, starts_statement in zip(lines, statement_starts(lines)):
        out.append(transform_line(text) if starts_statement else text)
    return "".join(f"{text}\n" for text in out)


def transform_line(text):
    """Return one line that starts a statement, with a magic, a shell escape or a help request as a call."""
    stripped = text.lstrip()
    indent = text[:len(text) - len(stripped)]
    assigned = ASSIGNED.match(text)
    helped = HELP.match(text)
    if stripped.startswith("!"):
        return f"{indent}get_ipython().system({stripped[1:].strip()!r})"
    if stripped.startswith("%"):
        name, _, line = stripped.lstrip("%").partition(" ")
        return f"{indent}get_ipython().run_line_magic({name!r}, {line.strip()!r})"
    if assigned:
        indent, targets, escape, command = assigned.groups()
        if escape == "!":
            return f"{indent}{targets} = get_ipython().getoutput({command.strip()!r})"
        name, _, line = command.partition(" ")
        return f"{indent}{targets} = get_ipython().run_line_magic({name!r}, {line.strip()!r})"
    if helped:
        return f"{helped.group(1)}get_ipython().run_line_magic('pinfo', {helped.group(2)!r})"
    return text


def statement_starts(lines):
    """Return, for each line, whether it starts a statement (not inside brackets, a string or a continuation)."""
    starts, depth, quote, continued = [], 0, "", False
    for text in lines:
        starts.append(depth == 0 and not quote and not continued)
        index = 0
        while index < len(text):
            char = text[index]
            if quote:
                if char == "\\":
                    index += 1
                elif text.startswith(quote, index):
                    index, quote = index + len(quote) - 1, ""
            elif char == "#":
                break
            elif char in "\"'":
                quote = char * 3 if text.startswith(char * 3, index) else char
                index += len(quote) - 1
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth = max(depth - 1, 0)
            index += 1
        continued = text.endswith("\\") and not text.rstrip().startswith("#")
        if len(quote) == 1:  # a one-quote string ends with its line (or the line continues it)
            quote = quote if continued else ""
    return starts


def ipython_call(node):
    """Return (method, [constant string arguments]) if node is a get_ipython().method(...) call, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in IPYTHON_CALLS and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "get_ipython"):
        return None
    arguments = [arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
                 for arg in node.args]
    return node.func.attr, arguments


def magic_call(statement):
    """Return (method, arguments) if a top-level statement is a magic or shell escape (maybe assigned), else None."""
    if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) and statement.value is not None:
        return ipython_call(statement.value)
    return None


def shown(method, arguments):
    """Return how the student wrote the magic a get_ipython() call came from."""
    first, second = (arguments + ["", ""])[:2]
    if method == "system" or method == "getoutput":
        return f"!{first}"
    if method == "run_line_magic" and first == "pinfo":
        return f"{second}?"
    if method == "run_line_magic":
        return f"%{first} {second}".rstrip()
    return f"%%{first} {second}".rstrip()
