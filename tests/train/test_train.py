"""Training on the kernels (symlstm.nn) and the adding-problem demo: whole-model gradients against
finite differences, deterministic training, save/load, multi-layer and bidirectional PyTorch
interop, and the demo's data, gradient profile and command line. Everything runs in float64
except the demo (float32), on problems small enough for two shared cores."""

import math

import numpy as np
import pytest

import symlstm
from symlstm.interop import pytorch as torch_interop
from symlstm.tools.cli import main as cli_main
from symlstm.train import demo, nn

T, B, D, H = 6, 3, 4, 5


def directional_fd(loss_of, value, direction, eps=1e-4):
    """Fourth-order central difference of ``loss_of(value + e * direction)`` at e = 0."""
    return (
        -loss_of(value + 2 * eps * direction)
        + 8 * loss_of(value + eps * direction)
        - 8 * loss_of(value - eps * direction)
        + loss_of(value - 2 * eps * direction)
    ) / (12 * eps)


def assert_directional_derivatives(loss_of, point: dict, grads: dict, rng, rtol=1e-7):
    """For every entry of ``point``: <grad, v> equals the finite difference of the loss along v, to
    ``rtol`` relative, above the difference's rounding floor (~1e-16 |L| / eps = 1e-12 |L|), which
    matters where a gradient is exactly zero (the reverse direction at the last step sees no R)."""
    floor = 1e-11 * max(1.0, abs(loss_of(point)))
    for name, value in point.items():
        v = rng.standard_normal(value.shape)

        def moved(new, name=name):
            return loss_of({**point, name: new})

        analytic = float(np.sum(grads[name] * v))
        numeric = directional_fd(moved, value, v)
        assert abs(analytic - numeric) <= rtol * max(abs(analytic), abs(numeric)) + floor, (
            f"{name}: <grad, v> = {analytic!r}, finite difference {numeric!r}"
        )


# -- gradients of layers and whole models ---------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stacked_bidirectional_layer_passes_finite_differences(cell, rng):
    """Every parameter of every (layer, direction), the input and every initial state, with a loss
    that reads all outputs and all final states."""
    layer = nn.Recurrent(cell, D, H, num_layers=2, bidirectional=True, batch_first=True, seed=3)
    x = rng.standard_normal((B, T, D))
    state0 = {s: 0.5 * rng.standard_normal((4, B, H)) for s in layer.state_names}
    wy = rng.standard_normal((B, T, 2 * H))
    ws = {s: rng.standard_normal((4, B, H)) for s in layer.state_names}

    def loss(point):
        params = {n: point[n] for n in layer.params}
        ys, state, _ = layer.forward(point["x"], params, {s: point[f"{s}0"] for s in layer.state_names})
        return float(np.sum(wy * ys) + sum(np.sum(ws[s] * state[s]) for s in layer.state_names))

    ys, state, cache = layer.forward(x, state0=state0)
    assert ys.shape == (B, T, 2 * H) and all(state[s].shape == (4, B, H) for s in layer.state_names)
    dx, grads, dstate0 = layer.backward(wy, cache, ws)
    point = {"x": x, **layer.params, **{f"{s}0": state0[s] for s in layer.state_names}}
    all_grads = {"x": dx, **grads, **{f"{s}0": dstate0[s] for s in layer.state_names}}
    assert_directional_derivatives(loss, point, all_grads, rng)


@pytest.mark.parametrize("loss_fn", ["mse", "softmax_cross_entropy"])
def test_whole_model_gradients_pass_finite_differences(loss_fn, rng):
    """Recurrent (2 layers, bidirectional) -> last step -> dense, through a loss."""
    model = nn.Sequential(
        nn.Recurrent("lstm", D, H, num_layers=2, bidirectional=True, seed=1), nn.LastStep(), nn.Dense(2 * H, 3, seed=2)
    )
    x = rng.standard_normal((T, B, D))
    target = rng.standard_normal((B, 3)) if loss_fn == "mse" else rng.integers(0, 3, B)
    fn = getattr(nn, loss_fn)

    def loss(point):
        return fn(model.forward(point["x"], {n: point[n] for n in model.params})[0], target)[0]

    prediction, cache = model.forward(x)
    _, dprediction = fn(prediction, target)
    dx, grads = model.backward(dprediction, cache)
    assert set(grads) == set(model.params) and "0.l1_reverse.R_g" in grads and "2.W" in grads
    assert_directional_derivatives(loss, {"x": x, **model.params}, {"x": dx, **grads}, rng)


def test_a_backward_without_the_input_gradient_skips_it_and_only_it(monkeypatch, rng):
    """``input_grad=False`` (what train_step asks): dx is None, the first layer's cells leave out
    its GEMM, the second layer's still give theirs, and every parameter's gradient is the very
    number of the full backward."""
    model = nn.Sequential(
        nn.Recurrent("lstm", D, H, num_layers=2, bidirectional=True, seed=1), nn.LastStep(), nn.Dense(2 * H, 3, seed=2)
    )
    prediction, cache = model.forward(rng.standard_normal((T, B, D)))
    dprediction = rng.standard_normal(prediction.shape)
    dx, grads = model.backward(dprediction, cache)
    cell = model.layers[0].cell
    asked, backward = [], cell.backward
    monkeypatch.setattr(cell, "backward", lambda *a, **k: asked.append(k["input_grad"]) or backward(*a, **k))
    none, lean = model.backward(dprediction, cache, input_grad=False)
    assert dx is not None and none is None
    assert asked == [True, True, False, False]  # layer 1's two directions, then layer 0's
    for name in grads:
        np.testing.assert_array_equal(lean[name], grads[name], err_msg=name)


def test_losses_against_their_definitions(rng):
    logits = rng.standard_normal((4, 2, 5))
    labels = rng.integers(0, 5, (4, 2))
    loss, _ = nn.softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = -np.mean(np.log(np.take_along_axis(probs, labels[..., None], -1)))
    assert loss == pytest.approx(expected, rel=1e-13)
    # Shifting all logits changes nothing, and huge logits do not overflow.
    big, dbig = nn.softmax_cross_entropy(logits + 1000.0, labels)
    assert big == pytest.approx(loss, rel=1e-10) and np.all(np.isfinite(dbig))
    pred, target = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert nn.mse(pred, target)[0] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-14)


# -- layer semantics without PyTorch ----------------------------------------------------------------


def test_recurrent_layer_is_cells_composed(rng):
    """Stacking feeds layer k's ys to layer k+1; the reverse direction is a cell on the reversed
    sequence; outputs concatenate forward first."""
    layer = nn.Recurrent("gru", D, H, num_layers=2, bidirectional=True, seed=5)
    cell = symlstm.cell("gru")
    x = rng.standard_normal((T, B, D))
    ys, state, _ = layer.forward(x)
    seq, finals = x, []
    for k in range(2):
        fwd, sf, _ = cell.forward(seq, layer.unit_params(layer.params, f"l{k}"))
        bwd, sb, _ = cell.forward(seq[::-1], layer.unit_params(layer.params, f"l{k}_reverse"))
        seq = np.concatenate([fwd, bwd[::-1]], axis=-1)
        finals += [sf["h"], sb["h"]]
    np.testing.assert_array_equal(ys, seq)
    np.testing.assert_array_equal(state["h"], np.stack(finals))


def test_bias_init_shifts_only_the_named_bias():
    plain = nn.Recurrent("lstm", D, H, num_layers=2, seed=7)
    shifted = nn.Recurrent("lstm", D, H, num_layers=2, seed=7, bias_init={"b_f": 2.5})
    for name, value in plain.params.items():
        expected = value + 2.5 if name.endswith(".b_f") else value
        np.testing.assert_allclose(shifted.params[name], expected, rtol=0, atol=1e-15, err_msg=name)


def test_layers_reject_bad_input(rng):
    with pytest.raises(ValueError, match="num_layers"):
        nn.Recurrent("lstm", D, H, num_layers=0)
    with pytest.raises(TypeError, match="cell must be"):
        nn.Recurrent(42, D, H)
    with pytest.raises(TypeError, match="dtype"):
        nn.Recurrent("lstm", D, H, dtype=np.int32)
    with pytest.raises(ValueError, match="bias_init names 'b_z'.*'lstm'"):
        nn.Recurrent("lstm", D, H, bias_init={"b_z": 1.0})
    layer = nn.Recurrent("lstm", D, H)
    with pytest.raises(ValueError, match="input_size is 4"):
        layer.forward(rng.standard_normal((T, B, D + 1)))
    with pytest.raises(ValueError, match="expected \\(T, B, features\\)"):
        layer.forward(rng.standard_normal((T, D)))
    with pytest.raises(ValueError, match=r"state0.*'c'.*\(1, 3, 5\)"):
        layer.forward(rng.standard_normal((T, B, D)), state0={"h": np.zeros((1, B, H)), "c": np.zeros((B, H))})
    with pytest.raises(ValueError, match="params: missing"):
        layer.forward(rng.standard_normal((T, B, D)), {"l0.W_i": layer.params["l0.W_i"]})
    ys, _, cache = layer.forward(rng.standard_normal((T, B, D)))
    with pytest.raises(TypeError, match="cache"):
        nn.Recurrent("lstm", D, H).backward(ys, cache)
    with pytest.raises(ValueError, match="dys"):
        layer.backward(ys[:, :, :2], cache)
    with pytest.raises(ValueError, match="in_features = 5"):
        nn.Dense(5, 1).forward(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="labels"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="labels must lie in"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="target has shape"):
        nn.mse(np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="lr must be"):
        nn.Adam(layer.params, lr=-1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        nn.SGD(layer.params, clip_norm=0)
    with pytest.raises(ValueError, match="grads: missing"):
        nn.SGD(layer.params).step({})
    with pytest.raises(TypeError, match="layer 1 must be"):
        nn.Sequential(layer, "dense")


# -- training, determinism, save/load ------------------------------------------------------------


def train_tiny(optimizer: str, seed: int = 0, steps: int = 300):
    """The simplified adding problem at T = 8 with a small LSTM; returns (losses, model)."""
    model = nn.Sequential(nn.Recurrent("lstm", 2, 8, seed=seed), nn.LastStep(), nn.Dense(8, 1, seed=seed))
    opt = (
        nn.Adam(model.params, lr=2e-2, clip_norm=1.0)
        if optimizer == "adam"
        else nn.SGD(model.params, lr=0.1, momentum=0.9, clip_norm=1.0)
    )
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        x, y = demo.adding_batch("simple", 8, 32, rng, dtype=np.float64)
        losses.append(nn.train_step(model, nn.mse, opt, x, y)[0])
    return np.array(losses), model


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_reduces_the_loss_deterministically(optimizer):
    losses, _ = train_tiny(optimizer)
    again, _ = train_tiny(optimizer)
    np.testing.assert_array_equal(losses, again)  # same seeds, same arithmetic: bit for bit
    start, end = losses[:10].mean(), losses[-20:].mean()
    # Below the MSE of predicting the mean (1/6), and well below where training started.
    assert end < 0.5 / 6 and end < 0.25 * start, f"loss went from {start:.3f} to {end:.3f}"


def test_saved_and_loaded_model_gives_identical_outputs(tmp_path, rng):
    _, model = train_tiny("adam", steps=5)
    path = nn.save(tmp_path / "model", model)
    assert path.endswith("model.npz")
    fresh = nn.Sequential(nn.Recurrent("lstm", 2, 8, seed=99), nn.LastStep(), nn.Dense(8, 1, seed=99))
    x = rng.standard_normal((8, 4, 2))
    assert not np.array_equal(fresh.forward(x)[0], model.forward(x)[0])
    arrays = fresh.layers[0].params["l0.W_i"]
    nn.load(path, into=fresh)
    assert fresh.layers[0].params["l0.W_i"] is arrays  # loaded in place: optimizers still see it
    np.testing.assert_array_equal(fresh.forward(x)[0], model.forward(x)[0])
    plain = nn.load(path)
    assert plain.keys() == model.params.keys()
    wrong = nn.Sequential(nn.Recurrent("lstm", 2, 9), nn.LastStep(), nn.Dense(9, 1))
    with pytest.raises(ValueError, match="has shape"):
        nn.load(path, into=wrong)
    with pytest.raises(ValueError, match="missing"):
        nn.load(path, into=nn.Dense(8, 1))


def test_optimizers_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    start = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    grads_seq = [{n: rng.standard_normal(v.shape) * 3 for n, v in start.items()} for _ in range(5)]
    for ours, theirs in (
        (
            lambda p: nn.Adam(p, lr=0.1, betas=(0.8, 0.99), clip_norm=2.0),
            lambda t: torch.optim.Adam(t, lr=0.1, betas=(0.8, 0.99)),
        ),
        (lambda p: nn.SGD(p, lr=0.1, momentum=0.7, clip_norm=2.0), lambda t: torch.optim.SGD(t, lr=0.1, momentum=0.7)),
    ):
        params = {n: v.copy() for n, v in start.items()}
        tensors = [torch.tensor(v, requires_grad=True) for v in start.values()]
        opt, topt = ours(params), theirs(tensors)
        for grads in grads_seq:
            norm = opt.step(grads)
            for t, g in zip(tensors, grads.values()):
                t.grad = torch.tensor(g)
            tnorm = torch.nn.utils.clip_grad_norm_(tensors, 2.0)
            topt.step()
            assert norm == pytest.approx(float(tnorm), rel=1e-12)
        for (name, value), t in zip(params.items(), tensors):
            np.testing.assert_allclose(value, t.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=name)


# -- PyTorch interop for stacked and bidirectional modules ----------------------------------------


@pytest.mark.parametrize("lengths", [None, [6, 2, 4]], ids=["full", "packed"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_from_torch_stacked_bidirectional_matches_pytorch(kind, batch_first, lengths, rng):
    """Outputs, final states and every gradient (input, initial states, every weight and bias of
    every layer and direction) of a 3-layer bidirectional module, in float64; with ``lengths``,
    against the module on a PackedSequence of rows of those lengths (unsorted)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(D, H, num_layers=3, bidirectional=True, batch_first=batch_first).double()
    layer, params = symlstm.from_torch(module)
    assert isinstance(layer, nn.Recurrent) and params is layer.params
    x = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    state0 = {s: rng.standard_normal((6, B, H)) for s in layer.state_names}
    dys = rng.standard_normal(x.shape[:2] + (2 * H,))
    dstate = {s: rng.standard_normal((6, B, H)) for s in layer.state_names}
    ys, state, cache = layer.forward(x, params, state0, lengths=lengths)
    dx, grads, dstate0 = layer.backward(dys, cache, dstate)

    xt = torch.tensor(x, requires_grad=True)
    s0t = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    rnn = torch.nn.utils.rnn
    given = xt if lengths is None else rnn.pack_padded_sequence(xt, lengths, batch_first, enforce_sorted=False)
    if kind == "LSTM":
        out, (hn, cn) = module(given, (s0t["h"], s0t["c"]))
        final = {"h": hn, "c": cn}
    else:
        out, hn = module(given, s0t["h"])
        final = {"h": hn}
    if lengths is not None:
        out, _ = rnn.pad_packed_sequence(out, batch_first, total_length=T)
    (torch.sum(out * torch.tensor(dys)) + sum(torch.sum(final[s] * torch.tensor(dstate[s])) for s in final)).backward()

    def close(actual, expected, what):
        expected = expected.detach().numpy()
        assert np.max(np.abs(actual - expected)) <= 1e-12 * max(1.0, np.max(np.abs(expected))), what

    close(ys, out, "ys")
    close(dx, xt.grad, "dx")
    for s in layer.state_names:
        close(state[s], final[s], f"final {s}")
        close(dstate0[s], s0t[s].grad, f"d{s}0")
    gates = "ifgo" if kind == "LSTM" else "rzn"
    for prefix in layer.unit_prefixes():
        for k, gate in enumerate(gates):
            rows = slice(k * H, (k + 1) * H)
            close(grads[f"{prefix}.W_{gate}"], getattr(module, f"weight_ih_{prefix}").grad[rows], f"{prefix} W_{gate}")
            close(grads[f"{prefix}.R_{gate}"], getattr(module, f"weight_hh_{prefix}").grad[rows], f"{prefix} R_{gate}")
            close(grads[f"{prefix}.b_{gate}"], getattr(module, f"bias_ih_{prefix}").grad[rows], f"{prefix} b_{gate}")
            recurrent_bias = f"{prefix}.b_h{gate}" if (kind, gate) == ("GRU", "n") else f"{prefix}.b_{gate}"
            close(grads[recurrent_bias], getattr(module, f"bias_hh_{prefix}").grad[rows], recurrent_bias)


def test_to_torch_round_trip_of_a_stacked_layer(rng):
    torch = pytest.importorskip("torch")
    layer = nn.Recurrent("gru", D, H, num_layers=2, bidirectional=True, batch_first=True, seed=4)
    module = symlstm.to_torch(layer)
    assert (module.num_layers, module.bidirectional, module.batch_first) == (2, True, True)
    x = rng.standard_normal((B, T, D))
    np.testing.assert_allclose(module(torch.tensor(x))[0].detach().numpy(), layer.forward(x)[0], rtol=0, atol=1e-12)
    assert torch_interop.architecture(module).suffixes == layer.unit_prefixes()
    again = layer.to_torch()  # the method symlstm.to_torch(layer) calls
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name].numpy(), value.numpy(), err_msg=name)
    back = nn.Recurrent.from_torch(module)
    for name, value in layer.params.items():
        np.testing.assert_allclose(back.params[name], value, rtol=0, atol=1e-15, err_msg=name)
    single = nn.Recurrent.from_torch(torch.nn.LSTM(D, H).double())  # always a layer, even for one
    assert single.num_layers == 1 and single.forward(rng.standard_normal((T, B, D)))[1]["c"].shape == (1, B, H)


# -- the adding-problem demo ---------------------------------------------------------------------


def test_adding_data_follows_hochreiter_and_schmidhuber():
    rng = np.random.default_rng(0)
    T = 40
    for _ in range(20):
        x, y = demo.adding_batch("hochreiter", T, 64, rng, dtype=np.float64)
        L = x.shape[0]
        assert T <= L <= T + T // 10 and y.shape == (64, 1)
        values, markers = x[..., 0], x[..., 1]
        marked = markers == 1.0
        assert np.all(marked.sum(axis=0) == 2)
        positions = np.sort(np.argwhere(marked.T)[:, 1].reshape(64, 2), axis=1)
        assert np.all(positions[:, 0] < 10) and np.all(positions[:, 1] < T // 2)
        assert np.all(markers[-1] == -1.0) and np.all(markers[0][~marked[0]] == -1.0)
        assert np.all(values[0][marked[0]] == 0.0)  # a marked first pair counts as zero
        others = ~marked & (np.arange(L)[:, None] > 0) & (np.arange(L)[:, None] < L - 1)
        assert np.all(markers[others] == 0.0) and np.all(np.abs(values) <= 1.0)
        np.testing.assert_allclose(y[:, 0], 0.5 + (values * marked).sum(axis=0) / 4, rtol=0, atol=1e-15)


@pytest.mark.parametrize("task", ["hochreiter", "simple"])
def test_adding_baselines(task):
    """The baselines the demo plots match their exact values on a large sample. hochreiter: a
    marked pair at position 0 is zeroed, P = 1/10 (X1) + (9/10)/(T/2 - 1) (X2), and it is always
    the earlier value, so Var(target) = (2 - P)/48 and the later value leaves (1 - P)/48."""
    T = 40
    batches = [
        demo.adding_batch(task, T, 50_000, np.random.default_rng(k), length=T, dtype=np.float64) for k in range(2)
    ]
    lines = dict(demo.baseline_mse(task, batches))
    if task == "hochreiter":
        p0 = 0.1 + 0.9 / (T // 2 - 1)
        exact = {"predict the mean": (2 - p0) / 48, "remember only the later value": (1 - p0) / 48}
    else:
        exact = {"predict the mean": 1 / 6, "remember only the later value": 1 / 12}
    # 100 000 samples: these estimates are within ~1% of their values; a wrong formula is not.
    for label, value in exact.items():
        assert lines[label] == pytest.approx(value, rel=0.03), label
    if task == "simple":
        marked = np.argwhere(batches[0][0][..., 1].T == 1.0)[:, 1].reshape(-1, 2)
        assert np.all(marked[:, 0] < T // 2) and np.all(marked[:, 1] >= T // 2)


def test_gradient_profile_matches_direct_backward(rng):
    """The first and last points of the vanishing-gradient curve, computed independently."""
    model = nn.Sequential(nn.Recurrent("lstm", 2, 6, dtype=np.float64), nn.LastStep(), nn.Dense(6, 1))
    x = rng.standard_normal((9, 4, 2))
    profile = demo.gradient_profile(model, x)
    assert profile.shape == (10,)
    recurrent, _, readout = model.layers
    W = readout.params["W"]
    assert profile[-1] == pytest.approx(np.linalg.norm(W), rel=1e-12)  # dŷ/dh_T = W for every sequence
    ys, _, cache = recurrent.forward(x)
    dys = np.zeros_like(ys)
    dys[-1] = W
    dh0 = recurrent.backward(dys, cache)[2]["h"][0]
    assert profile[0] == pytest.approx(np.mean(np.linalg.norm(dh0, axis=1)), rel=1e-10)


def test_demo_command_writes_plots_and_table(tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli_main(
        [
            "demo",
            "adding",
            "--cells",
            "rnn",
            "--T",
            "20",
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--test-size",
            "32",
            "--hidden",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    for suffix in ("loss.png", "gradients.png"):
        png = (out / f"adding-hochreiter-T20-{suffix}").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    table = (out / "adding-hochreiter-T20-results.md").read_text()
    assert "| rnn |" in table and "final test MSE" in table
    row = next(line for line in table.splitlines() if line.startswith("| rnn |"))
    assert math.isfinite(float(row.split("|")[2]))
    assert "| rnn |" in capsys.readouterr().out
    assert cli_main(["demo", "adding", "--T", "10", "--out", str(out)]) == 2  # T too short for the task
