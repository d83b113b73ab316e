"""Sizes of the vectors of a cell: a size name (``"H"``, ``"D"``) or a fixed positive integer.

Every quantity of the IR carries one; shapes of parameters and buffers are built from them, and
evaluated only when the sizes of a call are known (``evaluate(size, {"D": 8, "H": 16})``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from symlstm.lang.errors import SpecError

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


def broadcast(sizes: list[Size], where: str, join: Callable[[Size, Size], Size | None] | None = None) -> Size:
    """The common size of elementwise operands: equal sizes, and size 1 broadcasts. Two other
    sizes are a ``SpecError`` naming both, unless ``join`` accepts them (it returns their common
    size, e.g. H for x's D where the spec requires D == H)."""
    found: Size = 1
    for size in sizes:
        if size == 1 or size == found:
            continue
        joined = size if found == 1 else join(found, size) if join is not None else None
        if joined is None:
            raise SpecError(
                f"{where}: an elementwise operation combines a vector of size {found} with one of "
                f"size {size}; operands must have the same size (or size 1)"
            )
        found = joined
    return found
