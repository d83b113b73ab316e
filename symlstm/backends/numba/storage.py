"""Where a forward step kernel reads and writes states and values.

The training kernel (``forward_steps``) keeps every step for the backward: a (T + 1, B, size)
sequence per state, a (T, B, size) array per stored value. The inference kernel (``infer_steps``)
keeps one step: a (2, B, size) array per state (last step's row and this step's, by the parity of
t) and, per range of rows, a scratch row for each value a later loop or a step GEMM reads; every
other value lives in a register. Both emit the same statements; only these places differ.
"""

from __future__ import annotations

from symlstm.backends.numba.names import KernelNames
from symlstm.backends.numba.subscript import Subscript
from symlstm.ir.nodes import Kind


class StepStorage:
    """``index`` below is ``b`` (one batch row's view) or ``lo:hi`` (a GEMM operand's block)."""

    def __init__(self, names: KernelNames, inference: bool = False):
        self.names = names
        self.inference = inference
        plan = names.plan
        #: values with an array of their own, and the values among them kept for the backward
        self.kept = () if inference else plan.stored + plan.kept_products
        self.crossing = plan.inference_crossing if inference else plan.forward_crossing

    def _state(self, state: str, index: str, new: bool) -> Subscript:
        n = self.names
        if self.inference:
            step = f"({n.t} + 1) % 2" if new else f"{n.t} % 2"
            return Subscript(n.pair[state], (step, index))
        return Subscript(n.seq[state], (f"{n.t}{' + 1' if new else ''}", index))

    def prev(self, state: str, index: str) -> Subscript:
        """Last step's value of ``state``."""
        return self._state(state, index, new=False)

    def new(self, state: str, index: str) -> Subscript:
        """This step's value of ``state``."""
        return self._state(state, index, new=True)

    def value(self, name: str, index: str) -> Subscript | None:
        """The array row or block holding a forward value (not a state), if it has one."""
        n = self.names
        if name in self.kept:
            return Subscript(n.keep[name], (n.t, index))
        if name in self.crossing:
            # the scratch rows of this range of rows: the block is all of them
            return Subscript(n.crossing[name]) if ":" in index else Subscript(n.crossing[name], (f"{index} - {n.lo}",))
        return None

    def gemm_operand(self, operand: str) -> Subscript:
        """The (rows, in) block a step GEMM multiplies at step t."""
        n = self.names
        d = n.plan.d
        state = d.state_of_operand(operand)
        block = f"{n.lo}:{n.hi}"
        if state is not None:
            return self.prev(state, block) if d.kind(operand) == Kind.PREV else self.new(state, block)
        found = self.value(operand, block)
        assert found is not None, f"the GEMM operand {operand} has no array"
        return found

    def past_end(self, later: tuple[str, ...] = ()) -> list[str]:
        """What a step does for a row whose sequence has ended: it keeps its states; in training,
        the values the backward multiplies (by zero adjoints) are zeros, not whatever the buffer
        held; in inference, the output is zero. ``later``: states a later step GEMM writes for all
        rows, put back by ``kept_states`` after it instead."""
        n = self.names
        lines = ["# past the end of this row's sequence: its states stay as they were"]
        lines += self._unchanged([s for s in n.plan.d.spec.states if s not in later])
        lines += [f"{n.keep[name]}[{n.t}, {n.b}] = 0" for name in self.kept]
        if self.inference:
            lines.append(f"{n.ys}[{n.t}, {n.b}] = 0")
        return lines

    def kept_states(self, states: list[str]) -> list[str]:
        """For a row past its length, after a step GEMM wrote ``states`` for all rows: the states
        as they were."""
        return ["# past its length: the state stays as it was", *self._unchanged(states)]

    def _unchanged(self, states: list[str]) -> list[str]:
        """This step's row of each state set to last step's, for batch row b."""
        b = self.names.b
        return [f"{self.new(s, b)} = {self.prev(s, b)}" for s in states]
