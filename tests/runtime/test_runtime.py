"""The runtime API: shapes, dtypes, edge sizes, and clear errors before any Numba code runs."""

import numpy as np
import pytest

import symlstm

T, B, D, H = 4, 3, 2, 5


@pytest.fixture(scope="module")
def cell():
    return symlstm.cell("peephole")


@pytest.fixture(scope="module")
def params(cell):
    return cell.init_params(D, H, seed=0)


@pytest.fixture
def x(rng):
    return rng.standard_normal((T, B, D))


def test_shapes_and_state_order(cell, params, x):
    assert cell.state_names == ("h", "c")
    ys, state, cache = cell.forward(x, params)
    assert ys.shape == (T, B, H) and set(state) == {"h", "c"}
    np.testing.assert_array_equal(ys[-1], state["h"])
    dx, dparams, dstate0 = cell.backward(np.ones_like(ys), cache)
    assert dx.shape == x.shape
    assert {k: v.shape for k, v in dparams.items()} == {k: v.shape for k, v in params.items()}
    assert {k: v.shape for k, v in dstate0.items()} == {"h": (B, H), "c": (B, H)}


def test_init_params_is_seeded(cell):
    a, b, c = cell.init_params(D, H, seed=1), cell.init_params(D, H, seed=1), cell.init_params(D, H, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert cell.init_params(D, H, dtype=np.float32)["W_i"].dtype == np.float32


def test_state0_is_used_and_chaining_equals_one_run(cell, params, x):
    ys, state, _ = cell.forward(x, params)
    ys1, state1, _ = cell.forward(x[:2], params)
    ys2, state2, _ = cell.forward(x[2:], params, state1)
    np.testing.assert_allclose(np.concatenate([ys1, ys2]), ys, rtol=0, atol=1e-15)
    np.testing.assert_allclose(state2["c"], state["c"], rtol=0, atol=1e-15)


def test_zero_length_sequence(cell, params, rng):
    s0 = {"h": rng.standard_normal((B, H)), "c": rng.standard_normal((B, H))}
    ys, state, cache = cell.forward(np.zeros((0, B, D)), params, s0)
    assert ys.shape == (0, B, H)
    np.testing.assert_array_equal(state["c"], s0["c"])
    dstate = {"h": np.ones((B, H)), "c": np.full((B, H), 2.0)}
    dx, dparams, dstate0 = cell.backward(np.zeros((0, B, H)), cache, dstate)
    assert dx.shape == (0, B, D) and all(not g.any() for g in dparams.values())
    np.testing.assert_array_equal(dstate0["c"], dstate["c"])


def test_batch_of_one_matches_row_of_batch(cell, params, x):
    ys, _, _ = cell.forward(x, params)
    ys1, _, _ = cell.forward(x[:, 1:2], params)
    np.testing.assert_allclose(ys1[:, 0], ys[:, 1], rtol=0, atol=1e-15)


def test_non_contiguous_and_fortran_inputs(cell, params, x, rng):
    dys = rng.standard_normal((T, B, H))
    ref = cell.forward(x, params)
    ref_grad = cell.backward(dys, ref[2])
    strided = np.repeat(x, 2, axis=2)[:, :, ::2]
    fortran = {k: np.asfortranarray(v) for k, v in params.items()}
    assert not strided.flags.c_contiguous
    ys, _, cache = cell.forward(strided, fortran)
    dx, dparams, _ = cell.backward(np.asfortranarray(dys), cache)
    np.testing.assert_array_equal(ys, ref[0])
    np.testing.assert_array_equal(dx, ref_grad[0])
    np.testing.assert_array_equal(dparams["R_f"], ref_grad[1]["R_f"])


def test_float32_agrees_with_float64(cell, params, x, rng):
    dys = rng.standard_normal((T, B, H))
    ys64, _, c64 = cell.forward(x, params)
    g64 = cell.backward(dys, c64)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    ys32, _, c32 = cell.forward(x.astype(np.float32), p32)
    g32 = cell.backward(dys.astype(np.float32), c32)
    assert ys32.dtype == np.float32 and g32[0].dtype == np.float32
    np.testing.assert_allclose(ys32, ys64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g32[0], g64[0], rtol=1e-5, atol=1e-5)
    for k in params:
        np.testing.assert_allclose(g32[1][k], g64[1][k], rtol=1e-4, atol=1e-5)


def test_mixed_dtypes_follow_x(cell, params, x):
    ys, _, cache = cell.forward(x.astype(np.float32), params)  # float64 params, float32 x
    assert ys.dtype == np.float32 and cache.dtype == np.float32


def test_nan_propagates(cell, params, x):
    x = x.copy()
    x[1, 0, 0] = np.nan
    ys, _, _ = cell.forward(x, params)
    assert np.isnan(ys[1:, 0]).all() and np.isfinite(ys[:, 1:]).all() and np.isfinite(ys[0]).all()


def _call_forward(cell, x, params, state0=None):
    return cell.forward(x, params, state0)


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("x 2-d", ValueError, r"x has shape \(3, 2\); expected \(T, B, D\)"),
        ("x int", TypeError, "x has dtype int64; use float32 or float64"),
        ("x object", TypeError, "x has dtype object"),
        ("x float16", TypeError, "x has dtype float16"),
        ("x complex", TypeError, "x has dtype complex128"),
        ("x wrong D", ValueError, r"params\['W_i'\] has shape \(5, 2\); expected \(5, 7\)"),
        ("x empty batch", ValueError, "batch B and the input size D must be >= 1"),
        ("missing param", ValueError, r"missing \['b_o'\]"),
        ("extra param", ValueError, r"unexpected \['bogus'\]"),
        ("param wrong shape", ValueError, r"params\['p_f'\] has shape \(4,\); expected \(5,\)"),
        ("param int", TypeError, r"params\['b_i'\] has dtype int64"),
        ("params not dict", TypeError, "params must be a dict"),
        ("state0 keys", ValueError, r"state0 has keys \['h'\]; expected \['h', 'c'\]"),
        ("state0 shape", ValueError, r"state0\['c'\] has shape \(3, 4\); expected \(3, 5\)"),
    ],
)
def test_bad_forward_arguments(cell, params, x, case, error, message):
    bad = {
        "x 2-d": dict(x=x[0]),
        "x int": dict(x=x.astype(np.int64)),
        "x object": dict(x=x.astype(object)),
        "x float16": dict(x=x.astype(np.float16)),
        "x complex": dict(x=x.astype(complex)),
        "x wrong D": dict(x=np.zeros((T, B, 7))),
        "x empty batch": dict(x=np.zeros((T, 0, D))),
        "missing param": dict(params={k: v for k, v in params.items() if k != "b_o"}),
        "extra param": dict(params=params | {"bogus": params["b_i"]}),
        "param wrong shape": dict(params=params | {"p_f": np.zeros(4)}),
        "param int": dict(params=params | {"b_i": np.zeros(H, np.int64)}),
        "params not dict": dict(params=list(params.values())),
        "state0 keys": dict(state0={"h": np.zeros((B, H))}),
        "state0 shape": dict(state0={"h": np.zeros((B, H)), "c": np.zeros((B, 4))}),
    }[case]
    with pytest.raises(error, match=message):
        _call_forward(cell, **({"x": x, "params": params} | bad))


def test_bad_backward_arguments(cell, params, x):
    ys, _, cache = cell.forward(x, params)
    with pytest.raises(ValueError, match=r"dys has shape \(4, 3, 4\); expected \(4, 3, 5\)"):
        cell.backward(np.zeros((T, B, H - 1)), cache)
    with pytest.raises(TypeError, match="dys has dtype int64"):
        cell.backward(np.zeros((T, B, H), np.int64), cache)
    with pytest.raises(ValueError, match=r"dstate\['h'\] has shape"):
        cell.backward(ys, cache, {"h": np.zeros((B, 1)), "c": np.zeros((B, H))})
    with pytest.raises(TypeError, match="cache must be the third value"):
        cell.backward(ys, {"not": "a cache"})
    _, _, lstm_cache = symlstm.cell("lstm").forward(x, symlstm.cell("lstm").init_params(D, H))
    with pytest.raises(TypeError, match="this cell's"):
        cell.backward(ys, lstm_cache)


def test_unknown_cell_name():
    with pytest.raises(ValueError, match="unknown cell 'nope'"):
        symlstm.cell("nope")
