"""Agreement with PyTorch in float64: nn.LSTM for `lstm`, autograd on hand-written equations for
`peephole`. Forward values and every gradient must match to ~1e-12."""
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


@pytest.fixture
def problem(rng):
    x = rng.standard_normal((T, B, D))
    dys = rng.standard_normal((T, B, H))
    return x, dys


def test_lstm_matches_torch_nn_lstm(problem, rng):
    x, dys = problem
    torch.manual_seed(0)
    module = torch.nn.LSTM(D, H).double()
    cell, params = symlstm.from_torch(module)
    assert cell.name == "lstm"
    h0, c0 = rng.standard_normal((2, B, H))
    dh, dc = rng.standard_normal((2, B, H))
    ys, state, dx, dparams, dstate0 = run_symlstm(cell, x, params, {"h": h0, "c": c0}, dys, {"h": dh, "c": dc})

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out, (hT, cT) = module(xt, (h0t, c0t))
    loss = (out * torch.tensor(dys)).sum() + (hT[0] * torch.tensor(dh)).sum() + (cT[0] * torch.tensor(dc)).sum()
    loss.backward()

    assert_close(ys, out, "ys")
    assert_close(state["h"], hT[0], "final h")
    assert_close(state["c"], cT[0], "final c")
    assert_close(dx, xt.grad, "dx")
    assert_close(dstate0["h"], h0t.grad[0], "dh0")
    assert_close(dstate0["c"], c0t.grad[0], "dc0")
    for k, gate in enumerate("ifgo"):
        rows = slice(k * H, (k + 1) * H)
        assert_close(dparams[f"W_{gate}"], module.weight_ih_l0.grad[rows], f"W_{gate}")
        assert_close(dparams[f"R_{gate}"], module.weight_hh_l0.grad[rows], f"R_{gate}")
        assert_close(dparams[f"b_{gate}"], module.bias_ih_l0.grad[rows], f"b_{gate}")
        assert_close(dparams[f"b_{gate}"], module.bias_hh_l0.grad[rows], f"b_{gate} (hh)")


def test_to_torch_round_trip(problem):
    x, _ = problem
    cell = symlstm.cell("lstm")
    params = cell.init_params(D, H, seed=3)
    module = symlstm.to_torch(cell, params)
    cell2, params2 = symlstm.from_torch(module)
    for name in params:
        np.testing.assert_array_equal(params[name], params2[name])
    out, _ = module(torch.tensor(x))
    ys, _, _ = cell.forward(x, params)
    assert_close(ys, out, "ys")


def peephole_torch(x, p, h, c):
    """Greff et al.'s vanilla LSTM, written by hand from the paper, for autograd."""
    sig = torch.sigmoid
    ys = []
    for t in range(x.shape[0]):
        def pre(k):
            return x[t] @ p[f"W_{k}"].T + h @ p[f"R_{k}"].T + p[f"b_{k}"]
        i = sig(pre("i") + p["p_i"] * c)
        f = sig(pre("f") + p["p_f"] * c)
        g = torch.tanh(pre("g"))
        c = f * c + i * g
        o = sig(pre("o") + p["p_o"] * c)
        h = o * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), h, c


def test_peephole_matches_handwritten_torch_autograd(problem, rng):
    x, dys = problem
    cell = symlstm.cell("peephole")
    params = cell.init_params(D, H, seed=5)
    h0, c0 = rng.standard_normal((2, B, H))
    dh, dc = rng.standard_normal((2, B, H))
    ys, state, dx, dparams, dstate0 = run_symlstm(cell, x, params, {"h": h0, "c": c0}, dys, {"h": dh, "c": dc})

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, hT, cT = peephole_torch(xt, tp, h0t, c0t)
    loss = (out * torch.tensor(dys)).sum() + (hT * torch.tensor(dh)).sum() + (cT * torch.tensor(dc)).sum()
    loss.backward()

    assert_close(ys, out, "ys")
    assert_close(state["c"], cT, "final c")
    assert_close(dx, xt.grad, "dx")
    assert_close(dstate0["h"], h0t.grad, "dh0")
    assert_close(dstate0["c"], c0t.grad, "dc0")
    for name in params:
        assert_close(dparams[name], tp[name].grad, name)
