"""How the equations are laid out: the spec's term order, the backward's stated order, compact
gradients (``--long`` for one sum per parameter), numbered equations, line breaks, and the
documents of each mode compiled with pdflatex."""

# ruff: noqa: E501 (the expected LaTeX lines are easier to check whole)
import os
import re
import subprocess
import sys

import pytest

import symlstm
from conftest import pdflatex
from symlstm.backends.latex.compact import compact_gradient_rows
from symlstm.backends.latex.document import Layout, latex_document, latex_equations
from symlstm.backends.latex.equations import backward_lines, forward_lines, gradient_rows, sum_lines
from symlstm.backends.latex.width import LINE_GLYPHS, glyphs
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main


def derived(name):
    return derive(builtin_spec(name))


# -- term order ------------------------------------------------------------------------------------


def test_cli_prints_the_lstm_as_its_spec_writes_it(capsys):
    assert main(["latex", "lstm"]) == 0
    out = capsys.readouterr().out
    assert r"\mathbf{c}_t &= \mathbf{f}_t \odot \mathbf{c}_{t-1} + \mathbf{i}_t \odot \mathbf{g}_t" in out
    assert r"\mathbf{h}_t &= \mathbf{o}_t \odot \tanh\left(\mathbf{c}_t\right)" in out


@pytest.mark.parametrize(
    "cell, line",
    [
        (
            "gru",
            r"\mathbf{h}_t &= \left(1 - \mathbf{z}_t\right) \odot \mathbf{n}_t + \mathbf{z}_t \odot \mathbf{h}_{t-1}",
        ),
        (
            "gru",
            r"&= \mathbf{W}_{n} \mathbf{x}_t + \mathbf{b}_{n} + \mathbf{r}_t \odot \left(\mathbf{R}_{n} \mathbf{h}",
        ),
        # 1 - f finds its own f, not the first f of the text; the product after a ⊙ is bracketed
        (
            "sru",
            r"&= \mathbf{f}_t \odot \mathbf{c}_{t-1} + \left(1 - \mathbf{f}_t\right) \odot \left(\mathbf{W} \mathbf{x}_t\right)",
        ),
        (
            "peephole",
            r"&= \mathbf{W}_{i} \mathbf{x}_t + \mathbf{R}_{i} \mathbf{h}_{t-1} + \mathbf{p}_{i} \odot \mathbf{c}_{t-1}",
        ),
        ("slstm", r"\mathbf{h}_t &= \frac{\mathbf{o}_t \odot \mathbf{c}_t}{\mathbf{n}_t}"),
    ],
)
def test_forward_lines_keep_the_order_of_the_spec(cell, line):
    assert any(line in text for text in forward_lines(derived(cell)))


def test_a_user_spec_written_in_another_order_prints_in_that_order():
    spec = parse_spec(
        'name = "mine"\nstate = ["h"]\n[equations]\n'
        'a = "sigmoid(b_a + R_a @ h_prev + W_a @ x)"\nh = "tanh(h_prev * a + x * 2)"\n'
    )
    lines = forward_lines(derive(spec))
    assert (
        r"\bar{\mathbf{a}}_t &= \mathbf{b}_{a} + \mathbf{R}_{a} \mathbf{h}_{t-1} + \mathbf{W}_{a} \mathbf{x}_t" in lines
    )
    # a number multiplies from the left, as in print: x * 2 is 2 x
    assert r"\bar{\mathbf{h}}_t &= \mathbf{h}_{t-1} \odot \mathbf{a}_t + 2 \mathbf{x}_t" in lines


@pytest.mark.parametrize(
    "cell, line",
    [
        # the incoming adjoint, the partial of the forward expression, the activation's derivative
        (
            "lstm",
            r"\delta \bar{\mathbf{i}}_t &= \delta \mathbf{c}_t \odot \mathbf{g}_t \odot \mathbf{i}_t \odot \left(1 - \mathbf{i}_t\right)",
        ),
        (
            "lstm",
            r"\delta \bar{\mathbf{o}}_t &= \delta \mathbf{h}_t \odot \tanh\left(\mathbf{c}_t\right) \odot \mathbf{o}_t \odot \left(1 - \mathbf{o}_t\right)",
        ),
        (
            "lstm",
            r"\delta \bar{\mathbf{g}}_t &= \delta \mathbf{c}_t \odot \mathbf{i}_t \odot \left(1 - \mathbf{g}_t^{2}\right)",
        ),
        (
            "gru",
            r"\delta \bar{\mathbf{z}}_t &= \delta \mathbf{h}_t \odot \left(\mathbf{h}_{t-1} - \mathbf{n}_t\right) \odot \mathbf{z}_t \odot \left(1 - \mathbf{z}_t\right)",
        ),
        (
            "slstm",
            r"\delta \bar{\mathbf{i}}_t &= \left(\delta \mathbf{c}_t \odot \mathbf{z}_t + \delta \mathbf{n}_t\right) \odot \mathbf{i}_t",
        ),
    ],
)
def test_backward_lines_follow_the_stated_order(cell, line):
    assert line in backward_lines(derived(cell))


def test_the_order_does_not_depend_on_names():
    """The rule is structural: an LSTM whose gates are called u (input) and a (block input),
    so that SymPy's alphabetical order would differ, reads the same way."""
    spec = parse_spec(
        'name = "renamed"\nstate = ["h", "c"]\n[equations]\n'
        'u = "sigmoid(W_u @ x + R_u @ h_prev + b_u)"\nf = "sigmoid(W_f @ x + R_f @ h_prev + b_f)"\n'
        'a = "tanh(W_a @ x + R_a @ h_prev + b_a)"\no = "sigmoid(W_o @ x + R_o @ h_prev + b_o)"\n'
        'c = "f * c_prev + u * a"\nh = "o * tanh(c)"\n'
    )
    lines = backward_lines(derive(spec))
    assert (
        r"\delta \bar{\mathbf{u}}_t &= \delta \mathbf{c}_t \odot \mathbf{a}_t \odot \mathbf{u}_t \odot \left(1 - \mathbf{u}_t\right)"
        in lines
    )


def test_latex_is_the_same_under_any_hash_seed():
    def run(seed):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        return subprocess.run(
            [sys.executable, "-m", "symlstm", "latex", "gru", "--numbered"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert run("0") == run("4242")


# -- compact gradients ------------------------------------------------------------------------------


def test_lstm_gradients_are_one_line():
    text = latex_equations(derived("lstm"))
    assert (
        r"\delta \mathbf{W}_{k} &= \sum_{t=1}^{T} \delta \bar{\mathbf{k}}_t\, \mathbf{x}_t^{\top},\quad "
        r"\delta \mathbf{R}_{k} = \sum_{t=1}^{T} \delta \bar{\mathbf{k}}_t\, \mathbf{h}_{t-1}^{\top},\quad "
        r"\delta \mathbf{b}_{k} = \sum_{t=1}^{T} \delta \bar{\mathbf{k}}_t \qquad \left(k \in \{i, f, g, o\}\right)"
    ) in text
    assert r"\delta \mathbf{W}_{i}" not in text


def test_long_gives_one_sum_per_parameter(capsys):
    assert main(["latex", "lstm", "--long"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"\\delta \\mathbf\{[WRb]\}_\{[ifgo]\} &= \\sum", out)) == 12
    assert r"k \in" not in out


@pytest.mark.parametrize(
    "cell, members",
    [("lstm", {"W_R_b_ifgo": 4}), ("peephole", {"W_R_b_ifgo": 4, "p_if": 2}), ("gru", {"W_b_rzn": 3, "R_rz": 2})],
)
def test_rows_sharing_a_pattern_are_grouped_and_the_rest_stay_long(cell, members):
    d = derived(cell)
    rows = compact_gradient_rows(d)
    assert set(members) <= set(rows)
    long = gradient_rows(d)
    folded = sum(key.count("_") * count for key, count in members.items())  # bases x members
    assert len(rows) == len(long) - folded + len(members)


def test_a_cell_without_a_shared_pattern_keeps_the_long_form():
    d = derived("rnn")  # W, R, b: no member index to share
    assert compact_gradient_rows(d) == gradient_rows(d)


@pytest.mark.parametrize("preset", ["symlstm", "greff"])
@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "fgr", "slstm"])
def test_a_compact_row_is_its_long_rows_with_the_index_written_out(cell, preset):
    """Replacing k by each member in the text of a folded row gives exactly the long rows."""
    d = derived(cell)
    long = {row.latex() for row in gradient_rows(d, preset).values()}
    for key, row in compact_gradient_rows(d, preset).items():
        if key in gradient_rows(d, preset):
            continue
        text = row.latex()
        body, members = re.fullmatch(r"(.*) \\qquad \\left\(k \\in \\\{(.*)\\\}\\right\)", text).groups()
        lhs, rhs = body.split(" &= ")
        equations = [lhs + " = " + rhs.split(r",\quad ")[0]] + rhs.split(r",\quad ")[1:]
        for member in members.split(", "):
            for equation in equations:
                left, right = equation.split(" = ", 1)
                expanded = f"{left} &= {right}".replace("_{k}", f"_{{{member}}}").replace(
                    r"\mathbf{k}", rf"\mathbf{{{member}}}"
                )
                assert expanded in long


# -- numbered ------------------------------------------------------------------------------------------


def test_numbered_equations_carry_one_label_each(capsys):
    assert main(["latex", "peephole", "--numbered"]) == 0
    out = capsys.readouterr().out
    assert r"\begin{align*}" not in out and out.count(r"\begin{align}") == 3
    rows = [line for line in out.splitlines() if "&=" in line]
    labels = re.findall(r"\\label\{(symlstm:peephole:[^}]*)\}", out)
    assert len(labels) == len(rows) == len(set(labels))
    assert {"symlstm:peephole:c", "symlstm:peephole:d_c", "symlstm:peephole:dW_R_b_ifgo"} <= set(labels)
    # a row continued on a second line is numbered once, on its last line
    assert all(r"\notag \\ &\qquad" in row for row in rows if r"\\ &\qquad" in row)


def test_the_preamble_loads_only_what_is_used():
    assert r"\usepackage{amsmath}" + "\n" in latex_document(derived("lstm"))  # no \mathbb: no amssymb
    assert r"\usepackage{amsmath,amssymb}" in latex_document(derived("lstm_relu"))  # its indicator 1[...]


# -- line breaks ---------------------------------------------------------------------------------------


def test_a_long_product_breaks_before_a_factor_and_a_long_sum_inside_its_parentheses():
    wide = r"\delta \mathbf{m}_t \odot \left(" + " + ".join([r"\mathbf{a}_{t} \odot \mathbf{b}_{t}"] * 12) + r"\right)"
    lines = sum_lines(
        ["+ " + wide, r"+ \mathbf{c}_t \odot " + r" \odot ".join([r"\tanh\left(\mathbf{c}_t\right)"] * 9)]
    )
    assert len(lines) > 2 and all(glyphs(line) <= LINE_GLYPHS for line in lines)
    assert lines[0].endswith(r"\right.") and lines[1].startswith(r"\left.")
    assert any(line.startswith(r"\odot") for line in lines)


# -- steps -----------------------------------------------------------------------------------------------


def test_steps_show_the_chain_rule_the_partials_and_the_result(capsys):
    assert main(["latex", "lstm", "--steps"]) == 0
    out = capsys.readouterr().out
    chain = (
        r"\delta \mathbf{c}_t &= \delta \mathbf{h}_t \odot \frac{\partial \mathbf{h}_t}{\partial \mathbf{c}_t}"
        r" + \delta \mathbf{c}_{t+1} \odot \frac{\partial \mathbf{c}_{t+1}}{\partial \mathbf{c}_t}"
    )
    partials = (
        r"\frac{\partial \mathbf{h}_t}{\partial \mathbf{c}_t} &= \mathbf{o}_t \odot \left(1 - \tanh^{2}\left(\mathbf{c}_t\right)\right)"
        r",\quad \frac{\partial \mathbf{c}_{t+1}}{\partial \mathbf{c}_t} = \mathbf{f}_{t+1}"
    )
    result = r"\delta \mathbf{c}_t &= \delta \mathbf{h}_t \odot \mathbf{o}_t \odot"
    assert out.index(chain) < out.index(partials) < out.index(result)
    # a use through a product: the Jacobian's transpose, and the matrix as the partial
    assert (
        r"\left(\frac{\partial \bar{\mathbf{i}}_{t+1}}{\partial \mathbf{h}_t}\right)^{\top} \delta \bar{\mathbf{i}}_{t+1}"
        in out
    )
    assert r"\frac{\partial \bar{\mathbf{i}}_{t+1}}{\partial \mathbf{h}_t} &= \mathbf{R}_{i}" in out
    # the adjoint the derivation folds away (δi into δī) is derived too, before it is used
    assert out.index(
        r"\delta \mathbf{i}_t &= \delta \mathbf{c}_t \odot \frac{\partial \mathbf{c}_t}{\partial \mathbf{i}_t}"
    ) < out.index(
        r"\delta \bar{\mathbf{i}}_t &= \delta \mathbf{i}_t \odot \frac{\partial \mathbf{i}_t}{\partial \bar{\mathbf{i}}_t}"
    )


@pytest.mark.parametrize("cell", symlstm.variants())
def test_steps_work_for_every_built_in(cell):
    text = latex_equations(derived(cell), layout=Layout(steps=True, numbered=True))
    assert r"\partial" in text
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(set(labels))


# -- every mode, compiled and read -------------------------------------------------------------------


MODES = {"default": [], "long": ["--long"], "numbered": ["--numbered"], "steps": ["--steps"]}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru"])
def test_every_mode_compiles_without_overfull_lines(cell, mode, tmp_path):
    tex = tmp_path / f"{cell}.tex"
    assert main(["latex", cell, "--standalone", "-o", str(tex), *MODES[mode]]) == 0
    pdflatex(tex)
    log = (tmp_path / f"{cell}.log").read_text(errors="replace")
    assert "Overfull" not in log, log[log.index("Overfull") :][:300]
    if mode == "numbered":
        aux = (tmp_path / f"{cell}.aux").read_text()
        assert rf"\newlabel{{symlstm:{cell}:h}}" in aux


#: lnlstm's adjoint of a normaliser is a fraction of four fractions: a \frac cannot break
WIDER_THAN_THE_PAGE = {"lnlstm"}


@pytest.mark.parametrize("cell", sorted(set(symlstm.variants()) - WIDER_THAN_THE_PAGE))
def test_no_built_in_runs_into_the_margin(cell, tmp_path):
    tex = tmp_path / f"{cell}.tex"
    tex.write_text(latex_document(derived(cell), layout=Layout()))
    pdflatex(tex)
    assert "Overfull" not in (tmp_path / f"{cell}.log").read_text(errors="replace")
