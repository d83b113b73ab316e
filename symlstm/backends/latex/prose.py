"""The texts every page of a cell's equations shares (LaTeX, Markdown, HTML), and LaTeX text with
``$...$`` math turned into another markup."""

from __future__ import annotations

from collections.abc import Callable

BLOCK_TITLES = {"forward": "Forward pass", "backward": "Backward pass through time", "gradients": "Gradients"}
BACKWARD_NOTE = (
    "From t = T down to 1; terms from step T+1 vanish (the adjoints there are zero), except the gradients "
    "of the final state."
)
STEPS_TITLE = "Backward pass through time, step by step"
STEPS_NOTE = (
    "For every adjoint: first the chain rule over the uses of the quantity (each use contributes "
    "its adjoint times the partial derivative of that use), then each partial derivative written "
    "out, then the simplified line the kernels compute. " + BACKWARD_NOTE
)

_TEXT_MACROS = [("\\'{\\i}", "í"), ("``", "“"), ("''", "”"), ("\\_", "_"), ("\\&", "&"), ("~", " ")]


def markup_text(text: str, math: Callable[[str], str], plain: Callable[[str], str] = str) -> str:
    """LaTeX text with ``$...$`` math for a page: ``math`` turns each formula into the page's
    markup, ``plain`` escapes the text between them (after the few text macros are replaced)."""
    out = []
    for k, part in enumerate(text.split("$")):
        if k % 2:
            out.append(math(part))
            continue
        for macro, char in _TEXT_MACROS:
            part = part.replace(macro, char)
        out.append(plain(part))
    return "".join(out)
