"""Memory and time of one forward + backward over a long sequence, with and without checkpointing.

Each configuration runs in a fresh process. The process first loads the cell and runs it once on a
short sequence (so compiling is not measured), allocates x, dys and the parameters, and then
measures one ``forward`` and one ``backward``:

- peak memory: the process's peak resident set size during forward + backward minus its resident
  size just before (Linux: the peak is reset through /proc/self/clear_refs; elsewhere ru_maxrss of
  the fresh process is used). It counts everything the two calls allocate: the outputs ys and dx,
  the cache (its copy of x, the stored activations or checkpoints) and the kernels' temporaries.
- ``cache.nbytes``: what the cache keeps of the activations (the stored sequences, or the
  checkpoints).

Times are the fastest of ``--repeat`` runs. On a busy machine OpenBLAS's threads make the many
mid-sized GEMMs of short segments slow (k = 100 was 10x slower with 2 threads than with 1 on a
loaded 2-core machine); OPENBLAS_NUM_THREADS=1 gives steadier numbers for B = 1.

Usage: python scripts/long_sequences.py [--cell lstm] [--T 100000] [--B 1] [--D 64] [--H 64]
       [--checkpoint none,316,1000] [--dtype float64] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
import symlstm

cell_name, T, B, D, H, k, dtype, repeat = sys.argv[1:9]
repeat = int(repeat)
T, B, D, H = int(T), int(B), int(D), int(H)
k = None if k == "none" else int(k)


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


cell = symlstm.cell(cell_name)
params = cell.init_params(D, H, dtype=dtype, seed=0)
warm = np.zeros((3, B, D), dtype)
ys, _, cache = cell.forward(warm, params, checkpoint=k)
cell.backward(np.ones_like(ys), cache)
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, D)).astype(dtype)
dys = rng.standard_normal((T, B, H)).astype(dtype)
del ys, cache
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak RSS (Linux >= 4.0)
    reset = True
except OSError:
    reset = False
base = rss()
times = []
for n in range(repeat):
    t0 = time.perf_counter()
    ys, state, cache = cell.forward(x, params, checkpoint=k)
    t1 = time.perf_counter()
    dx, dparams, dstate0 = cell.backward(dys, cache)
    t2 = time.perf_counter()
    times.append((t1 - t0, t2 - t1))
    if n == 0:
        peak_bytes = peak() - base
        cache_nbytes = cache.nbytes
    del ys, state, cache, dx, dparams, dstate0
forward_s, backward_s = min(times, key=sum)
print(json.dumps({"peak_bytes": peak_bytes, "peak_reset": reset, "cache_nbytes": cache_nbytes,
                  "forward_s": forward_s, "backward_s": backward_s, "x_bytes": x.nbytes,
                  "ys_bytes": T * B * H * x.itemsize}))
"""


def measure(
    cell: str, T: int, B: int, D: int, H: int, k: str, dtype: str = "float64", repeat: int = 1, env: dict | None = None
) -> dict:
    """Run one configuration in a fresh process; ``k`` is "none" or the checkpoint interval."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, cell, str(T), str(B), str(D), str(H), k, dtype, str(repeat)],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="lstm")
    for dim, default in (("T", 100_000), ("B", 1), ("D", 64), ("H", 64)):
        parser.add_argument(f"--{dim}", type=int, default=default)
    parser.add_argument(
        "--checkpoint", default="none,316,1000", help="comma-separated values of k, 'none' for no checkpointing"
    )
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=3, help="report the fastest of this many runs")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args(argv)
    results = []
    for k in args.checkpoint.split(","):
        result = measure(args.cell, args.T, args.B, args.D, args.H, k.strip(), args.dtype, args.repeat)
        results.append({"checkpoint": k.strip(), **result})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"{args.cell}, T={args.T}, B={args.B}, D={args.D}, H={args.H}, {args.dtype}, "
        f"OPENBLAS_NUM_THREADS={threads}, fastest of {args.repeat}; "
        f"x and dys are {results[0]['x_bytes'] / 1e6:.1f} MB each, ys {results[0]['ys_bytes'] / 1e6:.1f} MB"
    )
    print()
    print("| checkpoint | peak memory of forward + backward | stored by the cache | forward | backward | total |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['checkpoint']} | {r['peak_bytes'] / 1e6:.0f} MB | {r['cache_nbytes'] / 1e6:.1f} MB | "
            f"{r['forward_s']:.2f} s | {r['backward_s']:.2f} s | {r['forward_s'] + r['backward_s']:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
