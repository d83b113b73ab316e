"""``Recurrent``: any symlstm cell as a ``torch.nn.Module`` that behaves as ``torch.nn.LSTM`` does.

Layers, directions, dropout and ``PackedSequence`` are handled here with torch operations; each
(layer, direction) unit runs its whole sequence in one call of the cell's custom op (``ops``),
which runs the generated kernels on the tensors' memory. The layout of the units is ``Stack``'s,
shared with the NumPy ``symlstm.nn.Recurrent``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from symlstm.interop import pytorch as torch_interop
from symlstm.lang.sizes import evaluate
from symlstm.runtime import Cell
from symlstm.stack import Stack, load_cell
from symlstm.torch import checks, packed
from symlstm.torch.masks import check_sampler
from symlstm.torch.ops import cell_op, cell_op_of_spec
from symlstm.train.checks import positive_int

_NUMPY_DTYPE = {torch.float32: "float32", torch.float64: "float64"}


class Recurrent(nn.Module):
    """``num_layers`` stacked layers of a symlstm cell, optionally bidirectional, as an ``nn.Module``.

    ``cell`` is a built-in name (``"lstm"``, ``"gru"``, ...), the path of a ``.toml`` spec or a
    ``symlstm`` Cell; ``sizes`` are its sizes besides D and H (``P=4`` for lstmp). The other
    arguments mean what they mean for ``torch.nn.LSTM``; ``dtype`` None is torch's default.

    Parameters are named after the spec with PyTorch's suffixes: ``W_i_l0``, ``R_i_l1_reverse``,
    ``b_f_l0``, ... They start uniform in ±1/sqrt(hidden_size), as the cell's ``init_params``
    (and nn.LSTM) do, drawn from torch's generator (``torch.manual_seed``).

    ``forward(input, state=None, *, lengths=None, inputs=None) -> (output, state)``: see there.
    Cells with per-step data inputs (a spec's ``[inputs]``, e.g. zoneout masks) take them from
    ``inputs=`` or from the samplers set with ``sample_inputs`` (module ``symlstm.torch.masks``).
    """

    def __init__(
        self,
        cell: Cell | str | os.PathLike,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: torch.dtype | None = None,
        **sizes: int,
    ):
        super().__init__()
        self.cell = load_cell(cell)
        self.stack = Stack(
            self.cell,
            positive_int(input_size, "input_size"),
            positive_int(hidden_size, "hidden_size"),
            positive_int(num_layers, "num_layers"),
            bool(bidirectional),
            dict(sizes),
        )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.sizes = dict(sizes)  # the cell's sizes besides D and H
        self.bidirectional, self.batch_first = bool(bidirectional), bool(batch_first)
        self.dropout = checks.dropout_probability(dropout)
        if self.dropout > 0 and num_layers == 1:
            warnings.warn(  # as nn.LSTM does
                f"dropout={dropout} and num_layers=1: dropout acts between layers, so it does nothing here",
                stacklevel=2,
            )
        dtype = checks.float_dtype(dtype)
        self._op = cell_op(self.cell)
        #: per unit: its parameters' attribute names, its sizes (in the cell's size_names order)
        #: and those of its per-step inputs
        self._names, self._sizes, self._input_sizes = [], [], []
        for unit in self.stack.units:
            bindings = self.cell.spec.bind_sizes(unit.input_size, hidden_size, **sizes)
            self._sizes.append([bindings[n] for n in self.cell.size_names])
            self._input_sizes.append([evaluate(self.cell.spec.inputs[n], bindings) for n in self.cell.input_names])
            self._names.append([f"{n}_{unit.suffix}" for n in self.cell.param_names])
            for name, shape in self.stack.param_shapes(unit).items():
                self.register_parameter(f"{name}_{unit.suffix}", nn.Parameter(torch.empty(shape, dtype=dtype)))
        self._state_sizes = [self.stack.state_sizes[s] for s in self.cell.state_names]
        #: input name -> its sampler (``sample_inputs``)
        self.samplers: dict[str, object] = {}
        self.reset_parameters()

    # copy.deepcopy and pickle (torch.save of the whole module, multiprocessing): the cell's kernels
    # are a loaded Python module, so the spec travels instead and the kernels are found again from it.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["cell"], state["stack"], state["_op"] = self.cell.spec, None, None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._op = cell_op_of_spec(state["cell"])
        self.cell = self._op.cell
        self.stack = Stack(
            self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional, self.sizes
        )

    def reset_parameters(self) -> None:
        """Uniform in ±1/sqrt(hidden_size), as ``Cell.init_params`` and ``nn.LSTM``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.cell.name!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        for name in ("batch_first", "dropout", "bidirectional"):
            text += f", {name}={getattr(self, name)}"
        return text + "".join(f", {n}={v}" for n, v in self.stack.sizes.items())

    @property
    def num_directions(self) -> int:
        """2 when bidirectional, else 1."""
        return self.stack.num_directions

    @property
    def output_size(self) -> int:
        """Features of the output: num_directions times the size of the cell's output state."""
        return self.stack.output_size

    def unit_parameters(self, suffix: str) -> dict[str, torch.Tensor]:
        """The cell's parameter dict of one unit, e.g. ``unit_parameters("l1_reverse")["W_i"]``."""
        return {n: getattr(self, f"{n}_{suffix}") for n in self.cell.param_names}

    def sample_inputs(self, **samplers) -> Recurrent:
        """Set the samplers of the cell's per-step inputs by name (``symlstm.torch.masks``): in
        training mode each forward draws them, for every unit, step and row; in evaluation mode it
        uses their expectation. ``None`` removes one. Returns the module."""
        for name, sampler in samplers.items():
            if name not in self.cell.input_names:
                raise ValueError(
                    f"cell {self.cell.name!r} has no input {name!r}; its inputs: {list(self.cell.input_names)}"
                )
            if sampler is None:
                self.samplers.pop(name, None)
            else:
                check_sampler(name, sampler)
                self.samplers[name] = sampler
        return self

    # -- interop -----------------------------------------------------------------------------------
    @classmethod
    def from_torch(cls, module) -> Recurrent:
        """The same computation as a ``torch.nn.LSTM`` (``proj_size`` gives the cell lstmp),
        ``GRU`` or ``RNN`` (tanh or relu): any depth, direction, ``batch_first``, dropout and mode,
        with a copy of its weights in its dtype."""
        arch = torch_interop.architecture(module)
        with warnings.catch_warnings():  # the module warned about a useless dropout already
            warnings.simplefilter("ignore")
            new = cls(
                arch.cell,
                arch.input_size,
                arch.hidden_size,
                num_layers=arch.num_layers,
                batch_first=arch.batch_first,
                dropout=module.dropout,
                bidirectional=arch.bidirectional,
                dtype=module.weight_ih_l0.dtype,
                **arch.sizes,
            )
        with torch.no_grad():
            for suffix, params in torch_interop.units_from_torch(module).items():
                for name, value in params.items():
                    getattr(new, f"{name}_{suffix}").copy_(torch.from_numpy(value))
        return new.train(module.training)

    def to_torch(self):
        """A ``torch.nn.LSTM``, ``GRU`` or ``RNN`` computing what this module computes (for the cells
        that have one: lstm, lstmp, gru, rnn, rnn_relu), with a copy of its weights."""
        units = {
            u.suffix: {n: p.detach().cpu().numpy() for n, p in self.unit_parameters(u.suffix).items()}
            for u in self.stack.units
        }
        dtype = _NUMPY_DTYPE[checks.module_dtype(next(self.parameters()))]
        module = torch_interop.stack_to_torch(self.stack, units, dtype, batch_first=self.batch_first)
        module.dropout = self.dropout
        return module.train(self.training)

    # -- the computation ---------------------------------------------------------------------------
    def forward(self, input, state=None, *, lengths=None, inputs: Mapping | None = None):
        """Run the stack over a sequence; returns ``(output, state)`` as ``torch.nn.LSTM`` does.

        ``input``: (T, B, input_size), (B, T, input_size) when ``batch_first``, or a
        ``PackedSequence`` (sorted or not; ``output`` is then one too, packed the same way).
        ``state``: the initial states, None for zeros; for a cell of one state (gru, rnn) a tensor,
        else a tuple in the cell's state order (lstm: ``(h_0, c_0)``), each (num_layers *
        num_directions, B, size). The final ``state`` has the same form: for lstm exactly
        nn.LSTM's ``(h_n, c_n)``. ``output`` has num_directions * (size of the output state)
        features, the directions' outputs side by side, forward first.

        ``lengths`` (B,) integers in 1..T, for a padded ``input``: row b has ``lengths[b]`` steps;
        its output past them is zero, its final state the one at its own last step, and the
        reverse direction starts at that step (a PackedSequence gives its lengths itself).
        ``inputs`` maps the cell's per-step inputs to tensors shaped as the input (with ``size``
        features; for a PackedSequence as its padding, time-major), or with a leading
        num_layers * num_directions axis, one per unit; those not given are drawn from the
        samplers of ``sample_inputs``.
        """
        dtype = checks.module_dtype(self._parameters[self._names[0][0]])
        is_packed = isinstance(input, PackedSequence)
        if is_packed:
            if lengths is not None:
                raise ValueError("lengths must be None for a PackedSequence input, which carries its own")
            checks.tensor(input.data, "input", dtype)
            x, lengths = packed.unpack(input)
            batch_first = False
        else:
            x, batch_first = input, self.batch_first
        x = checks.sequence(x, "input", dtype, self.input_size, batch_first)
        T, B = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = checks.lengths(lengths, T, B)
        states0 = self._initial_states(state, B, x)
        extra = self._step_inputs(inputs, T, B, x, batch_first)
        output, final = self._run(x, states0, extra, lengths)
        if is_packed:
            output = packed.pack_like(output, input, lengths)
        elif batch_first:
            output = output.transpose(0, 1)
        return output, final[0] if len(final) == 1 else final

    def _initial_states(self, state, B: int, x) -> list | None:
        """Per state, a (units, B, size) tensor; None for zeros (the runtime makes them)."""
        if state is None:
            return None
        shapes = [(len(self.stack.units), B, n) for n in self._state_sizes]
        return checks.states(state, self.cell.state_names, shapes, x.dtype)

    def _step_inputs(self, given: Mapping | None, T: int, B: int, x, batch_first: bool) -> list[list]:
        """Per unit, the cell's per-step inputs in its order, each (T, B, size) time-major."""
        names, units = self.cell.input_names, self.stack.units
        given = {} if given is None else given
        if not isinstance(given, Mapping):
            raise TypeError(f"inputs must be None or a dict {{input name: tensor}}, got {type(given).__name__}")
        unknown = sorted(str(n) for n in given if n not in names)
        missing = [n for n in names if n not in given and n not in self.samplers]
        if unknown or missing:
            raise ValueError(
                f"inputs for cell {self.cell.name!r}: unknown {unknown}, neither given nor sampled {missing}; "
                f"its per-step inputs are {list(names)} (give them, or set samplers with sample_inputs)"
            )
        per_unit: list[list] = [[] for _ in units]
        for k, name in enumerate(names):
            for u in range(len(units)):
                shape = (T, B, self._input_sizes[u][k])
                if name in given:
                    value = self._given_input(given[name], name, u, x.dtype, shape, batch_first)
                elif self.training:
                    value = self.samplers[name].sample(shape, dtype=x.dtype, device=x.device)  # type: ignore[attr-defined]
                else:
                    value = self.samplers[name].expectation(shape, dtype=x.dtype, device=x.device)  # type: ignore[attr-defined]
                per_unit[u].append(value)
        return per_unit

    def _given_input(self, value, name: str, u: int, dtype, shape: tuple, batch_first: bool):
        what = f"inputs[{name!r}]"
        checks.tensor(value, what, dtype)
        layout = (shape[1], shape[0], shape[2]) if batch_first else shape
        if value.dim() == 4 and value.shape[0] == len(self.stack.units):
            value = value[u]
        if tuple(value.shape) != layout:
            raise ValueError(
                f"{what} has shape {tuple(value.shape)}; expected {layout}, laid out as the input, "
                f"or ({len(self.stack.units)}, *{layout}), one per (layer, direction) unit"
            )
        return value.transpose(0, 1) if batch_first else value

    def _run(self, x, states0: list | None, extra: list[list], lengths):
        """The stack over the time-major ``x``; returns (output, final states)."""
        index = packed.reversal(lengths, x.shape[0]) if lengths is not None and self.bidirectional else None
        seq, finals = x, []
        S = len(self._state_sizes)
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                u = k * self.num_directions + d
                params = [self._parameters[n] for n in self._names[u]]  # (getattr: 1-2 us each)
                step_inputs = [packed.reverse(v, index) if d else v for v in extra[u]]
                source = packed.reverse(seq, index) if d else seq
                result = self._op(
                    source.contiguous(),
                    params,
                    [v.contiguous() for v in step_inputs],
                    lengths,
                    None if states0 is None else [s[u] for s in states0],
                    self._sizes[u],
                )
                outs.append(packed.reverse(result[0], index) if d else result[0])
                finals.append(result[1 : 1 + S])
            seq = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
            if self.dropout and self.training and k < self.num_layers - 1:
                seq = nn.functional.dropout(seq, self.dropout, training=True)
        if len(finals) == 1:
            return seq, tuple(f.unsqueeze(0) for f in finals[0])
        return seq, tuple(torch.stack([f[s] for f in finals]) for s in range(S))
