"""Hand-written PyTorch versions of the built-in cells, one step each.

Written by hand from the equations in ``symlstm/cells/<name>.toml`` — nothing here reads the specs
or uses symlstm's derivation — so autograd through them is an independent reference for the
tests (``tests/test_variants_torch.py``) and the "Python loop + autograd" baseline of the
benchmark (``symlstm bench``). Requires torch.
"""

import torch

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
    "cifg": cifg,
    "fgr": fgr,
    "gru": gru,
    "lstm": lstm,
    "lstm_relu": lstm_relu,
    "nfg": nfg,
    "niaf": niaf,
    "nig": nig,
    "noaf": noaf,
    "nog": nog,
    "np": lstm,
    "peephole": peephole,
    "rnn": rnn,
    "rnn_relu": rnn_relu,
}


def run_reference(step, x, p, state0):
    """Run ``step`` over the time-major sequence ``x``; returns (stacked outputs h, final state)."""
    state, ys = state0, []
    for t in range(x.shape[0]):
        state = step(x[t], p, state)
        ys.append(state["h"])
    return torch.stack(ys), state
