"""Escaping, one function per medium: the terminal, XML, Markdown, HTML and spreadsheets."""

import html
import re

# XML 1.0 forbids most control characters (TensorFlow logs carry ANSI escapes); ElementTree would
# write them unescaped and produce a file no JUnit reader accepts.
XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Student output reaches the instructor's terminal; escapes could recolour, erase or forge report lines.
TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Leading characters that make a spreadsheet treat a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_safe(text):
    """Return text with control characters shown as escapes instead of acted on by the terminal."""
    text = text.replace("\r\n", "\n")
    return TERMINAL_UNSAFE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def xml_safe(text):
    """Return text with the characters XML 1.0 cannot hold shown as escapes."""
    return XML_ILLEGAL.sub(lambda match: f"\\x{ord(match.group()):02x}"
                           if ord(match.group()) < 0x100 else "\ufffd", str(text))


def md_inline(text):
    """Return text safe inside a Markdown table cell or heading: one line, no markup, no HTML."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~#])", r"\\\1", text)


def html_inline(text):
    """Return text safe inside an HTML element on one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def fenced(text):
    """Return the lines of a fenced code block holding text verbatim (fence longer than any run inside)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *text.rstrip("\n").splitlines(), fence]


def spreadsheet_safe(text):
    """Return a cell value a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text
