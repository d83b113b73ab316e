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
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symlstm.backends.base import Gradients, Kernels, Trace
from symlstm.lang.spec import CellSpec

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_float_array(value, what: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a C-contiguous, aligned, writable, native-order float32/float64 array."""
    if type(value) is np.ndarray and value.dtype in SUPPORTED_DTYPES and (dtype is None or value.dtype == dtype):
        flags = value.flags  # the common case, already right: checked once per call per array
        if flags.c_contiguous and flags.writeable and flags.aligned and value.ndim:
            return value
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except Exception as err:  # noqa: BLE001 - anything that is not array-like
            raise TypeError(f"{what} must be a NumPy array, got {type(value).__name__}") from err
    native = array.dtype.newbyteorder("=") if array.dtype.kind == "f" else array.dtype
    if native not in SUPPORTED_DTYPES:
        raise TypeError(f"{what} has dtype {array.dtype}; use float32 or float64")
    target = dtype if dtype is not None else native
    out = np.asarray(array, dtype=target, order="C")  # keeps a 0-d array 0-d, for the messages
    if not (out.flags.writeable and out.flags.aligned) or out.dtype.byteorder not in "=|":
        out = np.array(out, dtype=target, order="C", copy=True)  # a read-only array is its own type
    return out


def _owned(array: np.ndarray, original) -> np.ndarray:
    """``array``, copied unless it is a fresh array made from the caller's ``original`` (it may
    be the caller's own array, or a view of its memory: an ndarray, a buffer, a tensor)."""
    if array is original or array.base is not None:
        return array.copy()
    return array


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


def _check_shape(array: np.ndarray, expected: tuple[int, ...], what: str, meaning: str) -> None:
    if array.shape != expected:
        raise ValueError(f"{what} has shape {array.shape}; expected {expected} {meaning}")


@dataclass(frozen=True)
class ForwardCache:
    """What ``forward`` keeps for ``backward``: the input, the packed weights and the trace."""

    spec_sha256: str
    dtype: np.dtype
    shape: tuple[int, int, int, int]  # T, B, D, H
    x: np.ndarray
    packed: Any  # the parameters in the kernels' own form (``Kernels.pack``)
    trace: Trace | None  # None when checkpointing (or T = 0)
    #: with ``forward(..., checkpoint=k)``: k, and per state an (ceil(T/k), B, H) array holding the
    #: state at steps 0, k, 2k, ...
    checkpoint: int | None = None
    checkpoints: tuple[np.ndarray, ...] = ()

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored forward activations or checkpoints (not counting x and the
        weights)."""
        return (self.trace.nbytes if self.trace else 0) + sum(a.nbytes for a in self.checkpoints)


class Cell:
    """A recurrent cell ready to run: ``forward`` and ``backward`` over whole batched sequences.

    It validates, checkpoints and shapes results; the computing is done by ``kernels``, an
    implementation of the backend protocol ``symlstm.backends.base.Kernels``."""

    def __init__(self, spec: CellSpec, kernels: Kernels):
        self.spec = spec
        self.kernels = kernels
        self._param_labels = {name: f"params[{name!r}]" for name in spec.param_names}
        self._param_shapes = functools.lru_cache(maxsize=8)(spec.param_shapes)

    def __repr__(self) -> str:
        return f"<symlstm cell {self.name!r}: {self.title}>"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.spec.states

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.spec.param_names

    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        return self.spec.param_shapes(_positive(D, "D"), _positive(H, "H"))

    def num_params(self, D: int, H: int) -> int:
        return sum(int(np.prod(s)) for s in self.param_shapes(D, H).values())

    def init_params(self, D: int, H: int, dtype=np.float64, seed: int | None = 0) -> dict[str, np.ndarray]:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch initialises nn.LSTM."""
        dtype = np.dtype(dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"dtype {dtype} is not supported; use float32 or float64")
        shapes = self.param_shapes(D, H)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(int(H))
        return {name: rng.uniform(-bound, bound, size=shape).astype(dtype) for name, shape in shapes.items()}

    # -- validation ---------------------------------------------------------------------------
    def _check_params(self, params: Mapping, D: int, dtype: np.dtype) -> tuple[dict[str, np.ndarray], int]:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        missing = [n for n in self.param_names if n not in params]
        extra = sorted(str(n) for n in params if n not in self.param_names)
        if missing or extra:
            raise ValueError(
                f"params for cell {self.name!r}: missing {missing}, unexpected {extra}; "
                f"expected exactly {list(self.param_names)}"
            )
        first = self.param_names[0]
        first_array = _as_float_array(params[first], f"params[{first!r}]", dtype)
        if first_array.ndim < 1 or first_array.shape[0] < 1:
            raise ValueError(f"params[{first!r}] has shape {first_array.shape}; it cannot be empty")
        H = first_array.shape[0]
        shapes = self._param_shapes(D, H)
        checked = {}
        for name in self.param_names:
            label = self._param_labels[name]
            array = _as_float_array(params[name], label, dtype)
            if array.shape != shapes[name]:  # (the message only when it is needed: this runs every call)
                _check_shape(array, shapes[name], label, f"for D={D} (from x) and H={H} (from params[{first!r}])")
            checked[name] = array
        return checked, H

    def _check_states(self, states, B: int, H: int, dtype: np.dtype, what: str) -> list[np.ndarray]:
        if states is None:
            return [np.zeros((B, H), dtype) for _ in self.state_names]
        if not isinstance(states, Mapping):
            raise TypeError(f"{what} must be None or a dict {{state name: (B, H) array}}")
        if set(states) != set(self.state_names):
            raise ValueError(f"{what} has keys {sorted(map(str, states))}; expected {list(self.state_names)}")
        out = []
        for s in self.state_names:
            array = _as_float_array(states[s], f"{what}[{s!r}]", dtype)
            _check_shape(array, (B, H), f"{what}[{s!r}]", "(B, H)")
            out.append(array)
        return out

    # -- the API --------------------------------------------------------------------------------
    def forward(self, x, params: Mapping, state0: Mapping | None = None, *, checkpoint: int | None = None):
        """Run over a sequence. ``x`` is (T, B, D); returns ``(ys, state, cache)``.

        ``ys`` is (T, B, H) = h_1..h_T; ``state`` maps each state name to its final (B, H) value;
        ``state0`` None means zeros. ``checkpoint=k`` keeps only the states at steps 0, k, 2k, ...
        for the backward, which then recomputes the rest (see the module docstring).
        """
        original_x = x
        x = _as_float_array(x, "x")
        if x.ndim != 3:
            raise ValueError(f"x has shape {x.shape}; expected (T, B, D), time-major")
        T, B, D = x.shape
        if B < 1 or D < 1:
            raise ValueError(f"x has shape {x.shape}; the batch B and the input size D must be >= 1")
        k = _checkpoint_interval(checkpoint)
        dtype = x.dtype
        params, H = self._check_params(params, D, dtype)
        states0 = self._check_states(state0, B, H, dtype, "state0")
        x = _owned(x, original_x)
        packed = self.kernels.pack(params)
        if T == 0:
            cache = ForwardCache(self.spec.sha256, dtype, (T, B, D, H), x, packed, None)
            return np.zeros((0, B, H), dtype), {s: v.copy() for s, v in zip(self.state_names, states0)}, cache
        if k is not None:
            ys, final, checkpoints = self._checkpointed_forward(x, packed, states0, k)
            cache = ForwardCache(self.spec.sha256, dtype, (T, B, D, H), x, packed, None, k, checkpoints)
            return ys, dict(zip(self.state_names, final)), cache
        trace = self.kernels.forward(x, packed, states0)
        ys = trace.states[0][1:].copy()
        state = {s: seq[-1].copy() for s, seq in zip(self.state_names, trace.states)}
        return ys, state, ForwardCache(self.spec.sha256, dtype, (T, B, D, H), x, packed, trace)

    @staticmethod
    def _segments(T: int, k: int) -> list[tuple[int, int]]:
        return [(t0, min(t0 + k, T)) for t0 in range(0, T, k)]

    def _checkpointed_forward(self, x, packed, states0, k):
        """Run segment by segment, keeping the outputs and each segment's initial states only."""
        T, B, _ = x.shape
        H = states0[0].shape[1]
        segments = self._segments(T, k)
        checkpoints = tuple(np.empty((len(segments), B, H), x.dtype) for _ in self.state_names)
        ys = np.empty((T, B, H), x.dtype)
        current = list(states0)
        for n, (t0, t1) in enumerate(segments):
            for stored, value in zip(checkpoints, current):
                stored[n] = value
            trace = self.kernels.forward(x[t0:t1], packed, current)
            ys[t0:t1] = trace.states[0][1:]
            current = [seq[-1].copy() for seq in trace.states]
            del trace  # one segment's activations at a time
        return ys, current, checkpoints

    def _checkpointed_backward(self, cache: ForwardCache, dys, dlast) -> Gradients:
        """Backward over the segments in reverse: recompute each one's activations from its stored
        initial states, backpropagate through it, carry the state gradient to the one before."""
        T, B, D, H = cache.shape
        x = cache.x
        dx = np.empty((T, B, D), cache.dtype)
        total: dict[str, np.ndarray] = {}
        carried = list(dlast)
        assert cache.checkpoint is not None
        segments = self._segments(T, cache.checkpoint)
        for n in range(len(segments) - 1, -1, -1):
            t0, t1 = segments[n]
            start = [np.ascontiguousarray(stored[n]) for stored in cache.checkpoints]
            trace = self.kernels.forward(x[t0:t1], cache.packed, start)
            grads = self.kernels.backward(x[t0:t1], cache.packed, trace, dys[t0:t1], carried)
            del trace
            dx[t0:t1] = grads.dx
            for name, part in grads.params.items():
                if name in total:
                    total[name] += part
                else:
                    total[name] = part.copy()
            carried = [np.ascontiguousarray(c) for c in grads.states0]
        return Gradients(dx, total, tuple(carried))

    def backward(self, dys, cache: ForwardCache, dstate: Mapping | None = None):
        """Backpropagate. ``dys`` is dL/dys (T, B, H) or None for zeros; ``dstate`` maps state
        names to dL/d(final state) or is None. Returns ``(dx, dparams, dstate0)``."""
        if not isinstance(cache, ForwardCache) or cache.spec_sha256 != self.spec.sha256:
            raise TypeError(f"cache must be the third value returned by this cell's ({self.name}) forward")
        T, B, D, H = cache.shape
        dtype = cache.dtype
        if dys is None:
            dys = np.zeros((T, B, H), dtype)
        dys = _as_float_array(dys, "dys", dtype)
        _check_shape(dys, (T, B, H), "dys", "(T, B, H), the shape of ys")
        dlast = self._check_states(dstate, B, H, dtype, "dstate")
        if T == 0:
            shapes = self._param_shapes(D, H)
            grads = Gradients(
                np.zeros((0, B, D), dtype),
                {n: np.zeros(shapes[n], dtype) for n in self.param_names},
                tuple(d.copy() for d in dlast),
            )
        elif cache.checkpoint is not None:
            grads = self._checkpointed_backward(cache, dys, dlast)
        else:
            assert cache.trace is not None  # forward keeps a trace unless T = 0 or checkpointing
            grads = self.kernels.backward(cache.x, cache.packed, cache.trace, dys, dlast)
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

    def forward(self, x, params: Mapping, state0: Mapping | None = None, *, checkpoint: int | None = None):
        ys, state, cache = self.cell.forward(self._swap(x, "x"), params, state0, checkpoint=checkpoint)
        return ys.transpose(1, 0, 2), state, cache

    def backward(self, dys, cache: ForwardCache, dstate: Mapping | None = None):
        dys = None if dys is None else self._swap(dys, "dys")
        dx, dparams, dstate0 = self.cell.backward(dys, cache, dstate)
        return dx.transpose(1, 0, 2), dparams, dstate0
