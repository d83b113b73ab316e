"""Every built-in cell against an independent PyTorch reference, in float64.

`REFERENCE` holds one step of each cell, written by hand from the equations in
`symlstm/cells/<name>.toml` (nothing here reads the specs). Autograd through T steps of it gives the
reference for the forward values and for every gradient of symlstm's backward pass, which must
agree to ~1e-12.
"""
import numpy as np
import pytest

import symlstm

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

T, B, D, H = 6, 3, 4, 5

sig, tanh, relu = torch.sigmoid, torch.tanh, torch.relu


def mv(A, v):
    """The spec's `A @ v` for a batch of row vectors v (B, n)."""
    return v @ A.T


def pre(k, x, p, h):
    """W_k @ x + R_k @ h_prev + b_k, the common part of a gate's pre-activation."""
    return mv(p[f"W_{k}"], x) + mv(p[f"R_{k}"], h) + p[f"b_{k}"]


# --- one step of each cell: step(x_t, p, state) -> new state (same keys) ---------------------------

def lstm(x, p, s):
    """lstm.toml and np.toml (identical equations): no peepholes."""
    h, c = s["h"], s["c"]
    i = sig(pre("i", x, p, h))
    f = sig(pre("f", x, p, h))
    g = tanh(pre("g", x, p, h))
    o = sig(pre("o", x, p, h))
    c = f * c + i * g
    return {"h": o * tanh(c), "c": c}


def lstm_relu(x, p, s):
    h, c = s["h"], s["c"]
    i = sig(pre("i", x, p, h))
    f = sig(pre("f", x, p, h))
    g = relu(pre("g", x, p, h))
    o = sig(pre("o", x, p, h))
    c = f * c + i * g
    return {"h": o * relu(c), "c": c}


def peephole(x, p, s):
    """Vanilla LSTM: i, f peek at c_prev, o at the new c."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = f * c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * tanh(c), "c": c}


def nig(x, p, s):
    """No input gate: i = 1."""
    h, c_prev = s["h"], s["c"]
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = f * c_prev + g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * tanh(c), "c": c}


def nfg(x, p, s):
    """No forget gate: f = 1."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * tanh(c), "c": c}


def nog(x, p, s):
    """No output gate: o = 1."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = f * c_prev + i * g
    return {"h": tanh(c), "c": c}


def niaf(x, p, s):
    """No input activation: g is the identity."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev)
    g = pre("g", x, p, h)
    c = f * c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * tanh(c), "c": c}


def noaf(x, p, s):
    """No output activation: h = o * c."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = f * c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * c, "c": c}


def cifg(x, p, s):
    """Coupled input and forget gates: f = 1 - i."""
    h, c_prev = s["h"], s["c"]
    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev)
    g = tanh(pre("g", x, p, h))
    c = (1 - i) * c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c)
    return {"h": o * tanh(c), "c": c}


def fgr(x, p, s):
    """Full gate recurrence: gate a also sees R_ab @ b_prev for b in i, f, o."""
    h, c_prev = s["h"], s["c"]

    def gates(a):
        return mv(p[f"R_{a}i"], s["i"]) + mv(p[f"R_{a}f"], s["f"]) + mv(p[f"R_{a}o"], s["o"])

    i = sig(pre("i", x, p, h) + p["p_i"] * c_prev + gates("i"))
    f = sig(pre("f", x, p, h) + p["p_f"] * c_prev + gates("f"))
    g = tanh(pre("g", x, p, h))
    c = f * c_prev + i * g
    o = sig(pre("o", x, p, h) + p["p_o"] * c + gates("o"))
    return {"h": o * tanh(c), "c": c, "i": i, "f": f, "o": o}


def gru(x, p, s):
    """PyTorch's nn.GRU: r multiplies R_n @ h_prev + b_hn, after the matrix."""
    h = s["h"]
    r = sig(pre("r", x, p, h))
    z = sig(pre("z", x, p, h))
    n = tanh(mv(p["W_n"], x) + p["b_n"] + r * (mv(p["R_n"], h) + p["b_hn"]))
    return {"h": (1 - z) * n + z * h}


def rnn(x, p, s):
    return {"h": tanh(pre("h", x, p, s["h"]))}


def rnn_relu(x, p, s):
    return {"h": relu(pre("h", x, p, s["h"]))}


REFERENCE = {
    "cifg": cifg, "fgr": fgr, "gru": gru, "lstm": lstm, "lstm_relu": lstm_relu, "nfg": nfg,
    "niaf": niaf, "nig": nig, "noaf": noaf, "nog": nog, "np": lstm, "peephole": peephole,
    "rnn": rnn, "rnn_relu": rnn_relu,
}


# --- the test ------------------------------------------------------------------------------------

def run_reference(step, x, p, state0):
    state, ys = state0, []
    for t in range(x.shape[0]):
        state = step(x[t], p, state)
        ys.append(state["h"])
    return torch.stack(ys), state


def assert_close(actual, expected, what, tol=1e-12):
    expected = expected.detach().numpy()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < tol, f"{what}: max error {err:.2e}"


def test_reference_covers_every_builtin():
    assert sorted(REFERENCE) == sorted(symlstm.variants())


@pytest.mark.parametrize("name", symlstm.variants())
def test_cell_matches_handwritten_torch_autograd(name, rng):
    if name not in REFERENCE:
        pytest.fail(f"no hand-written PyTorch reference for built-in cell {name!r}")
    cell = symlstm.cell(name)
    states = cell.state_names
    params = {k: 2 * v for k, v in cell.init_params(D, H, seed=7).items()}
    x = rng.standard_normal((T, B, D))
    state0 = {s: rng.standard_normal((B, H)) for s in states}
    dys = rng.standard_normal((T, B, H))
    dstate = {s: rng.standard_normal((B, H)) for s in states}

    ys, state, cache = cell.forward(x, params, state0)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)

    xt = torch.tensor(x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    s0t = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    out, final = run_reference(REFERENCE[name], xt, pt, s0t)
    assert sorted(final) == sorted(states)
    loss = (out * torch.tensor(dys)).sum()
    for s in states:
        loss = loss + (final[s] * torch.tensor(dstate[s])).sum()
    loss.backward()

    assert_close(ys, out, "ys")
    for s in states:
        assert_close(state[s], final[s], f"final {s}")
    assert_close(dx, xt.grad, "dx")
    assert sorted(dparams) == sorted(params)
    for k in params:
        assert pt[k].grad is not None, f"the reference does not use parameter {k}"
        assert_close(dparams[k], pt[k].grad, f"d{k}")
    for s in states:
        assert s0t[s].grad is not None, f"the reference does not use state {s}_prev"
        assert_close(dstate0[s], s0t[s].grad, f"d{s}0")
