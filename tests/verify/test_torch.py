"""Agreement with PyTorch's own modules in float64: nn.LSTM, nn.GRU and nn.RNN through
from_torch/to_torch; values and every gradient match to ~1e-12. (nn.LSTM with proj_size is in
test_lstmp_torch.py; every built-in cell is also checked against hand-written autograd equations
in test_variants_torch.py.)"""

import numpy as np
import pytest

import symlstm

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

T, B, D, H = 7, 3, 5, 6


def run_symlstm(cell, x, params, state0, dys, dstate):
    ys, state, cache = cell.forward(x, params, state0)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)
    return ys, state, dx, dparams, dstate0


def assert_close(actual, expected, what, tol=1e-12):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < tol, f"{what}: max error {err:.2e}"


# B = 37 also runs the rows on two threads and the step GEMMs in blocks of 8 rows
@pytest.fixture(params=[B, 37], ids=lambda b: f"B={b}")
def problem(rng, request):
    x = rng.standard_normal((T, request.param, D))
    dys = rng.standard_normal((T, request.param, H))
    return x, dys


MODULES = {
    "LSTM": (lambda: torch.nn.LSTM(D, H), "lstm", "ifgo", ()),
    "GRU": (lambda: torch.nn.GRU(D, H), "gru", "rzn", ("n",)),
    "RNN-tanh": (lambda: torch.nn.RNN(D, H), "rnn", "h", ()),
    "RNN-relu": (lambda: torch.nn.RNN(D, H, nonlinearity="relu"), "rnn_relu", "h", ()),
}


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("kind", MODULES)
def test_from_torch_matches_module(kind, batch_first, problem, rng):
    """Outputs, final states and every gradient of nn.LSTM/GRU/RNN, through from_torch."""
    make, name, gates, separate = MODULES[kind]
    torch.manual_seed(0)
    module = make().double()
    module.batch_first = batch_first
    cell, params = symlstm.from_torch(module)
    assert cell.name == name
    x, dys = problem
    batch = x.shape[1]
    if batch_first:
        x, dys = x.transpose(1, 0, 2).copy(), dys.transpose(1, 0, 2).copy()
    s0 = {s: rng.standard_normal((batch, H)) for s in cell.state_names}
    ds = {s: rng.standard_normal((batch, H)) for s in cell.state_names}
    ys, state, dx, dparams, dstate0 = run_symlstm(cell, x, params, s0, dys, ds)

    xt = torch.tensor(x, requires_grad=True)
    s0t = {s: torch.tensor(v[None], requires_grad=True) for s, v in s0.items()}
    if name == "lstm":
        out, (hT, cT) = module(xt, (s0t["h"], s0t["c"]))
        final = {"h": hT[0], "c": cT[0]}
    else:
        out, hT = module(xt, s0t["h"])
        final = {"h": hT[0]}
    loss = (out * torch.tensor(dys)).sum() + sum((final[s] * torch.tensor(ds[s])).sum() for s in final)
    loss.backward()

    assert_close(ys, out, "ys")
    assert_close(dx, xt.grad, "dx")
    for s in cell.state_names:
        assert_close(state[s], final[s], f"final {s}")
        assert_close(dstate0[s], s0t[s].grad[0], f"d{s}0")
    for k, gate in enumerate(gates):
        rows = slice(k * H, (k + 1) * H)
        assert_close(dparams[f"W_{gate}"], module.weight_ih_l0.grad[rows], f"W_{gate}")
        assert_close(dparams[f"R_{gate}"], module.weight_hh_l0.grad[rows], f"R_{gate}")
        assert_close(dparams[f"b_{gate}"], module.bias_ih_l0.grad[rows], f"b_{gate}")
        recurrent_bias = f"b_h{gate}" if gate in separate else f"b_{gate}"
        assert_close(dparams[recurrent_bias], module.bias_hh_l0.grad[rows], recurrent_bias)


@pytest.mark.parametrize("kind", MODULES)
def test_to_torch_round_trip(kind, problem):
    make, name, _, _ = MODULES[kind]
    x, _ = problem
    torch.manual_seed(1)
    cell, params = symlstm.from_torch(make().double())
    module = symlstm.to_torch(cell, params)
    assert type(module).__name__ == kind.split("-")[0]
    cell2, params2 = symlstm.from_torch(module)
    assert cell2 is cell and params2.keys() == params.keys()
    for n in params:
        np.testing.assert_allclose(params2[n], params[n], rtol=0, atol=1e-15)
    out, _ = module(torch.tensor(x))
    ys, _, _ = cell.forward(x, params)
    assert_close(ys, out, "ys")


def test_to_torch_keeps_batch_first():
    torch.manual_seed(2)
    cell, params = symlstm.from_torch(torch.nn.GRU(D, H, batch_first=True).double())
    assert symlstm.to_torch(cell, params).batch_first


def test_from_torch_rejects_what_it_cannot_map():
    with pytest.raises(TypeError, match="supports torch.nn.LSTM, GRU and RNN"):
        symlstm.from_torch(torch.nn.Linear(D, H))
    with pytest.raises(ValueError, match="PyTorch has no module for the cell 'peephole'"):
        symlstm.to_torch(symlstm.cell("peephole"), {})
