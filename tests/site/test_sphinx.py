"""The Sphinx directive: build a tiny project and read the HTML it writes."""

import html
import re

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install '.[docs]')")
from sphinx.cmd.build import build_main  # noqa: E402

from symlstm.backends.latex.document import Layout, layout_backward_rows, layout_gradient_rows  # noqa: E402
from symlstm.backends.latex.equations import backward_lines, forward_lines, gradient_lines  # noqa: E402
from symlstm.backends.latex.notation import load_notation  # noqa: E402
from symlstm.cells import builtin_spec  # noqa: E402
from symlstm.ir.derive import derive  # noqa: E402

PAGE = """Cells
=====

The peephole cell
-----------------

.. symlstm:: peephole
   :backward:

In PyTorch's notation
---------------------

.. symlstm:: lstm
   :notation: pytorch

A cell of my own
----------------

.. symlstm:: mgu.toml
"""

MGU = """name = "mgu"
state = ["h"]
[equations]
f = "sigmoid(W_f @ x + R_f @ h_prev + b_f)"
n = "tanh(W_n @ x + R_n @ (f * h_prev) + b_n)"
h = "(1 - f) * h_prev + f * n"
"""


def build(tmp_path, page, conf="extensions = ['symlstm.site.sphinx']\n"):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "conf.py").write_text("project = 'cells'\n" + conf)
    (src / "index.rst").write_text(page)
    (src / "mgu.toml").write_text(MGU)
    status = build_main(
        ["-b", "html", "-q", "-W", "--keep-going", "-d", str(tmp_path / "doctrees"), str(src), str(out)]
    )
    return status, out


def math_blocks(text):
    """The display math of an HTML page, decoded (MathJax's \\[ ... \\] delimiters)."""
    return [html.unescape(m) for m in re.findall(r'<div class="[^"]*math[^"]*">\s*\\\[(.*?)\\\]\s*</div>', text, re.S)]


def test_directive_inserts_the_printed_equations(tmp_path):
    status, out = build(tmp_path, PAGE)
    assert status == 0
    text = (out / "index.html").read_text()
    blocks = math_blocks(text)
    assert len(blocks) == 3 + 1 + 1, blocks
    peephole = derive(builtin_spec("peephole"))
    compact = [row.latex() for row in layout_gradient_rows(peephole, load_notation(None), Layout()).values()]
    assert len(compact) < len(gradient_lines(peephole))  # as symlstm latex prints them: compact
    for block, lines in zip(blocks[:3], (forward_lines(peephole), backward_lines(peephole), compact)):
        assert block == r"\begin{split}" + " \\\\\n".join(lines) + r"\end{split}"
    assert "Backward pass through time" in text and "Gradients" in text
    assert r"\bar{i}_t &= W_{ii} x_t + W_{hi} h_{t-1} + b_{i}" in blocks[3]
    assert (
        r"\mathbf{h}_t &= \left(1 - \mathbf{f}_t\right) \odot \mathbf{h}_{t-1} + \mathbf{f}_t \odot \mathbf{n}_t"
        in blocks[4]
    )
    assert "mathjax" in text.lower()  # Sphinx's default HTML math renderer is wired in


def test_default_notation_from_conf(tmp_path):
    status, out = build(
        tmp_path, ".. symlstm:: peephole\n", "extensions = ['symlstm.site.sphinx']\nsymlstm_notation = 'greff'\n"
    )
    assert status == 0
    (block,) = math_blocks((out / "index.html").read_text())
    assert r"\mathbf{y}^t &= \mathbf{o}^t \odot \tanh\left(\mathbf{c}^t\right)" in block


def test_unknown_cell_is_a_sphinx_error(tmp_path, capsys):
    status, _ = build(tmp_path, ".. symlstm:: nosuchcell\n")
    assert status != 0
    assert "symlstm: unknown cell 'nosuchcell'" in capsys.readouterr().err


def test_long_and_steps_options(tmp_path):
    page = "Cells\n=====\n\n.. symlstm:: gru\n   :backward:\n   :long:\n   :steps:\n"
    status, out = build(tmp_path, page)
    assert status == 0
    blocks = math_blocks((out / "index.html").read_text())
    gru, notation = derive(builtin_spec("gru")), load_notation(None)
    layout = Layout(long=True, steps=True)
    steps = [row.latex() for row in layout_backward_rows(gru, notation, layout).values()]
    assert len(steps) > len(backward_lines(gru))  # the chain rule before each simplified line
    assert blocks[1:] == [
        r"\begin{split}" + " \\\\\n".join(lines) + r"\end{split}" for lines in (steps, gradient_lines(gru))
    ]
