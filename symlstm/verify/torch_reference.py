"""Hand-written PyTorch versions of the built-in cells, one step each.

Written by hand from the equations of each cell's paper (the spec in
``symlstm/cells/<name>.toml`` gives only the parameter names) — nothing here reads the specs or
uses symlstm's derivation — so autograd through them is an independent reference for the tests
(``tests/verify/test_variants_torch.py``) and the "Python loop + autograd" baseline of the
benchmark (``symlstm bench``). Where torch has a function for a step (``F.layer_norm``,
``F.logsigmoid``, ``torch.maximum``) the reference uses it rather than the spec's own formula.
Requires torch.
"""

import torch
import torch.nn.functional as F

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


def lstmp(x, p, s):
    """nn.LSTM with proj_size (Sak et al. 2014): the LSTM's o * tanh(c), H units, projected by
    W_hr to the P units of h, which the gates see at the next step."""
    new = lstm(x, p, s)
    return {"h": mv(p["W_hr"], new["h"]), "c": new["c"]}


def layer_norm(v):
    """Zero mean, unit (biased) variance over the units, no gain or bias: torch's own kernel."""
    return F.layer_norm(v, v.shape[-1:], eps=1e-5)


def lnlstm(x, p, s):
    """Haste's LayerNormLSTM: W x and R h_prev each normalised as one 4H vector (all four gates
    together), with a gain per unit; the cell state normalised before the output tanh."""
    h, c_prev = s["h"], s["c"]
    gates = "ifgo"

    def joined(name):
        return torch.cat([p[name + k] for k in gates], dim=-1)

    wx = layer_norm(torch.cat([mv(p[f"W_{k}"], x) for k in gates], dim=-1))
    rh = layer_norm(torch.cat([mv(p[f"R_{k}"], h) for k in gates], dim=-1))
    i, f, g, o = (joined("gamma_x") * wx + joined("gamma_h") * rh + joined("b_")).chunk(4, dim=-1)
    c = sig(f) * c_prev + sig(i) * tanh(g)
    return {"h": sig(o) * tanh(p["gamma_c"] * layer_norm(c) + p["beta_c"]), "c": c}


def sru(x, p, s):
    """SRU (Lei et al. 2018): only c recurs, elementwise; the highway (1 - r) * x needs D == H.
    h_prev is not used."""
    c_prev = s["c"]
    f = sig(mv(p["W_f"], x) + p["v_f"] * c_prev + p["b_f"])
    r = sig(mv(p["W_r"], x) + p["v_r"] * c_prev + p["b_r"])
    c = f * c_prev + (1 - f) * mv(p["W"], x)
    return {"h": r * c + (1 - r) * x, "c": c}


def indrnn(x, p, s):
    """IndRNN (Li et al. 2018): one recurrent weight per unit."""
    return {"h": relu(mv(p["W"], x) + p["u"] * s["h"] + p["b"])}


def mgu(x, p, s):
    """Minimal gated unit (Zhou et al. 2016): one gate f, the candidate sees f * h_prev."""
    h = s["h"]
    f = sig(pre("f", x, p, h))
    n = tanh(mv(p["W_n"], x) + mv(p["R_n"], f * h) + p["b_n"])
    return {"h": (1 - f) * h + f * n}


def slstm(x, p, s):
    """xLSTM's sLSTM (Beck et al. 2024, one head): exponential input gate, sigmoid forget gate,
    normaliser n and stabiliser m (their section 2.2)."""
    h, c_prev, n_prev, m_prev = s["h"], s["c"], s["n"], s["m"]
    i_pre, f_pre = pre("i", x, p, h), pre("f", x, p, h)
    z = tanh(pre("z", x, p, h))
    o = sig(pre("o", x, p, h))
    log_f = F.logsigmoid(f_pre)
    m = torch.maximum(log_f + m_prev, i_pre)
    i = torch.exp(i_pre - m)
    f = torch.exp(log_f + m_prev - m)
    c = f * c_prev + i * z
    n = f * n_prev + i
    return {"h": o * (c / n), "c": c, "n": n, "m": m}


REFERENCE = {
    "cifg": cifg,
    "fgr": fgr,
    "gru": gru,
    "indrnn": indrnn,
    "lnlstm": lnlstm,
    "lstm": lstm,
    "lstm_relu": lstm_relu,
    "lstmp": lstmp,
    "mgu": mgu,
    "nfg": nfg,
    "niaf": niaf,
    "nig": nig,
    "noaf": noaf,
    "nog": nog,
    "np": lstm,
    "peephole": peephole,
    "rnn": rnn,
    "rnn_relu": rnn_relu,
    "slstm": slstm,
    "sru": sru,
}


# --- user cells in examples/: steps that also take the spec's [inputs], by name ----------------------


def zoneout(x, p, s, *, zh, zc):
    """Zoneout (Krueger et al. 2017): where a mask is 1 the unit keeps its last value;
    h zones out o * tanh of the LSTM's new c, before c's own zoneout."""
    new = lstm(x, p, s)
    return {"h": zh * s["h"] + (1 - zh) * new["h"], "c": zc * s["c"] + (1 - zc) * new["c"]}


def mut1(x, p, s):
    """MUT1 (Jozefowicz, Zaremba & Sutskever 2015): z sees only x; the candidate adds tanh(x)."""
    h = s["h"]
    z = sig(mv(p["W_z"], x) + p["b_z"])
    r = sig(pre("r", x, p, h))
    n = tanh(mv(p["R_n"], r * h) + tanh(x) + p["b_n"])
    return {"h": n * z + h * (1 - z)}


#: examples/<name>.toml -> its reference step
EXAMPLES = {"zoneout": zoneout, "mut1": mut1}


def run_reference(step, x, p, state0, inputs=None):
    """Run ``step`` over the time-major sequence ``x``; returns (stacked outputs h, final state).
    ``inputs`` maps the names of the cell's extra per-step inputs to (T, B, size) tensors; step t
    gets their t-th slices as keyword arguments."""
    state, ys = state0, []
    inputs = inputs or {}
    for t in range(x.shape[0]):
        state = step(x[t], p, state, **{name: v[t] for name, v in inputs.items()})
        ys.append(state["h"])
    return torch.stack(ys), state
