"""symlstm.torch.Recurrent as an nn.Module: parameters, state_dict, dtypes, optimizers, interop,
dropout between layers, per-step mask inputs, memory sharing and the errors of double backward."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import symlstm
import symlstm.torch as st
from symlstm.torch.ops import DOUBLE_BACKWARD, _array

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T, B, D, H = 5, 3, 4, 6


def test_parameters_are_named_after_the_spec_with_pytorch_suffixes():
    model = st.Recurrent("lstm", D, H, num_layers=2, bidirectional=True)
    names = {n for n, _ in model.named_parameters()}
    cell = symlstm.cell("lstm")
    assert names == {f"{n}_{s}" for n in cell.param_names for s in ("l0", "l0_reverse", "l1", "l1_reverse")}
    assert model.W_i_l0.shape == (H, D) and model.W_i_l1_reverse.shape == (H, 2 * H)
    assert model.R_i_l1_reverse.shape == (H, H) and model.b_f_l0.shape == (H,)
    assert set(model.state_dict()) == names
    assert model.W_i_l0.dtype == torch.get_default_dtype()


def test_state_dict_round_trip_and_dtype_conversions():
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, num_layers=2)
    other = st.Recurrent("lstm", D, H, num_layers=2)
    other.load_state_dict(model.state_dict())
    x = torch.randn(T, B, D)
    torch.testing.assert_close(other(x)[0], model(x)[0], rtol=0, atol=0)
    model.double()
    output, (h, c) = model(x.double())
    assert output.dtype == h.dtype == c.dtype == torch.float64
    model.float()
    assert model(x)[0].dtype == torch.float32


def test_reset_parameters_is_uniform_within_one_over_sqrt_h():
    model = st.Recurrent("gru", D, 16, num_layers=2)
    torch.manual_seed(0)
    model.reset_parameters()
    first = model.W_r_l0.detach().clone()
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.25 and values.abs().max() > 0.24  # 1/sqrt(16)
    assert abs(float(values.mean())) < 0.02 and abs(float(values.std()) - 0.25 / 3**0.5) < 0.01
    torch.manual_seed(0)
    model.reset_parameters()
    assert torch.equal(model.W_r_l0, first)  # torch's generator: torch.manual_seed repeats it


def test_an_optimizer_trains_it():
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, target = torch.randn(T, B, D), torch.randn(B, H).tanh() * 0.5
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        _, (h, _) = model(x)
        loss = ((h[-1] - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_state_forms_follow_torch_nn():
    x = torch.randn(T, B, D, dtype=torch.float64)
    output, h_n = st.Recurrent("gru", D, H, num_layers=2, dtype=torch.float64)(x)
    assert isinstance(h_n, torch.Tensor) and h_n.shape == (2, B, H) and output.shape == (T, B, H)
    output, (h_n, c_n) = st.Recurrent("lstmp", D, H, bidirectional=True, dtype=torch.float64, P=2)(x)
    assert output.shape == (T, B, 4) and h_n.shape == (2, B, 2) and c_n.shape == (2, B, H)
    output, state = st.Recurrent("slstm", D, H, batch_first=True, dtype=torch.float64)(x.transpose(0, 1))
    assert output.shape == (B, T, H) and len(state) == 4


def test_to_torch_round_trip():
    torch.manual_seed(0)
    model = st.Recurrent("gru", D, H, 2, batch_first=True, dropout=0.3, bidirectional=True, dtype=torch.float64)
    module = model.eval().to_torch()
    assert isinstance(module, torch.nn.GRU) and module.dropout == 0.3 and module.batch_first and not module.training
    assert module.weight_ih_l0.dtype == torch.float64
    x = torch.randn(B, T, D, dtype=torch.float64)
    torch.testing.assert_close(module(x)[0], model(x)[0], rtol=0, atol=1e-12)
    back = st.Recurrent.from_torch(module)
    for (name, a), (_, b) in zip(back.named_parameters(), model.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="PyTorch has no module for the cell 'peephole'"):
        st.Recurrent("peephole", D, H).to_torch()


def test_dropout_between_layers_in_training_mode_only():
    torch.manual_seed(0)
    model = st.Recurrent("rnn", D, H, num_layers=2, dropout=0.5, dtype=torch.float64)
    layers = [st.Recurrent("rnn", n, H, dtype=torch.float64) for n in (D, H)]
    for k, layer in enumerate(layers):
        layer.load_state_dict({f"{n}_l0": getattr(model, f"{n}_l{k}") for n in model.cell.param_names})
    x = torch.randn(T, B, D, dtype=torch.float64)
    torch.manual_seed(5)
    got, _ = model(x)
    torch.manual_seed(5)
    expected, _ = layers[1](torch.nn.functional.dropout(layers[0](x)[0], 0.5))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    model.eval()
    torch.testing.assert_close(model(x)[0], layers[1](layers[0](x)[0])[0], rtol=0, atol=0)
    with pytest.warns(UserWarning, match="dropout acts between layers"):
        st.Recurrent("rnn", D, H, dropout=0.5)


def test_contiguous_tensors_are_not_copied_and_others_are_accepted():
    x = torch.randn(T, B, D)
    assert np.shares_memory(_array(x), x.numpy())
    model = st.Recurrent("lstm", D, H, batch_first=True)
    strided = torch.randn(T, B, D).transpose(0, 1)  # (B, T, D), not contiguous
    torch.testing.assert_close(model(strided)[0], model(strided.contiguous())[0], rtol=0, atol=0)


def test_backward_twice_with_retain_graph_and_no_double_backward():
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    output, _ = model(x)
    first = torch.autograd.grad(output.sum(), x, retain_graph=True)[0]
    second = torch.autograd.grad(output.sum(), x, create_graph=True)[0]  # the trace is still intact
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="first derivatives only") as caught:
        second.sum().backward()
    assert str(caught.value) == DOUBLE_BACKWARD


# -- per-step inputs (masks) ----------------------------------------------------------------------


def zoneout(**kw):
    torch.manual_seed(0)
    return st.Recurrent(EXAMPLES / "zoneout.toml", D, H, dtype=torch.float64, **kw)


class Recording:
    """A sampler that keeps what it drew."""

    def __init__(self):
        self.drawn = []

    def sample(self, shape, *, dtype, device):
        self.drawn.append(torch.rand(shape, dtype=dtype, device=device))
        return self.drawn[-1]

    def expectation(self, shape, *, dtype, device):
        return torch.full(shape, 0.5, dtype=dtype, device=device)


def test_masks_given_per_call_hold_the_state():
    model = zoneout()
    x = torch.randn(T, B, D, dtype=torch.float64)
    state = (torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64))
    ones = torch.ones(T, B, H, dtype=torch.float64)
    output, (h, c) = model(x, state, inputs={"zh": ones, "zc": ones})  # zone out everything: nothing moves
    torch.testing.assert_close(output, state[0].expand(T, B, H), rtol=0, atol=0)
    torch.testing.assert_close((h, c), state, rtol=0, atol=0)


def test_samplers_draw_in_training_and_give_the_expectation_in_eval():
    model = zoneout(num_layers=2, bidirectional=True)
    recorders = {"zh": Recording(), "zc": Recording()}
    model.sample_inputs(**recorders)
    x = torch.randn(T, B, D, dtype=torch.float64)
    sampled, _ = model(x)
    assert all(len(r.drawn) == 4 for r in recorders.values())  # one draw per (layer, direction) unit
    given = {name: torch.stack(r.drawn) for name, r in recorders.items()}  # the per-unit form
    torch.testing.assert_close(model(x, inputs=given)[0], sampled, rtol=0, atol=0)
    model.eval()
    half = torch.full((T, B, H), 0.5, dtype=torch.float64)
    torch.testing.assert_close(model(x)[0], model(x, inputs={"zh": half, "zc": half})[0], rtol=0, atol=0)


def test_bernoulli_masks():
    step = st.Bernoulli(0.3).sample((400, 8, 16), dtype=torch.float64, device="cpu")
    assert set(step.unique().tolist()) == {0.0, 1.0} and abs(float(step.mean()) - 0.3) < 0.01
    assert not torch.equal(step[0], step[1])
    variational = st.Bernoulli(0.5, per_step=False, scale=2.0).sample((4, 8, 16), dtype=torch.float32, device="cpu")
    assert torch.equal(variational[0], variational[3]) and set(variational.unique().tolist()) == {0.0, 2.0}
    assert float(st.Bernoulli(0.5, scale=2.0).expectation((2, 2, 2), dtype=torch.float32, device="cpu")[0, 0, 0]) == 1


def test_missing_masks_are_named():
    model = zoneout().sample_inputs(zh=st.Bernoulli(0.1))
    with pytest.raises(ValueError, match=r"neither given nor sampled \['zc'\]"):
        model(torch.randn(T, B, D, dtype=torch.float64))
    with pytest.raises(ValueError, match="has no input 'zq'"):
        model.sample_inputs(zq=st.Bernoulli(0.1))
    with pytest.raises(TypeError, match="sampler for 'zc' must have sample"):
        model.sample_inputs(zc=0.1)


def test_deepcopy_and_pickle(tmp_path):
    model = st.Recurrent("gru", D, H, num_layers=2, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    torch.save(model, tmp_path / "model.pt")
    for other in (copy.deepcopy(model), torch.load(tmp_path / "model.pt", weights_only=False)):
        assert other.cell.spec.sha256 == model.cell.spec.sha256
        torch.testing.assert_close(other(x)[0], model(x)[0], rtol=0, atol=0)


def test_cells_that_need_d_equal_h_stack_only_where_the_sizes_allow():
    model = st.Recurrent("sru", H, H, bidirectional=True, dtype=torch.float64)  # one layer: D = H
    assert model(torch.randn(T, B, H, dtype=torch.float64))[0].shape == (T, B, 2 * H)
    with pytest.raises(ValueError, match="needs D == H"):  # layer 1 would read 2H features
        st.Recurrent("sru", H, H, num_layers=2, bidirectional=True)


def test_without_grad_the_module_runs_the_inference_kernel_with_the_same_results(monkeypatch):
    """Under no_grad (or inference_mode) nothing is recorded: ``cell.infer``, with no stored
    activations, gives bit for bit what the training forward gives, lengths and all."""
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, num_layers=2, bidirectional=True).double()
    x = torch.randn(T, B, D, dtype=torch.float64)
    lengths = torch.tensor([T, 2, 4])
    output, (h, c) = model(x, lengths=lengths)
    calls = []
    infer = model.cell.infer
    monkeypatch.setattr(model.cell, "infer", lambda *a, **k: calls.append(1) or infer(*a, **k))
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            quick, (h2, c2) = model(x, lengths=lengths)
        assert quick.grad_fn is None
        for a, b in ((output, quick), (h, h2), (c, c2)):
            torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)
    assert len(calls) == 2 * len(model.stack.units)


def test_the_input_gradient_is_computed_only_when_autograd_wants_it(monkeypatch):
    """A first layer's input is data: its backward leaves out dx (a GEMM as big as the input
    projection), the parameters' gradients the same to the last bit; a later layer's input, or
    an input that requires grad, gets one."""
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, num_layers=2).double()
    x = torch.randn(T, B, D, dtype=torch.float64)
    asked = []
    backward = model.cell.backward
    monkeypatch.setattr(model.cell, "backward", lambda *a, **k: asked.append(k["input_grad"]) or backward(*a, **k))
    grads = []
    for requires_grad in (False, True):
        model.zero_grad()
        data = x.clone().requires_grad_(requires_grad)
        model(data)[0].sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        assert (data.grad is not None) == requires_grad
    assert asked == [True, False, True, True]  # the backward runs the last layer first
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0)
