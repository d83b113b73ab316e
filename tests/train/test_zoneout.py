"""Training a cell with extra per-step inputs: the zoneout LSTM of examples/zoneout.toml learns the
simplified adding problem with masks drawn at every step, and is evaluated with the masks'
expectation, as Krueger et al. 2017 do."""

import numpy as np

import symlstm
from conftest import ROOT
from symlstm.train.demo import adding_batch, baseline_mse
from symlstm.train.optim import Adam

T, B, H, STEPS, ZONEOUT = 12, 32, 16, 800, 0.15


def _loss_and_grads(cell, params, readout, x, y, masks):
    """MSE of a linear readout of the last output, and its gradients (by the cell's backward)."""
    ys, _, cache = cell.forward(x, params, inputs=masks)
    w, c = readout["w"], readout["c"]
    prediction = ys[-1] @ w + c
    error = prediction - y
    loss = float(np.mean(error**2))
    dprediction = 2 * error / error.size
    dys = np.zeros_like(ys)
    dys[-1] = dprediction @ w.T
    _, dparams, _ = cell.backward(dys, cache)
    return loss, dparams, {"w": ys[-1].T @ dprediction, "c": dprediction.sum(0)}


def test_zoneout_lstm_learns_the_adding_problem_with_random_masks():
    cell = symlstm.cell(ROOT / "examples" / "zoneout.toml")
    rng = np.random.default_rng(0)
    params = cell.init_params(2, H, seed=0)
    params["b_f"] += 1.0  # forget gates open at the start, as usual for LSTMs
    readout = {"w": rng.uniform(-0.1, 0.1, (H, 1)), "c": np.zeros(1)}
    optimizer = Adam({**params, **{f"readout_{k}": v for k, v in readout.items()}}, lr=1e-2, clip_norm=1.0)
    params = {k: optimizer.params[k] for k in params}
    readout = {k: optimizer.params[f"readout_{k}"] for k in readout}
    for _ in range(STEPS):
        x, y = adding_batch("simple", T, B, rng, dtype=np.float64)
        masks = {name: (rng.uniform(size=(T, B, H)) < ZONEOUT).astype(np.float64) for name in cell.input_names}
        _, dparams, dreadout = _loss_and_grads(cell, params, readout, x, y, masks)
        optimizer.step({**dparams, **{f"readout_{k}": v for k, v in dreadout.items()}})

    test = [adding_batch("simple", T, 256, np.random.default_rng(1), dtype=np.float64)]
    expectation = {name: np.full((T, 256, H), ZONEOUT) for name in cell.input_names}
    loss, _, _ = _loss_and_grads(cell, params, readout, *test[0], expectation)
    baselines = dict(baseline_mse("simple", test))
    # it must have learnt to add: well below what remembering one of the two values gives
    assert loss < 0.25 * baselines["remember only the later value"], (loss, baselines)
