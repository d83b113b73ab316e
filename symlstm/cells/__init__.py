"""The built-in cells: one spec file each (``<name>.toml`` beside this module), and ``cell()``,
which turns a built-in name or the path of a user's spec into a ready ``Cell``."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from symlstm.lang.spec import CellSpec, parse_spec


def builtin_names() -> list[str]:
    return sorted(
        p.name[: -len(".toml")] for p in resources.files("symlstm.cells").iterdir() if p.name.endswith(".toml")
    )


def builtin_spec(name: str) -> CellSpec:
    return parse_spec(resources.files("symlstm.cells").joinpath(f"{name}.toml").read_text("utf-8"))


def resolve_spec(name_or_path: str | os.PathLike) -> CellSpec:
    """A built-in cell's name, or the path of a spec file."""
    text = os.fspath(name_or_path)
    if text in builtin_names():
        return builtin_spec(text)
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"no spec file at {path}")
        return parse_spec(path)
    raise ValueError(f"unknown cell {text!r}: use one of {builtin_names()} or the path of a .toml spec")


def variants() -> list[str]:
    """Names of the built-in cells."""
    return builtin_names()


_loaded: dict = {}


def cell(name_or_path: str | os.PathLike):
    """A built-in cell by name, or a user cell from the path of its ``.toml`` spec."""
    from symlstm.backends import kernel_backend
    from symlstm.runtime import Cell

    spec = resolve_spec(name_or_path)
    if spec.sha256 not in _loaded:
        _loaded[spec.sha256] = Cell(spec, kernel_backend().load(spec))
    return _loaded[spec.sha256]
