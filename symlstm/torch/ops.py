"""One cell's forward and backward as ``torch.library`` custom ops, with autograd and fake kernels.

``cell_op(cell)(x, params, inputs, lengths, state0, sizes) -> (ys, *final states)`` is what the
module calls. It runs ``cell.forward``/``cell.backward`` on the tensors' memory (``Tensor.numpy()``
views: no copy for contiguous CPU tensors), in one of two ways:

- under ``torch.compile``, the custom op ``forward`` (and ``backward`` for its gradient): single
  graph nodes with fake (meta) implementations, so dynamo traces a model without a graph break and
  without looking inside, and compiling costs seconds, not the minutes a Python loop over time
  steps takes. An op hands only tensors from its forward to its backward, so ``forward`` also
  returns the trace, the arrays the runtime keeps for the backward (``cache.trace.arrays``), marked
  non-differentiable; ``backward`` rebuilds the runtime's cache around them (``trace``).
- in eager mode, a ``torch.autograd.Function`` running the same code that keeps the runtime's
  cache itself: the dispatcher's Python layers and the rebuilding would cost as much as the
  kernels of a short sequence.

Each cell gets its own pair of ops, named after the cell and the first digits of a SHA-256 of
its spec and the ops' schemas, e.g. ``torch.ops.symlstm.lstm_1f2e3d4c5b6a_forward``: a changed
schema is a new op, so no graph torch.compile cached for the old one calls it. Gradients of
gradients (double backward) raise a ``RuntimeError`` saying why, on both paths.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch

from symlstm.backends import kernel_backend
from symlstm.lang.spec import CellSpec
from symlstm.runtime import Cell
from symlstm.torch.threads import kernel_threads

DOUBLE_BACKWARD = (
    "symlstm's kernels compute first derivatives only, so the gradient of a symlstm.torch "
    "module's gradient (double backward: create_graph=True, gradgradcheck, a gradient penalty "
    "through the cell) is not supported"
)


def _array(tensor) -> np.ndarray:
    """The CPU tensor's memory as an ndarray, strides and all (the runtime copies an array that is
    not C-contiguous; a contiguous one it uses as it is). ``force``: detached, not a copy."""
    return tensor.numpy(force=True)


def _tensor(array: np.ndarray):
    return torch.from_numpy(array)


class CellOp:
    """The custom ops of one cell: ``forward`` (differentiable) and ``backward``."""

    def __init__(self, cell: Cell):
        self.cell = cell
        self.param_names = cell.param_names
        self.state_names = cell.state_names
        self.input_names = cell.input_names
        self.size_names = cell.size_names
        ones = dict.fromkeys(self.size_names, 1)
        self.num_trace = len(cell.kernels.trace_shapes(1, 1, ones, lambda shape, dtype: shape))
        states = ", ".join(["Tensor"] * len(self.state_names))
        trace = ", ".join(["Tensor"] * self.num_trace)
        common = "Tensor x, Tensor[] params, Tensor[] inputs, Tensor? lengths"
        forward_schema = f"({common}, Tensor[] state0, SymInt[] sizes) -> (Tensor, {states}, {trace})"
        backward_schema = (
            f"({common}, Tensor[] trace, Tensor dys, Tensor[] dstate, bool input_grad, SymInt[] sizes)"
            " -> (Tensor, Tensor[], Tensor[])"
        )
        # named by the spec and the schemas: torch.compile caches compiled graphs by the ops'
        # names, and one compiled for an older schema must not be called with this one's arguments
        key = hashlib.sha256(f"{cell.spec.sha256}\n{forward_schema}\n{backward_schema}".encode()).hexdigest()
        name = f"symlstm::{_identifier(cell.name)}_{key[:12]}"
        self.forward = torch.library.custom_op(
            f"{name}_forward", self._forward, mutates_args=(), device_types="cpu", schema=forward_schema
        )
        self.forward.register_fake(self._forward_fake)
        self.forward.register_autograd(self._autograd_backward, setup_context=self._setup_context)
        self.backward = torch.library.custom_op(
            f"{name}_backward", self._backward, mutates_args=(), device_types="cpu", schema=backward_schema
        )
        self.backward.register_fake(self._backward_fake)
        self.backward.register_autograd(_no_double_backward, setup_context=_nothing_to_keep)

    # -- the real work, on ndarrays over the tensors' memory --------------------------------------
    def _call_arguments(self, x, params, inputs, lengths, state0) -> tuple[tuple, dict]:
        """The tensors as ``cell.forward``/``cell.infer`` take them: ndarrays over their memory."""
        args = (
            _array(x),
            dict(zip(self.param_names, map(_array, params))),
            None if state0 is None else dict(zip(self.state_names, map(_array, state0))),
        )
        keywords = {
            "inputs": dict(zip(self.input_names, map(_array, inputs))),
            "lengths": None if lengths is None else lengths.numpy(),
        }
        return args, keywords

    def _run_forward(self, x, params, inputs, lengths, state0):
        """``cell.forward`` on the tensors: ``(ys, final states, cache)``, the first two as tensors."""
        args, keywords = self._call_arguments(x, params, inputs, lengths, state0)
        with kernel_threads():
            # borrow: the tensors' memory, which autograd's version counters guard (save_for_backward)
            ys, final, cache = self.cell.forward(*args, **keywords, borrow=True)
        return _tensor(ys), [_tensor(final[s]) for s in self.state_names], cache

    def _run_infer(self, x, params, inputs, lengths, state0):
        """``cell.infer`` on the tensors (its own kernel, no stored activations): ``(ys, *final states)``."""
        args, keywords = self._call_arguments(x, params, inputs, lengths, state0)
        with kernel_threads():
            ys, final = self.cell.infer(*args, **keywords)
        return (_tensor(ys), *(_tensor(final[s]) for s in self.state_names))

    def _run_backward(self, cache, dys, dstate, input_grad: bool):
        """``cell.backward`` on tensors, ``dys`` or ``dstate`` None for zeros: ``(dx, dparams,
        dstate0)``; dx None unless ``input_grad``."""
        dlast = None if dstate is None else dict(zip(self.state_names, map(_array, dstate)))
        with kernel_threads():
            dx, dparams, dstate0 = self.cell.backward(
                None if dys is None else _array(dys), cache, dlast, input_grad=input_grad
            )
        return (
            None if dx is None else _tensor(dx),
            [_tensor(dparams[n]) for n in self.param_names],
            [_tensor(dstate0[s]) for s in self.state_names],
        )

    def _forward(self, x, params, inputs, lengths, state0, sizes):
        ys, final, cache = self._run_forward(x, params, inputs, lengths, state0)
        # The trace arrays come from the runtime's buffer pool: a tensor made from one keeps the
        # array alive, so the pool does not hand it out again while autograd holds the tensor.
        return (ys, *final, *map(_tensor, cache.trace.arrays))

    def _backward(self, x, params, inputs, lengths, trace, dys, dstate, input_grad, sizes):
        """The gradients; without ``input_grad`` dx is an empty tensor (an op returns tensors)."""
        cache = self.cell.restore_cache(
            _array(x),
            dict(zip(self.param_names, map(_array, params))),
            [_array(a) for a in trace],
            dict(zip(self.input_names, map(_array, inputs))),
            None if lengths is None else lengths.numpy(),
            dict(zip(self.size_names, sizes)),
        )
        dx, dparams, dstate0 = self._run_backward(cache, dys, dstate, input_grad)
        return x.new_empty((0,)) if dx is None else dx, dparams, dstate0

    # -- shapes only, for torch.compile ----------------------------------------------------------
    def _forward_fake(self, x, params, inputs, lengths, state0, sizes):
        T, B = x.shape[0], x.shape[1]
        trace = self.cell.kernels.trace_shapes(
            T, B, dict(zip(self.size_names, sizes)), lambda shape, _: x.new_empty(shape)
        )
        return (x.new_empty((T, B, state0[0].shape[1])), *(s.new_empty(s.shape) for s in state0), *trace)

    def _backward_fake(self, x, params, inputs, lengths, trace, dys, dstate, input_grad, sizes):
        dx = x.new_empty(x.shape if input_grad else (0,))
        return dx, [p.new_empty(p.shape) for p in params], [d.new_empty(d.shape) for d in dstate]

    # -- autograd ----------------------------------------------------------------------------------
    def _setup_context(self, ctx, inputs, output):
        x, params, extra, lengths, state0, sizes = inputs
        trace = output[1 + len(self.state_names) :]
        ctx.mark_non_differentiable(*trace)
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradients
        ctx.save_for_backward(x, lengths, *params, *extra, *trace)
        ctx.sizes = sizes
        ctx.shapes = [o.shape for o in output[: 1 + len(self.state_names)]]

    def _autograd_backward(self, ctx, dys, *grads):
        x, lengths, *rest = ctx.saved_tensors
        n, k = len(self.param_names), len(self.input_names)
        params, extra, trace = rest[:n], rest[n : n + k], rest[n + k :]
        # An output nothing depended on has no gradient: zeros (a state's are small; ys rarely unused).
        dys, *dstate = (x.new_zeros(shape) if g is None else g for g, shape in zip((dys, *grads), ctx.shapes))
        input_grad = bool(ctx.needs_input_grad[0])  # x's: none for a first layer's data
        dx, dparams, dstate0 = self.backward(x, params, extra, lengths, trace, dys, dstate, input_grad, ctx.sizes)
        # one gradient per input, lists for the list arguments; the extra inputs are data
        return dx if input_grad else None, dparams, [None] * k, None, dstate0, None

    # -- eager mode ------------------------------------------------------------------------------
    def __call__(self, x, params, inputs, lengths, state0, sizes):
        """``(ys, *final states)``, differentiable; ``state0`` None for zeros. Under
        ``torch.compile`` this is the custom op (whose further outputs, the trace, are dropped); in
        eager mode a ``torch.autograd.Function`` that keeps the runtime's own cache for the
        backward: it skips the dispatcher's Python layers and the rebuilding of the cache, which
        cost as much as a short sequence's kernels."""
        if torch.compiler.is_compiling():
            if state0 is None:
                units = self.cell.state_sizes(**dict(zip(self.size_names, sizes)))
                state0 = [x.new_zeros((x.shape[1], units[s])) for s in self.state_names]
            return self.forward(x, params, inputs, lengths, state0, sizes)[: 1 + len(self.state_names)]
        if not torch.is_grad_enabled():  # no_grad, inference_mode: nothing to record (autograd's ~0.1 ms)
            return self._run_infer(x, params, inputs, lengths, state0)
        return _Eager.apply(self, x, lengths, inputs, state0 is None, *params, *(state0 or ()))


class _Eager(torch.autograd.Function):
    """``CellOp``'s autograd in eager mode; tensors are passed flat so autograd tracks each one."""

    @staticmethod
    def forward(ctx, op: CellOp, x, lengths, inputs, zero_state: bool, *flat):
        n = len(op.param_names)
        ys, final, ctx.cache = op._run_forward(x, flat[:n], inputs, lengths, None if zero_state else flat[n:])
        ctx.op, ctx.final, ctx.zero_state = op, [(f.shape, f.dtype) for f in final], zero_state
        # the cache reads x and the inputs where they are: autograd then raises if they change
        ctx.save_for_backward(x, *inputs)
        ctx.set_materialize_grads(False)  # the runtime takes None for zero gradients
        return (ys, *final)

    @staticmethod
    def backward(ctx, dys, *dstate):
        ctx.saved_tensors  # noqa: B018 - reading them checks that x and the inputs are unchanged
        given = None
        if any(d is not None for d in dstate):
            given = [
                torch.zeros(shape, dtype=dtype) if d is None else d for d, (shape, dtype) in zip(dstate, ctx.final)
            ]
        # the input's gradient only if autograd wants it (a first layer's input is data: not)
        dx, dparams, dstate0 = ctx.op._run_backward(ctx.cache, dys, given, input_grad=ctx.needs_input_grad[1])
        if torch.is_grad_enabled():  # create_graph=True: these gradients must say they have none
            n, flat = len(dparams), [*([] if dx is None else [dx]), *dparams, *dstate0]
            # (a leaf that requires grad, so that the results have this function as grad_fn)
            flat = list(_NoDoubleBackward.apply(torch.zeros((), requires_grad=True), *flat))
            if dx is not None:
                dx, *flat = flat
            dparams, dstate0 = flat[:n], flat[n:]
        return None, dx, None, None, None, *dparams, *(() if ctx.zero_state else dstate0)


class _NoDoubleBackward(torch.autograd.Function):
    """The identity, whose backward says why the gradients of gradients cannot be had."""

    @staticmethod
    def forward(ctx, anchor, *tensors):
        return tuple(t.view_as(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(DOUBLE_BACKWARD)


def _identifier(name: str) -> str:
    """``name`` as a valid op name part: letters, digits and underscores, not starting with a digit."""
    return re.sub(r"^(?=\d)|\W", "_", name)


def _nothing_to_keep(ctx, inputs, output):
    pass


def _no_double_backward(ctx, *grads):
    raise RuntimeError(DOUBLE_BACKWARD)


_OPS: dict[str, CellOp] = {}


def cell_op(cell: Cell) -> CellOp:
    """The ops of ``cell``, registered once per process (a spec's SHA-256 names them)."""
    key = cell.spec.sha256
    if key not in _OPS:
        _OPS[key] = CellOp(cell)
    return _OPS[key]


def cell_op_of_spec(spec: CellSpec) -> CellOp:
    """The ops of the cell of ``spec``, loading its kernels if no op of this process has them."""
    if spec.sha256 not in _OPS:
        return cell_op(Cell(spec, kernel_backend().load(spec)))
    return _OPS[spec.sha256]
