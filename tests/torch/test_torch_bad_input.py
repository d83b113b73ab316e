"""Bad input to symlstm.torch.Recurrent: a TypeError or ValueError naming the argument, raised
before any kernel runs (the cell's op is replaced by one that fails the test if called)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import symlstm.torch as st

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T, B, D, H = 4, 3, 2, 5


class NoKernels:
    def forward(self, *args):
        raise AssertionError("a kernel ran before the bad input was found")


@pytest.fixture
def model():
    model = st.Recurrent("lstm", D, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    model._op = NoKernels()
    return model


def x64(*shape):
    return torch.zeros(*(shape or (T, B, D)), dtype=torch.float64)


STATE = (x64(4, B, H), x64(4, B, H))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m(x64().float()),
            TypeError,
            "input has dtype torch.float32 but the module's parameters are torch.float64",
        ),
        (lambda m: m(torch.zeros(T, B, D, dtype=torch.int64)), TypeError, "input has dtype torch.int64"),
        (lambda m: m(np.zeros((T, B, D))), TypeError, "input must be a torch.Tensor, got ndarray"),
        (lambda m: m(x64().to("meta")), ValueError, "input is on meta; symlstm's kernels are Numba code for the CPU"),
        (lambda m: m(x64(T, B)), ValueError, r"input has shape \(4, 3\); expected \(T, B, features\)"),
        (lambda m: m(x64(T, B, D + 1)), ValueError, "input has 3 features"),
        (lambda m: m(x64(0, B, D)), ValueError, "at least one time step"),
        (lambda m: m(x64(), x64(4, B, H)), TypeError, r"state must be None or a tuple of 2 tensors \(h, c\)"),
        (lambda m: m(x64(), (x64(4, B, H), x64(2, B, H))), ValueError, r"state 'c' has shape \(2, 3, 5\)"),
        (lambda m: m(x64(), (STATE[0].float(), STATE[1])), TypeError, "state 'h' has dtype torch.float32"),
        (lambda m: m(x64(), lengths=[1, 2, T + 1]), ValueError, r"lengths .* must each be in 1..T = 1..4, got 5"),
        (lambda m: m(x64(), lengths=[0, 2, 3]), ValueError, r"lengths .* must each be in 1..T = 1..4, got 0"),
        (lambda m: m(x64(), lengths=[1.0, 2.0, 3.0]), TypeError, "lengths .* must be integers"),
        (lambda m: m(x64(), lengths=[1, 2]), ValueError, r"lengths .* has shape \(2,\); expected \(3,\)"),
        (lambda m: m(x64(), lengths="abc"), TypeError, "lengths .* must be a tensor or sequence of integers"),
        (
            lambda m: m(pack_sequence([x64(3, D), x64(2, D)]), lengths=[3, 2]),
            ValueError,
            "lengths must be None for a PackedSequence",
        ),
        (lambda m: m(pack_sequence([x64(3, D).float()])), TypeError, "input has dtype torch.float32"),
        (lambda m: m(x64(), inputs={"m": x64()}), ValueError, r"inputs for cell 'lstm': unknown \['m'\]"),
        (lambda m: m(x64(), inputs=[1]), TypeError, "inputs must be None or a dict"),
        (lambda m: m.half()(x64().half()), TypeError, "the module's parameters are torch.float16"),
        (lambda m: m.to("meta")(x64()), ValueError, "the module's parameters are on meta"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_is_named_before_any_kernel_runs(model, call, error, message):
    with pytest.raises(error, match=message):
        call(model)


def test_bad_mask_shapes_are_named():
    model = st.Recurrent(EXAMPLES / "zoneout.toml", D, H, dtype=torch.float64)
    model._op = NoKernels()
    with pytest.raises(ValueError, match=r"inputs\['zc'\] has shape \(4, 3, 4\); expected \(4, 3, 5\)"):
        model(x64(), inputs={"zh": x64(T, B, H), "zc": x64(T, B, H - 1)})


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((42, D, H), {}, TypeError, "cell must be a symlstm Cell, a built-in name or a spec path, got int"),
        (("nosuchcell", D, H), {}, ValueError, "unknown cell 'nosuchcell'"),
        (("lstm", 0, H), {}, ValueError, "input_size must be a positive integer"),
        (("lstm", D, H), {"num_layers": 0}, ValueError, "num_layers must be a positive integer"),
        (("lstm", D, H), {"dropout": 1.5}, ValueError, r"dropout must be a probability in \[0, 1\]"),
        (("lstm", D, H), {"dtype": torch.int32}, TypeError, "dtype must be torch.float32 or torch.float64"),
        (("lstmp", D, H), {}, ValueError, "needs the size 'P'"),
        (("lstm", D, H), {"P": 3}, ValueError, r"has no size named \['P'\]"),
    ],
)
def test_bad_construction_is_named(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        st.Recurrent(*args, **kwargs)
