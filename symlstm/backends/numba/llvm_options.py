"""The LLVM settings the kernels are compiled under, set once per process before the first kernel
module is imported (``symlstm.backends.numba.cache.import_kernels``).

- ``vectorize-memory-check-threshold`` (LLVM's default 128): the most runtime overlap checks LLVM
  may place before a loop to vectorize it. Every row view of a kernel is an object of its own to
  LLVM (``rows.borrowed_row``), so a pass that writes many rows needs many checks: slstm's forward
  pass writes ten and read eighteen, and stayed scalar under the default. Measured with 1024, one
  thread, (T, B, H) = (100, 32, 128): slstm's forward_steps 10.7 -> 5.3 ms, lnlstm's
  backward_steps 9.9 -> 6.4 ms, lstm and gru unchanged. The checks run once per pass, not per unit.

LLVM's options are the process's: Numba code compiled later in the same process gets the same
allowance. It only lets LLVM vectorize loops it would otherwise leave scalar, behind the same
checks, so results are unchanged.
"""

from __future__ import annotations

import functools

#: runtime overlap checks allowed before one vectorized loop (LLVM's default: 128)
MEMORY_CHECKS = 1024


@functools.cache
def apply() -> None:
    """Set the options (once; later calls do nothing)."""
    import llvmlite.binding as llvm

    llvm.set_option("symlstm", f"-vectorize-memory-check-threshold={MEMORY_CHECKS}")
