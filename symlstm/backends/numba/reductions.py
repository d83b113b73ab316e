"""The sum over the units of a row, which the kernels' reductions call (``sum``, ``mean``, the
adjoints of size-1 quantities).

It is compiled on its own, with licence to reassociate the additions: that lets LLVM keep several
partial sums in vector registers. A sum accumulated inside a kernel's elementwise loop would
keep that whole loop scalar, since the kernels never reassociate. The order of the additions is
fixed by the compiled code, so results are the same from run to run on one machine.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def unit_sum(row):
    """The sum of a 1-d array."""
    total = row.dtype.type(0.0)
    for j in range(row.shape[0]):
        total += row[j]
    return total
