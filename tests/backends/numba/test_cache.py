"""The kernel cache: fallback when it cannot be written, damaged entries, `symlstm cache`.

The read-only and damaged-Numba-cache cases run in real processes. As root, permissions do not
stop writes, so the read-only test mounts the cache and the installed package read-only in a
private mount namespace of its process (`unshare -m`); as another user it uses chmod.
"""

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from symlstm.backends.numba import cache as build
from symlstm.backends.numba.cache import CacheWarning, ensure_kernels
from symlstm.files import write_atomic
from symlstm.lang.spec import parse_spec
from symlstm.tools.cli import main

TINY = 'name = "tiny"\nstate = ["h"]\n[equations]\nh = "tanh(W @ x + R @ h_prev + b_h)"\n'

RUN = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("always")
import symlstm
cell = symlstm.cell(sys.argv[1])
params = cell.init_params(3, 4, seed=0)
x = np.random.default_rng(0).standard_normal((5, 2, 3))
ys, state, cache = cell.forward(x, params)
dx, dparams, _ = cell.backward(np.ones_like(ys), cache)
print(json.dumps({"module": cell.kernels.module.__file__, "ys": float(ys.sum()), "dx": float(dx.sum()),
                  "dW": float(dparams["W"].sum())}))
"""


def run(spec: Path, cache: Path, prefix: list[str] = (), env: dict | None = None) -> tuple[dict, str]:
    env = dict(os.environ, SYMLSTM_CACHE_DIR=str(cache), **(env or {}))
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", RUN, str(spec)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny cell's spec, a cache where a process built and compiled it, and its results."""
    root = tmp_path_factory.mktemp("built")
    spec = root / "tiny.toml"
    spec.write_text(TINY)
    result, _ = run(spec, root / "cache")
    return spec, root / "cache", result


@pytest.fixture
def fresh_fallback(monkeypatch, tmp_path):
    """Point the temporary folder (where the fallback cache goes) at an empty folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(build, "_fallback", None)
    return tmp


def user_fallback(tmp: Path) -> Path:
    return tmp / f"symlstm-cache-{os.getuid()}"


def test_unwritable_cache_falls_back_with_a_warning(tmp_path, monkeypatch, fresh_fallback):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(blocker / "cache"))
    spec = parse_spec(TINY)
    with pytest.warns(CacheWarning, match=r"kernel cache .*a-file/cache cannot be written .* using "):
        path = ensure_kernels(spec)
    assert path.parent.parent == user_fallback(fresh_fallback)
    assert build._intact(path)
    assert stat.S_IMODE(user_fallback(fresh_fallback).stat().st_mode) == 0o700
    with pytest.warns(CacheWarning):
        assert ensure_kernels(spec) == path  # the next load finds it there (and says why)


def test_intact_but_read_only_entry_falls_back(tmp_path, monkeypatch, fresh_fallback):
    primary = tmp_path / "cache"
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(primary))
    spec = parse_spec(TINY)
    ensure_kernels(spec)
    before = tree(primary)
    real_probe = build._probe_writable

    def read_only(folder):
        if primary in Path(folder).parents or Path(folder) == primary:
            raise PermissionError(13, "Read-only file system", str(folder))
        return real_probe(folder)

    monkeypatch.setattr(build, "_probe_writable", read_only)
    with pytest.warns(CacheWarning, match="Read-only file system"):
        path = ensure_kernels(spec)
    assert user_fallback(fresh_fallback) in path.parents
    assert tree(primary) == before


def test_a_fallback_folder_others_can_write_is_not_used(tmp_path, monkeypatch, fresh_fallback):
    shared = user_fallback(fresh_fallback)
    shared.mkdir()
    os.chmod(shared, 0o777)  # e.g. made by someone else in a shared /tmp
    chosen = build.fallback_cache_dir()
    assert chosen != shared and chosen.parent == fresh_fallback
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700


def test_no_writable_folder_at_all_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))
    monkeypatch.setattr(build, "_fallback", None)
    with pytest.raises(
        OSError,
        match=r"cannot write the kernel module of cell 'tiny': .*a-file/cache "
        r"\(.*\) and the fallback .*; set SYMLSTM_CACHE_DIR to a writable folder",
    ):
        ensure_kernels(parse_spec(TINY))


@pytest.mark.parametrize("damage", ["truncated module", "edited module", "bad hash", "no hash"])
def test_damaged_entries_are_rebuilt(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(tmp_path / "cache"))
    spec = parse_spec(TINY)
    path = ensure_kernels(spec)
    good = path.read_bytes()
    hash_file = path.with_suffix(".sha256")
    if damage == "truncated module":
        path.write_bytes(good[: len(good) // 3])
    elif damage == "edited module":
        path.write_bytes(good.replace(b"np.tanh", b"np.sinh").replace(b"import math", b"import os"))
    elif damage == "bad hash":
        hash_file.write_text("0" * 64)
    else:
        hash_file.unlink()
    assert ensure_kernels(spec) == path
    assert path.read_bytes() == good and build._intact(path)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_damaged_numba_cache_is_removed_and_recompiled(built, tmp_path):
    spec, cache, expected = built
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    pycache = next(copy.glob("tiny-*")) / "__pycache__"
    index = sorted(pycache.glob("tiny.forward_steps-*.nbi"))[0]
    index.write_bytes(index.read_bytes()[:40])  # truncated, as after a full disk
    data = sorted(pycache.glob("tiny.backward_steps-*.nbc"))[0]
    data.write_bytes(data.read_bytes()[:1000])
    result, stderr = run(spec, copy)
    assert "CacheWarning" in stderr and "removed the damaged Numba cache of tiny.forward_steps" in stderr
    assert "tiny.backward_steps" in stderr
    assert {k: result[k] for k in ("ys", "dx", "dW")} == {k: expected[k] for k in ("ys", "dx", "dW")}
    result, stderr = run(spec, copy)  # rebuilt: the next process loads it without complaint
    assert "CacheWarning" not in stderr


def _read_only_prefix(folders: list[Path]) -> list[str] | None:
    """A command prefix that runs a process with ``folders`` mounted read-only (root: a private
    mount namespace, so nothing changes outside the process), or None when chmod is enough."""
    if os.name != "posix":
        pytest.skip("POSIX permissions needed")
    if os.geteuid() != 0:
        return None
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("running as root without `unshare -m`: cannot make a folder read-only for root")
    mounts = " && ".join(
        f"mount --bind {shlex.quote(str(f))} {shlex.quote(str(f))} && mount -o remount,bind,ro {shlex.quote(str(f))}"
        for f in folders
    )
    return ["unshare", "-m", "sh", "-c", mounts + ' && exec "$@"', "sh"]


def test_read_only_cache_and_install_in_a_real_process(built):
    """A process that can write neither the cache nor the installed package loads the cell from
    a private fallback folder, warns, and computes the same numbers."""
    import symlstm

    spec, cache, expected = built
    package = Path(symlstm.__file__).parent
    prefix = _read_only_prefix([cache, package])
    tmp = cache.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    before = tree(cache)
    if prefix is None:  # not root: permissions suffice
        for path in [cache, *cache.rglob("*"), package]:
            if path.is_dir():
                os.chmod(path, 0o555)
    try:
        result, stderr = run(spec, cache, prefix=prefix or [], env={"TMPDIR": str(tmp)})
    finally:
        if prefix is None:
            for path in [cache, *cache.rglob("*"), package]:
                if path.is_dir():
                    os.chmod(path, 0o755)
    assert "CacheWarning" in stderr and "cannot be written" in stderr, stderr[-2000:]
    assert "Read-only file system" in stderr or "Permission denied" in stderr
    module = Path(result["module"])
    assert tmp in module.parents and module.name == "tiny.py"
    assert stat.S_IMODE(module.parent.parent.stat().st_mode) == 0o700
    assert tree(cache) == before  # nothing written to the read-only cache
    assert {k: result[k] for k in ("ys", "dx", "dW")} == {k: expected[k] for k in ("ys", "dx", "dW")}


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys, fresh_fallback):
    primary = tmp_path / "cache"
    monkeypatch.setenv("SYMLSTM_CACHE_DIR", str(primary))
    spec = parse_spec(TINY)
    path = ensure_kernels(spec)
    other = parse_spec(TINY.replace('"tiny"', '"tiny2"'))
    ensure_kernels(other)
    (primary / "keep-me.txt").write_text("not ours")
    (primary / "notes").mkdir()
    path.write_bytes(b"# damaged")

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {primary} (from $SYMLSTM_CACHE_DIR), writable; 2 entries" in out
    assert "DAMAGED" in out and out.count(" ok") == 1
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    entries = info["folders"][0]["entries"]
    assert sorted(e["cell"] for e in entries) == ["tiny", "tiny2"]
    assert {e["cell"]: e["intact"] for e in entries} == {"tiny": False, "tiny2": True}

    assert main(["cache", "clear"]) == 0
    assert "removed 2 cache entries" in capsys.readouterr().out
    assert sorted(p.name for p in primary.iterdir()) == ["keep-me.txt", "notes"]  # only our entries go
    assert main(["cache", "info"]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert build._intact(ensure_kernels(spec))  # and it is rebuilt on next use


def test_written_files_get_the_usual_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = tmp_path / "out" / "file.txt"
        assert write_atomic(path, "text")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert not write_atomic(path, "text")  # unchanged: not rewritten
    finally:
        os.umask(mask)
