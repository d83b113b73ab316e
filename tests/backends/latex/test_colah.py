"""The ``colah`` notation (Olah, "Understanding LSTM Networks"): concatenated weights where the
spec's matrices pair up, the separate form where they do not, the author's order, every mode
compiled with pdflatex. The read-back test over every built-in is in ``test_notation.py``."""

# ruff: noqa: E501 (the expected LaTeX lines are easier to check whole)
import re

import pytest
from test_latex_layout import WIDER_THAN_THE_PAGE
from test_notation import _check_against_kernels

import symlstm
from conftest import pdflatex
from symlstm.backends.latex.concat import pairs
from symlstm.backends.latex.document import latex_document, latex_equations
from symlstm.backends.latex.notation import NotationError, load_notation
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main


def colah(cell: str) -> str:
    return latex_equations(derive(builtin_spec(cell)), notation="colah")


def test_cli_prints_the_lstm_as_the_blog_writes_it(capsys):
    assert main(["latex", "lstm", "--notation", "colah"]) == 0
    out = capsys.readouterr().out
    for line in (
        r"\bar{f}_t &= W_{f} \cdot [h_{t-1}, x_t] + b_{f}",
        r"\bar{\tilde{C}}_t &= W_{C} \cdot [h_{t-1}, x_t] + b_{C}",
        r"\tilde{C}_t &= \tanh\left(\bar{\tilde{C}}_t\right)",
        # the spec's order of terms and factors; * is the pointwise product, as in the blog
        r"C_t &= f_t * C_{t-1} + i_t * \tilde{C}_t",
        r"h_t &= o_t * \tanh\left(C_t\right)",
        # the backward and the input gradient use the blocks W_{k,h}, W_{k,x}
        r"\delta h_t &= \Delta_t + W_{i,h}^{\top} \cdot \delta \bar{i}_{t+1} + W_{f,h}^{\top} \cdot \delta \bar{f}_{t+1}",
        r"\delta x_t &= W_{i,x}^{\top} \cdot \delta \bar{i}_t + W_{f,x}^{\top} \cdot \delta \bar{f}_t",
        # one compact line: the concatenated matrix's gradient is one outer product with [h, x]
        r"\delta W_{k} &= \sum_{t=1}^{T} \delta \bar{k}_t\, [h_{t-1}, x_t]^{\top},\quad \delta b_{k} = \sum_{t=1}^{T} \delta \bar{k}_t \qquad \left(k \in \{i, f, C, o\}\right)",
    ):
        assert line in out, line
    assert r"\odot" not in out and "R_" not in out


def test_long_gives_one_sum_per_concatenated_matrix(capsys):
    assert main(["latex", "lstm", "--notation", "colah", "--long"]) == 0
    out = capsys.readouterr().out
    assert r"\delta W_{f} &= \sum_{t=1}^{T} \delta \bar{f}_t\, [h_{t-1}, x_t]^{\top}" in out
    assert len(re.findall(r"\\delta W_\{[ifCo]\} &=", out)) == 4 and r"k \in" not in out


def test_peephole_keeps_its_extra_term_next_to_the_concatenation():
    text = colah("peephole")
    assert r"\bar{i}_t &= W_{i} \cdot [h_{t-1}, x_t] + p_{i} * C_{t-1} + b_{i}" in text
    assert r"\bar{o}_t &= W_{o} \cdot [h_{t-1}, x_t] + p_{o} * C_t + b_{o}" in text


def test_gru_candidate_keeps_the_separate_form():
    """r and z pair; the candidate's R_n h_{t-1} sits inside r ⊙ (...), so it stays separate,
    written with the block names that say what each matrix multiplies."""
    text = colah("gru")
    assert r"\bar{r}_t &= W_{r} \cdot [h_{t-1}, x_t] + b_{r}" in text
    assert r"\bar{n}_t &= W_{n,x} \cdot x_t + b_{n} + r_t * \left(W_{n,h} \cdot h_{t-1} + b_{hn}\right)" in text
    assert (
        r"\delta W_{k} &= \sum_{t=1}^{T} \delta \bar{k}_t\, [h_{t-1}, x_t]^{\top} \qquad \left(k \in \{r, z\}\right)"
        in text
    )
    assert r"\delta W_{n,x} &= \sum_{t=1}^{T} \delta \bar{n}_t\, x_t^{\top}" in text
    assert r"W_{n}" not in text  # no concatenated W_n: it would claim to act on [h_{t-1}, x_t]


@pytest.mark.parametrize(
    "cell, paired, separate",
    [
        ("lstm", "ifgo", ""),
        ("gru", "rz", r"W_{n,x} \cdot x_t"),
        ("lstmp", "ifgo", r"h_t &= W_{hr} \cdot m_t"),  # the projection has no partner
        ("sru", "", r"\bar{f}_t &= W_{f,x} \cdot x_t + v_{f} * C_{t-1}"),  # gates with only W x
        ("mgu", "f", r"R_{n} \cdot"),  # R_n (f ⊙ h_{t-1}): a composite operand
        ("indrnn", "", r"W_{h,x} \cdot x_t + u * h_{t-1}"),  # a diagonal recurrence, not a matrix
        ("fgr", "ifgo", r"R_{ii} \cdot i_{t-1}"),  # the gate-to-gate matrices stay as they are
    ],
)
def test_matrices_pair_only_where_the_ir_says_so(cell, paired, separate):
    d = derive(builtin_spec(cell))
    assert "".join(p.member for p in pairs(d)) == paired
    assert separate in latex_equations(d, notation="colah")


def test_the_pairing_is_structural_not_by_name():
    """Matrices called A and U still pair (they are the input and the recurrent product of one
    sum); two products of h_{t-1} in one sum do not."""
    spec = parse_spec(
        'name = "u"\nstate = ["h"]\n[equations]\n'
        'a = "sigmoid(A_a @ x + U_a @ h_prev)"\n'
        'e = "tanh(A_e @ x + U_e @ h_prev + V_e @ h_prev)"\n'
        'h = "a * e"\n'
    )
    text = latex_equations(derive(spec), notation="colah")
    assert r"\bar{a}_t &= W_{a} \cdot [h_{t-1}, x_t]" in text
    assert r"\bar{e}_t &= W_{e,x} \cdot x_t + U_{e} \cdot h_{t-1} + V_{e} \cdot h_{t-1}" in text


def test_the_legend_names_the_blocks():
    text = latex_document(derive(builtin_spec("lstm")), "colah")
    assert r"$*$ is the pointwise (elementwise) product" in text
    assert r"$W_{f} = [W_{f,h}, W_{f,x}]$" in text
    assert r"$W_{i} \cdot [h_{t-1}, x_t] = W_{i,h} \cdot h_{t-1} + W_{i,x} \cdot x_t$" in text


def test_a_user_preset_concatenates_in_its_own_order(tmp_path):
    """[x_t, h_{t-1}] instead of the blog's order: the reader cuts the gradient the other way."""
    path = tmp_path / "xfirst.toml"
    path.write_text("name = 'xfirst'\nextends = 'pytorch'\n[style]\nconcat = '[<x>, <h>]'\nblock = 'W_{<k><part>}'\n")
    text = latex_document(derive(builtin_spec("lstm")), load_notation(path))
    assert r"\bar{i}_t &= \mathbf{W}_{i} [x_t, h_{t-1}] + b_{i}" in text
    assert r"$\mathbf{W}_{i} = [W_{ix}, W_{ih}]$" in text
    _check_against_kernels("lstm", load_notation(path))


def test_a_concat_template_must_place_both_vectors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[style]\nconcat = '[<h>]'\n")
    with pytest.raises(NotationError, match="must contain <x>"):
        load_notation(path)


def test_reader_catches_a_wrong_concatenated_matrix(monkeypatch):
    """The tie is not vacuous in this notation: W_f where W_i stands fails it."""
    import latex_reader

    honest = latex_reader.forward_lines

    def wrong(d, n):
        return [line.replace(r"\bar{i}_t &= W_{i}", r"\bar{i}_t &= W_{f}") for line in honest(d, n)]

    assert any(r"\bar{i}_t &= W_{i}" in line for line in honest(derive(builtin_spec("lstm")), "colah"))
    monkeypatch.setattr(latex_reader, "forward_lines", wrong)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        _check_against_kernels("lstm", "colah")


MODES = {"default": [], "long": ["--long"], "numbered": ["--numbered"], "steps": ["--steps"]}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru"])
def test_colah_compiles_in_every_mode_without_overfull_lines(cell, mode, tmp_path):
    tex = tmp_path / f"{cell}.tex"
    assert main(["latex", cell, "--standalone", "--notation", "colah", "-o", str(tex), *MODES[mode]]) == 0
    pdflatex(tex)
    log = (tmp_path / f"{cell}.log").read_text(errors="replace")
    assert "Overfull" not in log, log[log.index("Overfull") :][:300]
    if mode == "numbered":
        aux = (tmp_path / f"{cell}.aux").read_text()
        assert rf"\newlabel{{symlstm:{cell}:h}}" in aux and rf"\newlabel{{symlstm:{cell}:dW-R_" in aux


@pytest.mark.parametrize("cell", sorted(set(symlstm.variants()) - WIDER_THAN_THE_PAGE))
def test_no_built_in_runs_into_the_margin_in_colah(cell, tmp_path):
    tex = tmp_path / f"{cell}.tex"
    tex.write_text(latex_document(derive(builtin_spec(cell)), "colah"))
    pdflatex(tex)
    assert "Overfull" not in (tmp_path / f"{cell}.log").read_text(errors="replace")
