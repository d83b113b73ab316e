"""symlstm: recurrent cells from their equations to derived, typeset, jitted and verified code.

    >>> import symlstm
    >>> cell = symlstm.cell("peephole")
    >>> params = cell.init_params(D=3, H=4)
    >>> ys, state, cache = cell.forward(x, params)
    >>> dx, dparams, dstate0 = cell.backward(dys, cache)
"""
from __future__ import annotations

import os

from . import nn
from .build import CacheWarning, builtin_names, import_kernels, resolve_spec
from .gradcheck import gradcheck
from .runtime import Cell, ForwardCache
from .spec import SpecError, parse_spec
from .version import __version__

__all__ = ["CacheWarning", "Cell", "ForwardCache", "SpecError", "cell", "from_torch", "gradcheck", "nn",
           "parse_spec", "to_torch", "variants", "__version__"]

_loaded: dict[str, Cell] = {}


def variants() -> list[str]:
    """Names of the built-in cells."""
    return builtin_names()


def cell(name_or_path: str | os.PathLike) -> Cell:
    """A built-in cell by name, or a user cell from the path of its ``.toml`` spec."""
    spec = resolve_spec(name_or_path)
    if spec.sha256 not in _loaded:
        _loaded[spec.sha256] = Cell(spec, import_kernels(spec))
    return _loaded[spec.sha256]


def __getattr__(name: str):
    # PyTorch interop is imported on first use, so `import symlstm` never needs torch.
    if name in ("from_torch", "to_torch"):
        from . import interop

        return getattr(interop, name)
    raise AttributeError(f"module 'symlstm' has no attribute {name!r}")
