"""Backends: one folder each, one entry in ``REGISTRY``.

``numba`` emits and runs the kernels; ``latex`` typesets the equations; ``onnx`` writes the cell
as an ONNX graph (``symlstm export`` binds trained parameters to it). A new backend is a folder
with a class that implements ``symlstm.backends.base.Backend`` (or ``KernelBackend``), plus its
line below.
"""

from __future__ import annotations

import importlib
from functools import cache

from symlstm.backends.base import Backend, KernelBackend
from symlstm.lang.spec import CellSpec

#: backend name -> "module:class"; imported on first use
REGISTRY: dict[str, str] = {
    "numba": "symlstm.backends.numba:NumbaBackend",
    "latex": "symlstm.backends.latex:LatexBackend",
    "onnx": "symlstm.backends.onnx:OnnxBackend",
}
#: the backend whose kernels ``symlstm.cell`` runs
DEFAULT_KERNELS = "numba"


@cache
def backend(name: str) -> Backend:
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def kernel_backend(name: str = DEFAULT_KERNELS) -> KernelBackend:
    found = backend(name)
    if not hasattr(found, "load"):
        raise ValueError(f"the backend {name!r} emits files but does not run kernels")
    return found  # type: ignore[return-value]


def generated_files(spec: CellSpec) -> dict[str, str]:
    """Relative path -> text of every file the backends write for one cell
    (``numba/lstm.py``, ``latex/lstm.tex``): what ``symlstm generate`` puts in ``generated/``."""
    from symlstm.ir.derive import derive

    derivation = derive(spec)
    out = {}
    for name in REGISTRY:
        b = backend(name)
        out[f"{name}/{spec.name}{b.suffix}"] = b.emit(derivation)
    return out
