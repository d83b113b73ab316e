"""``NumbaKernels``: the ``Kernels`` protocol over one generated kernel module.

The module's names for its arrays and the order of its kernels' arguments are read from the
constants it defines (``MATRIX_GROUPS``, ``VECTORS``, ``FORWARD_OUTPUTS``, ``SAVED``), so this is the
only code outside the emitter that knows them. The big arrays come from the buffer pool (memory
Numba allocates in a kernel is fresh pages on every call); the recurrences run on ranges of batch
rows, one per core (``parallel.RowSplit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from symlstm.backends.base import Gradients, Trace
from symlstm.backends.numba import parallel, workspace


@dataclass(frozen=True)
class Packed:
    """The parameters as the kernels read them."""

    #: per operand group, its matrices stacked and transposed, (in, sum of rows): what the
    #: forward kernels multiply by (made once here, not per call of a kernel or per segment)
    transposed: tuple[np.ndarray, ...]
    #: the same, not transposed, (sum of rows, in): what the backward multiplies by; empty when
    #: packed for forward-only passes (``pack(..., backward=False)``)
    matrices: tuple[np.ndarray, ...]
    vectors: tuple[np.ndarray, ...]
    #: per group, the (name, first row, last row) of each matrix in the stack
    blocks: tuple[tuple[tuple[str, int, int], ...], ...]
    #: the value of each size name, in the module's SIZE_NAMES order: every kernel takes them
    sizes: tuple[int, ...] = ()

    @property
    def step_bytes(self) -> int:
        """Bytes of the matrices the recurrence multiplies at every step (all but the input's)."""
        return sum(m.nbytes for m in self.transposed[1:])


class NumbaKernels:
    def __init__(self, module: ModuleType):
        self.module = module
        self.groups: tuple[tuple[str, tuple[str, ...]], ...] = module.MATRIX_GROUPS
        self.vectors: tuple[str, ...] = module.VECTORS
        self.num_states = len(module.STATES)

    def pack(
        self, params: Mapping[str, np.ndarray], sizes: Mapping[str, int], *, backward: bool = True, kept: bool = True
    ) -> Packed:
        blocks = tuple(_blocks(names, params) for _, names in self.groups)
        transposed = tuple(_stacked_transposed(group, params) for group in blocks)
        matrices = tuple(_stacked([params[m] for m, _, _ in group]) for group in blocks) if backward else ()
        # kept: copies, which later changes to params cannot reach; else the caller's arrays as they are
        vectors = tuple(params[v].copy() if kept else params[v] for v in self.vectors)
        return Packed(transposed, matrices, vectors, blocks, tuple(sizes[name] for name in self.module.SIZE_NAMES))

    def step_inputs(self, x: np.ndarray, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The per-step arrays the step kernels read: x where it is used elementwise, the extra inputs."""
        return [x if name == "x" else inputs[name] for name in self.module.STEP_INPUTS]

    def forward(
        self,
        x: np.ndarray,
        packed: Packed,
        states0: Sequence[np.ndarray],
        inputs: Mapping[str, np.ndarray],
        lengths: np.ndarray,
    ) -> Trace:
        k = self.module
        T, B, _ = x.shape
        buffers = k.forward_buffers(T, B, *packed.sizes, x.dtype, workspace.empty)
        for name, state0 in zip(k.FORWARD_OUTPUTS, states0):
            buffers[name][0] = state0
        self._run_steps(k.forward_steps, x, packed, buffers, inputs, lengths, [buffers[n] for n in k.FORWARD_OUTPUTS])
        return self.trace([buffers[name] for name in k.SAVED], inputs, lengths)

    def infer(
        self,
        x: np.ndarray,
        packed: Packed,
        states0: Sequence[np.ndarray],
        inputs: Mapping[str, np.ndarray],
        lengths: np.ndarray,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        k = self.module
        T, B, _ = x.shape
        buffers = k.infer_buffers(T, B, *packed.sizes, x.dtype, workspace.empty)
        pairs = [buffers[name] for name in k.INFER_STATES]
        for pair, state0 in zip(pairs, states0):
            pair[0] = state0
        ys = np.empty((T, B, states0[0].shape[1]), x.dtype)
        self._run_steps(k.infer_steps, x, packed, buffers, inputs, lengths, [*pairs, ys])
        return ys, tuple(pair[T % 2].copy() for pair in pairs)

    def trace_shapes(self, T, B, sizes: Mapping, empty) -> tuple:
        k = self.module
        buffers = k.forward_buffers(T, B, *(sizes[name] for name in k.SIZE_NAMES), None, empty)
        return tuple(buffers[name] for name in k.SAVED)

    def trace(self, arrays: Sequence[np.ndarray], inputs: Mapping[str, np.ndarray], lengths: np.ndarray) -> Trace:
        arrays = tuple(arrays)  # SAVED starts with the state sequences, in the spec's order
        return Trace(states=arrays[: self.num_states], arrays=arrays, inputs=dict(inputs), lengths=lengths)

    def stepper(self, packed: Packed, states0: Sequence[np.ndarray]) -> NumbaStepper:
        return NumbaStepper(self, packed, states0)

    def _run_steps(self, kernel, x, packed: Packed, buffers, inputs, lengths, outputs) -> None:
        """The input projection of all steps, then ``kernel`` (the recurrence) over ranges of rows."""
        k = self.module
        T, B, _ = x.shape
        transposed = packed.transposed
        with parallel.RowSplit(T, B, packed.step_bytes) as split:
            split.flat(k.forward_inputs, x, transposed[0], buffers[k.INPUT_PROJECTION])
            split.batch(
                kernel,
                *packed.sizes,
                lengths,
                buffers[k.INPUT_PROJECTION],
                *transposed[1:],
                *packed.vectors,
                *self.step_inputs(x, inputs),
                *outputs,
            )

    def backward(
        self,
        x: np.ndarray,
        packed: Packed,
        trace: Trace,
        dys: np.ndarray,
        dfinal: Sequence[np.ndarray],
        input_grad: bool = True,
    ) -> Gradients:
        k = self.module
        T, B, _ = x.shape
        carries = [d.copy() for d in dfinal]
        deltas = k.backward_buffers(T, B, *packed.sizes, x.dtype, workspace.empty)
        # without input_grad the kernel leaves dx alone: an empty array of the same type stands in
        dx = np.empty_like(x) if input_grad else np.empty((0, 0, 0), x.dtype)
        matrices = packed.matrices
        sizes = packed.sizes
        with parallel.RowSplit(T, B, packed.step_bytes) as split:
            vector_parts = split.batch(
                k.backward_steps,
                *sizes,
                trace.lengths,
                *matrices[1:],
                *packed.vectors,
                *trace.arrays,
                *self.step_inputs(x, trace.inputs),
                dys,
                *carries,
                *deltas,
            )
            matrix_parts = [tuple(workspace.empty(m.shape, m.dtype) for m in matrices) for _ in split.flat_ranges]
            split.flat(
                k.backward_gradients,
                *sizes,
                x,
                matrices[0],
                *trace.arrays,
                *deltas,
                input_grad,
                dx,
                per_range=matrix_parts,
            )
        grads: dict[str, np.ndarray] = {}
        for blocks, grad in zip(packed.blocks, _summed(matrix_parts)):
            for m, first, last in blocks:  # a matrix used in two groups gets both parts
                grads[m] = grads[m] + grad[first:last] if m in grads else grad[first:last].copy()
        grads.update(zip(self.vectors, _summed(vector_parts)))
        return Gradients(dx if input_grad else None, grads, tuple(carries))


class NumbaStepper:
    """One step at a time, for all B rows (``Kernels.stepper``): everything but x_t is bound
    once, so a step is one kernel call."""

    def __init__(self, kernels: NumbaKernels, packed: Packed, states0: Sequence[np.ndarray]):
        k = kernels.module
        B, dtype = states0[0].shape[0], states0[0].dtype
        buffers = k.infer_buffers(1, B, *packed.sizes, dtype, np.empty)  # its own: kept for the stream's life
        self._pairs = [buffers[name] for name in k.INFER_STATES]
        for pair, state0 in zip(self._pairs, states0):
            pair[0] = state0
        self.states = tuple(pair[0] for pair in self._pairs)
        self._ys = np.empty((1, B, states0[0].shape[1]), dtype)
        matrices = [m.copy() for m in packed.transposed]  # its own: kept for the stream's life
        self._kernel = k.infer_step
        self._head = (*packed.sizes, np.ones(B, np.int64))
        self._middle = (*matrices, buffers[k.INPUT_PROJECTION], *packed.vectors)
        self._tail = (*self._pairs, self._ys)
        self._inputs = [name for name in k.STEP_INPUTS if name != "x"]

    def step(self, x: np.ndarray, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """``x`` (1, B, D), ``inputs`` (1, B, size) each; returns the output (B, size), a view
        that the next step overwrites; ``states`` hold the states after it."""
        self._kernel(*self._head, x, *self._middle, *[inputs[name] for name in self._inputs], *self._tail)
        return self._ys[0]


def _stacked(blocks: list[np.ndarray]) -> np.ndarray:
    """The matrices of one operand group, one above the other."""
    out = workspace.empty((sum(b.shape[0] for b in blocks), blocks[0].shape[1]), blocks[0].dtype)
    return np.concatenate(blocks, axis=0, out=out)


def _blocks(names: Sequence[str], params: Mapping[str, np.ndarray]) -> tuple[tuple[str, int, int], ...]:
    """The (name, first row, last row) of each matrix of one operand group, stacked in order."""
    rows, row = [], 0
    for m in names:
        rows.append((m, row, row + params[m].shape[0]))
        row += params[m].shape[0]
    return tuple(rows)


def _stacked_transposed(blocks: tuple[tuple[str, int, int], ...], params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The matrices of one operand group stacked and transposed, (in, sum of rows), in one copy."""
    first = params[blocks[0][0]]
    out = workspace.empty((first.shape[1], blocks[-1][2]), first.dtype)
    # block by block: a transpose of the stack copies along its long side, 4x slower at H = 512
    return np.concatenate([params[m].T for m, _, _ in blocks], axis=1, out=out)


def _summed(parts: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """The sums, array by array, of the per-range parts of some gradients (in range order)."""
    if len(parts) == 1:
        return list(parts[0])
    total = [np.array(a) for a in parts[0]]
    for part in parts[1:]:
        for acc, a in zip(total, part):
            acc += a
    return total
