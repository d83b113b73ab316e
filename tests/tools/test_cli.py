"""The command line: list, gradcheck exit codes, --help on every command, --version, no arguments."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symlstm
from symlstm.tools.cli import main
from symlstm.verify.gradcheck import gradcheck


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == set(symlstm.variants())
    assert "4(DH + H² + H) + 3H" in rows["peephole"]
    assert "4(DH + H² + H)  " in rows["lstm"]
    assert "4(DH + H² + H) + 9H² + 3H" in rows["fgr"]
    assert "DH + H² + H  " in rows["rnn"]
    cell = symlstm.cell("fgr")
    assert cell.num_params(3, 5) == 4 * (3 * 5 + 25 + 5) + 9 * 25 + 3 * 5


def test_gradcheck_all_passes(capsys):
    assert main(["gradcheck", "--all"]) == 0
    out = capsys.readouterr().out
    for name in symlstm.variants():
        assert f"== {name}: passed" in out


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    cell = symlstm.cell("lstm")
    honest = type(cell).backward

    def off_by_a_little(self, dys, cache, dstate=None):
        dx, dparams, dstate0 = honest(self, dys, cache, dstate)
        dparams["R_f"] = dparams["R_f"] * (1 + 1e-5)
        return dx, dparams, dstate0

    monkeypatch.setattr(type(cell), "backward", off_by_a_little)
    report = gradcheck(cell)
    assert not report.passed
    assert [c.quantity for c in report.checks if not c.passed] == ["R_f"]


def test_gradcheck_reports_nan_instead_of_passing(monkeypatch):
    cell = symlstm.cell("lstm")
    honest = type(cell).backward

    def nan_grad(self, dys, cache, dstate=None):
        dx, dparams, dstate0 = honest(self, dys, cache, dstate)
        dx = dx.copy()
        dx[0, 0, 0] = np.nan
        return dx, dparams, dstate0

    monkeypatch.setattr(type(cell), "backward", nan_grad)
    assert not gradcheck(cell).passed


def test_gradcheck_unknown_cell_is_an_error(capsys):
    assert main(["gradcheck", "nope"]) == 2
    assert "unknown cell" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["list", "latex", "generate", "gradcheck", "bench"])
def test_help(command):
    run = subprocess.run([sys.executable, "-m", "symlstm", command, "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "usage: symlstm" in run.stdout, run.stderr


def _console_script() -> str | None:
    """The installed ``symlstm`` command next to this interpreter, if there is one."""
    return shutil.which("symlstm", path=str(Path(sys.executable).parent))


@pytest.mark.parametrize("how", ["python -m symlstm", "symlstm"])
def test_version(how):
    command = [sys.executable, "-m", "symlstm"]
    if how == "symlstm":
        script = _console_script()
        if script is None:
            pytest.skip("the symlstm command is not installed next to this python")
        command = [script]
    run = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"symlstm {symlstm.__version__}\n"


def test_no_arguments_prints_the_help():
    run = subprocess.run([sys.executable, "-m", "symlstm"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stdout.startswith("usage: symlstm")
    for command in ("list", "latex", "generate", "gradcheck", "cache", "demo", "docs", "bench", "--version"):
        assert command in run.stdout


def test_no_arguments_in_process(capsys):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: symlstm")
