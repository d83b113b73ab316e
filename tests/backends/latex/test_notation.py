"""Notation presets: golden LaTeX, pdflatex, user presets, and the typeset text tied to the kernels.

The strongest test here reads the printed equations back (``latex_reader``), runs them with NumPy
and compares every number with the Numba kernels: outputs, final states, the input gradient, every
parameter gradient and the initial-state gradients. It runs for every built-in cell in the
default notation and for several cells in every preset, so a wrong time index, a missing term, a
wrong transpose or a swapped symbol in any preset fails it.
"""

import os
import tomllib

import numpy as np
import pytest
from latex_reader import Reader

import symlstm
from conftest import ROOT, pdflatex, require_pdflatex
from symlstm.backends.latex.document import latex_document, latex_equations
from symlstm.backends.latex.notation import NotationError, load_notation, preset_names
from symlstm.backends.latex.printer import LatexError
from symlstm.backends.latex.steps import steps_rows
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main

GOLDEN = ROOT / "tests" / "backends" / "latex" / "golden"
PRESETS = ["symlstm", "greff", "pytorch", "d2l", "colah"]


def test_presets_are_listed():
    assert preset_names()[0] == "symlstm"
    assert set(PRESETS) <= set(preset_names())


#: every preset's lstm, peephole, mgu (a composite operand of @) and slstm (names with
#: underscores); colah's every built-in (which of their matrices pair up varies)
EVERY_PRESET = ("lstm", "peephole", "mgu", "slstm")
GOLDEN_CASES = [(preset, cell) for preset in PRESETS for cell in EVERY_PRESET] + [
    ("colah", cell) for cell in symlstm.variants() if cell not in EVERY_PRESET
]


@pytest.mark.parametrize("preset, cell", GOLDEN_CASES)
def test_golden(preset, cell):
    """Each preset's standalone LaTeX of ``EVERY_PRESET`` (colah's of every built-in);
    SYMLSTM_UPDATE_GOLDEN=1 rewrites them."""
    text = latex_document(derive(builtin_spec(cell)), preset)
    path = GOLDEN / preset / f"{cell}.tex"
    if os.environ.get("SYMLSTM_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; rerun with SYMLSTM_UPDATE_GOLDEN=1 if intended"


def test_default_preset_is_the_committed_output():
    # generated/*.tex are the default notation's golden files (checked by `symlstm generate --check`)
    assert (GOLDEN / "symlstm" / "peephole.tex").read_text() == (
        ROOT / "generated" / "latex" / "peephole.tex"
    ).read_text()


def test_presets_read_as_documented():
    greff = latex_equations(derive(builtin_spec("peephole")), notation="greff")
    assert (
        r"\bar{\mathbf{z}}^t &= \mathbf{W}_{z} \mathbf{x}^t + \mathbf{R}_{z} \mathbf{y}^{t-1} + \mathbf{b}_{z}" in greff
    )
    assert r"\delta \mathbf{y}^t &= \Delta^t + \mathbf{R}_{i}^{\top} \delta \bar{\mathbf{i}}^{t+1}" in greff
    assert r"\left(1 - \left(\mathbf{z}^t\right)^{2}\right)" in greff  # no stacked superscripts
    assert r"\langle \delta \bar{\mathbf{k}}^t, \mathbf{x}^t \rangle" in greff
    torch = latex_equations(derive(builtin_spec("lstm")), notation="pytorch")
    assert r"\bar{i}_t &= W_{ii} x_t + W_{hi} h_{t-1} + b_{i}" in torch
    assert r"c_t &= f_t \odot c_{t-1} + i_t \odot g_t" in torch  # the spec's order
    d2l = latex_equations(derive(builtin_spec("lstm")), notation="d2l")
    assert (
        r"\bar{\mathbf{I}}_t &= \mathbf{X}_t \mathbf{W}_{\mathrm{xi}} + \mathbf{H}_{t-1} \mathbf{W}_{\mathrm{hi}}"
        in d2l
    )
    assert r"\tilde{\mathbf{C}}_t &= \tanh\left(\bar{\tilde{\mathbf{C}}}_t\right)" in d2l
    assert r"\delta \mathbf{W}_{\mathrm{xk}} &= \sum_{t=1}^{T} \mathbf{X}_t^{\top} \delta \bar{\mathbf{K}}_t" in d2l
    gru = latex_equations(derive(builtin_spec("gru")), notation="pytorch")
    assert r"W_{in} x_t + b_{n} + r_t \odot \left(W_{hn} h_{t-1} + b_{hn}\right)" in gru


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru"])
def test_every_preset_compiles_with_both_passes(preset, cell, tmp_path):
    require_pdflatex()
    tex = tmp_path / f"{cell}.tex"
    assert main(["latex", cell, "--standalone", "--notation", preset, "-o", str(tex)]) == 0
    text = tex.read_text()
    assert "Forward pass" in text and "Backward pass through time" in text and "Gradients" in text
    pdflatex(tex)
    log = (tmp_path / f"{cell}.log").read_text(errors="replace")
    assert "in alignment" not in log, "an equation runs into the margin"


T, B = 3, 2
#: D, H, then the other size names (lstmp's P < H): no two equal, so a transposition shows
SIZES = {"D": 5, "H": 6}
OTHER_SIZES = (4, 7, 8)


def _sizes(cell) -> dict[str, int]:
    sizes = dict(SIZES)
    others = iter(OTHER_SIZES)
    for name in cell.size_names:
        sizes.setdefault(name, next(others))
    for requirement in cell.spec.requirements:  # x used elementwise: D is the other size
        a, b = requirement.sizes
        other = b if a == "D" else a
        sizes["D"] = other if isinstance(other, int) else sizes[other]
    return sizes


def _normal(rng, shape):
    return 0.5 * rng.standard_normal(shape)


def _check_against_kernels(cell, preset, seed=0, inputs=None, states=None):
    """Run the typeset lines of ``cell`` (a name, a spec path or a Cell) with NumPy and compare
    every number with the kernels'. ``inputs`` maps each extra input to how to draw it,
    ``(rng, shape) -> array``; ``states`` does the same for initial states (default normal)."""
    cell = symlstm.cell(cell) if isinstance(cell, str) else cell
    sizes = _sizes(cell)
    D, H = sizes["D"], sizes["H"]
    extra = {k: v for k, v in sizes.items() if k not in SIZES}
    rng = np.random.default_rng(seed)
    params = cell.init_params(D, H, dtype=np.float64, seed=seed, **extra)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    x = rng.standard_normal((T, B, D))
    widths = cell.state_sizes(D, H, **extra)
    draw = {s: (states or {}).get(s, _normal) for s in cell.state_names}
    state0 = {s: draw[s](rng, (B, widths[s])) for s in cell.state_names}
    assert set(inputs or {}) == set(cell.input_names), "give a way to draw each extra input"
    extra_inputs = {
        name: make(rng, (T, B, sizes.get(cell.spec.inputs[name], cell.spec.inputs[name])))
        for name, make in (inputs or {}).items()
    }
    ys, state, cache = cell.forward(x, params, state0, inputs=extra_inputs)
    dys = rng.standard_normal(ys.shape)
    dstate = {s: rng.standard_normal((B, widths[s])) for s in cell.state_names}
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)

    reader = Reader(derive(cell.spec), preset)
    typeset = reader.run(params, x, state0, dys, dstate, sizes, extra_inputs)
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(typeset["h"], ys, **close)
    for s in cell.state_names:
        np.testing.assert_allclose(typeset["final"][s], state[s], **close, err_msg=f"final {s}")
        np.testing.assert_allclose(typeset["dstate0"][s], dstate0[s], **close, err_msg=f"d{s}_0")
    np.testing.assert_allclose(typeset["dx"], dx, **close, err_msg="dx")
    assert set(typeset["dparams"]) == set(dparams)
    for name, grad in dparams.items():
        np.testing.assert_allclose(typeset["dparams"][name], grad, **close, err_msg=name)


def _uniform(rng, shape):
    return rng.uniform(0.5, 1.5, shape)


#: initial states that must be positive (sLSTM's normaliser n divides)
CELL_STATES = {"slstm": {"n": _uniform}}


@pytest.mark.parametrize("cell", symlstm.variants())
def test_typeset_equations_compute_the_kernels_numbers(cell):
    """Every built-in cell: the printed forward, backward and gradient lines, read back and run
    with NumPy, give the kernels' outputs and gradients (float64, ~1e-10)."""
    _check_against_kernels(cell, "symlstm", states=CELL_STATES.get(cell))


@pytest.mark.parametrize("preset", ["greff", "pytorch", "d2l"])
@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "fgr", "lstm_relu", "lstmp", "sru", "slstm", "mgu"])
def test_typeset_equations_in_every_preset_compute_the_kernels_numbers(cell, preset):
    _check_against_kernels(cell, preset, seed=1, states=CELL_STATES.get(cell))


@pytest.mark.parametrize("cell", symlstm.variants())
def test_typeset_equations_in_the_colah_notation_compute_the_kernels_numbers(cell):
    """Every built-in in ``colah``: concatenated weights W_f [h_{t-1}, x_t] where the matrices pair
    up, their blocks in the backward, the concatenated gradient cut into the blocks' ones."""
    _check_against_kernels(cell, "colah", seed=2, states=CELL_STATES.get(cell))


def test_reader_catches_a_wrong_equation(monkeypatch):
    """The tie is not vacuous: one wrong time index in the printed text makes it fail."""
    import latex_reader

    honest = latex_reader.backward_lines
    assert r"\mathbf{f}_{t+1}" in latex_equations(derive(builtin_spec("peephole")))

    def wrong(d, n):
        return [line.replace(r"\mathbf{f}_{t+1}", r"\mathbf{f}_t") for line in honest(d, n)]

    monkeypatch.setattr(latex_reader, "backward_lines", wrong)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        _check_against_kernels("peephole", "symlstm")


#: mgu's composite operand f ⊙ h_{t-1} of R_n, where the forward, backward and gradients use it
MGU_OPERAND = r"\left(\mathbf{f}_t \odot \mathbf{h}_{t-1}\right)"


@pytest.mark.parametrize(
    "block, old, new, error",
    [
        # R_n times another expression: then δ(f_t ⊙ h_{t-1}) is the adjoint of nothing the forward has
        ("forward_lines", MGU_OPERAND, r"\left(\mathbf{f}_t \odot \mathbf{f}_t\right)", "no forward line"),
        (
            "backward_lines",
            r"\delta " + MGU_OPERAND,
            r"\delta \left(\mathbf{f}_t \odot \mathbf{h}_t\right)",
            "no forward",
        ),
        ("gradient_lines", MGU_OPERAND + "^{\\top}", r"\mathbf{h}_{t-1}^{\top}", "Not equal to tolerance"),
    ],
)
def test_reader_catches_a_wrong_composite_operand(monkeypatch, block, old, new, error):
    """mgu writes R_n (f_t ⊙ h_{t-1}) and δ(f_t ⊙ h_{t-1}): another operand in the product, in
    the adjoint's name or in δR_n's outer product makes the tie fail."""
    import latex_reader

    honest = getattr(latex_reader, block)
    assert any(old in line for line in honest(derive(builtin_spec("mgu")))), old  # not vacuous

    def wrong(d, n):
        return [line.replace(old, new) for line in honest(d, n)]

    monkeypatch.setattr(latex_reader, block, wrong)
    with pytest.raises((AssertionError, latex_reader.ReadError), match=error):
        _check_against_kernels("mgu", "symlstm")


def _mask(rng, shape):
    return (rng.uniform(size=shape) < 0.5).astype(np.float64)


def test_typeset_zoneout_with_random_masks_computes_the_kernels_numbers():
    _check_against_kernels(str(ROOT / "examples" / "zoneout.toml"), "symlstm", inputs={"zh": _mask, "zc": _mask})


#: sum() and mean() (of H- and P-vectors), a size-1 intermediate s, a size-1 input dt, a learnable
#: scalar w, x used elementwise (so D == H), and the functions beyond the LSTM's
USER_SPEC = """
name = "user"
state = ["h"]

[sizes]
s = 1
p = "P"

[inputs]
dt = 1

[equations]
p = "tanh(W_p @ x + b_p)"
a = "tanh(W_a @ x + R_a @ h_prev + b_a)"
s = "sigmoid(sum(a * v) + w * dt + mean(p))"
m = "mean(a)"
q = "sqrt(mean(a * a) + softplus(u))"
e = "elu(a) + leaky_relu(a - 0.5) + silu(W_e @ x) + gelu(a) + abs(a)"
k = "logsigmoid(e) + log(1 + e * e) + sin(a) * cos(e)"
h = "s * a + (1 - s) * x - m * h_prev + U @ p + maximum(k, h_prev) / q - minimum(e, a) / 2"
"""


@pytest.fixture(scope="module")
def user_cell(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "user.toml"
    path.write_text(USER_SPEC)
    return symlstm.cell(path)


# d2l is left out: it writes 1^T X_t for the sum of a row's units, which there sums the batch
@pytest.mark.parametrize("preset", ["symlstm", "greff", "pytorch"])
def test_typeset_user_spec_with_reductions_sizes_inputs_and_functions(user_cell, preset):
    lines = latex_equations(derive(user_cell.spec))
    assert r"\frac{\mathbf{1}^{\top} \mathbf{p}_t}{P}" in lines and r"\odot \mathbf{x}_t" in lines
    _check_against_kernels(user_cell, preset, inputs={"dt": _uniform})


@pytest.mark.parametrize(
    "block, old, new",
    [
        ("forward_lines", r"\frac{\mathbf{1}^{\top} \mathbf{a}_t}{H}", r"\frac{\mathbf{a}_t}{H}"),  # no sum
        ("forward_lines", r"\mathbf{1}^{\top} \mathbf{p}_t}{P}", r"\mathbf{1}^{\top} \mathbf{p}_t}{H}"),  # wrong size
        ("backward_lines", r"&= \frac{\delta \bar{\mathbf{s}}_t}{P}", r"&= \delta \bar{\mathbf{s}}_t"),
        ("backward_lines", r"\mathbb{1}\left[\mathbf{k}_t >", r"\mathbb{1}\left[\mathbf{k}_t <"),  # max's slope
    ],
)
def test_reader_catches_a_wrong_reduction_size_or_slope(monkeypatch, user_cell, block, old, new):
    """A dropped 1^T, a wrong size, a dropped mean() in the adjoints or a wrong derivative of
    maximum makes the tie fail."""
    import latex_reader

    honest = getattr(latex_reader, block)
    assert any(old in line for line in honest(derive(user_cell.spec))), old  # not vacuous

    def wrong(d, n):
        return [line.replace(old, new) for line in honest(d, n)]

    monkeypatch.setattr(latex_reader, block, wrong)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        _check_against_kernels(user_cell, "symlstm", inputs={"dt": _uniform})


#: names with underscores everywhere a name can reach a subscript (a vector, a parameter with
#: several parts, a pre-activation's bar, a size), and a composite operand of a matrix
UNDERSCORE_SPEC = """
name = "under"
state = ["h"]

[sizes]
a_b_c = "units"

[equations]
gate_in = "sigmoid(W_x_gate @ x + R_gate @ h_prev + b_gate_in)"
a_b_c = "tanh(W_abc @ x + b_a_b_c)"
h = "tanh(W_h @ x + R_h_in @ (gate_in * h_prev) + V_out @ (a_b_c - mean(a_b_c)))"
"""


def subscripts(text: str) -> list[str]:
    """The contents of every ``_{...}`` group of ``text`` (braces matched)."""
    out = []
    for start in [k + 2 for k in range(len(text)) if text.startswith("_{", k)]:
        depth, end = 1, start
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        out.append(text[start : end - 1])
    return out


@pytest.fixture(scope="module")
def under_cell(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "under.toml"
    path.write_text(UNDERSCORE_SPEC)
    return symlstm.cell(path)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cell", ["slstm", "mgu", "lnlstm", "gru", "under"])
def test_no_subscript_holds_an_underscore(cell, preset, under_cell):
    """A name's parts after its first underscore are subscripts joined by commas, words of three
    letters or more upright: ``i_pre`` -> ``i_{\\mathrm{pre},t}``, ``W_x_gate`` ->
    ``W_{x,\\mathrm{gate}}``; a size is a number, ``\\mathrm{units}``."""
    spec = under_cell.spec if cell == "under" else builtin_spec(cell)
    d = derive(spec)
    text = latex_document(d, notation=preset) + "\n".join(
        row.latex() for row in steps_rows(d, notation=preset).values()
    )
    assert subscripts(text) and not [sub for sub in subscripts(text) if "_" in sub]
    if cell == "under":
        assert r"{\mathrm{units}}" in text
        assert r"\mathrm{gate}" in text


@pytest.mark.parametrize("preset", ["symlstm", "greff", "pytorch", "colah"])
def test_typeset_names_with_underscores_compute_the_kernels_numbers(under_cell, preset):
    text = latex_equations(derive(under_cell.spec), notation=preset)
    assert "in,in" not in text and "in_in" not in text  # no invented name for the operand of R_h_in
    _check_against_kernels(under_cell, preset)


def test_a_size_named_like_the_time_steps_is_an_error():
    spec = parse_spec(
        'name = "u"\nstate = ["h"]\n[sizes]\na = "T"\n[equations]\n'
        'a = "tanh(W_a @ x)"\nh = "tanh(W @ x + R @ h_prev + U @ (a - mean(a)))"\n'
    )
    with pytest.raises(LatexError, match="size named 'T'"):
        latex_document(derive(spec))


# -- user presets -------------------------------------------------------------------------------


def test_user_preset_file(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text(
        "name = 'mine'\nextends = 'greff'\n[symbols]\nc = '\\mathbf{s}'\n[functions]\ntanh = '\\operatorname{th}'\n"
    )
    assert main(["latex", "peephole", "--notation", str(path)]) == 0
    out = capsys.readouterr().out
    assert r"\mathbf{s}^t &= \mathbf{f}^t \odot \mathbf{s}^{t-1} + \mathbf{i}^t \odot \mathbf{z}^t" in out
    assert r"\operatorname{th}\left(" in out and "notation 'mine'" in out
    _check_against_kernels("peephole", load_notation(path))


def test_user_preset_without_extends_starts_from_the_default(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text("[style]\ntime = 'superscript'\nletter = '<x>'\n")
    n = load_notation(path)
    assert n.name == "plain" and n.vector("c", "t-1") == "c^{t-1}"
    assert "Symbols follow the notation 'plain'" in n.legend_text()
    text = latex_equations(derive(builtin_spec("lstm")), notation=n)
    assert r"h^t &= o^t \odot \tanh\left(c^t\right)" in text


@pytest.mark.parametrize(
    "text, message",
    [
        ("[style]\ncolour = 'red'\n", "unknown [style] key 'colour'"),
        ("[style]\npreact = '\\hat{}'\n", "must contain <x>"),
        ("[style]\ntime = 'sideways'\n", "subscript"),
        ("[functions]\nsoftmax = 'S'\n", "not functions"),
        ("extends = 'nope'\n", "extends unknown preset 'nope'"),
        ("[symbols]\ng = 3\n", "[symbols] must be a table"),
        ("bogus = 1\n", "unknown keys ['bogus']"),
        ("[style\n", "not valid TOML"),
    ],
)
def test_bad_user_presets_are_rejected_with_a_reason(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(NotationError, match=None) as err:
        load_notation(path)
    assert message in str(err.value)


def test_cli_reports_a_bad_notation(tmp_path, capsys):
    assert main(["latex", "lstm", "--notation", "nope"]) == 2
    assert "unknown notation 'nope'" in capsys.readouterr().err
    assert main(["latex", "lstm", "--notation", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the notation file" in capsys.readouterr().err


def test_ambiguous_renaming_is_an_error():
    spec = parse_spec(
        'name = "u"\nstate = ["h", "c"]\n[equations]\n'
        'g = "tanh(W_g @ x + R_g @ h_prev)"\nz = "sigmoid(W_z @ x)"\n'
        'c = "z * c_prev + g"\nh = "tanh(c)"\n'
    )
    with pytest.raises(LatexError, match="typesets both 'g' and 'z'"):
        latex_equations(derive(spec), notation="greff")
    latex_equations(derive(spec), notation="pytorch")  # fine there


def test_notation_presets_are_packaged():
    """pip install . must ship symlstm/backends/latex/notations/*.toml, or every LaTeX command breaks."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = config["packages"]
    if isinstance(packages, dict):  # [tool.setuptools.packages.find]
        from setuptools import find_packages

        packages = find_packages(
            str(ROOT), include=packages["find"].get("include", ["*"]), exclude=packages["find"].get("exclude", ())
        )
    assert "symlstm.backends.latex.notations" in packages, "symlstm.notations is not a package pip installs"
    assert "*.toml" in config["package-data"].get("symlstm.backends.latex.notations", []), (
        'add "symlstm.backends.latex.notations" = ["*.toml"] to [tool.setuptools.package-data]'
    )
