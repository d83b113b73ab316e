"""Every built-in cell against an independent PyTorch reference, in float64.

`symlstm.torch_reference.REFERENCE` holds one step of each cell, written by hand from the equations
in `symlstm/cells/<name>.toml` (nothing there reads the specs). Autograd through T steps of it
gives the reference for the forward values and for every gradient of symlstm's backward pass,
which must agree to ~1e-12.
"""

import numpy as np
import pytest

import symlstm

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
from symlstm.verify.torch_reference import REFERENCE, run_reference  # noqa: E402  (needs torch)

T, B, D, H = 6, 3, 4, 5


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
