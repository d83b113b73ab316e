"""The incremental build: steps that make files, a manifest of their keys, threads, progress.

A ``Step`` makes one or more files from inputs summed up in its ``key`` (a hash). ``run_steps``
writes the files of the steps whose key changed (or whose files are gone) and records the keys in
``DIR/.symlstm-docs.json``; steps that run external programs run in parallel threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symlstm.files import write_atomic
from symlstm.version import __version__

#: bump when the builder's output changes in a way its inputs do not show
FORMAT = "1"
MANIFEST = ".symlstm-docs.json"


class DocsError(RuntimeError):
    """A documentation build step failed; the message names the file and the tool's output."""


@dataclass(eq=False)
class Step:
    outputs: tuple[str, ...]
    key: str
    make: Callable[[], dict[str, bytes]]
    external: bool = False  # runs a program: in a worker thread


@dataclass
class Report:
    out: Path
    written: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def step_key(*parts: object) -> str:
    """The hash of a step's inputs (and of the builder's format and version)."""
    digest = hashlib.sha256(f"symlstm-docs {FORMAT} {__version__}".encode())
    for part in parts:
        digest.update(b"\0" + (part if isinstance(part, bytes) else str(part).encode()))
    return digest.hexdigest()


def text_step(path: str, text: str) -> Step:
    """A file whose text is already known."""
    data = text.encode("utf-8")
    return Step((path,), step_key("text", data), lambda: {path: data})


def run_steps(
    steps: list[Step], report: Report, force: bool = False, progress: bool = True, jobs: int | None = None
) -> Report:
    """Make the files of ``steps`` that are not up to date in ``report.out``; record the rest."""
    out = report.out
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if not force else {}
        files = manifest.get("files", {}) if manifest.get("format") == FORMAT else {}
    except (OSError, ValueError):
        files = {}

    def current(step: Step) -> bool:
        return all(files.get(p) == step.key and (out / p).exists() for p in step.outputs)

    todo = [s for s in steps if force or not current(s)]
    for s in steps:
        if s not in todo:
            report.reused += list(s.outputs)
    bar = _progress(len(steps), progress, initial=len(steps) - len(todo))

    def finish(step: Step, result: dict[str, bytes]) -> None:
        for path, data in result.items():
            write_atomic(out / path, data)
            files[path] = step.key
            report.written.append(path)
        bar.update(1)

    out.mkdir(parents=True, exist_ok=True)
    workers = jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as threads:
        futures: list[tuple[Step, Any]] = [(s, threads.submit(s.make)) for s in todo if s.external]
        futures += [(s, _Done(s.make)) for s in todo if not s.external]
        for s, future in futures:
            try:
                finish(s, future.result())
            except Exception as err:  # noqa: BLE001 - report every failed file, keep the rest
                report.errors.append(f"{', '.join(s.outputs)}: {err}")
                bar.update(1)
    bar.close()
    write_atomic(
        manifest_path,
        (
            json.dumps({"format": FORMAT, "version": __version__, "files": dict(sorted(files.items()))}, indent=1)
            + "\n"
        ).encode(),
    )
    return report


class _Done:
    """A step run right here, with the interface of a future."""

    def __init__(self, make):
        try:
            self.value, self.error = make(), None
        except Exception as err:  # noqa: BLE001
            self.value, self.error = None, err

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


class _NoBar:
    def update(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, initial: int):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc="symlstm docs", unit="file", file=sys.stderr, dynamic_ncols=True, leave=True
    )
