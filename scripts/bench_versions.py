"""Two versions of symlstm side by side: the same kernels' time in one tree against another.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/bench_versions.py OLD_TREE [NEW_TREE]

Each tree is a checkout (e.g. ``git worktree add /tmp/old <commit>``). Every (tree, cell, dtype)
runs in a process of its own through ``symlstm bench``'s worker (``symlstm.bench`` in trees from
before the layout of issue 11, ``symlstm.tools.bench`` after), with a kernel cache of its own,
the trees alternating over the rounds; each time is the median over all repeats of all rounds.
The workers run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, which slow a current OpenBLAS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

UNSET_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
QUICK = [[100, 1, 32, 32], [100, 16, 64, 64]]
GRID = QUICK + [[100, 32, 128, 128], [100, 64, 256, 256], [50, 64, 512, 512]]


def worker_module(tree: Path) -> str:
    return "symlstm.tools.bench" if (tree / "symlstm" / "tools" / "bench.py").exists() else "symlstm.bench"


def run_worker(tree: Path, cache: Path, label: str, sizes, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(PYTHONPATH=str(tree), SYMLSTM_CACHE_DIR=str(cache))
    cmd = [
        sys.executable,
        "-m",
        worker_module(tree),
        "--worker",
        label,
        "--sizes",
        json.dumps(sizes),
        "--repeats",
        str(repeats),
        "--budget",
        "20",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise RuntimeError(f"{label} in {tree} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=Path(__file__).resolve().parents[1])
    parser.add_argument("--cells", default="lstm,peephole,gru,rnn")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--full", action="store_true", help="the whole grid (default: the two quick sizes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    sizes = GRID if args.full else QUICK
    labels = [f"symlstm:{c}:{d}" for c in args.cells.split(",") for d in args.dtypes.split(",")]
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {side: Path(tmp) / side for side in trees}
        for k in range(args.rounds):
            order = list(trees) if k % 2 == 0 else list(reversed(trees))
            for label in labels:
                for side in order:
                    for size, result in run_worker(trees[side], caches[side], label, sizes, args.repeats).items():
                        times.setdefault((side, label, size), []).extend(result["times"])
    print(f"old: {trees['old']}\nnew: {trees['new']}")
    print("(workers ran without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE)\n")
    print("| cell | dtype | T, B, D, H | old ms | new ms | new / old |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for label in labels:
        _, cell, dtype = label.split(":")
        for size in (",".join(map(str, s)) for s in sizes):
            old, new = (statistics.median(times[(side, label, size)]) * 1e3 for side in ("old", "new"))
            ratios.append(new / old)
            print(f"| {cell} | {dtype} | {size} | {old:.3f} | {new:.3f} | {new / old:.2f} |")
    print(f"\ngeometric mean of new / old: {statistics.geometric_mean(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
