"""torch.autograd.gradcheck (float64) through symlstm.torch.Recurrent on every built-in cell and on
the examples' user cells: the gradients of the input, of every parameter and of every initial
state, from the generated kernels, against torch's finite differences."""

from pathlib import Path

import pytest
import torch

import symlstm
import symlstm.torch as st

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T, B, D, H = 3, 2, 2, 3
#: sizes a cell needs besides D and H: lstmp's projection P; sru's highway adds x to h, so D == H
SIZES = {"lstmp": {"P": 2}, "sru": {"D": H}}
#: sLSTM's normaliser n divides c and stays positive from a positive start (as its own tests do)
POSITIVE_STATES = {"slstm"}


def gradcheck_module(model, x, state0=None, **forward):
    """gradcheck of (output, final states) as a function of the input, parameters and initial states."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    states = [s.clone().requires_grad_() for s in state0] if state0 is not None else []

    def run(x, *args):
        weights, given = dict(zip(names, args[: len(names)])), args[len(names) :]
        state = None if not given else given[0] if len(given) == 1 else tuple(given)
        output, final = torch.func.functional_call(model, weights, (x, state), forward)
        return (output, *(final if isinstance(final, tuple) else (final,)))

    assert torch.autograd.gradcheck(run, (x.requires_grad_(), *params, *states), atol=1e-7, rtol=1e-5)


def random_states(model, units, low=-1.0):
    torch.manual_seed(1)
    return [
        torch.empty(units, B, n, dtype=torch.float64).uniform_(low, 1.0)
        for n in (model.stack.state_sizes[s] for s in model.cell.state_names)
    ]


@pytest.mark.parametrize("name", symlstm.variants())
def test_gradcheck_every_builtin(name):
    sizes = dict(SIZES.get(name, {}))
    input_size = sizes.pop("D", D)
    torch.manual_seed(0)
    model = st.Recurrent(name, input_size, H, dtype=torch.float64, **sizes)
    x = torch.randn(T, B, input_size, dtype=torch.float64)
    gradcheck_module(model, x, random_states(model, 1, low=0.5 if name in POSITIVE_STATES else -1.0))


def test_gradcheck_stacked_bidirectional_with_lengths():
    torch.manual_seed(0)
    model = st.Recurrent("peephole", D, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    gradcheck_module(model, x, random_states(model, 4), lengths=torch.tensor([2, 3]))


def test_gradcheck_user_cell_with_given_masks():
    torch.manual_seed(0)
    model = st.Recurrent(EXAMPLES / "zoneout.toml", D, H, batch_first=True, dtype=torch.float64)
    masks = {name: (torch.rand(B, T, H) < 0.3).double() for name in model.cell.input_names}
    x = torch.randn(B, T, D, dtype=torch.float64)
    gradcheck_module(model, x, random_states(model, 1), inputs=masks)
