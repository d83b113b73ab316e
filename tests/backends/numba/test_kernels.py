"""The generated kernels' machine code: every elementwise loop is vectorized."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

GENERATED = ROOT / "generated"

# LLVM's loop-vectorizer reports each loop it vectorized; the kernels' own loops are the
# elementwise ``for j in range(H)`` loops of forward_steps and backward_steps (matrix products
# are BLAS calls). Compiled in a fresh process with a fresh cache: the remarks come only from
# a compilation.
PROBE = r"""
import sys
import llvmlite.binding as llvm
llvm.set_option("", "-pass-remarks=loop-vectorize")
import numpy as np
import symlstm
cell = symlstm.cell(sys.argv[1])
for dtype in (np.float32, np.float64):
    params = cell.init_params(8, 16, dtype=dtype)
    ys, _, cache = cell.forward(np.ones((3, 2, 8), dtype), params)
    cell.backward(ys, cache)
"""


# fgr is not here: its 4 step GEMMs give its loops too many arrays for LLVM's runtime overlap
# checks ("too many memory checks needed"), a known gap
@pytest.mark.parametrize("name", ["lstm", "peephole", "gru"])
def test_every_elementwise_loop_is_vectorized_in_both_dtypes(name, tmp_path):
    env = dict(os.environ, SYMLSTM_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", PROBE, name], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    vectorized = run.stderr.count("remark: <unknown>:0:0: vectorized loop")
    source = (GENERATED / "numba" / f"{name}.py").read_text()
    kernels = source[source.index("def forward_steps(") : source.index("def backward_gradients(")]
    loops = kernels.count("for j in range(H):")
    assert loops > 0 and vectorized >= 2 * loops, (vectorized, loops, run.stderr[-2000:])
