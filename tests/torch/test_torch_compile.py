"""torch.compile: the cell's custom ops trace as single nodes, so dynamo sees one graph and no graph
break, and a compiled model computes what the eager one does, gradients included."""

import torch

import symlstm
import symlstm.torch as st
from symlstm.torch.ops import cell_op

T, B, D, H = 5, 3, 4, 6


def test_dynamo_sees_one_graph_without_breaks():
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)
    x = torch.randn(B, T, D)
    state = (torch.zeros(4, B, H), torch.zeros(4, B, H))

    def loss(x, state):
        output, (h, c) = model(x, state)
        return output.sum() + h.sum() + c.sum()

    explained = torch._dynamo.explain(loss)(x, state)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_dynamo_traces_sampled_masks_in_training_mode(tmp_path):
    spec = tmp_path / "masked_rnn.toml"
    spec.write_text(
        'name = "masked_rnn"\nstate = ["h"]\n[inputs]\nm = "H"\n'
        '[equations]\nh = "m * h_prev + (1 - m) * tanh(W @ x + R @ h_prev + b)"\n'
    )
    model = st.Recurrent(spec, D, H).sample_inputs(m=st.Bernoulli(0.2))
    explained = torch._dynamo.explain(model)(torch.randn(T, B, D))
    assert explained.graph_break_count == 0, explained.break_reasons


def test_compiled_model_matches_eager():
    torch.manual_seed(0)
    recurrent = st.Recurrent("gru", D, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    head = torch.nn.Linear(2 * H, 1, dtype=torch.float64)

    def loss(x):
        output, h_n = recurrent(x)
        return (head(output) ** 2).mean() + h_n.square().sum()

    compiled = torch.compile(loss, fullgraph=True)
    params = [*recurrent.parameters(), *head.parameters()]
    for steps in (T, T + 2):  # a second length: the fake kernels give the shapes for any T
        x = torch.randn(steps, B, D, dtype=torch.float64)
        expected = loss(x)
        expected_grads = torch.autograd.grad(expected, params)
        got = compiled(x)
        got_grads = torch.autograd.grad(got, params)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
        for a, b in zip(got_grads, expected_grads):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def op_arguments(cell_name="peephole", lengths=(2, 3)):
    """Arguments of a cell's forward op: x, params, inputs, lengths, state0, sizes."""
    cell = symlstm.cell(cell_name)
    torch.manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in cell.param_shapes(D, H).values()]
    state0 = [torch.randn(2, H, dtype=torch.float64, requires_grad=True) for _ in cell.state_names]
    x = torch.randn(3, 2, D, dtype=torch.float64, requires_grad=True)
    return cell_op(cell), (x, params, [], torch.tensor(lengths), state0, [D, H])


def test_the_custom_op_passes_opcheck():
    """torch.library.opcheck: schema, fake implementation, autograd registration, AOT dispatch."""
    op, args = op_arguments()
    torch.library.opcheck(op.forward, args)


def test_gradcheck_through_the_custom_op_itself():
    """The op's own autograd formula (the one torch.compile uses), with lengths and initial states."""
    op, (x, params, inputs, lengths, state0, sizes) = op_arguments()
    n = len(params)

    def run(x, *flat):
        return op.forward(x, list(flat[:n]), inputs, lengths, list(flat[n:]), sizes)[:3]

    assert torch.autograd.gradcheck(run, (x, *params, *state0), atol=1e-7, rtol=1e-5)


def test_the_compiled_backward_computes_the_input_gradient_only_when_wanted(monkeypatch):
    """As in eager mode: the backward op leaves out dx when x needs no gradient, and the
    parameters' gradients are the same either way; with x requiring grad, x.grad is eager's."""
    torch.manual_seed(0)
    model = st.Recurrent("lstm", D, H, dtype=torch.float64)
    cell = model.cell
    asked, backward = [], cell.backward
    monkeypatch.setattr(cell, "backward", lambda *a, **k: asked.append(k["input_grad"]) or backward(*a, **k))
    compiled = torch.compile(lambda x: model(x)[0].square().sum(), fullgraph=True)
    x = torch.randn(T, B, D, dtype=torch.float64)
    grads = []
    for requires_grad in (False, True):
        data = x.clone().requires_grad_(requires_grad)
        grads.append(torch.autograd.grad(compiled(data), [*model.parameters(), *([data] if requires_grad else [])]))
    assert asked == [False, True]
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    eager = x.clone().requires_grad_(True)
    model(eager)[0].square().sum().backward()
    torch.testing.assert_close(grads[1][-1], eager.grad, rtol=0, atol=1e-12)
