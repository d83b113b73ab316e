"""Variable-length batches, ``forward(..., lengths=L)``: every row agrees with running it alone for
its own number of steps, forward and backward, for every built-in cell and the example specs."""

import numpy as np
import pytest

import symlstm
from symlstm.cells import builtin_names

T, D, H = 6, 3, 4
LENGTHS = np.array([6, 1, 3, 6, 2, 5, 4, 1, 6])  # nine rows: the runtime splits them over two threads
SPECS = builtin_names() + ["examples/zoneout.toml", "examples/decay_rnn.toml"]


def _sizes(cell):
    return {"P": 2} if "P" in cell.size_names else {}


def _random_case(cell, rng, B):
    D_ = H if cell.spec.requirements else D
    sizes = _sizes(cell)
    params = cell.init_params(D_, H, seed=3, **sizes)
    state_sizes = cell.state_sizes(D_, H, **sizes)
    x = rng.standard_normal((T, B, D_))
    state0 = {s: rng.standard_normal((B, n)) for s, n in state_sizes.items()}
    inputs = {
        name: rng.uniform(0.0, 1.0, (T, B, n if isinstance(n, int) else H)) for name, n in cell.spec.inputs.items()
    }
    return params, x, state0, inputs


def _rows(mapping, b):
    return {k: v[b : b + 1] for k, v in mapping.items()}


def _steps(mapping, L, b):
    return {k: v[:L, b : b + 1] for k, v in mapping.items()}


@pytest.mark.parametrize("name", SPECS)
def test_each_row_as_if_alone(name, rng):
    cell = symlstm.cell(name)
    B = len(LENGTHS)
    params, x, state0, inputs = _random_case(cell, rng, B)
    ys, state, cache = cell.forward(x, params, state0, inputs=inputs, lengths=LENGTHS)
    dys = rng.standard_normal(ys.shape)
    dstate = {s: rng.standard_normal(v.shape) for s, v in state.items()}
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)

    total = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(LENGTHS):
        ys_b, state_b, cache_b = cell.forward(x[:L, b : b + 1], params, _rows(state0, b), inputs=_steps(inputs, L, b))
        np.testing.assert_allclose(ys[:L, b : b + 1], ys_b, rtol=0, atol=1e-12)
        assert not ys[L:, b].any(), "outputs past a row's length are zeros"
        for s in state:
            np.testing.assert_allclose(state[s][b : b + 1], state_b[s], rtol=0, atol=1e-12)
        dx_b, dparams_b, dstate0_b = cell.backward(dys[:L, b : b + 1], cache_b, _rows(dstate, b))
        np.testing.assert_allclose(dx[:L, b : b + 1], dx_b, rtol=0, atol=1e-12)
        assert not dx[L:, b].any(), "no gradient reaches the input past a row's length"
        for s in state:
            np.testing.assert_allclose(dstate0[s][b : b + 1], dstate0_b[s], rtol=0, atol=1e-12)
        for k in total:
            total[k] += dparams_b[k]
    for k in total:
        np.testing.assert_allclose(dparams[k], total[k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", ["lstm", "gru", "lnlstm"])
def test_checkpointing_and_batch_first_keep_lengths(name, rng):
    cell = symlstm.cell(name)
    B = len(LENGTHS)
    params, x, state0, inputs = _random_case(cell, rng, B)
    ys, state, cache = cell.forward(x, params, state0, lengths=LENGTHS)
    dys = rng.standard_normal(ys.shape)
    dx, dparams, dstate0 = cell.backward(dys, cache)
    ys_k, state_k, cache_k = cell.forward(x, params, state0, lengths=LENGTHS, checkpoint=4)
    np.testing.assert_array_equal(ys_k, ys)
    dx_k, dparams_k, dstate0_k = cell.backward(dys, cache_k)
    np.testing.assert_allclose(dx_k, dx, rtol=0, atol=1e-13)
    for k in dparams:
        np.testing.assert_allclose(dparams_k[k], dparams[k], rtol=1e-12, atol=1e-13)
    batch_first = symlstm.runtime.BatchFirstCell(cell)
    ys_bf, _, _ = batch_first.forward(x.transpose(1, 0, 2), params, state0, lengths=LENGTHS)
    np.testing.assert_array_equal(ys_bf.transpose(1, 0, 2), ys)


def test_full_lengths_change_nothing(rng):
    cell = symlstm.cell("lstm")
    params, x, state0, _ = _random_case(cell, rng, 3)
    ys, state, _ = cell.forward(x, params, state0)
    ys_l, state_l, _ = cell.forward(x, params, state0, lengths=[T, T, T])
    np.testing.assert_array_equal(ys_l, ys)
    for s in state:
        np.testing.assert_array_equal(state_l[s], state[s])


def test_bad_lengths_name_the_argument(rng):
    cell = symlstm.cell("lstm")
    params, x, _, _ = _random_case(cell, rng, 3)
    with pytest.raises(ValueError, match=r"lengths .* has shape \(2,\); expected \(3,\)"):
        cell.forward(x, params, lengths=[1, 2])
    with pytest.raises(ValueError, match=r"must each be in 1..T = 1..6, got 7"):
        cell.forward(x, params, lengths=[1, 7, 2])
    with pytest.raises(ValueError, match=r"must each be in 1..T = 1..6, got 0"):
        cell.forward(x, params, lengths=[1, 0, 2])
    with pytest.raises(TypeError, match=r"lengths .* must be integers, got dtype float64"):
        cell.forward(x, params, lengths=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match=r"must be integers, got dtype bool"):
        cell.forward(x, params, lengths=[True, True, True])
