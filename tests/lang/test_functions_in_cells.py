"""The functions of the spec language in whole cells: spec file -> derivation -> Numba kernels ->
finite differences, LaTeX (pdflatex) and diagrams; and the kinks' conventions through the kernels,
against PyTorch's autograd on the same cell written by hand.

Few cells, small sizes: each new spec costs a Numba compile of several seconds.
"""

import re

import numpy as np
import pytest

import symlstm
from conftest import pdflatex, require_pdflatex
from symlstm.backends.latex.document import latex_document
from symlstm.ir.derive import derive
from symlstm.lang.primitives import PRIMITIVES
from symlstm.site.diagram import diagram_dot

SPECS = {
    # smooth functions; sqrt and log of positive arguments only
    "smooth": """
name = "smooth"
state = ["h"]
[equations]
a = "softplus(W_a @ x + R_a @ h_prev + b_a)"
s = "logsigmoid(W_s @ x + R_s @ h_prev)"
g = "silu(W_g @ x) * gelu(R_g @ h_prev + b_g)"
h = "sin(a - g) * exp(s) + cos(W_h @ x) * log(1 + a) * 0.5 + sqrt(softplus(g) + 1)"
""",
    # kinks, which random points miss; maximum and minimum of two states
    "kinks": """
name = "kinks"
state = ["h", "c"]
[equations]
u = "W_u @ x + R_u @ h_prev + b_u"
c = "maximum(c_prev, tanh(u)) - 0.5 * minimum(abs(c_prev), sigmoid(u))"
h = "elu(W_h @ x + c) * 0.5 + leaky_relu(u - c_prev) + minimum(maximum(h_prev, -1), 1) * 0.1"
""",
}
#: at x = 0 and h_prev = 0 every function sits at its kink: ties of maximum and minimum, abs,
#: leaky_relu, elu and relu at 0
TIES = """
name = "ties"
state = ["h"]
[equations]
h = "maximum(h_prev, A @ x) + minimum(B @ x, h_prev) + abs(C @ x) + leaky_relu(h_prev) + elu(E @ x) + relu(h_prev)"
"""
NEW = ["softplus", "sqrt", "log", "abs", "elu", "leaky_relu", "silu", "gelu", "logsigmoid", "sin", "cos"]
NEW += ["maximum", "minimum"]


def spec_file(tmp_path, text):
    path = tmp_path / "cell.toml"
    path.write_text(text)
    return path


def test_the_cells_use_every_new_function():
    used = "".join(SPECS.values())
    assert all(f"{name}(" in used for name in NEW)
    assert set(NEW) <= set(PRIMITIVES)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_backward_matches_finite_differences(name, tmp_path):
    cell = symlstm.cell(spec_file(tmp_path, SPECS[name]))
    report = symlstm.gradcheck(cell, T=4, B=2, D=3, H=3)
    assert report.passed, report.table()


def test_kink_conventions_through_the_kernels_are_pytorchs(tmp_path):
    """At zero input and state every function of the ``ties`` cell sits at its kink, at every
    step: the kernels' gradients equal PyTorch's autograd on the same cell (maximum and minimum
    split a tie 1/2 : 1/2, abs'(0) = relu'(0) = 0, leaky_relu'(0) = 0.01, elu'(0) = 1)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cell = symlstm.cell(spec_file(tmp_path, TIES))
    T, B, D, H = 3, 2, 3, 4
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape) for k, v in cell.init_params(D, H).items()}
    x = np.zeros((T, B, D))
    dys = rng.standard_normal((T, B, H))
    ys, state, cache = cell.forward(x, params, {"h": np.zeros((B, H))})
    dx, dparams, dstate0 = cell.backward(dys, cache)

    w = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xs = torch.zeros((T, B, D), dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros((B, H), dtype=torch.float64, requires_grad=True)
    h, outs = h0, []
    for t in range(T):
        a, b, c, e = (xs[t] @ w[k].T for k in "ABCE")
        h = torch.maximum(h, a) + torch.minimum(b, h) + torch.abs(c) + F.leaky_relu(h, 0.01) + F.elu(e) + torch.relu(h)
        outs.append(h)
    torch.stack(outs).backward(torch.tensor(dys))
    np.testing.assert_array_equal(ys, 0.0)
    np.testing.assert_allclose(dx, xs.grad.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dstate0["h"], h0.grad.numpy(), rtol=1e-14, atol=1e-15)
    for k, grad in dparams.items():
        np.testing.assert_allclose(grad, w[k].grad.numpy(), rtol=1e-14, atol=1e-15, err_msg=k)
    # and by hand: dh_t/dh_{t-1} = 1/2 + 1/2 + 0.01 + 0 (maximum, minimum, leaky_relu, relu)
    np.testing.assert_allclose(dstate0["h"], sum(dys[t] * 1.01 ** (t + 1) for t in range(T)), rtol=1e-14)


#: how each new function is typeset (default notation), and its derivative helpers
RENDERINGS = [
    r"\operatorname{softplus}\left(",
    r"\log\sigma\left(",
    r"\operatorname{SiLU}\left(",
    r"\operatorname{GELU}\left(",
    r"\sin\left(",
    r"\cos\left(",
    r"\log\left(1 + \mathbf{a}_t\right)",
    r"\sqrt{1 + \operatorname{softplus}\left(",
    r"\left(1 - \exp\left(-\mathbf{a}_t\right)\right)",  # softplus' from its output
    r"\left(1 - \exp\left(\mathbf{s}_t\right)\right)",  # logsigmoid' from its output
    r"\operatorname{SiLU}'\left(",
    r"\operatorname{GELU}'\left(",
    r"\max\left(\mathbf{c}_{t-1}, \tanh\left(\mathbf{u}_t\right)\right)",
    r"\min\left(\left\lvert \mathbf{c}_{t-1} \right\rvert, \sigma\left(\mathbf{u}_t\right)\right)",
    r"\operatorname{ELU}\left(",
    r"\operatorname{LeakyReLU}\left(",
    # in what c_t's adjoint receives from step t + 1: abs', maximum's partial and its tie
    r"\operatorname{sgn}\left(\mathbf{c}_t\right)",
    r"\mathbb{1}\left[\mathbf{c}_t > \tanh\left(\mathbf{u}_{t+1}\right)\right]",
    r"\tfrac{1}{2}\,\mathbb{1}\left[\mathbf{c}_t = \tanh\left(\mathbf{u}_{t+1}\right)\right]",
]


def test_latex_typesets_every_function_and_compiles(tmp_path):
    texts = {name: latex_document(derive(symlstm.parse_spec(text))) for name, text in SPECS.items()}
    for rendering in RENDERINGS:
        assert any(rendering in text for text in texts.values()), rendering
    require_pdflatex()
    for name, text in texts.items():
        (tmp_path / f"{name}.tex").write_text(text)
        pdflatex(tmp_path / f"{name}.tex")


def test_the_diagram_draws_both_arguments_of_maximum_and_minimum():
    dot = diagram_dot(symlstm.parse_spec(SPECS["kinks"]))
    for label in ("max", "min"):
        boxes = re.findall(rf'"(\w+)" \[label=<{label}>, shape="box"', dot)
        assert len(boxes) == 2, label
        for box in boxes:
            assert len(re.findall(rf'-> "{box}";', dot)) == 2, (label, box)
