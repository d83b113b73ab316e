"""The generated kernels' machine code: the elementwise passes are vectorized."""
import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, re, sys
import numpy as np
import symlstm
cell = symlstm.cell(sys.argv[1])
params = cell.init_params(8, 16, dtype=np.float32)
ys, _, cache = cell.forward(np.ones((3, 2, 8), np.float32), params)
cell.backward(ys, cache)
out = {}
for fn in (cell.kernels.forward, cell.kernels.backward):
    (sig,) = fn.signatures
    asm = fn.inspect_asm(sig)
    # The kernels' own arithmetic is the elementwise loops (matrix products are BLAS calls):
    # packed-single multiplies mean those loops run on vectors, not one lane at a time.
    out[fn.__name__] = {"packed_mul": len(re.findall(r"\bv?mulps\s", asm)),
                        "scalar_mul": len(re.findall(r"\bv?mulss\s", asm))}
print(json.dumps(out))
"""


# gru is not here: LLVM leaves its backward loop scalar ("cannot identify array bounds"), a known gap
@pytest.mark.parametrize("name", ["lstm", "peephole"])
def test_float32_elementwise_loops_are_vectorized(name, tmp_path):
    # a fresh cache: Numba does not disassemble code it loaded from its cache
    env = dict(os.environ, SYMLSTM_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", PROBE, name], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    for kernel in ("forward", "backward"):
        assert counts[kernel]["packed_mul"] > counts[kernel]["scalar_mul"], (kernel, counts)
