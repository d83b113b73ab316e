"""The cell lstmp against PyTorch's nn.LSTM(proj_size=P) in float64, through from_torch/to_torch:
one layer (a cell) and stacked or bidirectional ones (a symlstm.nn.Recurrent). Outputs, final
states and every gradient agree to ~1e-12. PyTorch's h_n has P units, its c_n H."""

import numpy as np
import pytest

import symlstm
from symlstm import nn
from symlstm.interop import pytorch as torch_interop

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

T, B, D, H, P = 7, 3, 5, 6, 4
SHAPES = {
    "1-layer": {},
    "2-layer": {"num_layers": 2},
    "2-layer-bidirectional": {"num_layers": 2, "bidirectional": True},
}


def make_module(shape, batch_first=False, seed=0):
    torch.manual_seed(seed)
    return torch.nn.LSTM(D, H, proj_size=P, batch_first=batch_first, **SHAPES[shape]).double()


def assert_close(actual, expected, what, tol=1e-12):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < tol, f"{what}: max error {err:.2e}"


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("shape", SHAPES)
def test_from_torch_matches_lstm_with_projection(shape, batch_first, rng):
    module = make_module(shape, batch_first)
    model, params = symlstm.from_torch(module)
    arch = torch_interop.architecture(module)
    units = len(arch.suffixes)
    one_cell = units == 1  # a cell, whose states have no unit axis; else a Recurrent's (units, B, size)
    assert (model.cell if not one_cell else model).name == "lstmp"

    directions = 2 if arch.bidirectional else 1
    x = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    dys = rng.standard_normal(x.shape[:2] + (directions * P,))
    state0 = {"h": rng.standard_normal((units, B, P)), "c": rng.standard_normal((units, B, H))}
    dstate = {s: rng.standard_normal(v.shape) for s, v in state0.items()}

    def ours(states):
        return {s: v[0] for s, v in states.items()} if one_cell else states

    ys, state, cache = model.forward(x, params, ours(state0))
    dx, grads, dstate0 = model.backward(dys, cache, ours(dstate))

    xt = torch.tensor(x, requires_grad=True)
    s0t = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    out, (hn, cn) = module(xt, (s0t["h"], s0t["c"]))
    final = {"h": hn, "c": cn}
    loss = (out * torch.tensor(dys)).sum() + sum((final[s] * torch.tensor(dstate[s])).sum() for s in final)
    loss.backward()

    assert_close(ys, out, "ys")
    assert_close(dx, xt.grad, "dx")
    for s in state0:
        assert_close(state[s], ours(final)[s], f"final {s}")
        assert_close(dstate0[s], ours({s: s0t[s].grad})[s], f"d{s}0")
    for suffix in arch.suffixes:
        prefix = "" if one_cell else f"{suffix}."
        weight = {kind: getattr(module, f"{kind}_{suffix}").grad for kind in ("weight_ih", "weight_hh", "weight_hr")}
        assert_close(grads[f"{prefix}W_hr"], weight["weight_hr"], f"{prefix}W_hr")
        for k, gate in enumerate("ifgo"):
            rows = slice(k * H, (k + 1) * H)
            assert_close(grads[f"{prefix}W_{gate}"], weight["weight_ih"][rows], f"{prefix}W_{gate}")
            assert_close(grads[f"{prefix}R_{gate}"], weight["weight_hh"][rows], f"{prefix}R_{gate}")
            # b_k is the sum of PyTorch's two biases: each has its gradient
            for bias in ("bias_ih", "bias_hh"):
                expected = getattr(module, f"{bias}_{suffix}").grad[rows]
                assert_close(grads[f"{prefix}b_{gate}"], expected, f"{prefix}b_{gate} vs {bias}")


@pytest.mark.parametrize("shape", SHAPES)
def test_to_torch_round_trip_with_projection(shape, rng):
    """from_torch then to_torch gives back the module's every weight; the module it builds
    computes what symlstm computes."""
    module = make_module(shape, seed=1)
    with torch.no_grad():  # non-zero recurrent biases: to_torch folds them into bias_ih
        for name, value in module.named_parameters():
            if name.startswith("bias_hh"):
                value.uniform_(-0.5, 0.5)
    model, params = symlstm.from_torch(module)
    again = symlstm.to_torch(model, params)
    assert (again.proj_size, again.num_layers, again.bidirectional) == (P, module.num_layers, module.bidirectional)
    theirs, ours = module.state_dict(), again.state_dict()
    assert theirs.keys() == ours.keys()
    for name in theirs:
        if name.startswith("bias_"):
            continue  # the biases only as their sum (below)
        np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy(), err_msg=name)
    for suffix in torch_interop.architecture(module).suffixes:
        folded = theirs[f"bias_ih_{suffix}"] + theirs[f"bias_hh_{suffix}"]
        np.testing.assert_allclose(ours[f"bias_ih_{suffix}"] + ours[f"bias_hh_{suffix}"], folded, rtol=0, atol=1e-15)
    x = rng.standard_normal((T, B, D))
    assert_close(model.forward(x, params)[0], again(torch.tensor(x))[0], "ys of the rebuilt module")


def test_recurrent_of_lstmp_needs_its_projection_size():
    with pytest.raises(ValueError, match="needs the size 'P'"):
        nn.Recurrent("lstmp", D, H)
    layer = nn.Recurrent("lstmp", D, H, num_layers=2, bidirectional=True, P=P)
    assert layer.state_sizes == {"h": P, "c": H} and layer.output_size == 2 * P
    assert layer.params["l1.W_i"].shape == (H, 2 * P)  # layer 1 sees both directions' h
    assert symlstm.to_torch(layer).proj_size == P
