"""What the main graph computes from the parameters once, before the loop over time.

Each operand group's matrices stacked and transposed into one (in, rows of all) matrix, so that a
group is one MatMul (``[W_i; W_f; W_g; W_o]^T``), the row counts to split its result by, and the
spec's sizes as numbers (mean() divides by them). All are read off the parameters' shapes, so the
graph holds for any sizes; once the weights are initializers, onnxruntime folds these nodes into
constants when it loads the model.
"""

from __future__ import annotations

from symlstm.backends.onnx.graph import GraphBuilder
from symlstm.backends.onnx.interface import Interface
from symlstm.ir.nodes import Product
from symlstm.lang.sizes import Size


class Weights:
    def __init__(self, g: GraphBuilder, io: Interface):
        self.g = g
        self.io = io
        self._stacked: dict[tuple[str, ...], str] = {}
        self._splits: dict[tuple[str, ...], str] = {}
        self._sizes: dict[Size, str] = {}

    def stacked(self, products: tuple[Product, ...]) -> str:
        """The group's matrices, one below the other, transposed: (in, rows of all)."""
        key = tuple(p.matrix for p in products)
        if key not in self._stacked:
            g = self.g
            rows = key[0] if len(key) == 1 else g.op("Concat", *key, axis=0)
            self._stacked[key] = g.op("Transpose", rows, out=self.io.namer.fresh(f"{'_'.join(key)}_T"))
        return self._stacked[key]

    def split_sizes(self, products: tuple[Product, ...]) -> str:
        """The rows of each of the group's matrices, (len(products),) int64."""
        key = tuple(p.matrix for p in products)
        if key not in self._splits:
            rows = [self.g.op("Shape", m, start=0, end=1) for m in key]
            self._splits[key] = self.g.op("Concat", *rows, axis=0)
        return self._splits[key]

    def size(self, size: Size) -> str:
        """The number of units ``size`` stands for, as a (1,) tensor of the graph's float type,
        read off the first tensor of the interface that has it."""
        if size not in self._sizes:
            source, axis = self._source_of(size)
            dim = self.g.op("Shape", source, start=axis, end=axis + 1)
            self._sizes[size] = self.g.op("Cast", dim, to=self.g.elem_type, out=self.io.namer.fresh(f"n_{size}"))
        return self._sizes[size]

    def _source_of(self, size: Size) -> tuple[str, int]:
        io, spec = self.io, self.io.d.spec
        candidates = [(io.x, 2, spec.sizes[io.x])]
        candidates += [(m, k, dims[k]) for m, dims in spec.matrices.items() for k in (0, 1)]
        candidates += [(v, 0, spec.sizes[v]) for v in spec.vectors]
        candidates += [(io.initial[s], 1, spec.sizes[s]) for s in spec.states]
        candidates += [(name, 2, dims) for name, dims in spec.inputs.items()]
        for name, axis, found in candidates:
            if found == size:
                return name, axis
        raise ValueError(f"no input of the graph has the size {size!r}")  # pragma: no cover - sizes come from these


def gemm(g: GraphBuilder, weights: Weights, operand: str, products: tuple[Product, ...], outputs: list[str]) -> None:
    """``outputs[k] = products[k].matrix @ operand`` for every row of ``operand`` (.., in): one
    MatMul with the stacked matrices, split along the last axis when there are several."""
    if len(products) == 1:
        g.op("MatMul", operand, weights.stacked(products), out=outputs[0])
        return
    together = g.op("MatMul", operand, weights.stacked(products))
    g.ops("Split", [together, weights.split_sizes(products)], outputs, axis=-1)
