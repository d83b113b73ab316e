"""Sizes of the vectors of a cell: a size name (``"H"``, ``"D"``) or a fixed positive integer.

Every quantity of the IR carries one; shapes of parameters and buffers are built from them, and
evaluated only when the sizes of a call are known (``evaluate(size, {"D": 8, "H": 16})``).
"""

from __future__ import annotations

from collections.abc import Mapping

Size = str | int

#: the size of the input x
INPUT_SIZE = "D"
#: the default size of states, intermediates and parameter vectors
HIDDEN_SIZE = "H"


def evaluate(size: Size, bindings: Mapping[str, int]) -> int:
    """The number of units ``size`` stands for, given values of the size names."""
    if isinstance(size, int):
        return size
    try:
        return bindings[size]
    except KeyError:
        raise ValueError(f"the size {size!r} has no value; give it as {size}=<positive integer>") from None


def shape(sizes: tuple[Size, ...], bindings: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(evaluate(s, bindings) for s in sizes)
