"""LaTeX -> MathML for the HTML pages: latex2mathml, fixed up for MathML Core browsers.

Aligned equations become HTML tables of MathML cells: browsers implementing MathML Core
(Chromium, Firefox, Safari) ignore ``columnalign`` and ``text-align`` inside ``<mtable>``.
"""

from __future__ import annotations

import html
import re

from symlstm.backends.latex.equations import Row
from symlstm.site.build import DocsError

_MATH_TAG = re.compile(r"^<math[^>]*>(.*)</math>$", re.DOTALL)
_BOLD_ITALIC_GREEK = {chr(0x3B1 + k): chr(0x1D736 + k) for k in range(25)}


def _mathml_inner(latex: str) -> str:
    from latex2mathml.converter import convert

    text = convert(latex)
    match = _MATH_TAG.match(text)
    if match is None:  # pragma: no cover - latex2mathml always wraps in <math>
        raise DocsError(f"unexpected MathML for {latex!r}")
    return _fix_mathml(match.group(1))


def _fix_mathml(text: str) -> str:
    """Make latex2mathml's output render the same in MathML Core browsers (Chromium, Firefox):
    accents sit on their base, and bold Greek / blackboard digits become their Unicode letters."""
    text = text.replace('<mo stretchy="true">&#x000AF;</mo></mover>', "<mo>&#x000AF;</mo></mover>")
    text = text.replace("<mover>", '<mover accent="true">')

    def greek(match):
        char = html.unescape(match.group(1))
        return f"<mi>{_BOLD_ITALIC_GREEK.get(char, char)}</mi>"

    text = re.sub(r'<mi mathvariant="bold-italic">([^<]*)</mi>', greek, text)
    text = re.sub(r"<mi>(&#x003(?:9[1-9A-F]|A[0-9]);)</mi>", r'<mi mathvariant="normal">\1</mi>', text)
    return text.replace('<mn mathvariant="double-struck">1</mn>', "<mn>&#x1D7D9;</mn>")


def mathml_inline(latex: str, display: bool = False) -> str:
    style = ' displaystyle="true"' if display else ""
    return f'<math display="inline"{style}>{_mathml_inner(latex)}</math>'


def row_cells(row: Row) -> list[str]:
    """A row's table cells, one string per line: right-aligned left side, then ``=`` and the
    right side left-aligned; continuation lines leave the left cell empty."""
    first, *more = row.lines
    # "{}" first: a leading + or - stays a binary operator, as in LaTeX's aligned
    return [
        (f'<td class="l">{mathml_inline(row.lhs, True)}</td><td class="r">{mathml_inline("= " + first, True)}</td>')
    ] + [f'<td></td><td class="r cont">{mathml_inline("{} " + line, True)}</td>' for line in more]


def mathml_block(rows: list[Row]) -> str:
    """Aligned equations: a table with one ``<tr>`` per line."""
    lines = "".join(f"<tr>{cells}</tr>" for row in rows for cells in row_cells(row))
    return f'<div class="eqs"><table>{lines}</table></div>'
