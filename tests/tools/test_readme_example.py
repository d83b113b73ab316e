"""The README's "Write your own cell" example, a spec using [sizes], [inputs], mean(), x
elementwise and new functions: the README shows the file as it is, and the commands it lists work
(gradcheck, the standalone LaTeX through pdflatex, generate), as does the Python it shows."""

import re
import tomllib

import numpy as np

import symlstm
from conftest import ROOT, pdflatex, require_pdflatex
from symlstm.tools.cli import main

EXAMPLE = ROOT / "examples" / "decay_rnn.toml"


def test_readme_shows_the_example_file():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Write your own cell") : readme.index("## A cell is a spec")]
    shown = tomllib.loads(re.search(r"```toml\n(.*?)```", section, re.S).group(1))
    actual = tomllib.loads(EXAMPLE.read_text())
    assert {k: v for k, v in actual.items() if k != "references"} == shown


def test_readme_commands_work(tmp_path, capsys):
    assert main(["gradcheck", str(EXAMPLE)]) == 0
    assert "== decay_rnn: passed" in capsys.readouterr().out
    assert main(["generate", "--spec", str(EXAMPLE), "--out", str(tmp_path / "decay")]) == 0
    assert (tmp_path / "decay" / "numba" / "decay_rnn.py").is_file()
    require_pdflatex()
    tex = tmp_path / "decay.tex"
    assert main(["latex", str(EXAMPLE), "--standalone", "-o", str(tex)]) == 0
    pdflatex(tex)
    text = tex.read_text()
    assert r"\mathbf{1}^{\top}" in text and r"\mathbf{dt}_t" in text


def test_readme_python_works():
    cell = symlstm.cell(str(EXAMPLE))
    rng = np.random.default_rng(0)
    params = cell.init_params(16, 16)
    assert params["w_k"].shape == (1, 16) and params["b_k"].shape == (1,) and params["lam"].shape == (16,)
    x, dt = rng.standard_normal((5, 3, 16)), rng.uniform(0.1, 2.0, (5, 3, 1))
    ys, state, cache = cell.forward(x, params, inputs={"dt": dt})
    assert ys.shape == (5, 3, 16) and np.isfinite(ys).all()
