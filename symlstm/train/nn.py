"""Training on the kernels, NumPy only: layers, losses, optimizers and parameter files.

    >>> from symlstm import nn
    >>> model = nn.Sequential(nn.Recurrent("lstm", 2, 32), nn.LastStep(), nn.Dense(32, 1))
    >>> opt = nn.Adam(model.params, lr=1e-2, clip_norm=1.0)
    >>> loss, grad_norm = nn.train_step(model, nn.mse, opt, x, target)

Every layer owns its parameters, ``layer.params`` (a dict name -> array), and is functional too:
``forward(x, params=None)`` runs with ``params`` when given, else with the layer's own. Optimizers
and ``load`` update the arrays in place, so every view of a parameter (a layer's dict, the
dict of a ``Sequential`` holding it) stays the same array.

- ``Recurrent`` has a cell's contract: ``ys, state, cache = forward(x, params=None, state0=None)``
  and ``dx, grads, dstate0 = backward(dys, cache, dstate=None)``; states are dicts of
  ``(num_layers * num_directions, B, size)`` arrays, as PyTorch's ``h_n``/``c_n`` (the size is H,
  or the state's own, e.g. P for lstmp's h).
- ``Dense``, ``LastStep`` and ``Sequential``: ``y, cache = forward(x, params=None)`` and
  ``dx, grads = backward(dy, cache)``. Inside a ``Sequential`` a ``Recurrent`` starts from zero
  states and its final state is dropped; use the layer itself to carry states.
- Losses return ``(loss, dloss/dprediction)``; optimizers' ``step(grads)`` returns the gradient norm
  before clipping.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symlstm.arrays import as_float_array, check_lengths
from symlstm.interop import pytorch as torch_interop
from symlstm.runtime import Cell, ForwardCache
from symlstm.stack import Stack, load_cell
from symlstm.train.checks import check_arrays, float_dtype, positive_int
from symlstm.train.optim import SGD, Adam, Optimizer, clip_grad_norm

__all__ = [
    "Adam",
    "Dense",
    "LastStep",
    "Layer",
    "Recurrent",
    "SGD",
    "Sequential",
    "clip_grad_norm",
    "load",
    "mse",
    "save",
    "softmax_cross_entropy",
    "train_step",
]


class Layer:
    """Base class: a layer owns ``params`` and knows the shapes they must have."""

    params: dict[str, np.ndarray]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> the shape its array must have."""
        return {n: p.shape for n, p in self.params.items()}

    def num_params(self) -> int:
        """The number of learned values."""
        return sum(p.size for p in self.params.values())

    def _params(self, params) -> dict[str, np.ndarray]:
        return self.params if params is None else check_arrays(params, self.param_shapes(), "params")

    def forward(self, x, params: Mapping | None = None) -> tuple[Any, ...]:
        """``(y, cache)``; a ``Recurrent`` returns ``(ys, state, cache)``."""
        raise NotImplementedError

    def backward(self, dy, cache, *, input_grad: bool = True) -> tuple[Any, ...]:
        """``(dx, grads)``; a ``Recurrent`` returns ``(dx, grads, dstate0)``. ``input_grad=False``:
        dx is None, not computed (the input of a model's first layer is data)."""
        raise NotImplementedError


# -- the recurrent layer -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecurrentCache:
    layer_id: int
    T: int
    B: int
    cells: tuple[ForwardCache, ...]  # one per (layer, direction), in parameter order
    #: (T, B) time indices that reverse each row within its length, for the reverse direction
    reversal: np.ndarray | None = None


class Recurrent(Layer):
    """``num_layers`` stacked recurrent layers of one cell, optionally bidirectional.

    Layer k's output sequence is layer k+1's input. A bidirectional layer runs a second cell on the
    time-reversed sequence and concatenates the two outputs on the feature axis (forward first),
    as PyTorch does; its parameters are named ``l{k}.W_i`` and ``l{k}_reverse.W_i``. ``sizes`` are
    the cell's sizes besides D and H, e.g. ``P=4`` for lstmp: then the output, and layer k+1's
    input, have P features per direction.

    Parameters start as the cell's ``init_params`` (uniform in ±1/sqrt(H), as PyTorch), one
    independent stream per (layer, direction) from ``seed``. ``bias_init`` adds constants to named
    bias vectors of every unit, e.g. ``{"b_f": 1.0}``: a forget gate that starts open keeps the
    cell state, and its gradient, alive through time (Gers, Schmidhuber & Cummins 2000; Keras'
    ``unit_forget_bias``); ``{"b_z": 1.0}`` does the same for a GRU, whose z weighs h_{t-1}.
    """

    def __init__(
        self,
        cell: Cell | str | os.PathLike,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dtype=np.float64,
        seed: int | None = 0,
        bias_init: Mapping[str, float] | None = None,
        **sizes: int,
    ):
        cell = load_cell(cell)
        self.cell = cell
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.num_layers = positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        self.dtype = float_dtype(dtype)
        self.sizes = dict(sizes)
        #: which (layer, direction) units there are and what each reads (shared with symlstm.torch)
        self.stack = Stack(cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, self.sizes)
        #: state -> its number of units, the last axis of its (num_layers * num_directions, B, size)
        self.state_sizes = self.stack.state_sizes
        bias_init = dict(bias_init or {})
        vectors = cell.spec.vectors
        for name, value in bias_init.items():
            if name not in vectors:
                raise ValueError(
                    f"bias_init names {name!r}, which is not a vector parameter of the cell "
                    f"{cell.name!r} ({', '.join(vectors)})"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"bias_init[{name!r}] must be a number, got {type(value).__name__}")
        self.num_directions = self.stack.num_directions
        # Independent, reproducible streams for each (layer, direction).
        seeds = np.random.SeedSequence(seed).generate_state(len(self.stack.units))
        self.params = {}
        for unit, seed_of_unit in zip(self.stack.units, seeds):
            init = cell.init_params(
                unit.input_size, self.hidden_size, dtype=self.dtype, seed=int(seed_of_unit), **self.sizes
            )
            for name, value in bias_init.items():
                init[name] += self.dtype.type(value)
            self.params.update({f"{unit.suffix}.{n}": p for n, p in init.items()})

    def __repr__(self) -> str:
        return (
            f"Recurrent({self.cell.name!r}, input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
            f"batch_first={self.batch_first}, dtype={self.dtype.name}"
            + "".join(f", {n}={v}" for n, v in self.sizes.items())
            + ")"
        )

    @classmethod
    def from_torch(cls, module, dtype=None) -> Recurrent:
        """A layer computing what a ``torch.nn.LSTM``, ``GRU`` or ``RNN`` (any depth, either
        direction, ``batch_first`` or not) computes, with its weights (cast to ``dtype`` when given,
        else in the module's dtype)."""
        arch = torch_interop.architecture(module)
        layer = cls(
            arch.cell,
            arch.input_size,
            arch.hidden_size,
            num_layers=arch.num_layers,
            bidirectional=arch.bidirectional,
            batch_first=arch.batch_first,
            dtype=dtype if dtype is not None else arch.dtype,
            bias_init=None,  # named, so the type checker knows **sizes does not give it
            **arch.sizes,
        )
        # PyTorch's suffixes, l0, l0_reverse, ..., are the layer's unit prefixes
        for prefix, unit in torch_interop.units_from_torch(module, dtype).items():
            for name, value in unit.items():
                np.copyto(layer.params[f"{prefix}.{name}"], value)
        return layer

    def to_torch(self, params: Mapping | None = None):
        """A ``torch.nn.LSTM``, ``GRU`` or ``RNN`` of this layer's depth, directions and layout,
        holding ``params`` (default: the layer's own); ``symlstm.to_torch(layer)`` is the same."""
        params = self._params(params)
        units = {prefix: self.unit_params(params, prefix) for prefix in self.unit_prefixes()}
        dtype = params[next(iter(params))].dtype
        return torch_interop.stack_to_torch(self.stack, units, dtype, batch_first=self.batch_first)

    @property
    def output_size(self) -> int:
        """Features of ys, and of layer k+1's input: the output state's size per direction."""
        return self.stack.output_size

    @property
    def state_names(self) -> tuple[str, ...]:
        """The cell's states, in the spec's order (the first is the output)."""
        return self.cell.state_names

    def unit_prefixes(self) -> list[str]:
        """Parameter-name prefixes, one per (layer, direction) unit in order: l0, l0_reverse, l1, ..."""
        return self.stack.suffixes

    def unit_params(self, params, prefix: str) -> dict[str, np.ndarray]:
        """The cell's parameter dict of one unit, e.g. ``unit_params(layer.params, "l1_reverse")``."""
        return {n: params[f"{prefix}.{n}"] for n in self.cell.param_names}

    def _time_major(self, array, what: str) -> np.ndarray:
        array = as_float_array(array, what)
        if array.ndim != 3:
            order = "(B, T, features), batch first" if self.batch_first else "(T, B, features), time-major"
            raise ValueError(f"{what} has shape {array.shape}; expected {order}")
        return array.transpose(1, 0, 2) if self.batch_first else array

    def _split_states(self, states, B: int, what: str) -> list[dict[str, np.ndarray] | None]:
        units = self.num_layers * self.num_directions
        if states is None:
            return [None] * units
        shapes = {s: (units, B, n) for s, n in self.state_sizes.items()}
        states = check_arrays(states, shapes, f"{what} (num_layers * num_directions, B, size) per state")
        return [{s: states[s][u] for s in self.state_names} for u in range(units)]

    def _stack_states(self, per_unit: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {s: np.stack([u[s] for u in per_unit]) for s in self.state_names}

    def forward(self, x, params: Mapping | None = None, state0: Mapping | None = None, *, lengths=None):
        """``x`` (T, B, input_size), or (B, T, input_size) when batch_first. Returns ``(ys, state,
        cache)`` with ``ys`` (T, B, output_size) from the last layer. ``lengths`` (B,): row b has
        ``lengths[b]`` steps (as the cell's ``forward``); the reverse direction then runs each row
        backwards from its own last step, as PyTorch does with a PackedSequence."""
        params = self._params(params)
        x = self._time_major(x, "x")
        T, B, D = x.shape
        if D != self.input_size:
            raise ValueError(f"x has {D} features (last axis); this layer's input_size is {self.input_size}")
        states0 = self._split_states(state0, B, "state0")
        reversal = None
        if lengths is not None and self.bidirectional:
            reversal = _reversal(check_lengths(lengths, T, B), T)

        prefixes = self.unit_prefixes()
        caches, finals = [], []
        seq = x
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                u = k * self.num_directions + d
                # The reverse direction is the same cell run on the time-reversed sequence.
                unit = self.unit_params(params, prefixes[u])
                steps = _reverse(seq, reversal) if d else seq
                ys, state, cache = self.cell.forward(steps, unit, states0[u], lengths=lengths)
                outs.append(_reverse(ys, reversal) if d else ys)
                caches.append(cache)
                finals.append(state)
            seq = np.concatenate(outs, axis=-1) if self.bidirectional else outs[0]
        ys = seq.transpose(1, 0, 2) if self.batch_first else seq
        return ys, self._stack_states(finals), RecurrentCache(id(self), T, B, tuple(caches), reversal)

    def backward(self, dys, cache: RecurrentCache, dstate: Mapping | None = None, *, input_grad: bool = True):
        """``dys`` = dL/dys (shaped as ys) or None; ``dstate`` = dL/d(final state) or None.
        Returns ``(dx, grads, dstate0)``; ``grads`` has the keys of ``params``; dx None when not
        ``input_grad`` (the first layer's cells then leave out its GEMM)."""
        if not isinstance(cache, RecurrentCache) or cache.layer_id != id(self):
            raise TypeError("cache must be the third value returned by this layer's forward")
        T, B = cache.T, cache.B
        size = self.output_size // self.num_directions  # of each direction's part of ys
        dtype = cache.cells[0].dtype
        if dys is None:
            dys = np.zeros((T, B, self.output_size), dtype)
        else:
            dys = self._time_major(dys, "dys")
            if dys.shape != (T, B, self.output_size):
                raise ValueError(
                    f"dys has (time-major) shape {dys.shape}; expected {(T, B, self.output_size)}, the shape of ys"
                )
        dstates = self._split_states(dstate, B, "dstate")
        prefixes = self.unit_prefixes()
        reversal = cache.reversal

        grads: dict[str, np.ndarray] = {}
        dstate0: list = [None] * len(prefixes)
        dseq = dys
        for k in reversed(range(self.num_layers)):
            dinput = None
            for d in range(self.num_directions):
                u = k * self.num_directions + d
                dpart = dseq[..., d * size : (d + 1) * size]
                dpart = _reverse(dpart, reversal) if d else dpart
                wanted = input_grad or k > 0  # a later layer's input is an earlier one's output
                dx, dparams, dstate0[u] = self.cell.backward(dpart, cache.cells[u], dstates[u], input_grad=wanted)
                if wanted:
                    dx = _reverse(dx, reversal) if d else dx
                    dinput = dx if dinput is None else dinput + dx
                grads.update({f"{prefixes[u]}.{n}": g for n, g in dparams.items()})
            dseq = dinput
        dx = None if dseq is None else dseq.transpose(1, 0, 2) if self.batch_first else dseq
        return dx, {n: grads[n] for n in self.params}, self._stack_states(dstate0)


def _reversal(lengths: np.ndarray, T: int) -> np.ndarray:
    """(T, B) indices that reverse each row's first ``lengths[b]`` steps and leave the rest in
    place; applied twice they give the identity."""
    t = np.arange(T)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _reverse(seq: np.ndarray, reversal: np.ndarray | None) -> np.ndarray:
    """A (T, B, ...) sequence in reverse time order: all of it, or each row within its length."""
    return seq[::-1] if reversal is None else np.take_along_axis(seq, reversal[:, :, None], axis=0)


# -- stateless layers ----------------------------------------------------------------------------


class Dense(Layer):
    """``y = x W^T + b`` on the last axis of ``x`` (any leading axes), as ``torch.nn.Linear``;
    initialised uniform in ±1/sqrt(in_features), as PyTorch does."""

    def __init__(self, in_features: int, out_features: int, dtype=np.float64, seed: int | None = 0):
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.dtype = float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.params = {
            "W": rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(self.dtype),
            "b": rng.uniform(-bound, bound, self.out_features).astype(self.dtype),
        }

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, dtype={self.dtype.name})"

    def forward(self, x, params: Mapping | None = None):
        params = self._params(params)
        x = as_float_array(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x has shape {x.shape}; its last axis must be in_features = {self.in_features}")
        # As the cells do: compute in the dtype of x.
        W, b = params["W"].astype(x.dtype, copy=False), params["b"].astype(x.dtype, copy=False)
        return x @ W.T + b, (x, W.copy())  # a copy: an optimizer step before backward cannot change it

    def backward(self, dy, cache, *, input_grad: bool = True):
        x, W = cache
        dy = as_float_array(dy, "dy", x.dtype)
        if dy.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(f"dy has shape {dy.shape}; expected {x.shape[:-1] + (self.out_features,)}, the shape of y")
        dy2, x2 = dy.reshape(-1, self.out_features), x.reshape(-1, self.in_features)
        return dy @ W if input_grad else None, {"W": dy2.T @ x2, "b": dy2.sum(axis=0)}


class LastStep(Layer):
    """The last time step of a sequence: ``(T, B, F) -> (B, F)``, or ``(B, T, F)`` when batch_first."""

    def __init__(self, batch_first: bool = False):
        self.batch_first = bool(batch_first)
        self.params = {}

    def __repr__(self) -> str:
        return f"LastStep(batch_first={self.batch_first})"

    def forward(self, x, params: Mapping | None = None):
        self._params(params)
        x = as_float_array(x, "x")
        axis = 1 if self.batch_first else 0
        if x.ndim != 3 or x.shape[axis] < 1:
            raise ValueError(
                f"x has shape {x.shape}; expected a non-empty sequence "
                f"{'(B, T, F)' if self.batch_first else '(T, B, F)'}"
            )
        return (x[:, -1] if self.batch_first else x[-1]), (x.shape, x.dtype)

    def backward(self, dy, cache, *, input_grad: bool = True):
        shape, dtype = cache
        dy = as_float_array(dy, "dy", dtype)
        dx = np.zeros(shape, dtype)
        last = dx[:, -1] if self.batch_first else dx[-1]
        if dy.shape != last.shape:
            raise ValueError(f"dy has shape {dy.shape}; expected {last.shape}, the shape of y")
        last[...] = dy
        return dx if input_grad else None, {}


class Sequential(Layer):
    """Layers applied in order; parameters are named ``"{index}.{name}"`` (``0.l0.W_i``, ``2.W``)."""

    def __init__(self, *layers: Layer):
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layer {k} must be a symlstm.nn layer (Recurrent, Dense, LastStep, ...), "
                    f"got {type(layer).__name__}"
                )
        self.layers = tuple(layers)
        # The same arrays as the layers' own dicts: updating one updates the other.
        self.params = {f"{k}.{n}": p for k, layer in enumerate(layers) for n, p in layer.params.items()}

    def __repr__(self) -> str:
        return "Sequential(\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + ")"

    def forward(self, x, params: Mapping | None = None):
        params = self._params(params)
        caches = []
        for k, layer in enumerate(self.layers):
            own = {n: params[f"{k}.{n}"] for n in layer.params}
            if isinstance(layer, Recurrent):
                x, _, cache = layer.forward(x, own)
            else:
                x, cache = layer.forward(x, own)
            caches.append(cache)
        return x, (id(self), caches)

    def backward(self, dy, cache, *, input_grad: bool = True):
        if not (isinstance(cache, tuple) and len(cache) == 2 and cache[0] == id(self)):
            raise TypeError("cache must be the second value returned by this model's forward")
        grads = {}
        for k in reversed(range(len(self.layers))):
            layer = self.layers[k]
            wanted = input_grad or k > 0
            if isinstance(layer, Recurrent):
                dy, layer_grads, _ = layer.backward(dy, cache[1][k], input_grad=wanted)
            else:
                dy, layer_grads = layer.backward(dy, cache[1][k], input_grad=wanted)
            grads.update({f"{k}.{n}": g for n, g in layer_grads.items()})
        return dy, {n: grads[n] for n in self.params}


# -- losses --------------------------------------------------------------------------------------


def mse(prediction, target) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements; returns ``(loss, dloss/dprediction)``."""
    prediction = as_float_array(prediction, "prediction")
    target = as_float_array(target, "target", prediction.dtype)
    if target.shape != prediction.shape:
        raise ValueError(f"target has shape {target.shape}; expected {prediction.shape}, the shape of prediction")
    if prediction.size == 0:
        raise ValueError("prediction is empty")
    diff = prediction - target
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def softmax_cross_entropy(logits, labels) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer class labels; ``logits`` (..., C),
    ``labels`` (...) in [0, C). Returns ``(loss, dloss/dlogits)``."""
    logits = as_float_array(logits, "logits")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels has dtype {labels.dtype}; expected integer class indices")
    if logits.ndim < 1 or labels.shape != logits.shape[:-1] or labels.size == 0:
        raise ValueError(
            f"labels has shape {labels.shape}; expected {logits.shape[:-1]}, the shape of logits "
            f"without its class axis (and not empty)"
        )
    C = logits.shape[-1]
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"labels must lie in [0, {C}), got values in [{labels.min()}, {labels.max()}]")
    shifted = logits - logits.max(axis=-1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    one_hot = labels[..., None] == np.arange(C)
    loss = -float(np.sum(log_probs[one_hot])) / labels.size
    return loss, (np.exp(log_probs) - one_hot) / labels.size


def train_step(model: Layer, loss_fn: Callable, optimizer: Optimizer, x, target) -> tuple[float, float]:
    """Forward, loss, backward and one optimizer step. Returns ``(loss, gradient norm before clipping)``."""
    prediction, cache = model.forward(x)
    loss, dprediction = loss_fn(prediction, target)
    _, grads = model.backward(dprediction, cache, input_grad=False)  # x is data: no gradient
    return loss, optimizer.step(grads)


# -- parameter files -----------------------------------------------------------------------------


def _params_of(model_or_params, what: str) -> dict[str, np.ndarray]:
    params = model_or_params.params if isinstance(model_or_params, Layer) else model_or_params
    if not isinstance(params, Mapping):
        raise TypeError(f"{what} must be a layer or a dict of arrays, got {type(model_or_params).__name__}")
    return check_arrays(params, {n: np.shape(p) for n, p in params.items()}, what)


def save(path: str | os.PathLike, model_or_params) -> str:
    """Write a layer's (or a dict's) parameters to an uncompressed ``.npz`` file; returns its path
    (NumPy appends ``.npz`` when the name lacks it)."""
    params: dict[str, Any] = _params_of(model_or_params, "model_or_params")  # Any: savez's keywords are arrays
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    np.savez(path, **params)
    return path


def load(path: str | os.PathLike, into=None) -> dict[str, np.ndarray]:
    """Read a ``.npz`` written by ``save``. With ``into`` (a layer or a dict of arrays), the file
    must hold exactly its parameter names and shapes; the values are copied into its arrays in
    place (cast to their dtype) and its parameter dict is returned. Without, a new dict."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        loaded = {n: data[n] for n in data.files}
    if into is None:
        return loaded
    params = _params_of(into, "into")
    loaded = check_arrays(loaded, {n: p.shape for n, p in params.items()}, f"the parameters in {os.fspath(path)}")
    for name, array in params.items():
        np.copyto(array, loaded[name], casting="same_kind")
    return params
