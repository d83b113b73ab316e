"""symlstm: recurrent cells from their equations to derived, typeset, jitted and verified code.

    >>> import numpy as np, symlstm
    >>> cell = symlstm.cell("peephole")
    >>> params = cell.init_params(D=3, H=4)
    >>> x = np.random.default_rng(0).standard_normal((10, 2, 3))     # (T, B, D)
    >>> ys, state, cache = cell.forward(x, params)
    >>> ys.shape, state["c"].shape
    ((10, 2, 4), (2, 4))
    >>> dx, dparams, dstate0 = cell.backward(np.ones_like(ys), cache)   # dL/dys in
    >>> dx.shape, dparams["R_i"].shape
    ((10, 2, 3), (4, 4))

The pipeline, one folder a stage: ``lang`` (spec text -> ``CellSpec``), ``ir`` (the derivation),
``backends`` (``numba`` kernels, ``latex`` formulas), ``runtime`` (``Cell``), ``verify``
(finite differences, PyTorch references); users of it: ``cells`` (the built-ins), ``interop``,
``train``, ``site``, ``tools``.
"""

from __future__ import annotations

from symlstm.backends.numba.cache import CacheWarning
from symlstm.cells import cell, variants
from symlstm.lang.spec import SpecError, parse_spec
from symlstm.runtime import Cell, ForwardCache
from symlstm.train import nn
from symlstm.verify.gradcheck import gradcheck
from symlstm.version import __version__

__all__ = [
    "CacheWarning",
    "Cell",
    "ForwardCache",
    "SpecError",
    "cell",
    "from_torch",
    "gradcheck",
    "nn",
    "parse_spec",
    "to_torch",
    "variants",
    "__version__",
]


def __getattr__(name: str):
    # PyTorch interop is imported on first use, so `import symlstm` never needs torch.
    if name in ("from_torch", "to_torch"):
        from symlstm.train import pytorch_modules

        return getattr(pytorch_modules, name)
    raise AttributeError(f"module 'symlstm' has no attribute {name!r}")
