"""The Numba backend: kernel modules emitted as Python source, cached on disk, run on the CPU.

``emit`` (emit.py, printer.py) writes a module; ``cache`` puts it on disk and imports it;
``runner`` implements the ``Kernels`` protocol over it with ``parallel`` (row ranges on threads)
and ``workspace`` (the buffer pool); ``kernel_math`` holds the scalar functions the kernels call.
"""

from __future__ import annotations

from symlstm.backends.base import Kernels
from symlstm.ir.derive import Derivation
from symlstm.lang.spec import CellSpec


class NumbaBackend:
    name = "numba"
    suffix = ".py"

    def emit(self, derivation: Derivation) -> str:
        from symlstm.backends.numba.emit import emit_module

        return emit_module(derivation)

    def load(self, spec: CellSpec) -> Kernels:
        from symlstm.backends.numba.cache import import_kernels
        from symlstm.backends.numba.runner import NumbaKernels

        return NumbaKernels(import_kernels(spec))
