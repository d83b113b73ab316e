"""Every built-in cell against an independent PyTorch reference, in float64.

`symlstm.verify.torch_reference.REFERENCE` holds one step of each cell, written by hand from the
cell's equations (nothing there reads the specs); `EXAMPLES` does the same for the user cells in
`examples/`. Autograd through T steps of it gives the reference for the forward values and for
every gradient of symlstm's backward pass, which must agree to ~1e-12.
"""

from pathlib import Path

import numpy as np
import pytest

import symlstm

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
from symlstm.verify.torch_reference import EXAMPLES, REFERENCE, run_reference  # noqa: E402  (needs torch)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
T, B, D, H = 6, 3, 4, 5
# Sizes a cell needs besides D and H above: lstmp projects its H units to P < H; sru's highway
# adds x to h, so D == H.
SIZES = {"lstmp": {"P": 3}, "sru": {"D": H}}
# Initial states that must keep a sign: sLSTM's normaliser n divides c, and stays positive from a
# positive start (n_t = f n_{t-1} + i, with f, i > 0).
POSITIVE_STATES = {("slstm", "n")}


def assert_close(actual, expected, what, tol=1e-12):
    expected = expected.detach().numpy()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < tol, f"{what}: max error {err:.2e}"


def compare_with_reference(cell, step, rng, sizes, inputs=None):
    """symlstm's forward and backward against autograd through ``step``, from random initial
    states and random gradients of the outputs and of every final state."""
    states = cell.state_names
    state_sizes = cell.state_sizes(**sizes)
    params = {k: 2 * v for k, v in cell.init_params(**sizes, seed=7).items()}
    x = rng.standard_normal((T, B, sizes["D"]))
    state0 = {
        s: rng.uniform(0.5, 1.5, (B, n)) if (cell.name, s) in POSITIVE_STATES else rng.standard_normal((B, n))
        for s, n in state_sizes.items()
    }
    dys = rng.standard_normal((T, B, state_sizes[states[0]]))
    dstate = {s: rng.standard_normal((B, n)) for s, n in state_sizes.items()}

    ys, state, cache = cell.forward(x, params, state0, inputs=inputs)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)

    xt = torch.tensor(x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    s0t = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    inputs_t = {k: torch.tensor(v) for k, v in (inputs or {}).items()}
    out, final = run_reference(step, xt, pt, s0t, inputs_t)
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
        # A state whose last value the cell never reads (sru's h) has no autograd gradient: its
        # dstate0 must then be exactly zero.
        expected = s0t[s].grad if s0t[s].grad is not None else torch.zeros_like(s0t[s])
        assert_close(dstate0[s], expected, f"d{s}0")


def test_reference_covers_every_builtin():
    assert sorted(REFERENCE) == sorted(symlstm.variants())


@pytest.mark.parametrize("name", symlstm.variants())
def test_cell_matches_handwritten_torch_autograd(name, rng):
    if name not in REFERENCE:
        pytest.fail(f"no hand-written PyTorch reference for built-in cell {name!r}")
    compare_with_reference(symlstm.cell(name), REFERENCE[name], rng, {"D": D, "H": H, **SIZES.get(name, {})})


@pytest.mark.parametrize("masks", ["bernoulli", "fractional"])
def test_zoneout_example_matches_handwritten_torch_autograd(masks, rng):
    """Training masks (0/1, drawn per unit and step) and the test-time expectation-like
    fractional ones; every gradient but the masks', which are data."""
    cell = symlstm.cell(EXAMPLES_DIR / "zoneout.toml")
    assert cell.input_names == ("zh", "zc")
    shape = (T, B, H)
    draw = {
        "bernoulli": lambda: (rng.random(shape) < 0.3).astype(np.float64),
        "fractional": lambda: rng.uniform(0.0, 1.0, shape),
    }[masks]
    inputs = {name: draw() for name in cell.input_names}
    compare_with_reference(cell, EXAMPLES["zoneout"], rng, {"D": D, "H": H}, inputs)


def test_mut1_example_matches_handwritten_torch_autograd(rng):
    """The user spec the PyTorch benchmark times (x elementwise, so D == H)."""
    compare_with_reference(symlstm.cell(EXAMPLES_DIR / "mut1.toml"), EXAMPLES["mut1"], rng, {"D": H, "H": H})
