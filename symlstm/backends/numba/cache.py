"""Kernel modules on disk: the cache folder, atomic writes, damaged-file checks, imports.

``numba.njit(cache=True)`` only caches functions that live in a real file, and keys its cache on
that file's modification time. So a cell's generated module is written once to a folder named by a
content hash (of the spec and the generator's source), atomically (temp file + rename), never
rewritten when unchanged, and imported with ``importlib``. A truncated or edited cache entry fails
its hash check and is rebuilt; a truncated or unreadable Numba cache file next to it is removed, so
Numba recompiles. When the configured cache folder cannot be written (a read-only file system or
install), kernels go to a private folder under the system's temporary folder instead, with a
``CacheWarning``. ``cache_info()`` and ``clear_cache()`` (``symlstm cache info|clear``) inspect and
empty the cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from symlstm.backends.numba import llvm_options
from symlstm.files import write_atomic
from symlstm.lang.spec import CellSpec, SpecError
from symlstm.version import __version__

CACHE_ENV = "SYMLSTM_CACHE_DIR"
#: the folder of one cache entry: ``<cell name>-<16 hex digits of the content key>``
_ENTRY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9a-f]{16}\Z")


class CacheWarning(UserWarning):
    """The kernel cache could not be used as configured; symlstm used another folder or rebuilt."""


def cache_dir() -> Path:
    """The configured kernel cache: ``$SYMLSTM_CACHE_DIR``, else ``$XDG_CACHE_HOME/symlstm``, else
    ``~/.cache/symlstm``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symlstm"


def _private_dir(folder: Path) -> bool:
    """True if ``folder`` is a real directory of ours that nobody else can write to (a folder in a
    shared temporary directory that someone else made could hold modules we would import)."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o022:
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


_fallback: Path | None = None


def fallback_cache_dir() -> Path:
    """Where kernels go when the configured cache cannot be written: ``symlstm-cache-<uid>`` in the
    temporary folder (``$TMPDIR``), created private; if that name is taken by a folder that is not
    private to this user, a fresh ``mkdtemp`` folder for this process."""
    global _fallback
    if _fallback is not None and _private_dir(_fallback):
        return _fallback
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    candidate = Path(tempfile.gettempdir()) / f"symlstm-cache-{user}"
    try:
        candidate.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        pass
    _fallback = candidate if _private_dir(candidate) else Path(tempfile.mkdtemp(prefix="symlstm-cache-"))
    return _fallback


def _probe_writable(folder: Path) -> None:
    """Raise ``OSError`` unless a file can be created in ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


#: the packages whose source decides what a kernel module holds; kernel_math too, since Numba's
#: cache does not notice changes in the functions a kernel calls
_GENERATOR_PACKAGES = ("lang", "ir", "backends/numba")


@functools.cache
def generator_fingerprint() -> str:
    """Hash of the generator's own source, so a changed generator never reuses stale kernels."""
    root = Path(__file__).parents[2]
    digest = hashlib.sha256(__version__.encode())
    for package in _GENERATOR_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def content_key(spec: CellSpec) -> str:
    return hashlib.sha256(f"{generator_fingerprint()}\n{spec.sha256}".encode()).hexdigest()


def _entry_name(spec: CellSpec) -> str:
    return f"{spec.name}-{content_key(spec)[:16]}"


def _kernel_path(spec: CellSpec, root: Path | None = None) -> Path:
    return (cache_dir() if root is None else root) / _entry_name(spec) / f"{spec.name}.py"


def _intact(path: Path) -> bool:
    """The module and its recorded hash agree (a crash mid-write or an edit shows up here)."""
    try:
        recorded = path.with_suffix(".sha256").read_text().strip()
        return hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    except (OSError, UnicodeDecodeError):
        return False


def _ensure_in(root: Path, spec: CellSpec, source) -> Path:
    """The kernel module of ``spec`` under ``root``, written if missing or damaged; raises
    ``OSError`` if the entry's folder cannot be written (Numba must be able to cache beside it)."""
    path = _kernel_path(spec, root)
    if _intact(path):
        _probe_writable(path.parent)
        return path
    text = source()
    write_atomic(path, text)
    write_atomic(path.with_suffix(".sha256"), hashlib.sha256(text.encode()).hexdigest() + "\n")
    return path


def ensure_kernels(spec: CellSpec) -> Path:
    """The path of the cell's kernel module in the cache, generating it if missing or damaged.

    If the configured cache cannot be written, the module goes to ``fallback_cache_dir()`` and a
    ``CacheWarning`` says so; if that fails too, an ``OSError`` names both folders.
    """

    @functools.cache
    def source() -> str:
        from symlstm.backends.numba.emit import emit_module
        from symlstm.ir.derive import derive

        return emit_module(derive(spec))

    primary = cache_dir()
    try:
        return _ensure_in(primary, spec, source)
    except OSError as err:
        problem = err
    try:
        fallback = fallback_cache_dir()
        if fallback.resolve() == primary.resolve():
            raise problem
        path = _ensure_in(fallback, spec, source)
    except OSError as err:
        raise OSError(
            f"cannot write the kernel module of cell {spec.name!r}: {primary} "
            f"({_reason(problem)}) and the fallback {_reason(err)}; set {CACHE_ENV} to a "
            "writable folder"
        ) from err
    warnings.warn(
        f"symlstm: the kernel cache {primary} cannot be written ({_reason(problem)}); "
        f"using {fallback} instead. Set {CACHE_ENV} to a writable folder to choose "
        "where kernels go.",
        CacheWarning,
        stacklevel=4,
    )
    return path


def _reason(err: OSError) -> str:
    where = f" {err.filename}" if getattr(err, "filename", None) else ""
    return f"{err.strerror or err}:{where}" if where else f"{err.strerror or err}"


def _complete_pickles(path: Path, count: int) -> None:
    """Raise unless ``path`` holds ``count`` complete pickles. Walks the opcodes without running
    them (unpickling Numba's data here would import things and could have side effects)."""
    import io
    import pickletools

    with open(path, "rb") as fh:
        stream = io.BytesIO(fh.read())
    for _ in range(count):
        for _op in pickletools.genops(stream):
            pass


def _check_numba_cache(path: Path) -> None:
    """Remove Numba's cache files for the module at ``path`` if any is truncated or unreadable
    (Numba itself would stop with an UnpicklingError); Numba then recompiles those functions."""
    pycache = path.parent / "__pycache__"
    try:
        indexes = sorted(pycache.glob(f"{path.stem}.*.nbi"))
    except OSError:
        return
    for index in indexes:
        stem = index.name[: -len(".nbi")]
        files = [(index, 2), *((data, 1) for data in sorted(pycache.glob(f"{stem}.*.nbc")))]
        try:
            for file, count in files:  # the index holds Numba's version, then the overloads
                _complete_pickles(file, count)
        except FileNotFoundError:
            continue  # removed meanwhile (e.g. by a clear); Numba copes with missing files
        except Exception as err:  # noqa: BLE001 - any failure to read it means it is damaged
            for damaged, _ in files:
                damaged.unlink(missing_ok=True)
            warnings.warn(
                f"symlstm: removed the damaged Numba cache of {stem} in {pycache} "
                f"({type(err).__name__}: {err}); it is compiled again",
                CacheWarning,
                stacklevel=4,
            )


def import_kernels(spec: CellSpec) -> ModuleType:
    module_name = f"symlstm_kernels.{spec.name}_{content_key(spec)[:16]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = ensure_kernels(spec)
    _check_numba_cache(path)
    llvm_options.apply()  # before Numba compiles anything of the module
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


# -- inspecting and clearing the cache --------------------------------------------------------------
def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _entries(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if _ENTRY.match(p.name) and p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def cache_info() -> dict:
    """What the kernel cache holds: its folders and, per entry, the cell, size and state."""
    roots = [("cache", cache_dir())]
    fallback = (
        _fallback
        if _fallback is not None
        else Path(tempfile.gettempdir()) / f"symlstm-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    )
    if fallback.is_dir() and _private_dir(fallback) and fallback != roots[0][1]:
        roots.append(("fallback", fallback))
    folders = []
    for role, root in roots:
        try:
            _probe_writable(root) if root.is_dir() else None
            writable = True if root.is_dir() else None
        except OSError:
            writable = False
        entries: list[dict[str, Any]] = []
        for entry in _entries(root):
            cell = entry.name.rsplit("-", 1)[0]
            module = entry / f"{cell}.py"
            pycache = entry / "__pycache__"
            compiled = sorted(p.name for p in pycache.glob("*.nbi")) if pycache.is_dir() else []
            entries.append(
                {
                    "name": entry.name,
                    "cell": cell,
                    "path": str(entry),
                    "bytes": _folder_bytes(entry),
                    "intact": _intact(module),
                    "compiled": len(compiled),
                }
            )
        folders.append(
            {
                "role": role,
                "path": str(root),
                "exists": root.is_dir(),
                "writable": writable,
                "entries": entries,
                "bytes": sum(e["bytes"] for e in entries),
            }
        )
    return {"env": CACHE_ENV, "env_set": bool(os.environ.get(CACHE_ENV)), "folders": folders}


def clear_cache() -> tuple[int, int]:
    """Delete every cache entry (``<cell>-<hash>`` folders only, nothing else in the folder) from the
    configured cache and the fallback; return (entries removed, bytes freed). Kernels are rebuilt
    and recompiled on next use. Processes that have a cell loaded keep working."""
    removed = freed = 0
    for folder in cache_info()["folders"]:
        for entry in folder["entries"]:
            path = Path(entry["path"])
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                continue
            removed += 1
            freed += entry["bytes"]
    return removed, freed
