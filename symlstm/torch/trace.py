"""What the custom op needs from the runtime beyond ``Cell.forward``/``backward``: the shapes of
the arrays a forward pass keeps for the backward, and a ``ForwardCache`` rebuilt from them.

A ``torch.library`` op can only hand tensors from its forward to its backward, so the op returns
the trace's arrays as tensors and the backward rebuilds the cache around them; under
``torch.compile`` the fake implementation needs their shapes without running anything. Torch-free;
the two functions here read the Numba backend's module constants and are candidates for a
``Kernels`` method each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from symlstm.backends.base import Trace
from symlstm.runtime import Cell, ForwardCache


def trace_shapes(cell: Cell, T, B, sizes: Mapping[str, object], empty: Callable) -> tuple:
    """``empty(shape, dtype)`` for each array ``cell.forward`` keeps in ``cache.trace.arrays``, in
    that order. ``T``, ``B`` and the sizes may be symbolic (torch's SymInts): only arithmetic is
    done on them."""
    module = cell.kernels.module  # type: ignore[attr-defined]  # NumbaKernels: the generated module
    buffers = module.forward_buffers(T, B, *(sizes[n] for n in module.SIZE_NAMES), None, empty)
    return tuple(buffers[name] for name in module.SAVED)


def restore_cache(
    cell: Cell,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    arrays: Sequence[np.ndarray],
    inputs: Mapping[str, np.ndarray],
    lengths: np.ndarray | None,
    sizes: Mapping[str, int],
) -> ForwardCache:
    """The cache ``cell.forward(x, params, inputs=inputs, lengths=lengths)`` returned, from the
    trace arrays it kept (``cache.trace.arrays``); the arrays are used, not copied."""
    T, B = x.shape[:2]
    steps = np.full(B, T, np.int64) if lengths is None else lengths
    # NumbaKernels keeps the state sequences first, in the spec's order.
    trace = Trace(tuple(arrays[: len(cell.state_names)]), tuple(arrays), dict(inputs), steps)
    packed = cell.kernels.pack(params, sizes)
    return ForwardCache(cell.spec.sha256, x.dtype, T, B, dict(sizes), x, dict(inputs), packed, trace, lengths=steps)
