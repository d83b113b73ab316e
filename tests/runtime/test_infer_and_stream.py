"""Forward-only inference (``infer``) and one step at a time (``stream``): the same numbers as
``forward``, to the bit, for every built-in cell and the example specs; bad input named."""

import numpy as np
import pytest

import symlstm
from symlstm.cells import builtin_names
from symlstm.runtime import BatchFirstCell

T, B, D, H = 5, 9, 3, 4
SPECS = builtin_names() + ["examples/zoneout.toml", "examples/decay_rnn.toml"]


def _case(cell, rng, dtype=np.float64):
    D_ = H if cell.spec.requirements else D
    sizes = {"P": 2} if "P" in cell.size_names else {}
    params = cell.init_params(D_, H, dtype=dtype, seed=5, **sizes)
    x = rng.standard_normal((T, B, D_)).astype(dtype)
    state0 = {s: rng.standard_normal((B, n)).astype(dtype) for s, n in cell.state_sizes(D_, H, **sizes).items()}
    inputs = {
        name: rng.uniform(0.0, 1.0, (T, B, H if size == "H" else int(size))).astype(dtype)
        for name, size in cell.spec.inputs.items()
    }
    return params, x, state0, inputs


@pytest.mark.parametrize("name", SPECS)
def test_infer_and_stream_give_forwards_numbers(name, rng):
    cell = symlstm.cell(name)
    # float32 for a few (each dtype compiles the kernels again): the emitter does not depend on it
    for dtype in (np.float64, np.float32) if name in ("lstm", "gru", "lnlstm", "sru") else (np.float64,):
        params, x, state0, inputs = _case(cell, rng, dtype)
        ys, state, _ = cell.forward(x, params, state0, inputs=inputs)
        ys_i, state_i = cell.infer(x, params, state0, inputs=inputs)
        assert ys_i.dtype == dtype
        np.testing.assert_array_equal(ys_i, ys)
        for s in state:
            np.testing.assert_array_equal(state_i[s], state[s])

        # a step's input projection is one GEMM over the B rows, the sequence's one over T * B rows
        # (in parts, one per thread): BLAS may round those differently, so: equal to rounding
        tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
        stream = cell.stream(params, state0, batch=B)
        steps = [stream.step(x[t], {k: v[t] for k, v in inputs.items()}) for t in range(T)]
        np.testing.assert_allclose(np.stack(steps), ys, **tol)
        for s in state:
            np.testing.assert_allclose(stream.state[s], state[s], **tol)


# lstmp: its step GEMM writes h's rows for all rows, and the rows past their length are put back
@pytest.mark.parametrize("name", ["lstm", "gru", "lnlstm", "lstmp"])
def test_infer_with_lengths_and_batch_first(name, rng):
    cell = symlstm.cell(name)
    params, x, state0, _ = _case(cell, rng)
    lengths = np.array([5, 1, 3, 5, 2, 4, 4, 1, 2])
    ys, state, _ = cell.forward(x, params, state0, lengths=lengths)
    ys_i, state_i = cell.infer(x, params, state0, lengths=lengths)
    np.testing.assert_array_equal(ys_i, ys)
    for s in state:
        np.testing.assert_array_equal(state_i[s], state[s])
    ys_bf, _ = BatchFirstCell(cell).infer(x.transpose(1, 0, 2), params, state0, lengths=lengths)
    np.testing.assert_array_equal(ys_bf.transpose(1, 0, 2), ys)
    ys_0, state_0 = cell.infer(x[:0], params, state0)
    assert ys_0.shape == (0, B, state0["h"].shape[1]) and np.array_equal(state_0["h"], state0["h"])


def test_stream_state_and_reset(rng):
    cell = symlstm.cell("lstm")
    params, x, state0, _ = _case(cell, rng)
    stream = cell.stream(params, batch=B)
    assert np.array_equal(stream.state["c"], np.zeros((B, H)))
    first = stream.step(x[0])
    stream.step(x[1])
    stream.reset()
    np.testing.assert_array_equal(stream.step(x[0]), first)  # from zeros again
    stream.reset(state0)
    ys, _ = cell.infer(x[:1], params, state0)
    np.testing.assert_array_equal(stream.step(x[0]), ys[0])
    out = stream.step(x[1])
    out[...] = 7.0  # the step's result is the caller's own array
    assert not np.any(stream.state["h"] == 7.0)
    assert stream.step(x[2].tolist()).shape == (B, H)  # lists and other dtypes are converted


def test_stream_bad_input_is_named(rng):
    cell = symlstm.cell("lstm")
    params, x, _, _ = _case(cell, rng)
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        cell.stream(params, batch=0)
    stream = cell.stream(params, batch=B)
    with pytest.raises(ValueError, match=r"x_t has shape \(3,\); expected \(9, 3\) \(batch, D\)"):
        stream.step(np.zeros(3))
    with pytest.raises(ValueError, match=r"state0\['h'\] has shape"):
        stream.reset({"h": np.zeros((1, H)), "c": np.zeros((B, H))})
    with pytest.raises(ValueError, match=r"params for cell 'lstm': missing \['R_o'\]"):
        cell.stream({k: v for k, v in params.items() if k != "R_o"})
    zoneout = symlstm.cell("examples/zoneout.toml")
    masks = zoneout.stream(zoneout.init_params(D, H), batch=2)
    with pytest.raises(ValueError, match=r"expected a dict with \['zc', 'zh'\]"):
        masks.step(np.zeros((2, D)))
    with pytest.raises(ValueError, match=r"inputs\['zh'\] has shape \(2, 3\); expected \(2, 4\)"):
        masks.step(np.zeros((2, D)), {"zh": np.zeros((2, D)), "zc": np.zeros((2, H))})
