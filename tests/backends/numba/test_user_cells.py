"""A user's own cell goes through the whole pipeline from its spec file, in separate processes,
and later processes reuse the cached module and Numba's compiled code."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import symlstm
from conftest import ROOT
from symlstm.tools.cli import main

#: a user cell with extra per-step inputs (its zoneout masks)
ZONEOUT = ROOT / "examples" / "zoneout.toml"

RUN = r"""
import json, sys, time
import numpy as np
import symlstm
t0 = time.perf_counter()
cell = symlstm.cell(sys.argv[1])
rng = np.random.default_rng(0)
params = cell.init_params(3, 4, seed=0)
masks = {name: (rng.uniform(0, 1, (6, 2, 4)) < 0.2).astype(float) for name in cell.input_names}
ys, state, cache = cell.forward(rng.standard_normal((6, 2, 3)), params, inputs=masks)
dx, dparams, _ = cell.backward(np.ones_like(ys), cache)
k = cell.kernels.module
KERNELS = ("forward_inputs", "forward_steps", "backward_steps", "backward_gradients")
stats = [getattr(k, f).stats for f in KERNELS]
print(json.dumps({
    "seconds": time.perf_counter() - t0,
    "module": k.__file__,
    "hits": sum(sum(s.cache_hits.values()) for s in stats),
    "misses": sum(sum(s.cache_misses.values()) for s in stats),
    "ys": ys.sum(), "dx": dx.sum(),
}))
"""


def run_cell(spec: Path, cache: Path) -> subprocess.Popen:
    env = dict(os.environ, SYMLSTM_CACHE_DIR=str(cache))
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(spec)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


@pytest.fixture
def user_spec(tmp_path) -> Path:
    path = tmp_path / "cells" / "zoneout.toml"
    path.parent.mkdir()
    shutil.copy(ZONEOUT, path)
    return path


def test_user_cell_whole_pipeline_in_separate_processes(user_spec, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, SYMLSTM_CACHE_DIR=str(cache))
    check = subprocess.run(
        [sys.executable, "-m", "symlstm", "gradcheck", str(user_spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "== zoneout: passed" in check.stdout

    first = result(run_cell(user_spec, cache))  # compiled kernels already cached by gradcheck
    module = Path(first["module"])
    assert module.parent.parent == cache and module.name == "zoneout.py"
    mtime = module.stat().st_mtime_ns
    second = result(run_cell(user_spec, cache))
    assert second["module"] == first["module"] and module.stat().st_mtime_ns == mtime
    assert second["misses"] == 0 and second["hits"] >= 4, second  # all four kernels loaded, none recompiled
    assert (second["ys"], second["dx"]) == (first["ys"], first["dx"])


def test_two_processes_build_the_same_new_cell_at_once(user_spec, tmp_path):
    cache = tmp_path / "cache"
    procs = [run_cell(user_spec, cache) for _ in range(2)]
    a, b = (result(p) for p in procs)
    assert a["module"] == b["module"]
    assert (a["ys"], a["dx"]) == (b["ys"], b["dx"])
    entries = [p for p in Path(a["module"]).parent.iterdir() if p.name.endswith(".tmp")]
    assert entries == []  # no temp files left behind


def test_damaged_cache_entry_is_rebuilt(user_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(tmp_path / "cache"))
    from symlstm.backends.numba.cache import ensure_kernels
    from symlstm.lang.spec import parse_spec

    spec = parse_spec(user_spec)
    path = ensure_kernels(spec)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a crash in the middle of a write
    assert ensure_kernels(spec).read_bytes() == good


def test_generate_for_a_user_spec(user_spec, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "--spec", str(user_spec), "--out", str(out)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.*"))
    assert written == ["latex/zoneout.tex", "numba/zoneout.py", "onnx/zoneout.onnxtxt"]
    assert main(["generate", "--spec", str(user_spec), "--out", str(out), "--check"]) == 0


def test_spec_with_constants_and_three_states(tmp_path):
    path = tmp_path / "three.toml"
    path.write_text(
        'name = "three"\nstate = ["h", "c", "m"]\n[equations]\n'
        'g = "sigmoid(W_g @ x + R_g @ h_prev + 0.5 * m_prev - 1)"\n'
        'm = "0.9 * m_prev + 0.1 * g"\n'
        'c = "softsign(c_prev * g + W_c @ x) / 2"\n'
        'h = "hard_sigmoid(R_h @ c + exp(-m ** 2))"\n'
    )
    cell = symlstm.cell(path)
    assert cell.state_names == ("h", "c", "m")
    report = symlstm.gradcheck(cell)
    assert report.passed, report.table()


def test_two_matrices_on_one_computed_vector(tmp_path):
    """Both products of one operand get their adjoint block (a regression: the second was lost)."""
    path = tmp_path / "two.toml"
    path.write_text(
        'name = "two"\nstate = ["h"]\n[equations]\nu = "tanh(W @ x + R @ h_prev)"\nh = "tanh(A @ u + C @ u + b_h)"\n'
    )
    report = symlstm.gradcheck(symlstm.cell(path))
    assert report.passed, report.table()
