"""The geometry of stacked, optionally bidirectional layers of one cell, as ``torch.nn.LSTM`` lays
them out: which (layer, direction) units there are, what each one reads and what the stack returns.

Both multi-layer modules, the NumPy ``symlstm.nn.Recurrent`` and the PyTorch
``symlstm.torch.Recurrent``, are built on ``Stack``; it knows no arrays or tensors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from symlstm.runtime import Cell


def load_cell(cell: Cell | str | os.PathLike) -> Cell:
    """``cell`` itself, or the built-in or spec file it names (what a layer's ``cell`` argument takes)."""
    if isinstance(cell, (str, os.PathLike)):
        from symlstm.cells import cell as by_name  # at call time: symlstm/__init__ imports the layers

        return by_name(cell)
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be a symlstm Cell, a built-in name or a spec path, got {type(cell).__name__}")
    return cell


@dataclass(frozen=True)
class Unit:
    """One (layer, direction) of a stack: a cell with parameters of its own."""

    layer: int
    reverse: bool  # runs over the time-reversed sequence
    #: PyTorch's parameter suffix: l0, l0_reverse, l1, ...
    suffix: str
    input_size: int  # D of this unit: the stack's input for layer 0, the layer below's output after

    @property
    def direction(self) -> int:
        return int(self.reverse)


@dataclass(frozen=True)
class Stack:
    """``num_layers`` layers of ``cell``, each with one or two directions; layer k+1 reads the
    outputs of layer k's directions, concatenated on the feature axis (forward first).

    ``sizes`` are the cell's sizes besides D and H (e.g. ``{"P": 4}`` for lstmp). Raises
    ``ValueError`` when the cell's states change size with its input size: the layers' states
    could not be stacked into one ``(num_layers * num_directions, B, size)`` array each."""

    cell: Cell
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    sizes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.num_layers > 1 and self.cell.state_sizes(self.output_size, self.hidden_size, **self.sizes) != (
            self.state_sizes
        ):
            raise ValueError(
                f"the states of cell {self.cell.name!r} depend on its input size, so the layers' "
                "states cannot be stacked: use one layer per Recurrent"
            )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @cached_property  # (frozen, yet computed once: the modules read these on every call)
    def state_sizes(self) -> dict[str, int]:
        """state -> its number of units, the last axis of its (num_layers * num_directions, B, size)."""
        return self.cell.state_sizes(self.input_size, self.hidden_size, **self.sizes)

    @property
    def direction_size(self) -> int:
        """Features of each direction's part of the output: the size of the cell's output state."""
        return self.state_sizes[self.cell.state_names[0]]

    @cached_property
    def output_size(self) -> int:
        """Features of the stack's output, and of layer k+1's input."""
        return self.num_directions * self.direction_size

    @cached_property
    def units(self) -> tuple[Unit, ...]:
        """The units in PyTorch's parameter order: l0, l0_reverse, l1, l1_reverse, ..."""
        return tuple(
            Unit(k, bool(d), f"l{k}{'_reverse' if d else ''}", self.input_size if k == 0 else self.output_size)
            for k in range(self.num_layers)
            for d in range(self.num_directions)
        )

    @property
    def suffixes(self) -> list[str]:
        return [unit.suffix for unit in self.units]

    def param_shapes(self, unit: Unit) -> dict[str, tuple[int, ...]]:
        """The cell's parameter shapes for one unit."""
        return self.cell.param_shapes(unit.input_size, self.hidden_size, **self.sizes)
