"""Per-cell pipeline timings: derivation, emission, cold compile, cached load.

Each measurement of compile and load runs in a fresh process against a fresh cache folder, so
nothing is shared between them. Usage: python scripts/timings.py [cell ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
import symlstm
t1 = time.perf_counter()
cell = symlstm.cell(sys.argv[1])
t2 = time.perf_counter()
x = np.zeros((3, 2, 4), sys.argv[2])
params = cell.init_params(4, 5, dtype=sys.argv[2])
ys, state, cache = cell.forward(x, params)
cell.backward(ys, cache)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first_call": t3 - t2}))
"""


def probe(name: str, dtype: str, cache: str) -> dict:
    env = dict(os.environ, SYMLSTM_CACHE_DIR=cache)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, name, dtype], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def main(names: list[str]) -> None:
    from symlstm import variants
    from symlstm.backends.latex.document import latex_document
    from symlstm.backends.numba.emit import emit_module
    from symlstm.cells import builtin_spec
    from symlstm.ir.derive import derive

    names = names or variants()
    print(f"{'cell':<10} {'derive':>8} {'emit .py':>9} {'emit .tex':>9} {'cold (f64)':>11} {'cached load+run':>16}")
    for name in names:
        spec = builtin_spec(name)
        t0 = time.perf_counter()
        d = derive(spec)
        t1 = time.perf_counter()
        emit_module(d)
        t2 = time.perf_counter()
        latex_document(d)
        t3 = time.perf_counter()
        with tempfile.TemporaryDirectory() as cache:
            cold = probe(name, "float64", cache)
            warm = probe(name, "float64", cache)
        print(
            f"{name:<10} {t1 - t0:>7.3f}s {t2 - t1:>8.3f}s {t3 - t2:>8.3f}s "
            f"{cold['load'] + cold['first_call']:>10.2f}s {warm['load'] + warm['first_call']:>15.2f}s"
            f"   (import symlstm {warm['import']:.2f}s)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
