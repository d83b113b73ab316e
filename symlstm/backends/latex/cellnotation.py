"""A notation preset made for one cell: what the preset's switches mean for this cell's IR.

Where the preset concatenates weights (``symlstm.backends.latex.concat``), the matrices that
multiply ``x_t`` or ``h_{t-1}`` are named as blocks and the legend says how the concatenated ones
split; where it folds pre-activations (``symlstm.backends.latex.fold``), the legend says which
activation's argument each folded bar is. Every printer and row builder asks for the cell's
notation here, so the legend and the lines always agree.
"""

from __future__ import annotations

from symlstm.backends.latex.concat import with_blocks
from symlstm.backends.latex.fold import with_fold_legend
from symlstm.backends.latex.notation import Notation
from symlstm.ir.derive import Derivation


def cell_notation(d: Derivation, n: Notation) -> Notation:
    """``n`` for the cell ``d`` (``n`` itself for a preset that neither concatenates nor folds)."""
    return with_fold_legend(d, with_blocks(d, n))
