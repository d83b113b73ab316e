"""symlstm.torch.Recurrent.from_torch(m) computes what m, an nn.LSTM, nn.GRU or nn.RNN, computes:
outputs, final states and every gradient, in float64 to 1e-12; for stacked, bidirectional,
batch-first and packed variable-length inputs.

The gradients of the parameters are compared through a mapping written here, independently of
symlstm's interop: nn's weights as functions of symlstm's parameters (gates stacked row-wise, the
folded bias in bias_ih), so autograd through nn gives the gradients of symlstm's parameters.
"""

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import symlstm.torch as st

T, B, D, H = 5, 3, 4, 6
LENGTHS = [3, 5, 2]
#: the row blocks of nn's stacked weights, and the gates whose hidden bias is a parameter of its own
GATES = {"LSTM": ("ifgo", ""), "GRU": ("rzn", "n"), "RNN": ("h", "")}


def nn_weights(module, model):
    """nn's parameters, by name, as differentiable functions of ``model``'s (symlstm's)."""
    gates, separate = GATES[type(module).__name__]
    weights = {}
    for unit in model.stack.units:
        p, s = model.unit_parameters(unit.suffix), unit.suffix
        weights[f"weight_ih_{s}"] = torch.cat([p[f"W_{g}"] for g in gates])
        weights[f"weight_hh_{s}"] = torch.cat([p[f"R_{g}"] for g in gates])
        weights[f"bias_ih_{s}"] = torch.cat([p[f"b_{g}"] for g in gates])
        weights[f"bias_hh_{s}"] = torch.cat(
            [p[f"b_h{g}"] if g in separate else torch.zeros(H, dtype=torch.float64) for g in gates]
        )
        if "W_hr" in p:
            weights[f"weight_hr_{s}"] = p["W_hr"]
    return weights


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def loss_of(output, state, weights):
    """A loss touching every output and final state with its own random weights."""
    data = output.data if isinstance(output, PackedSequence) else output
    return (data * weights[0][: data.numel()].view_as(data)).sum() + sum(
        (s * w[: s.numel()].view_as(s)).sum() for s, w in zip(as_tuple(state), weights[1:])
    )


def data(output):
    return output.data if isinstance(output, PackedSequence) else output


def check_against(module, make_input, state0=None):
    model = st.Recurrent.from_torch(module)
    assert model.batch_first == module.batch_first and model.num_layers == module.num_layers
    torch.manual_seed(3)
    weights = [torch.randn(1000, dtype=torch.float64) for _ in range(3)]
    results = []
    for run in (module, model):
        given, x = make_input()
        states = [s.clone().requires_grad_() for s in as_tuple(state0)] if state0 is not None else []
        state = None if state0 is None else tuple(states) if isinstance(state0, tuple) else states[0]
        if run is module:  # nn's weights from symlstm's parameters, so the gradients are theirs
            output, final = torch.func.functional_call(module, nn_weights(module, model), (given, state))
        else:
            output, final = model(given, state)
        grads = torch.autograd.grad(loss_of(output, final, weights), [*model.parameters(), x, *states])
        results.append((output, final, grads))
    (got, got_state, got_grads), (expected, expected_state, expected_grads) = results[1], results[0]
    assert type(got) is type(expected) and type(got_state) is type(expected_state)
    if isinstance(expected, PackedSequence):
        assert torch.equal(got.batch_sizes, expected.batch_sizes)
        for a, b in ((got.sorted_indices, expected.sorted_indices), (got.unsorted_indices, expected.unsorted_indices)):
            assert (a is None and b is None) or torch.equal(a, b)
    for a, b in zip((data(got), *as_tuple(got_state)), (data(expected), *as_tuple(expected_state))):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    names = [n for n, _ in model.named_parameters()] + ["input"] + [f"state0[{k}]" for k in range(len(got_grads))]
    for name, a, b in zip(names, got_grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=lambda m, name=name: f"gradient of {name}: {m}")


def padded(batch_first=False):
    def make():
        torch.manual_seed(0)
        x = torch.randn((B, T, D) if batch_first else (T, B, D), dtype=torch.float64, requires_grad=True)
        return x, x

    return make


def packed(enforce_sorted):
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS

    def make():
        torch.manual_seed(0)
        x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
        return pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted), x

    return make


MODULES = {
    "lstm": lambda **kw: torch.nn.LSTM(D, H, **kw),
    "lstmp": lambda **kw: torch.nn.LSTM(D, H, proj_size=2, **kw),
    "gru": lambda **kw: torch.nn.GRU(D, H, **kw),
    "rnn": lambda **kw: torch.nn.RNN(D, H, **kw),
    "rnn_relu": lambda **kw: torch.nn.RNN(D, H, nonlinearity="relu", **kw),
}


def initial_state(kind, layers, directions):
    torch.manual_seed(1)
    units = layers * directions
    if kind == "lstmp":
        return (torch.randn(units, B, 2, dtype=torch.float64), torch.randn(units, B, H, dtype=torch.float64))
    if kind == "lstm":
        return (torch.randn(units, B, H, dtype=torch.float64), torch.randn(units, B, H, dtype=torch.float64))
    return torch.randn(units, B, H, dtype=torch.float64)


@pytest.mark.parametrize("kind", sorted(MODULES))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "make", "with_state"),
    [
        (1, False, False, padded(), False),
        (2, True, False, padded(), True),
        (2, False, True, padded(batch_first=True), True),
        (2, True, False, packed(enforce_sorted=False), True),
        (1, True, False, packed(enforce_sorted=True), False),
    ],
    ids=["plain", "stacked-bidirectional", "batch-first", "packed-unsorted", "packed-sorted"],
)
def test_equal_to_torch_nn(kind, layers, bidirectional, batch_first, make, with_state):
    torch.manual_seed(2)
    module = MODULES[kind](num_layers=layers, bidirectional=bidirectional, batch_first=batch_first).double()
    state0 = initial_state(kind, layers, 2 if bidirectional else 1) if with_state else None
    check_against(module, make, state0)


def test_padded_input_with_lengths_equals_a_packed_one():
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    out_packed, state_packed = model(pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False))
    out, state = model(x, lengths=torch.tensor(LENGTHS))
    expected = torch.nn.utils.rnn.pad_packed_sequence(out_packed, total_length=T)[0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    for a, b in zip(state, state_packed):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
