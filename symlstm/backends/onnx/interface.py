"""The inputs and outputs every exported graph has, whatever computes it (a Scan, a native op).

Inputs: ``x`` (T, B, D); per state its initial value ``<state>0`` (B, size); the spec's extra
per-step inputs by their names (T, B, size); ``lengths`` (B,) int64 when asked for; and the
parameters by their names (graph inputs in the emitted text, initializers once exported).
Outputs: ``ys`` (T, B, size of the output state) and per state its final value ``<state>_final``.
T and B are free dimensions; the spec's sizes are named dimensions until the export binds them.
All names but the spec's own come from the derivation's namer, so none collides with the spec's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onnx import TensorProto, ValueInfoProto

from symlstm.backends.onnx.graph import Dims, GraphBuilder
from symlstm.ir.derive import Derivation
from symlstm.ir.names import Namer
from symlstm.lang.sizes import INPUT_SIZE


@dataclass
class Interface:
    d: Derivation
    namer: Namer
    #: True: the graph takes ``lengths``, and rows past their length hold their states
    with_lengths: bool = False
    time: str = field(init=False)
    batch: str = field(init=False)
    x: str = field(init=False)
    #: state -> the names of its initial and final values
    initial: dict[str, str] = field(init=False)
    final: dict[str, str] = field(init=False)
    ys: str = field(init=False)
    lengths: str | None = field(init=False)

    def __post_init__(self) -> None:
        spec, fresh = self.d.spec, self.namer.fresh
        for size in spec.size_names:  # a spec may name a size T or B: the free dims then differ
            self.namer.claim(size)
        self.time, self.batch = fresh("T"), fresh("B")
        self.x = self.d.input.name  # "x", a word of the spec language
        self.initial = {s: fresh(f"{s}0") for s in spec.states}
        self.lengths = fresh("lengths") if self.with_lengths else None
        self.ys = fresh("ys")
        self.final = {s: fresh(f"{s}_final") for s in spec.states}

    def state_dims(self, state: str) -> Dims:
        return [self.batch, self.d.size(state)]

    def inputs(self, g: GraphBuilder) -> list[ValueInfoProto]:
        spec = self.d.spec
        out = [g.value_info(self.x, [self.time, self.batch, INPUT_SIZE])]
        out += [g.value_info(self.initial[s], self.state_dims(s)) for s in spec.states]
        out += [g.value_info(name, [self.time, self.batch, size]) for name, size in spec.inputs.items()]
        if self.lengths is not None:
            out.append(g.value_info(self.lengths, [self.batch], TensorProto.INT64))
        return out + self.param_inputs(g)

    def param_inputs(self, g: GraphBuilder) -> list[ValueInfoProto]:
        spec = self.d.spec
        out = [g.value_info(name, list(spec.matrices[name])) for name in spec.matrices]
        return out + [g.value_info(name, [spec.sizes[name]]) for name in spec.vectors]

    def outputs(self, g: GraphBuilder) -> list[ValueInfoProto]:
        spec = self.d.spec
        out = [g.value_info(self.ys, [self.time, *self.state_dims(spec.output)])]
        return out + [g.value_info(self.final[s], self.state_dims(s)) for s in spec.states]
