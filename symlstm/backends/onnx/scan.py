"""Any cell as a ``Scan`` over time: the forward IR's step as the Scan's body.

The main graph computes the input projection of all steps at once (one MatMul of x with the
stacked input matrices, split per product) and hands its slices, the extra inputs and (when x is
used elementwise) x itself to the Scan as per-step inputs; the states are the Scan's loop-carried
values. The body runs the forward assignments in order: each is one tensor named after its IR
symbol, and each operand group's GEMM (``[R_i; R_f; R_g; R_o]^T h_prev``) is made where its first
product is read. With ``lengths``, a per-step mask keeps a finished row's states and zeroes its
output, as the runtime does.
"""

from __future__ import annotations

from onnx import GraphProto, TensorProto

from symlstm.backends.onnx.expressions import ExpressionLowering
from symlstm.backends.onnx.graph import GraphBuilder
from symlstm.backends.onnx.interface import Interface
from symlstm.backends.onnx.weights import Weights, gemm
from symlstm.ir.nodes import Kind
from symlstm.ir.plan import StoragePlan


class _Body:
    """The Scan body: one step, reading the outer graph's weights by their names."""

    def __init__(self, io: Interface, weights: Weights, plan: StoragePlan):
        self.io, self.weights, self.d = io, weights, plan.d
        self.g = GraphBuilder(io.namer, weights.g.elem_type)
        self.groups = plan.step_groups
        #: IR symbol -> the tensor that holds it, for those not named after their symbol
        self.tensors: dict[str, str] = {}

    def read(self, name: str) -> str:
        d = self.d
        kind = d.kind(name)
        if kind == Kind.SIZE:
            return self.weights.size(d.quantities[name].base)
        if kind == Kind.PRODUCT and name not in self.tensors:
            operand = d.operand_of(name)
            products = self.groups[operand]
            gemm(self.g, self.weights, self.read(operand), products, [p.name for p in products])
            self.tensors.update({p.name: p.name for p in products})
        return self.tensors.get(name, name)

    def build(self, step_inputs: list[tuple[str, str]], mask: str | None) -> GraphProto:
        """``step_inputs``: (body name, IR symbol) of each per-step input, in the Scan's order;
        ``mask``: the body name of the last one, the (B, 1) bool of the rows still running."""
        d, g, io = self.d, self.g, self.io
        self.tensors.update({symbol: name for name, symbol in step_inputs})
        lowering = ExpressionLowering(g, self.read)
        for a in d.forward:
            lowering.lower(a.expr, out=a.name)
        states, output = list(d.spec.states), d.spec.output
        if mask is None:
            results = states
            y = g.op("Identity", output, out=io.namer.fresh(f"{output}_y"))
        else:  # past a row's end: its states as they were, its output zero
            results = [g.op("Where", mask, s, d.prev_symbol(s).name, out=io.namer.fresh(f"{s}_kept")) for s in states]
            y = g.op("Where", mask, output, g.constant(0.0), out=io.namer.fresh(f"{output}_y"))
        inputs = [g.value_info(d.prev_symbol(s).name, io.state_dims(s)) for s in states]
        inputs += [g.value_info(name, [io.batch, d.size(symbol)]) for name, symbol in step_inputs]
        if mask is not None:
            inputs.append(g.value_info(mask, [io.batch, 1], TensorProto.BOOL))
        outputs = [g.value_info(r, io.state_dims(s)) for r, s in zip(results, states)]
        outputs.append(g.value_info(y, io.state_dims(output)))
        return g.graph(f"{d.spec.name}_step", inputs, outputs)


def scan_graph(io: Interface, plan: StoragePlan, elem_type: int) -> GraphProto:
    """The main graph: the prologue, the input projection, the Scan, the outputs."""
    d, namer = plan.d, io.namer
    spec = d.spec
    g = GraphBuilder(namer, elem_type)
    weights = Weights(g, io)
    body = _Body(io, weights, plan)
    # (outer name of a (T, B, ..) sequence, body name of its step, IR symbol it holds)
    sequences: list[tuple[str, str, str]] = []
    projections = plan.input_group
    outer = [namer.fresh(f"{p.name}_steps") for p in projections]
    gemm(g, weights, io.x, projections, outer)
    sequences += [(o, p.name, p.name) for o, p in zip(outer, projections)]
    if any(d.input in a.expr.free_symbols for a in d.forward):  # x used elementwise
        sequences.append((io.x, namer.fresh(f"{io.x}_t"), io.x))
    sequences += [(name, namer.fresh(f"{name}_t"), name) for name in spec.inputs]
    scanned = [outer for outer, _, _ in sequences]
    mask = None
    if io.lengths is not None:
        scanned.append(_step_mask(g, io))
        mask = namer.fresh("running")
    step = body.build([(inner, symbol) for _, inner, symbol in sequences], mask)
    g.ops(
        "Scan",
        [io.initial[s] for s in spec.states] + scanned,
        [io.final[s] for s in spec.states] + [io.ys],
        body=step,
        num_scan_inputs=len(scanned),
    )
    return g.graph(spec.name, io.inputs(g), io.outputs(g), doc=f"symlstm cell {spec.name!r}: {spec.title}")


def _step_mask(g: GraphBuilder, io: Interface) -> str:
    """(T, B, 1) bool: True where step t of row b is within its length."""
    assert io.lengths is not None
    steps = g.op("Range", g.int64(0), g.op("Squeeze", g.op("Shape", io.x, start=0, end=1)), g.int64(1))
    running = g.op("Less", g.op("Unsqueeze", steps, g.int64s([1])), g.op("Unsqueeze", io.lengths, g.int64s([0])))
    return g.op("Unsqueeze", running, g.int64s([2]), out=io.namer.fresh("running_steps"))
