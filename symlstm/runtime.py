"""The cell runtime: a validated NumPy API over a backend's kernels (the ``Kernels`` protocol).

Every public entry point checks its arguments before any Numba code runs, so bad input ends in a
``ValueError``/``TypeError`` that names the argument, never in a Numba typing error.

Dtype rule: the computation runs in the dtype of ``x`` (float32 or float64); parameters and states
of the other float dtype are cast to it. Integer, boolean, complex, object and float16 arrays are
rejected. NaN and Inf propagate as IEEE arithmetic does.

Any layout is accepted (non-contiguous, Fortran-ordered, read-only, byte-swapped): arrays are copied
to C-contiguous, writable, native-order ones first, so the kernels see one type per dtype and never
recompile. ``forward`` returns arrays of its own: changing ``x``, ``params``, ``ys`` or ``state`` in
place afterwards does not change what ``backward`` computes.

Long sequences: ``forward(..., checkpoint=k)`` keeps only the states at every k-th step instead of
every stored activation; ``backward`` recomputes each segment of k steps from its stored state and
backpropagates through it with the state gradient carried from the segment after it. Memory for
the stored activations drops from O(T) to O(T/k + k) (k ~ sqrt(T) is the minimum) at the cost of
running the forward pass twice.

Variable lengths: ``forward(..., lengths=L)`` with L (B,) integers in 1..T runs row b for its first
L[b] steps only. The kernels leave a row's states unchanged from its length on, so its final state
is its state at its own last step; its outputs there are zeros; ``backward`` ignores ``dys`` there
and passes the final state's gradient straight back to step L[b]. The input's values past a row's
length are never read by a step, but the weight gradients multiply them by zero: keep them finite
(zeros, as padding usually is).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symlstm.arrays import SUPPORTED_DTYPES, as_float_array, check_lengths, check_shape, owned
from symlstm.backends.base import Gradients, Kernels, Trace
from symlstm.lang.sizes import evaluate
from symlstm.lang.spec import CellSpec
from symlstm.prepared import Prepared, prepare
from symlstm.streaming import Stream


def _checkpoint_interval(checkpoint) -> int | None:
    if checkpoint is None:
        return None
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, (int, np.integer)):
        raise TypeError(
            f"checkpoint must be None or a positive integer k (keep the state at every k-th step), got {checkpoint!r}"
        )
    if checkpoint < 1:
        raise ValueError(
            f"checkpoint must be a positive integer k (keep the state at every k-th "
            f"step), got {checkpoint}; use None to keep everything"
        )
    return int(checkpoint)


def _zero_past_end(ys: np.ndarray, lengths: np.ndarray) -> None:
    """Outputs of the steps past a row's length are zeros (as a padded PackedSequence's)."""
    for b in np.flatnonzero(lengths < ys.shape[0]):
        ys[lengths[b] :, b] = 0


@dataclass(frozen=True)
class ForwardCache:
    """What ``forward`` keeps for ``backward``: the input, the packed weights and the trace."""

    spec_sha256: str
    dtype: np.dtype
    steps: int  # T
    batch: int  # B
    #: the value of every size name of the cell for this call (D, H, ...)
    sizes: Mapping[str, int]
    x: np.ndarray
    inputs: Mapping[str, np.ndarray]  # the extra per-step inputs, (T, B, size) each
    packed: Any  # the parameters in the kernels' own form (``Kernels.pack``)
    trace: Trace | None  # None when checkpointing (or T = 0)
    #: with ``forward(..., checkpoint=k)``: k, and per state an (ceil(T/k), B, size) array holding
    #: the state at steps 0, k, 2k, ...
    checkpoint: int | None = None
    checkpoints: tuple[np.ndarray, ...] = ()
    #: (B,) int64: the steps of each batch row
    lengths: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored forward activations or checkpoints (not counting x and the
        weights)."""
        return (self.trace.nbytes if self.trace else 0) + sum(a.nbytes for a in self.checkpoints)


@dataclass(frozen=True)
class _Call:
    """The checked arguments of one ``forward`` or ``infer``."""

    x: np.ndarray  # (T, B, D), C-contiguous, of the call's dtype; may be the caller's array
    steps: int
    batch: int
    params: dict[str, np.ndarray]
    sizes: dict[str, int]
    states0: list[np.ndarray]
    inputs: dict[str, np.ndarray]
    lengths: np.ndarray  # (B,) int64


class Cell:
    """A recurrent cell ready to run: ``forward`` and ``backward`` over whole batched sequences.

    It validates, checkpoints and shapes results; the computing is done by ``kernels``, an
    implementation of the backend protocol ``symlstm.backends.base.Kernels``."""

    def __init__(self, spec: CellSpec, kernels: Kernels):
        self.spec = spec
        self.kernels = kernels
        self._param_labels = {name: f"params[{name!r}]" for name in spec.param_names}
        self._param_set = frozenset(spec.param_names)
        self._shapes = functools.lru_cache(maxsize=8)(self._shapes_of)
        #: (D, the parameters' shapes) -> the sizes they gave, for shapes that passed the checks
        self._known_shapes: dict[tuple, dict[str, int]] = {}

    def __repr__(self) -> str:
        return f"<symlstm cell {self.name!r}: {self.title}>"

    @property
    def name(self) -> str:
        """The spec's ``name``."""
        return self.spec.name

    @property
    def title(self) -> str:
        """The spec's ``title`` (its name when it has none)."""
        return self.spec.title

    @property
    def state_names(self) -> tuple[str, ...]:
        """The states carried between steps, in the spec's order; the first is the output ``ys``."""
        return self.spec.states

    @property
    def input_names(self) -> tuple[str, ...]:
        """The extra per-step inputs (``[inputs]`` of the spec), given to ``forward(inputs=...)``."""
        return tuple(self.spec.inputs)

    @property
    def param_names(self) -> tuple[str, ...]:
        """The learned parameters (weight matrices and vectors), the keys of ``params``."""
        return self.spec.param_names

    @property
    def size_names(self) -> tuple[str, ...]:
        """D, H and the spec's other size names (e.g. P), which ``param_shapes`` and
        ``init_params`` take as keywords."""
        return self.spec.size_names

    def param_shapes(self, D: int, H: int, **sizes: int) -> dict[str, tuple[int, ...]]:
        """parameter -> its shape for input size ``D``, hidden size ``H`` and the spec's other
        sizes as keywords (``P=4``); a missing size raises ``ValueError`` naming it."""
        return self.spec.param_shapes(_positive(D, "D"), _positive(H, "H"), **sizes)

    def state_sizes(self, D: int, H: int, **sizes: int) -> dict[str, int]:
        """state -> its number of units; each ``state0[s]`` is (B, that)."""
        return self.spec.state_sizes(_positive(D, "D"), _positive(H, "H"), **sizes)

    def num_params(self, D: int, H: int, **sizes: int) -> int:
        """The number of learned values, the sum over ``param_shapes``."""
        return sum(int(np.prod(s)) for s in self.param_shapes(D, H, **sizes).values())

    def init_params(
        self, D: int, H: int, dtype=np.float64, seed: int | None = 0, **sizes: int
    ) -> dict[str, np.ndarray]:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch initialises nn.LSTM.

        Returns a dict of arrays of ``dtype`` (float32 or float64) with the shapes of
        ``param_shapes(D, H, **sizes)``; the same ``seed`` gives the same values.
        """
        dtype = np.dtype(dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"dtype {dtype} is not supported; use float32 or float64")
        shapes = self.param_shapes(D, H, **sizes)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(int(H))
        return {name: rng.uniform(-bound, bound, size=shape).astype(dtype) for name, shape in shapes.items()}

    # -- validation ---------------------------------------------------------------------------
    def _shapes_of(self, bindings: tuple[tuple[str, int], ...]) -> dict[str, tuple[int, ...]]:
        sizes = dict(bindings)
        return self.spec.param_shapes(sizes.pop("D"), sizes.pop("H"), **sizes)

    def _read_sizes(self, arrays: Mapping[str, np.ndarray], D: int, states0) -> dict[str, tuple[int, str]]:
        """The value of each size name and where it was read: off the first parameter (or
        initial state) that has it. The shapes are checked against all of them afterwards."""
        sizes: dict[str, tuple[int, str]] = {"D": (D, "x")}
        for name, array in arrays.items():
            declared = self.spec.matrices.get(name) or (self.spec.sizes[name],)
            if array.ndim == len(declared):
                for size, value in zip(declared, array.shape):
                    if isinstance(size, str) and value >= 1:
                        sizes.setdefault(size, (value, self._param_labels[name]))
        if isinstance(states0, Mapping):
            for s in self.state_names:
                size, value = self.spec.sizes[s], np.shape(states0[s]) if s in states0 else ()
                if isinstance(size, str) and len(value) == 2 and value[1] >= 1:
                    sizes.setdefault(size, (value[1], f"state0[{s!r}]"))
        missing = [name for name in self.size_names if name not in sizes]
        if missing:
            raise ValueError(
                f"cell {self.name!r}: the sizes {missing} cannot be read from the parameters; "
                "give the initial states (state0), whose shapes carry them"
            )
        return sizes

    def _check_params(
        self, params: Mapping, D: int, dtype: np.dtype, states0
    ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        if params.keys() != self._param_set:
            missing = [n for n in self.param_names if n not in params]
            extra = sorted(str(n) for n in params if n not in self._param_set)
            raise ValueError(
                f"params for cell {self.name!r}: missing {missing}, unexpected {extra}; "
                f"expected exactly {list(self.param_names)}"
            )
        checked = {n: as_float_array(params[n], self._param_labels[n], dtype) for n in self.param_names}
        # the shapes of a call are nearly always those of the last few: reuse what they gave
        key = (D, tuple(a.shape for a in checked.values()))
        known = self._known_shapes.get(key)
        if known is not None:
            return checked, known
        read = self._read_sizes(checked, D, states0)
        sizes = {name: value for name, (value, _) in read.items()}
        try:
            shapes = self._shapes(tuple(sizes.items()))
        except ValueError as err:
            raise ValueError(f"params for cell {self.name!r}: {err}") from None
        for name, array in checked.items():
            if array.shape != shapes[name]:  # (the message only when it is needed: this runs every call)
                where = " and ".join(f"{k}={v} (from {source})" for k, (v, source) in read.items())
                check_shape(array, shapes[name], self._param_labels[name], f"for {where}")
        if len(self._known_shapes) < 8 and not any(source.startswith("state0") for _, source in read.values()):
            self._known_shapes[key] = sizes  # (sizes read off state0 depend on more than the key)
        return checked, sizes

    def _state_shapes(self, B: int, sizes: Mapping[str, int]) -> list[tuple[int, int]]:
        return [(B, evaluate(self.spec.sizes[s], sizes)) for s in self.state_names]

    def _check_states(self, states, shapes: list[tuple[int, int]], dtype: np.dtype, what: str) -> list[np.ndarray]:
        if states is None:
            return [np.zeros(shape, dtype) for shape in shapes]
        if not isinstance(states, Mapping):
            raise TypeError(f"{what} must be None or a dict {{state name: (B, size) array}}")
        if set(states) != set(self.state_names):
            raise ValueError(f"{what} has keys {sorted(map(str, states))}; expected {list(self.state_names)}")
        out = []
        for s, shape in zip(self.state_names, shapes):
            array = as_float_array(states[s], f"{what}[{s!r}]", dtype)
            check_shape(array, shape, f"{what}[{s!r}]", f"(B, {self.spec.sizes[s]})")
            out.append(array)
        return out

    def _check_inputs(self, inputs, T: int, B: int, sizes: Mapping[str, int], dtype) -> dict[str, np.ndarray]:
        expected = self.input_names
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise TypeError(
                f"inputs must be None or a dict {{input name: (T, B, size) array}}, got {type(inputs).__name__}"
            )
        missing = [n for n in expected if n not in inputs]
        extra = sorted(str(n) for n in inputs if n not in expected)
        if missing or extra:
            have = f"this cell's extra inputs are {list(expected)}" if expected else "this cell has no extra inputs"
            raise ValueError(f"inputs for cell {self.name!r}: missing {missing}, unexpected {extra}; {have}")
        out = {}
        for name in expected:
            array = as_float_array(inputs[name], f"inputs[{name!r}]", dtype)
            shape = (T, B, evaluate(self.spec.inputs[name], sizes))
            check_shape(array, shape, f"inputs[{name!r}]", f"(T, B, {self.spec.inputs[name]}), time-major like x")
            out[name] = array
        return out

    # -- the API --------------------------------------------------------------------------------
    def forward(
        self,
        x,
        params: Mapping,
        state0: Mapping | None = None,
        *,
        inputs: Mapping | None = None,
        checkpoint: int | None = None,
        lengths=None,
        borrow: bool = False,
    ):
        """Run over a sequence. ``x`` is (T, B, D); returns ``(ys, state, cache)``.

        ``ys`` is (T, B, size of the output state) = h_1..h_T; ``state`` maps each state name to
        its final (B, size) value; ``state0`` None means zeros. ``inputs`` gives the spec's extra
        per-step inputs, each (T, B, size). ``checkpoint=k`` keeps only the states at steps 0, k,
        2k, ... for the backward, which then recomputes the rest (see the module docstring).
        ``lengths`` (B,) integers in 1..T: row b runs for its first ``lengths[b]`` steps; its
        state is then held and its outputs are zeros (see the module docstring).
        ``borrow=True``: the cache refers to the caller's ``x`` and ``inputs`` instead of copies;
        the caller promises not to change them before ``backward`` (PyTorch's autograd checks
        that with its version counters).
        """
        call = self._checked(x, params, state0, inputs, lengths)
        k = _checkpoint_interval(checkpoint)
        T, B, dtype, steps = call.steps, call.batch, call.x.dtype, call.lengths
        x = call.x if borrow else owned(call.x, x)
        given = inputs or {}
        extra = call.inputs if borrow else {name: owned(a, given[name]) for name, a in call.inputs.items()}
        packed = self.kernels.pack(call.params, call.sizes)
        cache = functools.partial(ForwardCache, self.spec.sha256, dtype, T, B, call.sizes, x, extra, packed)
        if T == 0:
            ys = np.zeros((0, B, call.states0[0].shape[1]), dtype)
            return ys, {s: v.copy() for s, v in zip(self.state_names, call.states0)}, cache(None, lengths=steps)
        if k is not None:
            ys, final, checkpoints = self._checkpointed_forward(x, packed, call.states0, extra, k, steps)
            result = dict(zip(self.state_names, final)), cache(None, k, checkpoints, steps)
        else:
            trace = self.kernels.forward(x, packed, call.states0, extra, steps)
            ys = trace.states[0][1:].copy()
            result = {s: seq[-1].copy() for s, seq in zip(self.state_names, trace.states)}, cache(trace, lengths=steps)
        if lengths is not None:
            _zero_past_end(ys, steps)
        return (ys, *result)

    def infer(self, x, params, state0: Mapping | None = None, *, inputs: Mapping | None = None, lengths=None):
        """``forward`` for inference: returns ``(ys, state)`` and keeps nothing for a backward (its
        own kernel: two rows per state instead of T + 1, no stored activations). The results are
        ``forward``'s: the same kernels' arithmetic in the same order. ``params`` is a dict of
        arrays, or what ``prepare`` made of one (checked and packed once, for many calls)."""
        if isinstance(params, Prepared):
            call = self._checked(x, None, state0, inputs, lengths, prepared=params)
            packed = params.packed
        else:
            call = self._checked(x, params, state0, inputs, lengths)
            packed = self.kernels.pack(call.params, call.sizes, backward=False, kept=False)
        if call.steps == 0:
            ys = np.zeros((0, call.batch, call.states0[0].shape[1]), call.x.dtype)
            return ys, {s: v.copy() for s, v in zip(self.state_names, call.states0)}
        ys, final = self.kernels.infer(call.x, packed, call.states0, call.inputs, call.lengths)
        return ys, dict(zip(self.state_names, final))

    def prepare(self, params: Mapping, D: int | None = None) -> Prepared:
        """``params`` checked and packed once for ``infer`` and ``stream``, which then skip that
        work on every call (``symlstm.prepared``); copies: prepare again after changing
        ``params``. ``D`` is read off the input matrix when not given."""
        return prepare(self, params, None if D is None else _positive(D, "D"))

    def restore_cache(self, x, params, arrays, inputs, lengths, sizes: Mapping[str, int]) -> ForwardCache:
        """The cache ``forward(x, params, inputs=inputs, lengths=lengths)`` returned, around the
        arrays its trace kept (``cache.trace.arrays``, used as they are): for a caller that kept
        only those, e.g. a custom op, which hands only arrays from its forward to its backward.
        ``x``, ``params``, ``inputs`` and the arrays must be those of that call (not checked)."""
        T, B = x.shape[:2]
        steps = check_lengths(lengths, T, B)
        trace = self.kernels.trace(arrays, inputs, steps)
        packed = self.kernels.pack(params, sizes)
        return ForwardCache(self.spec.sha256, x.dtype, T, B, dict(sizes), x, dict(inputs), packed, trace, lengths=steps)

    def stream(self, params, state0: Mapping | None = None, batch: int = 1):
        """A ``symlstm.streaming.Stream``: ``step(x_t)`` advances ``batch`` streams by one step
        ((batch, D) in, the output state (batch, size) out); ``state``, ``reset()``. ``params``: a
        dict of arrays or ``prepare``'s result."""
        return Stream(self, params, state0, batch)

    def _checked(self, x, params, state0, inputs, lengths, prepared: Prepared | None = None) -> _Call:
        """Every argument of a call checked and converted, before any kernel runs (the
        parameters only once, by ``prepare``, when they come ``prepared``)."""
        x = as_float_array(x, "x")
        if x.ndim != 3:
            raise ValueError(f"x has shape {x.shape}; expected (T, B, D), time-major")
        T, B, D = x.shape
        if B < 1 or D < 1:
            raise ValueError(f"x has shape {x.shape}; the batch B and the input size D must be >= 1")
        if prepared is not None:
            prepared.check_for(self, x.dtype, D)
            params, sizes = {}, dict(prepared.sizes)
        else:
            params, sizes = self._check_params(params, D, x.dtype, state0)
        states0 = self._check_states(state0, self._state_shapes(B, sizes), x.dtype, "state0")
        extra = self._check_inputs(inputs, T, B, sizes, x.dtype)
        return _Call(x, T, B, params, sizes, states0, extra, check_lengths(lengths, T, B))

    @staticmethod
    def _segments(T: int, k: int) -> list[tuple[int, int]]:
        return [(t0, min(t0 + k, T)) for t0 in range(0, T, k)]

    @staticmethod
    def _steps(inputs: Mapping[str, np.ndarray], t0: int, t1: int) -> dict[str, np.ndarray]:
        return {name: array[t0:t1] for name, array in inputs.items()}

    @staticmethod
    def _segment_lengths(lengths: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Each row's steps within the segment t0:t1 (0 for a row that ended before it)."""
        return np.clip(lengths - t0, 0, t1 - t0)

    def _checkpointed_forward(self, x, packed, states0, inputs, k, lengths):
        """Run segment by segment, keeping the outputs and each segment's initial states only."""
        T, B, _ = x.shape
        segments = self._segments(T, k)
        checkpoints = tuple(np.empty((len(segments), *s.shape), x.dtype) for s in states0)
        ys = np.empty((T, *states0[0].shape), x.dtype)
        current = list(states0)
        for n, (t0, t1) in enumerate(segments):
            for stored, value in zip(checkpoints, current):
                stored[n] = value
            trace = self.kernels.forward(
                x[t0:t1], packed, current, self._steps(inputs, t0, t1), self._segment_lengths(lengths, t0, t1)
            )
            ys[t0:t1] = trace.states[0][1:]
            current = [seq[-1].copy() for seq in trace.states]
            del trace  # one segment's activations at a time
        return ys, current, checkpoints

    def _checkpointed_backward(self, cache: ForwardCache, dys, dlast, input_grad: bool) -> Gradients:
        """Backward over the segments in reverse: recompute each one's activations from its stored
        initial states, backpropagate through it, carry the state gradient to the one before."""
        x = cache.x
        dx = np.empty_like(x) if input_grad else None
        total: dict[str, np.ndarray] = {}
        carried = list(dlast)
        assert cache.checkpoint is not None
        segments = self._segments(cache.steps, cache.checkpoint)
        for n in range(len(segments) - 1, -1, -1):
            t0, t1 = segments[n]
            start = [np.ascontiguousarray(stored[n]) for stored in cache.checkpoints]
            assert cache.lengths is not None
            steps = self._segment_lengths(cache.lengths, t0, t1)
            trace = self.kernels.forward(x[t0:t1], cache.packed, start, self._steps(cache.inputs, t0, t1), steps)
            grads = self.kernels.backward(x[t0:t1], cache.packed, trace, dys[t0:t1], carried, input_grad)
            del trace
            if dx is not None:
                dx[t0:t1] = grads.dx
            for name, part in grads.params.items():
                if name in total:
                    total[name] += part
                else:
                    total[name] = part.copy()
            carried = [np.ascontiguousarray(c) for c in grads.states0]
        return Gradients(dx, total, tuple(carried))

    def backward(self, dys, cache: ForwardCache, dstate: Mapping | None = None, *, input_grad: bool = True):
        """Backpropagate. ``dys`` is dL/dys (T, B, size of the output) or None for zeros;
        ``dstate`` maps state names to dL/d(final state) or is None. Returns
        ``(dx, dparams, dstate0)``; the extra inputs are data and get no gradient.
        ``input_grad=False`` skips dx (returned as None): the input of a first layer is data,
        and its gradient a GEMM as big as the forward's input projection."""
        if not isinstance(cache, ForwardCache) or cache.spec_sha256 != self.spec.sha256:
            raise TypeError(f"cache must be the third value returned by this cell's ({self.name}) forward")
        T, B, dtype = cache.steps, cache.batch, cache.dtype
        state_shapes = self._state_shapes(B, cache.sizes)
        ys_shape = (T, *state_shapes[0])
        if dys is None:
            dys = np.zeros(ys_shape, dtype)
        dys = as_float_array(dys, "dys", dtype)
        check_shape(dys, ys_shape, "dys", f"(T, B, {self.spec.sizes[self.state_names[0]]}), the shape of ys")
        dlast = self._check_states(dstate, state_shapes, dtype, "dstate")
        if T == 0:
            shapes = self._shapes(tuple(cache.sizes.items()))
            grads = Gradients(
                np.zeros_like(cache.x) if input_grad else None,
                {n: np.zeros(shapes[n], dtype) for n in self.param_names},
                tuple(d.copy() for d in dlast),
            )
        elif cache.checkpoint is not None:
            grads = self._checkpointed_backward(cache, dys, dlast, input_grad)
        else:
            assert cache.trace is not None  # forward keeps a trace unless T = 0 or checkpointing
            grads = self.kernels.backward(cache.x, cache.packed, cache.trace, dys, dlast, input_grad)
        dparams = {n: grads.params[n] for n in self.param_names}
        return grads.dx, dparams, dict(zip(self.state_names, grads.states0))


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class BatchFirstCell:
    """A cell taking and returning batch-first arrays: x (B, T, D), ys and dys (B, T, H), dx
    (B, T, D), like a PyTorch module with ``batch_first=True``. States stay (B, H)."""

    def __init__(self, cell: Cell):
        self.cell = cell

    def __getattr__(self, name):  # name, title, state_names, param_shapes, init_params, ...
        return getattr(self.cell, name)

    def __repr__(self) -> str:
        return f"<symlstm cell {self.cell.name!r}, batch first>"

    @staticmethod
    def _swap(array, what: str):
        array = np.asarray(array)
        if array.ndim != 3:
            raise ValueError(f"{what} has shape {array.shape}; expected (B, T, features), batch first")
        return array.transpose(1, 0, 2)

    def forward(self, x, params: Mapping, state0: Mapping | None = None, *, inputs=None, checkpoint=None, lengths=None):
        """``Cell.forward`` with ``x`` (B, T, D) and ``ys`` (B, T, size); ``inputs`` are batch
        first too: (B, T, size) each."""
        if isinstance(inputs, Mapping):
            inputs = {name: self._swap(array, f"inputs[{name!r}]") for name, array in inputs.items()}
        ys, state, cache = self.cell.forward(
            self._swap(x, "x"), params, state0, inputs=inputs, checkpoint=checkpoint, lengths=lengths
        )
        return ys.transpose(1, 0, 2), state, cache

    def infer(self, x, params: Mapping, state0: Mapping | None = None, *, inputs=None, lengths=None):
        """``Cell.infer`` on batch-first arrays: ``x`` (B, T, D) in, ``ys`` (B, T, size) out."""
        if isinstance(inputs, Mapping):
            inputs = {name: self._swap(array, f"inputs[{name!r}]") for name, array in inputs.items()}
        ys, state = self.cell.infer(self._swap(x, "x"), params, state0, inputs=inputs, lengths=lengths)
        return ys.transpose(1, 0, 2), state

    def backward(self, dys, cache: ForwardCache, dstate: Mapping | None = None, *, input_grad: bool = True):
        """``Cell.backward`` with ``dys`` (B, T, size) and ``dx`` (B, T, D)."""
        dys = None if dys is None else self._swap(dys, "dys")
        dx, dparams, dstate0 = self.cell.backward(dys, cache, dstate, input_grad=input_grad)
        return None if dx is None else dx.transpose(1, 0, 2), dparams, dstate0
