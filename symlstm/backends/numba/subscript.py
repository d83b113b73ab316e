"""An array subscript of the emitted code, kept as its parts until it is printed.

The nests bind a row view for each array row they read or write, and read a size-1 row's one
number without a view; both are made from the array and its indices here, not by parsing
printed text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subscript:
    """``array[index, ...]`` (just ``array`` with no index). An index with a colon (``lo:hi``)
    makes it a block of rows, not one row."""

    array: str
    index: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.array}[{', '.join(self.index)}]" if self.index else self.array

    @property
    def is_row(self) -> bool:
        """Indexed by integers only, so it is one row of the array's last axis."""
        return bool(self.index) and not any(":" in i for i in self.index)

    def view(self) -> str:
        """What a nest binds a row view to: ``borrowed_row(seq_c, (t, b))`` for ``seq_c[t, b]``,
        a view without a reference count (``symlstm.backends.numba.rows`` says why); a block as
        it is."""
        if not self.is_row:
            return str(self)
        index = ", ".join(self.index) + ("," if len(self.index) == 1 else "")
        return f"borrowed_row({self.array}, ({index}))"

    def first(self) -> str:
        """The one number of a size-1 row: ``keep_m[t, b, 0]`` for ``keep_m[t, b]``, no view made;
        of a block of one unit, its first: ``proj[b - lo, H:H + 1][0]``."""
        if not self.is_row:
            return f"{self}[0]"
        return str(Subscript(self.array, (*self.index, "0")))
