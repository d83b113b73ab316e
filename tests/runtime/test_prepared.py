"""Parameters prepared once (``cell.prepare``): ``infer`` and ``stream`` give what they give with
the dict of arrays, the prepared copy does not follow later changes to the arrays, and a prepared
set used with the wrong cell, dtype or input size is named."""

import numpy as np
import pytest

import symlstm
from symlstm.prepared import Prepared

T, B, D, H = 6, 5, 3, 4


@pytest.mark.parametrize("name", ["lstm", "lstmp", "examples/zoneout.toml", "sru"])
def test_prepared_gives_the_same_numbers(name, rng):
    cell = symlstm.cell(name)
    D_ = H if cell.spec.requirements else D  # sru uses x elementwise: D == H
    sizes = {"P": 2} if "P" in cell.size_names else {}
    params = cell.init_params(D_, H, seed=1, **sizes)
    x = rng.standard_normal((T, B, D_))
    inputs = {name: rng.uniform(0.0, 1.0, (T, B, H)) for name in cell.input_names}
    prepared = cell.prepare(params)
    assert isinstance(prepared, Prepared) and prepared.sizes == {"D": D_, "H": H, **sizes}

    ys, state = cell.infer(x, params, inputs=inputs, lengths=[6, 2, 4, 1, 6])
    ys_p, state_p = cell.infer(x, prepared, inputs=inputs, lengths=[6, 2, 4, 1, 6])
    np.testing.assert_array_equal(ys_p, ys)  # the same kernels on the same numbers: to the bit
    for s in state:
        np.testing.assert_array_equal(state_p[s], state[s])

    stream, stream_p = cell.stream(params, batch=B), cell.stream(prepared, batch=B)
    for t in range(T):
        step = {k: v[t] for k, v in inputs.items()}
        np.testing.assert_array_equal(stream_p.step(x[t], step), stream.step(x[t], step))


def test_prepared_holds_copies(rng):
    cell = symlstm.cell("gru")
    params = cell.init_params(D, H, seed=2)
    x = rng.standard_normal((T, B, D))
    prepared = cell.prepare(params)
    before, _ = cell.infer(x, params)
    for array in params.values():  # an optimizer's step, in place
        array *= 1.5
    after, _ = cell.infer(x, prepared)
    np.testing.assert_array_equal(after, before)
    assert not np.array_equal(cell.infer(x, params)[0], before)  # ... which the arrays do see


def test_prepared_in_float32_and_d_given(rng):
    cell = symlstm.cell("lstm")
    params = cell.init_params(D, H, dtype=np.float32, seed=3)
    prepared = cell.prepare(params, D=D)
    assert prepared.dtype == np.float32
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    ys, _ = cell.infer(x, prepared)
    assert ys.dtype == np.float32
    np.testing.assert_array_equal(ys, cell.infer(x, params)[0])


def test_wrong_use_of_prepared_parameters_is_named(rng):
    lstm, gru = symlstm.cell("lstm"), symlstm.cell("gru")
    prepared = lstm.prepare(lstm.init_params(D, H, dtype=np.float32))
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    with pytest.raises(TypeError, match="prepared for cell 'lstm', not for 'gru'"):
        gru.infer(x, prepared)
    with pytest.raises(TypeError, match="prepared in float32 and x is float64"):
        lstm.infer(x.astype(np.float64), prepared)
    with pytest.raises(ValueError, match="D=2 features; the parameters were prepared for D=3"):
        lstm.infer(x[:, :, :2], prepared)
    with pytest.raises(ValueError, match="missing"):
        lstm.prepare({"W_i": np.zeros((H, D))})
    with pytest.raises(ValueError, match="D must be a positive integer"):
        lstm.prepare(lstm.init_params(D, H), D=0)
    with pytest.raises(ValueError, match="has shape"):
        lstm.prepare(lstm.init_params(D, H), D=D + 1)  # W's shape then disagrees with D
