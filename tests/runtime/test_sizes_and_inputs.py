"""The runtime with sizes other than H and extra per-step inputs: shapes read off the
parameters, state sizes, inputs checked by name and shape, x elementwise only where D == H."""

import numpy as np
import pytest

import symlstm
from symlstm.runtime import BatchFirstCell

T, B, D, H, P = 4, 3, 5, 6, 2


@pytest.fixture(scope="module")
def lstmp():
    return symlstm.cell("lstmp")


@pytest.fixture(scope="module")
def zoneout():
    return symlstm.cell("examples/zoneout.toml")


def test_lstmp_shapes(lstmp, rng):
    assert lstmp.size_names == ("D", "H", "P")
    assert lstmp.state_sizes(D, H, P=P) == {"h": P, "c": H}
    params = lstmp.init_params(D, H, P=P)
    assert params["W_hr"].shape == (P, H) and params["R_i"].shape == (H, P)
    ys, state, cache = lstmp.forward(rng.standard_normal((T, B, D)), params)
    assert ys.shape == (T, B, P) and state["h"].shape == (B, P) and state["c"].shape == (B, H)
    dx, dparams, dstate0 = lstmp.backward(np.ones_like(ys), cache)
    assert dx.shape == (T, B, D) and dstate0["h"].shape == (B, P) and dparams["W_hr"].shape == (P, H)


def test_lstmp_bad_shapes_name_the_sizes(lstmp, rng):
    params = lstmp.init_params(D, H, P=P)
    x = rng.standard_normal((T, B, D))
    with pytest.raises(ValueError, match=r"needs the size 'P'"):
        lstmp.init_params(D, H)
    with pytest.raises(ValueError, match=r"params\['R_f'\] has shape \(6, 3\); expected \(6, 2\) for .*P=2 \(from"):
        lstmp.forward(x, params | {"R_f": np.zeros((H, P + 1))})
    with pytest.raises(ValueError, match=r"state0\['h'\] has shape \(3, 6\); expected \(3, 2\) \(B, P\)"):
        lstmp.forward(x, params, {"h": np.zeros((B, H)), "c": np.zeros((B, H))})
    ys, _, cache = lstmp.forward(x, params)
    with pytest.raises(ValueError, match=r"dys has shape \(4, 3, 6\); expected \(4, 3, 2\)"):
        lstmp.backward(np.zeros((T, B, H)), cache)


def test_inputs_are_checked_by_name_and_shape(zoneout, rng):
    params = zoneout.init_params(D, H)
    x = rng.standard_normal((T, B, D))
    masks = {"zh": np.zeros((T, B, H)), "zc": np.zeros((T, B, H))}
    with pytest.raises(ValueError, match=r"missing \['zh', 'zc'\], unexpected \[\]"):
        zoneout.forward(x, params)
    with pytest.raises(ValueError, match=r"unexpected \['m'\]"):
        zoneout.forward(x, params, inputs=masks | {"m": np.zeros((T, B, H))})
    with pytest.raises(ValueError, match=r"inputs\['zc'\] has shape \(4, 3, 5\); expected \(4, 3, 6\)"):
        zoneout.forward(x, params, inputs=masks | {"zc": np.zeros((T, B, D))})
    with pytest.raises(TypeError, match=r"inputs\['zh'\] has dtype bool"):
        zoneout.forward(x, params, inputs=masks | {"zh": np.zeros((T, B, H), bool)})
    with pytest.raises(ValueError, match="this cell has no extra inputs"):
        symlstm.cell("lstm").forward(x, symlstm.cell("lstm").init_params(D, H), inputs={"zh": masks["zh"]})


def test_zoneout_masks_keep_the_last_state(zoneout, rng):
    """A mask of ones keeps every unit at its initial value; zeros give the plain LSTM."""
    params = zoneout.init_params(D, H)
    lstm = symlstm.cell("lstm")
    x = rng.standard_normal((T, B, D))
    state0 = {"h": rng.standard_normal((B, H)), "c": rng.standard_normal((B, H))}
    ones = {"zh": np.ones((T, B, H)), "zc": np.ones((T, B, H))}
    ys, state, _ = zoneout.forward(x, params, state0, inputs=ones)
    np.testing.assert_array_equal(ys, np.broadcast_to(state0["h"], ys.shape))
    np.testing.assert_array_equal(state["c"], state0["c"])
    zeros = {name: np.zeros_like(m) for name, m in ones.items()}
    ys_z, state_z, _ = zoneout.forward(x, params, state0, inputs=zeros)
    ys_l, state_l, _ = lstm.forward(x, {k: params[k] for k in lstm.param_names}, state0)
    np.testing.assert_allclose(ys_z, ys_l, rtol=1e-14, atol=1e-14)


def test_inputs_through_checkpointing_and_batch_first(zoneout, rng):
    params = zoneout.init_params(D, H)
    x = rng.standard_normal((2 * T + 1, B, D))
    masks = {name: (rng.uniform(size=(2 * T + 1, B, H)) < 0.3).astype(float) for name in zoneout.input_names}
    ys, _, cache = zoneout.forward(x, params, inputs=masks)
    dys = rng.standard_normal(ys.shape)
    dx, dparams, _ = zoneout.backward(dys, cache)
    ys_k, _, cache_k = zoneout.forward(x, params, inputs=masks, checkpoint=3)
    dx_k, dparams_k, _ = zoneout.backward(dys, cache_k)
    np.testing.assert_allclose(ys_k, ys, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx_k, dx, rtol=1e-11, atol=1e-11)
    first = BatchFirstCell(zoneout)
    swapped = {name: m.transpose(1, 0, 2) for name, m in masks.items()}
    ys_b, _, _ = first.forward(x.transpose(1, 0, 2), params, inputs=swapped)
    np.testing.assert_array_equal(ys_b, ys.transpose(1, 0, 2))


def test_x_elementwise_needs_d_equal_h(rng):
    sru = symlstm.cell("sru")
    with pytest.raises(ValueError, match=r"needs D == H .*D=5 and H=6"):
        sru.init_params(D, H)
    params = sru.init_params(H, H)
    with pytest.raises(ValueError, match=r"needs D == H"):
        sru.forward(rng.standard_normal((T, B, D)), params)
