"""A cell run one step at a time: ``stream = cell.stream(params)``, then ``h_t = stream.step(x_t)``.

For a service that answers a sample at a time (a sensor, a token stream): the parameters are
packed once (or come packed: ``cell.stream(cell.prepare(params))``), the states live in the
stream, and a step is one call of the cell's ``infer_step`` kernel, so its cost is mostly that
call. ``T`` steps give what one ``infer`` over the sequence gives, to the last bit in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from symlstm.arrays import as_float_array, check_shape
from symlstm.lang.sizes import evaluate
from symlstm.prepared import prepare

#: a ``symlstm.runtime.Cell``, which makes streams (``Cell.stream``): this module does not import it
CellLike = Any


class Stream:
    """The state of one or more (``batch``) streams of a cell, and the step that advances them."""

    def __init__(self, cell: CellLike, params, state0: Mapping | None = None, batch: int = 1):
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer (the number of streams), got {batch!r}")
        self.cell = cell
        self.batch = int(batch)
        prepared = prepare(cell, params, state0=state0)  # (or as given: ``cell.prepare(params)``)
        self.dtype, self.sizes = prepared.dtype, prepared.sizes
        self._state_shapes = cell._state_shapes(self.batch, self.sizes)
        self._x_shape = (self.batch, self.sizes["D"])
        self._input_shapes = {name: (self.batch, evaluate(size, self.sizes)) for name, size in cell.spec.inputs.items()}
        states0 = cell._check_states(state0, self._state_shapes, self.dtype, "state0")
        self._stepper = cell.kernels.stepper(prepared.packed, states0)

    def __repr__(self) -> str:
        return f"<symlstm stream of {self.cell.name!r}: batch {self.batch}, {self.dtype}>"

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The current states, (batch, size) each (copies)."""
        return {s: v.copy() for s, v in zip(self.cell.state_names, self._stepper.states)}

    def reset(self, state0: Mapping | None = None) -> None:
        """Start again from ``state0`` (None: zeros)."""
        states0 = self.cell._check_states(state0, self._state_shapes, self.dtype, "state0")
        for current, new in zip(self._stepper.states, states0):
            current[...] = new

    def step(self, x_t, inputs: Mapping | None = None) -> np.ndarray:
        """Advance every stream by one step: ``x_t`` (batch, D), ``inputs`` the spec's extra inputs
        (batch, size) each. Returns the output state (batch, size), a new array."""
        x = self._row(x_t, "x_t", self._x_shape, "(batch, D)")
        extra = {}
        if inputs or self._input_shapes:
            extra = self._inputs(inputs)
        return self._stepper.step(x, extra).copy()

    def _row(self, value, what: str, shape: tuple[int, int], meaning: str) -> np.ndarray:
        """``value`` as a (1, batch, n) array of the stream's dtype."""
        if not (type(value) is np.ndarray and value.dtype == self.dtype and value.shape == shape):
            value = as_float_array(value, what, self.dtype)
            check_shape(value, shape, what, meaning)
        elif not value.flags.c_contiguous:
            value = np.ascontiguousarray(value)
        return value.reshape(1, *shape)

    def _inputs(self, inputs: Mapping | None) -> dict[str, np.ndarray]:
        expected = self._input_shapes
        given = {} if inputs is None else inputs
        if not isinstance(given, Mapping) or set(given) != set(expected):
            names = sorted(map(str, given)) if isinstance(given, Mapping) else type(given).__name__
            raise ValueError(
                f"inputs for cell {self.cell.name!r}: got {names}; expected a dict with {sorted(expected)}"
            )
        return {
            name: self._row(given[name], f"inputs[{name!r}]", shape, f"(batch, {self.cell.spec.inputs[name]})")
            for name, shape in expected.items()
        }
