"""forward(..., checkpoint=k): keep every k-th state, recompute the rest in the backward.

The results must equal the ordinary ones (to rounding: the segments' GEMMs and the sums of the
weight gradients run in a different order), the cache must hold only the checkpoints, and a long
sequence must fit in the memory the README states.
"""

import importlib.util
import math

import numpy as np
import pytest

import symlstm
from conftest import ROOT
from symlstm.runtime import BatchFirstCell

T, B, D, H = 11, 2, 3, 4


def run(cell, x, params, state0, dys, dstate, checkpoint):
    ys, state, cache = cell.forward(x, params, state0, checkpoint=checkpoint)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)
    return {
        "ys": ys,
        "dx": dx,
        **{f"state {k}": v for k, v in state.items()},
        **{f"d{k}": v for k, v in dparams.items()},
        **{f"d{k}0": v for k, v in dstate0.items()},
    }, cache


@pytest.mark.parametrize("name", ["peephole", "gru", "fgr"])
def test_checkpointed_results_equal_the_ordinary_ones(name, rng):
    cell = symlstm.cell(name)
    params = cell.init_params(D, H, seed=3)
    x = rng.standard_normal((T, B, D))
    state0 = {s: rng.standard_normal((B, H)) for s in cell.state_names}
    dys = rng.standard_normal((T, B, H))
    dstate = {s: rng.standard_normal((B, H)) for s in cell.state_names}
    want, full = run(cell, x, params, state0, dys, dstate, None)
    for k in (1, 2, 4, T - 1, T, T + 5):
        got, cache = run(cell, x, params, state0, dys, dstate, k)
        assert cache.trace is None and cache.checkpoint == k
        for key, value in want.items():
            scale = max(1.0, float(np.abs(value).max()))
            err = float(np.abs(got[key] - value).max())
            assert err <= 1e-12 * scale, (name, k, key, err)
        # the cache holds the states at steps 0, k, 2k, ... and nothing else
        segments = math.ceil(T / k)
        assert cache.nbytes == len(cell.state_names) * segments * B * H * 8 < full.nbytes
        np.testing.assert_array_equal(cache.checkpoints[0][0], state0[cell.state_names[0]])


def test_float32_checkpointing_matches(rng):
    cell = symlstm.cell("peephole")
    params = cell.init_params(D, H, dtype=np.float32, seed=1)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dys = rng.standard_normal((T, B, H)).astype(np.float32)
    want, _ = run(cell, x, params, None, dys, None, None)
    got, cache = run(cell, x, params, None, dys, None, 3)
    assert cache.checkpoints[0].dtype == np.float32
    for key, value in want.items():
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_checkpointed_backward_passes_finite_differences():
    report = symlstm.gradcheck(symlstm.cell("gru"), T=7, checkpoint=3)
    assert report.passed, report.table()


def test_checkpointed_runs_chain_like_one_run(rng):
    cell = symlstm.cell("peephole")
    params = cell.init_params(D, H, seed=0)
    x = rng.standard_normal((T, B, D))
    ys, state, _ = cell.forward(x, params)
    ys1, state1, _ = cell.forward(x[:5], params, checkpoint=2)
    ys2, state2, _ = cell.forward(x[5:], params, state1, checkpoint=4)
    np.testing.assert_allclose(np.concatenate([ys1, ys2]), ys, rtol=0, atol=1e-14)
    np.testing.assert_allclose(state2["c"], state["c"], rtol=0, atol=1e-14)


def test_batch_first_cells_pass_checkpoint_on(rng):
    cell = symlstm.cell("peephole")
    params = cell.init_params(D, H, seed=0)
    x = rng.standard_normal((B, T, D))
    batch_first = BatchFirstCell(cell)
    ys, _, cache = batch_first.forward(x, params, checkpoint=3)
    assert cache.checkpoint == 3 and ys.shape == (B, T, H)
    want, _, full = batch_first.forward(x, params)
    np.testing.assert_allclose(ys, want, rtol=0, atol=1e-14)
    dys = rng.standard_normal((B, T, H))
    np.testing.assert_allclose(
        batch_first.backward(dys, cache)[0], batch_first.backward(dys, full)[0], rtol=0, atol=1e-12
    )


def _long_sequences_script():
    spec = importlib.util.spec_from_file_location("long_sequences", ROOT / "scripts" / "long_sequences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_sequence_memory_as_documented():
    """T = 100 000, B = 1, D = H = 64, float64, lstm: the README states at most 800 MB for one
    forward + backward without checkpointing and 200 MB with checkpoint=316 (measured: ~720 MB
    and ~160 MB; x and the outputs ys, dys, dx are 51 MB each)."""
    script = _long_sequences_script()
    quiet = {"OPENBLAS_NUM_THREADS": "1"}  # memory does not depend on it; time on a busy machine does
    full = script.measure("lstm", 100_000, 1, 64, 64, "none", env=quiet)
    checkpointed = script.measure("lstm", 100_000, 1, 64, 64, "316", env=quiet)
    assert checkpointed["cache_nbytes"] == 2 * 317 * 64 * 8  # h and c at every 316th step
    assert full["cache_nbytes"] == (2 * 100_001 + 4 * 100_000) * 64 * 8  # h, c and four gates
    if not (full["peak_reset"] and checkpointed["peak_reset"]):
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs); memory not measured")
    assert full["peak_bytes"] <= 800e6, full
    assert checkpointed["peak_bytes"] <= 200e6, checkpointed
    assert checkpointed["peak_bytes"] < 0.3 * full["peak_bytes"]


@pytest.mark.parametrize("name", ["lstm", "sru", "gru"])  # sru also uses x elementwise
@pytest.mark.parametrize("checkpoint", [None, 4])
def test_backward_without_the_input_gradient_gives_the_rest_bit_for_bit(name, checkpoint, rng):
    """``input_grad=False`` leaves out dx (None), and only dx: the weight, bias and state
    gradients are the very numbers of the full backward, checkpointed or not, batch-first too."""
    cell = symlstm.cell(name)
    params = cell.init_params(H, H, seed=3)  # D = H: sru's highway adds x itself
    x = rng.standard_normal((T, B, H))
    dys = rng.standard_normal((T, B, H))
    dstate = {s: rng.standard_normal((B, H)) for s in cell.state_names}
    _, _, cache = cell.forward(x, params, checkpoint=checkpoint)
    full = cell.backward(dys, cache, dstate)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate, input_grad=False)
    assert full[0] is not None and dx is None
    for k in cell.param_names:
        np.testing.assert_array_equal(dparams[k], full[1][k], err_msg=k)
    for s in cell.state_names:
        np.testing.assert_array_equal(dstate0[s], full[2][s], err_msg=s)
    batch_first = BatchFirstCell(cell)
    _, _, cache = batch_first.forward(x.transpose(1, 0, 2).copy(), params)
    assert batch_first.backward(dys.transpose(1, 0, 2).copy(), cache, input_grad=False)[0] is None
    _, _, cache = cell.forward(x[:0], params)  # no steps
    assert cell.backward(dys[:0], cache, input_grad=False)[0] is None
