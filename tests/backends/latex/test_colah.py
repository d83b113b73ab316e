"""The ``colah`` notation (Olah, "Understanding LSTM Networks"): concatenated weights where the
spec's matrices pair up, the separate form where they do not, the author's order, every mode
compiled with pdflatex. The read-back test over every built-in is in ``test_notation.py``."""

# ruff: noqa: E501 (the expected LaTeX lines are easier to check whole)
import dataclasses
import re

import pytest
import sympy
from test_latex_layout import WIDER_THAN_THE_PAGE
from test_notation import _check_against_kernels

import symlstm
from conftest import pdflatex
from symlstm.backends.latex.concat import pairs
from symlstm.backends.latex.document import latex_document, latex_equations
from symlstm.backends.latex.equations import check_unambiguous, forward_lines
from symlstm.backends.latex.fold import folded_forward, folds
from symlstm.backends.latex.notation import NotationError, load_notation, preset_names
from symlstm.backends.latex.printer import VectorLatexPrinter
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.ir.nodes import Assignment, Kind, Quantity
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main


def colah(cell: str) -> str:
    return latex_equations(derive(builtin_spec(cell)), notation="colah")


def test_cli_prints_the_lstm_as_the_blog_writes_it(capsys):
    assert main(["latex", "lstm", "--notation", "colah"]) == 0
    out = capsys.readouterr().out
    for line in (
        # one line per gate: the pre-activation inside its activation
        r"f_t &= \sigma\left(W_{f} \cdot [h_{t-1}, x_t] + b_{f}\right) \\",
        r"\tilde{C}_t &= \tanh\left(W_{C} \cdot [h_{t-1}, x_t] + b_{C}\right) \\",
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
    assert "\n\\bar{f}_t &=" not in out and r"\sigma\left(\bar" not in out  # no pre-activation line


def test_long_gives_one_sum_per_concatenated_matrix(capsys):
    assert main(["latex", "lstm", "--notation", "colah", "--long"]) == 0
    out = capsys.readouterr().out
    assert r"\delta W_{f} &= \sum_{t=1}^{T} \delta \bar{f}_t\, [h_{t-1}, x_t]^{\top}" in out
    assert len(re.findall(r"\\delta W_\{[ifCo]\} &=", out)) == 4 and r"k \in" not in out


def test_peephole_keeps_its_extra_term_next_to_the_concatenation():
    text = colah("peephole")
    assert r"i_t &= \sigma\left(W_{i} \cdot [h_{t-1}, x_t] + p_{i} * C_{t-1} + b_{i}\right)" in text
    assert r"o_t &= \sigma\left(W_{o} \cdot [h_{t-1}, x_t] + p_{o} * C_t + b_{o}\right)" in text


def test_gru_candidate_keeps_the_separate_form():
    """r and z pair; the candidate's R_n h_{t-1} sits inside r ⊙ (...), so it stays separate,
    written with the block names that say what each matrix multiplies."""
    text = colah("gru")
    assert r"r_t &= \sigma\left(W_{r} \cdot [h_{t-1}, x_t] + b_{r}\right)" in text
    # the reset product folds with the rest of the candidate's pre-activation
    assert (
        r"n_t &= \tanh\left(W_{n,x} \cdot x_t + b_{n} + r_t * \left(W_{n,h} \cdot h_{t-1} + b_{hn}\right)\right)"
        in text
    )
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
        ("sru", "", r"f_t &= \sigma\left(W_{f,x} \cdot x_t + v_{f} * C_{t-1}"),  # gates with only W x
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
    assert r"a_t &= \sigma\left(W_{a} \cdot [h_{t-1}, x_t]\right)" in text
    assert r"e_t &= \tanh\left(W_{e,x} \cdot x_t + U_{e} \cdot h_{t-1} + V_{e} \cdot h_{t-1}\right)" in text


def test_the_legend_names_the_blocks():
    text = latex_document(derive(builtin_spec("lstm")), "colah")
    assert r"$*$ is the pointwise (elementwise) product" in text
    assert r"$W_{f} = [W_{f,h}, W_{f,x}]$" in text
    assert r"$W_{i} \cdot [h_{t-1}, x_t] = W_{i,h} \cdot h_{t-1} + W_{i,x} \cdot x_t$" in text


def test_the_legend_says_what_each_folded_bar_is():
    """The backward lines name the pre-activations the forward lines fold: the legend defines
    them, cell by cell, grouped by activation."""
    text = latex_document(derive(builtin_spec("lstm")), "colah")
    assert (
        r"$\bar{i}_t$, $\bar{f}_t$ and $\bar{o}_t$ are the arguments of $\sigma\left(\cdot\right)$ in the lines "
        r"of $i_t$, $f_t$ and $o_t$; $\bar{\tilde{C}}_t$ is the argument of $\tanh\left(\cdot\right)$ in the line "
        r"of $\tilde{C}_t$." in text
    )
    layer_norm = latex_document(derive(builtin_spec("lnlstm")), "colah")
    assert r"are the arguments of $\sqrt{\cdot}$ in the lines of $s_{a,t}$, $s_{r,t}$ and $s_{c,t}$" in layer_norm
    assert r"s_{a,t} &= \sqrt{10^{-5} + " in layer_norm


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole", "lstmp", "lnlstm", "slstm", "sru", "mgu"])
def test_every_pre_activation_a_cell_has_folds_in_colah(cell):
    """Every built-in's pre-activations are used only as their activation's argument: none has a
    line of its own in colah, each is named in the legend; in the default preset each has one."""
    d = derive(builtin_spec(cell))
    preacts = [name for name, q in d.quantities.items() if q.kind == Kind.PREACT]
    assert set(folds(d)) == {d.quantities[name].base for name in preacts}
    n = check_unambiguous(d, "colah")
    bars = [VectorLatexPrinter(d, notation=n).symbol_latex(name) for name in preacts]
    lines = forward_lines(d, n)
    for bar in bars:
        assert not any(line.startswith(bar + " &=") for line in lines), bar
        assert f"${bar}$" in n.legend_text(), bar
    default = forward_lines(d)
    assert len(default) == len(lines) + len(preacts)


def test_slstm_keeps_its_stabiliser_and_exponential_gates_in_one_line_each():
    text = colah("slstm")
    assert r"m_t &= \max\left(\log\sigma\left(f_{\mathrm{pre},t}\right) + m_{t-1}, i_{\mathrm{pre},t}\right)" in text
    assert r"i_t &= \exp\left(i_{\mathrm{pre},t} - m_t\right)" in text
    assert r"f_t &= \exp\left(\log\sigma\left(f_{\mathrm{pre},t}\right) + m_{t-1} - m_t\right)" in text


def test_a_value_without_activation_keeps_its_line_and_the_legend_its_silence():
    """niaf's block input has no activation (no pre-activation to fold); a cell without any
    pre-activation gets no sentence on them."""
    assert r"\tilde{C}_t &= W_{C} \cdot [h_{t-1}, x_t] + b_{C} \\" in colah("niaf")
    spec = parse_spec('name = "linear"\nstate = ["h"]\n[equations]\nh = "A @ x + U @ h_prev"\n')
    n = check_unambiguous(derive(spec), "colah")
    assert "pre-activation inside its activation" not in n.legend_text()
    assert forward_lines(derive(spec), n) == [r"h_t &= W_{h} \cdot [h_{t-1}, x_t]"]


def test_a_pre_activation_used_elsewhere_keeps_its_line():
    """The rule asks the IR: a forward assignment that also reads f̄ (none a spec can write today:
    the lowering names pre-activations itself) keeps f̄ on a line of its own."""
    d = derive(builtin_spec("lstm"))
    f_bar = next(a for a in d.forward if a.name == "f_bar").target
    extra = Assignment(sympy.Symbol("e"), 2 * f_bar)
    quantities = {**d.quantities, "e": Quantity(Kind.VALUE, "e", d.quantities["f"].size)}
    used = dataclasses.replace(d, forward=(*d.forward, extra), quantities=quantities)
    assert set(folds(d)) == {"i", "f", "g", "o"}
    assert set(folds(used)) == {"i", "g", "o"}
    names = [a.name for a in folded_forward(used)]
    assert "f_bar" in names and "i_bar" not in names


def test_the_fold_is_off_in_the_other_presets():
    assert load_notation("colah").fold_preactivations
    for preset in set(preset_names()) - {"colah"}:
        assert not load_notation(preset).fold_preactivations, preset
    text = latex_document(derive(builtin_spec("lstm")))
    assert r"\bar{\mathbf{f}}_t &= \mathbf{W}_{f} \mathbf{x}_t" in text
    assert r"\mathbf{f}_t &= \sigma\left(\bar{\mathbf{f}}_t\right)" in text
    assert "pre-activation inside its activation" not in text


def test_a_user_preset_folds_too(tmp_path):
    """Any preset may switch the fold on; the read-back binds each bar to its activation's
    argument, so the numbers still match the kernels'."""
    path = tmp_path / "folded.toml"
    path.write_text("name = 'folded'\nextends = 'greff'\n[style]\nfold_preactivations = true\n")
    d = derive(builtin_spec("peephole"))
    text = latex_document(d, load_notation(path))
    assert (
        r"\mathbf{f}^t &= \sigma\left(\mathbf{W}_{f} \mathbf{x}^t + \mathbf{R}_{f} \mathbf{y}^{t-1} "
        r"+ \mathbf{p}_{f} \odot \mathbf{c}^{t-1} + \mathbf{b}_{f}\right)" in text
    )
    assert r"$\bar{\mathbf{f}}^t$" in text and "\n\\bar{\\mathbf{f}}^t &=" not in text
    _check_against_kernels("peephole", load_notation(path))


def test_the_reader_needs_the_folded_bar_where_the_backward_uses_its_value(tmp_path, monkeypatch):
    """sin's derivative is written in its input, cos(h̄_t): the backward line uses the folded bar's
    value, which only the legend's reading (the argument of sin in h_t's line) gives."""
    import latex_reader

    path = tmp_path / "sine.toml"
    path.write_text('name = "sine"\nstate = ["h"]\n[equations]\nh = "sin(W_h @ x + R_h @ h_prev + b_h)"\n')
    lines = latex_equations(derive(parse_spec(path.read_text())), notation="colah")
    assert r"h_t &= \sin\left(W_{h} \cdot [h_{t-1}, x_t] + b_{h}\right)" in lines
    assert r"\cos\left(\bar{h}_t\right)" in lines
    _check_against_kernels(str(path), "colah")
    monkeypatch.setattr(latex_reader.Reader, "bind_folded_preactivations", lambda self, fwd: fwd)
    with pytest.raises(latex_reader.ReadError, match="used before it is computed"):
        _check_against_kernels(str(path), "colah")


def test_a_user_preset_concatenates_in_its_own_order(tmp_path):
    """[x_t, h_{t-1}] instead of the blog's order: the reader cuts the gradient the other way."""
    path = tmp_path / "xfirst.toml"
    path.write_text("name = 'xfirst'\nextends = 'pytorch'\n[style]\nconcat = '[<x>, <h>]'\nblock = 'W_{<k><part>}'\n")
    text = latex_document(derive(builtin_spec("lstm")), load_notation(path))
    assert r"\bar{i}_t &= \mathbf{W}_{i} [x_t, h_{t-1}] + b_{i}" in text  # pytorch's own lines: not folded
    assert r"$\mathbf{W}_{i} = [W_{ix}, W_{ih}]$" in text
    _check_against_kernels("lstm", load_notation(path))


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ("fold_preactivations = 'yes'", "fold_preactivations must be true or false"),
        ("concat = '[<h>]'", "must contain <x>"),  # a concat template must place both vectors
    ],
)
def test_bad_colah_style_keys_are_named(tmp_path, style, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"[style]\n{style}\n")
    with pytest.raises(NotationError, match=message):
        load_notation(path)


def test_reader_catches_a_wrong_concatenated_matrix(monkeypatch):
    """The tie is not vacuous in this notation: W_f where W_i stands fails it."""
    import latex_reader

    honest = latex_reader.forward_lines

    def wrong(d, n):
        return [line.replace(r"i_t &= \sigma\left(W_{i}", r"i_t &= \sigma\left(W_{f}") for line in honest(d, n)]

    assert any(r"i_t &= \sigma\left(W_{i}" in line for line in honest(derive(builtin_spec("lstm")), "colah"))
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
