"""LaTeX: vector notation, forward and backward lines, compiles with pdflatex."""

import pytest

from conftest import pdflatex, require_pdflatex
from symlstm.backends.latex.document import latex_document
from symlstm.backends.latex.equations import backward_lines
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main


def lines(name):
    return backward_lines(derive(builtin_spec(name)))


def test_peephole_backward_reads_like_greff():
    text = "\n".join(lines("peephole"))
    # Greff et al. 2017, vanilla LSTM: δō = δy ⊙ h(c) ⊙ σ'(ō), δī = δc ⊙ z ⊙ σ'(ī), etc.
    assert (
        r"\delta \bar{\mathbf{o}}_t &= \delta \mathbf{h}_t \odot \tanh\left(\mathbf{c}_t\right)"
        r" \odot \mathbf{o}_t \odot \left(1 - \mathbf{o}_t\right)"
    ) in text
    assert (
        r"\delta \bar{\mathbf{i}}_t &= \delta \mathbf{c}_t \odot \mathbf{g}_t \odot \mathbf{i}_t"
        r" \odot \left(1 - \mathbf{i}_t\right)"
    ) in text
    # δc receives the peepholes of step t+1 and the forget gate of step t+1
    for term in (
        r"\delta \mathbf{c}_{t+1} \odot \mathbf{f}_{t+1}",
        r"\delta \bar{\mathbf{f}}_{t+1} \odot \mathbf{p}_{f}",
        r"\delta \bar{\mathbf{i}}_{t+1} \odot \mathbf{p}_{i}",
        r"\delta \bar{\mathbf{o}}_t \odot \mathbf{p}_{o}",
    ):
        assert term in text
    assert r"\mathbf{R}_{o}^{\top} \delta \bar{\mathbf{o}}_{t+1}" in text


def test_lstm_has_no_peepholes():
    text = "\n".join(lines("lstm"))
    assert r"\mathbf{p}_" not in text
    assert r"\delta \mathbf{c}_{t+1} \odot \mathbf{f}_{t+1}" in text


@pytest.mark.parametrize("name", ["lstm", "peephole"])
def test_standalone_document_compiles(name, tmp_path):
    require_pdflatex()
    tex = tmp_path / f"{name}.tex"
    assert main(["latex", name, "--standalone", "-o", str(tex)]) == 0
    assert pdflatex(tex).stat().st_size > 10_000
    assert r"\delta \bar{\mathbf{i}}_t" in tex.read_text()


def test_fragment_on_stdout(capsys):
    assert main(["latex", "lstm"]) == 0
    out = capsys.readouterr().out
    assert out.count(r"\begin{align*}") == 3 and r"\documentclass" not in out


def test_title_with_tex_specials_is_escaped():
    spec = parse_spec(
        'name = "u"\ntitle = "50% of A_1 & {B} $x$"\nstate = ["h"]\n[equations]\nh = "tanh(W @ x + R @ h_prev)"\n'
    )
    text = latex_document(derive(spec))
    assert r"50\% of A\_1 \& \{B\} \$x\$" in text
