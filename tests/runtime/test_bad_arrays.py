"""Bad arrays: every public entry point checks its arguments before any Numba code runs.

Each bad case ends in a ValueError or TypeError that names the argument and what was expected, and
no Numba text reaches the user. Unusual but valid layouts (read-only, byte-swapped, broadcast,
lists) give exactly the results of plain arrays, without compiling the kernels again.
"""

import re
import warnings

import numpy as np
import pytest

import symlstm
from symlstm.runtime import BatchFirstCell

T, B, D, H = 4, 3, 2, 5


@pytest.fixture(scope="module")
def cell():
    return symlstm.cell("peephole")


@pytest.fixture(scope="module")
def params(cell):
    return cell.init_params(D, H, seed=0)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).standard_normal((T, B, D))


@pytest.fixture(scope="module")
def reference(cell, params, x):
    dys = np.random.default_rng(8).standard_normal((T, B, H))
    ys, state, cache = cell.forward(x, params)
    return dys, ys, state, cell.backward(dys, cache)


def signatures(cell) -> int:
    return len(cell.kernels.module.forward_steps.signatures) + len(cell.kernels.module.backward_steps.signatures)


def readonly(array):
    array = np.array(array)
    array.setflags(write=False)
    return array


def assert_same_gradients(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    for name in want[1]:
        np.testing.assert_array_equal(got[1][name], want[1][name])
    for name in want[2]:
        np.testing.assert_array_equal(got[2][name], want[2][name])


@pytest.mark.parametrize("layout", ["read-only", "byte-swapped", "broadcast", "nested lists"])
def test_unusual_layouts_give_the_same_results_without_recompiling(cell, params, x, reference, layout):
    dys, ys_ref, state_ref, grads_ref = reference
    before = signatures(cell)
    convert = {
        "read-only": readonly,
        "byte-swapped": lambda a: np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">")),
        "broadcast": lambda a: np.broadcast_to(np.asarray(a), np.shape(a)),
        "nested lists": lambda a: np.asarray(a).tolist(),
    }[layout]
    ys, state, cache = cell.forward(
        convert(x), {k: convert(v) for k, v in params.items()}, {s: convert(np.zeros((B, H))) for s in cell.state_names}
    )
    grads = cell.backward(convert(dys), cache, {s: convert(np.zeros((B, H))) for s in cell.state_names})
    np.testing.assert_array_equal(ys, ys_ref)
    np.testing.assert_array_equal(state["c"], state_ref["c"])
    assert_same_gradients(grads, grads_ref)
    assert signatures(cell) == before  # a read-only or swapped array would otherwise be a new type


def test_outputs_and_inputs_can_be_changed_in_place_afterwards(cell, params, x, reference):
    """The cache owns what it needs: editing x, params, ys or state after forward (an optimizer
    step, masking the outputs) does not change what backward computes."""
    dys, _, _, grads_ref = reference
    x2 = x.copy()
    p2 = {k: v.copy() for k, v in params.items()}
    ys, state, cache = cell.forward(x2, p2)
    x2 += 1.0
    for v in p2.values():
        v *= -3.0
    ys[:] = 0.0
    state["h"][:] = 7.0
    assert_same_gradients(cell.backward(dys, cache), grads_ref)
    assert_same_gradients(cell.backward(dys, cache), grads_ref)  # and backward can run twice


def test_mixed_float_dtypes_follow_x(cell, params, x):
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    ys, _, cache = cell.forward(x, p32)  # float64 x, float32 params: runs in float64
    assert ys.dtype == np.float64 and cache.dtype == np.float64
    dx, dparams, dstate0 = cell.backward(np.ones((T, B, H), np.float32), cache)
    assert dx.dtype == np.float64 and all(g.dtype == np.float64 for g in dparams.values())


def test_batch_of_one_and_empty_sequence(cell, params, x):
    ys, state, cache = cell.forward(x[:, :1], params)
    assert ys.shape == (T, 1, H)
    dx, _, dstate0 = cell.backward(None, cache)
    assert dx.shape == (T, 1, D) and not dx.any()
    ys, state, cache = cell.forward(x[:0], params, checkpoint=3)
    assert ys.shape == (0, B, H) and not state["h"].any()
    dx, dparams, dstate0 = cell.backward(np.zeros((0, B, H)), cache)
    assert dx.shape == (0, B, D) and all(not g.any() for g in dparams.values())


def test_ieee_special_values_propagate(cell, params, x):
    """No checks reject NaN or Inf: they flow through as IEEE arithmetic says."""
    inf, huge, nan = x.copy(), x.copy(), x.copy()
    inf[2, 1, 0], huge[2, 1, 0], nan[2, 1, 0] = np.inf, 1e300, np.nan
    # +-Inf saturates sigmoid and tanh exactly as a huge finite input does
    np.testing.assert_array_equal(cell.forward(inf, params)[0], cell.forward(huge, params)[0])
    ys = cell.forward(nan, params)[0]  # NaN reaches everything after it in its batch row only
    assert np.isnan(ys[2:, 1]).all() and not np.isnan(ys[:2]).any() and not np.isnan(ys[:, [0, 2]]).any()
    dys = np.zeros((T, B, H))
    dys[1, 0, 0] = np.nan  # and in the backward, everything before it in its row
    dx, _, _ = cell.backward(dys, cell.forward(x, params)[2])
    assert np.isnan(dx[:2, 0]).all() and not np.isnan(dx[2:]).any() and not np.isnan(dx[:, 1:]).any()


@pytest.fixture(scope="module")
def sqrt_cell(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqrt") / "sqrt_cell.toml"
    path.write_text('name = "sqrt_cell"\nstate = ["h"]\n[equations]\nh = "(W @ x + R @ h_prev) ** 0.5"\n')
    return symlstm.cell(path)


def test_gradcheck_reports_nan_instead_of_passing(sqrt_cell):
    with np.errstate(invalid="ignore"):
        report = symlstm.gradcheck(sqrt_cell)  # the square root of a negative number is NaN
    assert not report.passed
    assert "x" in report.nonfinite and "W" in report.nonfinite
    assert "NaN or Inf in the gradient or the finite difference of: x" in report.table()


def _error_cases(cell, params, x):
    ys, _, cache = cell.forward(x, params)
    lstm = symlstm.cell("lstm")
    _, _, lstm_cache = lstm.forward(x, lstm.init_params(D, H))
    zeros = {s: np.zeros((B, H)) for s in cell.state_names}
    f = cell.forward
    b = cell.backward
    return {
        # x
        "x None": (lambda: f(None, params), TypeError, "x has dtype object; use float32 or float64"),
        "x string": (lambda: f("abc", params), TypeError, "x has dtype <U3"),
        "x ragged": (lambda: f([[[1.0]], [[1.0, 2.0]]], params), TypeError, "x must be a NumPy array, got list"),
        "x scalar": (lambda: f(1.0, params), ValueError, r"x has shape \(\); expected \(T, B, D\)"),
        "x 4-d": (lambda: f(x[None], params), ValueError, r"x has shape \(1, 4, 3, 2\); expected \(T, B, D\)"),
        "x D=0": (lambda: f(np.zeros((T, B, 0)), params), ValueError, "input size D must be >= 1"),
        "x bool": (lambda: f(x > 0, params), TypeError, "x has dtype bool"),
        "x int32": (lambda: f(x.astype(np.int32), params), TypeError, "x has dtype int32"),
        "x datetime": (lambda: f(np.zeros((T, B, D), "M8[s]"), params), TypeError, "x has dtype datetime64"),
        # params
        "params None": (lambda: f(x, None), TypeError, "params must be a dict of arrays, got NoneType"),
        "params tuple": (lambda: f(x, tuple(params.values())), TypeError, "params must be a dict"),
        "param None": (lambda: f(x, params | {"b_i": None}), TypeError, r"params\['b_i'\] has dtype object"),
        "param 0-d": (
            lambda: f(x, params | {"b_i": np.float64(1.0)}),
            ValueError,
            r"params\['b_i'\] has shape \(\); expected \(5,\)",
        ),
        "param transposed": (
            lambda: f(x, params | {"W_g": params["W_g"].T}),
            ValueError,
            r"params\['W_g'\] has shape \(2, 5\); expected \(5, 2\) for D=2 \(from x\)",
        ),
        "param H mismatch": (
            lambda: f(x, params | {"R_o": np.zeros((H, H + 1))}),
            ValueError,
            r"params\['R_o'\] has shape \(5, 6\); expected \(5, 5\)",
        ),
        "first param empty": (
            lambda: f(x, params | {"W_i": np.zeros((0, D))}),
            ValueError,
            r"W_i.\] has shape \(0, 2\); expected \(5, 2\)",
        ),
        "param bool": (lambda: f(x, params | {"p_i": np.ones(H, bool)}), TypeError, r"params\['p_i'\] has dtype bool"),
        "param non-str key": (lambda: f(x, params | {3: params["b_i"]}), ValueError, r"unexpected \['3'\]"),
        "param missing and extra": (
            lambda: f(x, {k: v for k, v in params.items() if k != "R_i"} | {"R_x": 1}),
            ValueError,
            r"missing \['R_i'\], unexpected \['R_x'\]; expected exactly",
        ),
        # state0
        "state0 list": (lambda: f(x, params, [np.zeros((B, H))] * 2), TypeError, "state0 must be None or a dict"),
        "state0 extra": (
            lambda: f(x, params, zeros | {"m": np.zeros((B, H))}),
            ValueError,
            r"state0 has keys \['c', 'h', 'm'\]; expected \['h', 'c'\]",
        ),
        "state0 1-d": (
            lambda: f(x, params, zeros | {"h": np.zeros(H)}),
            ValueError,
            r"state0\['h'\] has shape \(5,\); expected \(3, 5\) \(B, H\)",
        ),
        "state0 int": (
            lambda: f(x, params, zeros | {"c": np.zeros((B, H), int)}),
            TypeError,
            r"state0\['c'\] has dtype int64",
        ),
        # checkpoint
        "checkpoint 0": (lambda: f(x, params, checkpoint=0), ValueError, "checkpoint must be a positive integer k"),
        "checkpoint -2": (lambda: f(x, params, checkpoint=-2), ValueError, "got -2; use None to keep everything"),
        "checkpoint float": (
            lambda: f(x, params, checkpoint=2.5),
            TypeError,
            "checkpoint must be None or a positive integer",
        ),
        "checkpoint bool": (lambda: f(x, params, checkpoint=True), TypeError, "got True"),
        "checkpoint str": (lambda: f(x, params, checkpoint="3"), TypeError, "got '3'"),
        # backward
        "dys wrong T": (
            lambda: b(np.zeros((T + 1, B, H)), cache),
            ValueError,
            r"dys has shape \(5, 3, 5\); expected \(4, 3, 5\) \(T, B, H\), the shape of ys",
        ),
        "dys 2-d": (lambda: b(np.zeros((B, H)), cache), ValueError, r"dys has shape \(3, 5\)"),
        "dys complex": (lambda: b(ys.astype(complex), cache), TypeError, "dys has dtype complex128"),
        "dys object": (lambda: b(ys.astype(object), cache), TypeError, "dys has dtype object"),
        "dstate keys": (
            lambda: b(ys, cache, {"h": np.zeros((B, H))}),
            ValueError,
            r"dstate has keys \['h'\]; expected \['h', 'c'\]",
        ),
        "dstate array": (lambda: b(ys, cache, np.zeros((B, H))), TypeError, "dstate must be None or a dict"),
        "dstate shape": (
            lambda: b(ys, cache, zeros | {"c": np.zeros((B + 1, H))}),
            ValueError,
            r"dstate\['c'\] has shape \(4, 5\); expected \(3, 5\)",
        ),
        "dstate float16": (
            lambda: b(ys, cache, zeros | {"c": np.zeros((B, H), np.float16)}),
            TypeError,
            r"dstate\['c'\] has dtype float16",
        ),
        "cache tuple": (lambda: b(ys, (x, params)), TypeError, "cache must be the third value returned by this cell's"),
        "cache of another cell": (lambda: b(ys, lstm_cache), TypeError, r"this cell's \(peephole\) forward"),
        # sizes
        "init_params H=0": (lambda: cell.init_params(D, 0), ValueError, "H must be a positive integer, got 0"),
        "init_params D=-1": (lambda: cell.init_params(-1, H), ValueError, "D must be a positive integer, got -1"),
        "init_params H=2.0": (lambda: cell.init_params(D, 2.0), ValueError, "H must be a positive integer, got 2.0"),
        "init_params int dtype": (
            lambda: cell.init_params(D, H, dtype=np.int64),
            TypeError,
            "dtype int64 is not supported",
        ),
        "param_shapes D=True": (
            lambda: cell.param_shapes(True, H),
            ValueError,
            "D must be a positive integer, got True",
        ),
        "gradcheck T=0": (
            lambda: symlstm.gradcheck(cell, T=0),
            ValueError,
            "gradcheck: T must be a positive integer, got 0",
        ),
        "gradcheck B=-1": (
            lambda: symlstm.gradcheck(cell, B=-1),
            ValueError,
            "gradcheck: B must be a positive integer",
        ),
        "gradcheck eps=0": (
            lambda: symlstm.gradcheck(cell, eps=0.0),
            ValueError,
            "gradcheck: eps must be a positive number",
        ),
        # batch first
        "batch-first x 2-d": (
            lambda: BatchFirstCell(cell).forward(x[0], params),
            ValueError,
            r"x has shape \(3, 2\); expected \(B, T, features\), batch first",
        ),
    }


def test_bad_arguments_raise_clear_errors_before_numba(cell, params, x):
    before = signatures(cell)
    cases = _error_cases(cell, params, x)
    for label, (call, error, message) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning (e.g. 1/sqrt(0)) on the way either
            with pytest.raises((ValueError, TypeError)) as info:
                call()
        text = str(info.value)
        assert type(info.value) is error, (label, type(info.value), text)
        assert re.search(message, text), (label, text)
        assert "numba" not in text.lower() and "typing" not in text.lower(), (label, text)
    assert signatures(cell) == before  # no call reached the kernels with an unexpected type
