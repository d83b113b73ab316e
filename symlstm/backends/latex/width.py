"""How wide a piece of typeset math is, roughly, in glyphs: enough to break long lines.

An ``align`` row has no automatic line breaks, so a right side wider than the page runs into
the margin. The printer breaks a sum after ``PER_LINE`` terms and, with this estimate, earlier
when the line would pass ``LINE_GLYPHS``; a single product that is still too wide is broken
before one of its ``\\odot`` factors (``equations.sum_lines``). The estimate counts letters,
digits and delimiters as one glyph, binary operators with their spacing as more, and styling
commands (``\\mathbf``, ``\\left``) as nothing. It only decides where a break goes, never what is
printed, so it may be crude.
"""

from __future__ import annotations

import re

#: the width of an A4 page's text (11pt, 2cm margins) minus the left side and the indent of a
#: continuation line, in glyphs
LINE_GLYPHS = 64

_STYLING = re.compile(
    r"\\(left|right|mathbf|boldsymbol|bar|tilde|hat|mathrm|operatorname|tfrac|frac|mathbb|qquad|quad)(?![A-Za-z])"
)
_TOKEN = re.compile(r"\\([A-Za-z]+)|([=+\-<>*])|([A-Za-z0-9()\[\].|])")
#: commands typeset as a word (their letters) or with extra space; others are one symbol
_WORDS = {"tanh": 4, "log": 3, "exp": 3, "max": 3, "min": 3, "sqrt": 2}
_SPACED = {"odot": 2.5, "cdot": 2.0, "top": 0.7}
_OPERATOR = 2.5  # = + - < > * (colah's elementwise product) with their spacing


def glyphs(text: str) -> float:
    """The estimated width of ``text`` (LaTeX math) in glyphs."""
    total = 0.0
    for command, operator, _ in _TOKEN.findall(_STYLING.sub("", text)):
        if command:
            total += _WORDS.get(command) or _SPACED.get(command) or 1.0
        else:
            total += _OPERATOR if operator else 1.0
    return total


def top_level_splits(text: str, separator: str) -> list[str]:
    """``text`` cut before each ``separator`` outside braces and ``\\left ... \\right`` pairs."""
    parts, depth, start, k = [], 0, 0, 0
    while k < len(text):
        if depth == 0 and k > start and text.startswith(separator, k):
            parts.append(text[start:k])
            start = k
        if text.startswith(r"\left", k) or text[k] == "{":
            depth += 1
        elif text.startswith(r"\right", k) or text[k] == "}":
            depth -= 1
        k += 1
    parts.append(text[start:])
    return parts
