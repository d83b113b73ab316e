"""The backend boundary: what a backend implements and what the runtime may call.

A backend turns a cell's derivation into files (``emit``); a kernel backend also loads them into
an object implementing ``Kernels``, the small forward/backward protocol the runtime (``Cell``)
talks to. The runtime validates every argument before it calls a backend, so a backend receives
C-contiguous arrays of one float dtype with the shapes the spec's sizes give, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from symlstm.ir.derive import Derivation
from symlstm.lang.spec import CellSpec


@dataclass(frozen=True)
class Trace:
    """What a forward pass leaves for the backward pass."""

    #: per state, in the spec's order, a (T + 1, B, size) array: the initial state, then each step's
    states: tuple[np.ndarray, ...]
    #: every array the backward reads (the state sequences among them), in the backend's own order
    arrays: tuple[np.ndarray, ...]
    #: the extra per-step inputs the forward read, by name: the backward reads them too
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: (B,) int64, the steps of each batch row the forward ran (T for all of them unless given)
    lengths: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


@dataclass(frozen=True)
class Gradients:
    """What a backward pass returns."""

    dx: np.ndarray | None  # (T, B, D); None when not asked for (``input_grad=False``)
    params: dict[str, np.ndarray]  # the keys and shapes of the parameters
    states0: tuple[np.ndarray, ...]  # dL/d(initial state), per state in the spec's order


class Stepper(Protocol):
    """A cell's forward pass one step at a time, with its parameters bound."""

    #: the current states (B, size each), in the spec's order; the stepper updates them in place
    states: tuple[np.ndarray, ...]

    def step(self, x: np.ndarray, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One step: ``x`` (1, B, D) and the extra inputs (1, B, size); returns the output state
        (B, size), valid until the next step."""


class Kernels(Protocol):
    """A cell's compiled forward and backward passes over whole batched sequences."""

    def pack(
        self, params: Mapping[str, np.ndarray], sizes: Mapping[str, int], *, backward: bool = True, kept: bool = True
    ) -> Any:
        """The parameters in the form the kernels read (e.g. stacked matrices), with the value of
        every size name (``D``, ``H``, ...); done once per ``forward`` and kept in its cache for
        the backward. ``backward=False``: for forward-only passes (``infer``, ``stepper``), which
        need no part of the backward's. ``kept=False``: read only before the call that packs it
        returns, so it may refer to ``params`` itself instead of copies."""

    def forward(
        self,
        x: np.ndarray,
        packed: Any,
        states0: Sequence[np.ndarray],
        inputs: Mapping[str, np.ndarray],
        lengths: np.ndarray,
    ) -> Trace:
        """Run all T >= 1 steps of ``x`` (T, B, D) from the initial states (B, size of each),
        reading the extra per-step inputs (T, B, size), by name. ``lengths`` (B,) int64, each in
        0..T: a row's steps from its length on leave its states unchanged."""

    def infer(
        self,
        x: np.ndarray,
        packed: Any,
        states0: Sequence[np.ndarray],
        inputs: Mapping[str, np.ndarray],
        lengths: np.ndarray,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """``forward`` keeping nothing for a backward: returns the outputs (T, B, size of the
        output state), zero past each row's length, and the final states (B, size each)."""

    def trace_shapes(self, T, B, sizes: Mapping[str, Any], empty) -> tuple:
        """``empty(shape, dtype)`` for each array of ``Trace.arrays`` of a forward pass of T steps
        over B rows, in that order (``dtype`` is None: the caller's). T, B and the sizes may be
        symbolic (a tracer's integers): only arithmetic is done on them."""

    def trace(self, arrays: Sequence[np.ndarray], inputs: Mapping[str, np.ndarray], lengths: np.ndarray) -> Trace:
        """The ``Trace`` whose ``arrays`` are ``arrays`` (kept, not copied): a forward's trace
        rebuilt after its arrays travelled on their own (e.g. as a custom op's outputs)."""

    def stepper(self, packed: Any, states0: Sequence[np.ndarray]) -> Stepper:
        """A ``Stepper`` starting from ``states0`` (B, size each), for a stream of single steps."""

    def backward(
        self,
        x: np.ndarray,
        packed: Any,
        trace: Trace,
        dys: np.ndarray,
        dfinal: Sequence[np.ndarray],
        input_grad: bool = True,
    ) -> Gradients:
        """Backpropagate ``dys`` (T, B, size of the output) and dL/d(final state) through
        the steps ``trace`` recorded (a row's steps past its length pass the adjoints through).
        ``input_grad=False``: no dx (its GEMM is a sixth of an LSTM's backward and forward)."""


class Backend(Protocol):
    """Turns a derivation into files: kernel modules, documents, exported graphs."""

    name: str
    #: what ``emit`` writes, e.g. ``".py"``
    suffix: str

    def emit(self, derivation: Derivation) -> str:
        """The text of the cell's file; deterministic (the same derivation gives the same bytes)."""


class KernelBackend(Backend, Protocol):
    """A backend whose files run: ``load`` returns the cell's kernels, ready to call."""

    def load(self, spec: CellSpec) -> Kernels:
        """The compiled kernels of ``spec``, built (and cached) as needed."""
