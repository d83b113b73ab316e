"""Stage 4: put kernel modules on disk and import them.

``numba.njit(cache=True)`` only caches functions that live in a real file, and keys its cache on
that file's modification time. So a cell's generated module is written once to a folder named by a
content hash (of the spec and the generator's source), atomically (temp file + rename), never
rewritten when unchanged, and imported with ``importlib``. A truncated or edited cache entry fails
its hash check and is rebuilt.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from types import ModuleType

from .spec import CellSpec, SpecError, parse_spec
from .version import __version__

CACHE_ENV = "SYMLSTM_CACHE_DIR"


def builtin_names() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in resources.files("symlstm.cells").iterdir()
                  if p.name.endswith(".toml"))


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


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symlstm"


# kernel_math.py too: Numba's cache does not notice changes in functions a kernel calls
_GENERATOR_MODULES = ("spec.py", "functions.py", "derive.py", "codegen.py", "kernel_math.py")


@functools.cache
def generator_fingerprint() -> str:
    """Hash of the generator's own source, so a changed generator never reuses stale kernels."""
    here = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    for name in _GENERATOR_MODULES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def content_key(spec: CellSpec) -> str:
    return hashlib.sha256(f"{generator_fingerprint()}\n{spec.sha256}".encode()).hexdigest()


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; return True if written."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False  # keep the mtime: numba's cache keys on it
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def generated_files(spec: CellSpec) -> dict[str, str]:
    """File name -> text of everything the generator writes for one cell."""
    from .codegen import emit_module
    from .derive import derive
    from .latex import latex_document

    derivation = derive(spec)
    return {f"{spec.name}.py": emit_module(derivation), f"{spec.name}.tex": latex_document(derivation)}


def _kernel_path(spec: CellSpec) -> Path:
    return cache_dir() / f"{spec.name}-{content_key(spec)[:16]}" / f"{spec.name}.py"


def _intact(path: Path) -> bool:
    """The module and its recorded hash agree (a crash mid-write or an edit shows up here)."""
    try:
        recorded = path.with_suffix(".sha256").read_text().strip()
        return hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    except OSError:
        return False


def ensure_kernels(spec: CellSpec) -> Path:
    """The path of the cell's kernel module in the cache, generating it if missing or damaged."""
    path = _kernel_path(spec)
    if not _intact(path):
        from .codegen import emit_module
        from .derive import derive

        source = emit_module(derive(spec))
        write_atomic(path, source)
        write_atomic(path.with_suffix(".sha256"), hashlib.sha256(source.encode()).hexdigest() + "\n")
    return path


def import_kernels(spec: CellSpec) -> ModuleType:
    path = ensure_kernels(spec)
    module_name = f"symlstm_kernels.{spec.name}_{content_key(spec)[:16]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover
        raise ImportError(f"cannot import the kernel module {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    if getattr(module, "SPEC_SHA256", None) != spec.sha256:
        raise SpecError(f"the kernel module {path} does not belong to this spec; delete it")
    return module
