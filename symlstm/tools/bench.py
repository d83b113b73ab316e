"""Benchmark: symlstm's kernels against PyTorch, side by side.

Every implementation runs in a process of its own (OpenBLAS and PyTorch's OpenMP threads spin and
steal each other's cores when they share one), the processes alternate over several rounds, and
each time is the median over all repeats. Implementations:

- ``symlstm``: the cell's generated kernels, forward + backward over the whole sequence;
- ``torch-nn``: ``torch.nn.LSTM``/``GRU``/``RNN`` (float32 runs oneDNN's fused primitive);
- ``torch-loop``: the same cell written as PyTorch code with a Python loop over time and autograd
  (``symlstm.verify.torch_reference``), what trying a new cell costs without symlstm;
- ``gemm``: only the matrix products a cell's kernels perform, with the same shapes and the same
  BLAS calls: the unavoidable part of the work.

``symlstm bench --inference`` (``bench_inference``: forward only, streaming, onnxruntime) and
``symlstm bench --torch`` (``bench_torch``: training steps inside PyTorch) run other suites of sides
with the same driver.

The machine sets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (a workaround for old OpenBLAS) which slow a
current OpenBLAS; the worker processes run without them, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GRID = ((100, 1, 32, 32), (100, 16, 64, 64), (100, 32, 128, 128), (100, 64, 256, 256), (50, 64, 512, 512))
QUICK_GRID = ((100, 1, 32, 32), (100, 16, 64, 64))
TORCH_MODULES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN", "lstmp": "LSTM"}
UNSET_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Impl:
    kind: str  # symlstm | torch-nn | torch-loop | gemm
    cell: str
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.cell}:{self.dtype}"

    @classmethod
    def parse(cls, label: str) -> Impl:
        return cls(*label.split(":"))


# -- what one worker process runs ----------------------------------------------------------------


def _problem(T, B, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, D)).astype(dtype), rng.standard_normal((T, B, H)).astype(dtype)


def other_sizes(cell, H: int) -> dict[str, int]:
    """The cell's size names besides D and H, at H/2 each (lstmp's projection P = H/2)."""
    return {name: max(H // 2, 1) for name in cell.size_names if name not in ("D", "H")}


def _symlstm_step(cell_name, size, dtype):
    import symlstm

    T, B, D, H = size
    cell = symlstm.cell(cell_name)
    params = cell.init_params(D, H, dtype=dtype, seed=0, **other_sizes(cell, H))
    x, dys = _problem(T, B, D, cell.state_sizes(D, H, **other_sizes(cell, H))[cell.state_names[0]], dtype)

    def run():
        ys, _, cache = cell.forward(x, params)
        cell.backward(dys, cache)

    _, _, cache = cell.forward(x, params)
    return run, cache.nbytes


def _torch_nn_step(cell_name, size, dtype):
    import torch

    T, B, D, H = size
    projection = {"proj_size": H // 2} if cell_name == "lstmp" else {}
    module = getattr(torch.nn, TORCH_MODULES[cell_name])(D, H, **projection).to(getattr(torch, dtype))
    x, dys = _problem(T, B, D, projection.get("proj_size", H), dtype)
    xt, dyt = torch.tensor(x, requires_grad=True), torch.tensor(dys)

    def run():
        out, _ = module(xt)
        out.backward(dyt)

    return run, _saved_bytes(lambda: module(xt)[0])


def _torch_loop_step(cell_name, size, dtype):
    import torch

    import symlstm
    from symlstm.verify.torch_reference import REFERENCE, run_reference

    T, B, D, H = size
    cell = symlstm.cell(cell_name)
    sizes = other_sizes(cell, H)
    arrays = cell.init_params(D, H, dtype=dtype, seed=0, **sizes)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    units = cell.state_sizes(D, H, **sizes)
    x, dys = _problem(T, B, D, units[cell.state_names[0]], dtype)
    xt, dyt = torch.tensor(x, requires_grad=True), torch.tensor(dys)
    state0 = {s: torch.zeros((B, units[s]), dtype=getattr(torch, dtype)) for s in cell.state_names}

    def run():
        out, _ = run_reference(REFERENCE[cell_name], xt, params, state0)
        out.backward(dyt)

    return run, _saved_bytes(lambda: run_reference(REFERENCE[cell_name], xt, params, state0)[0])


def _gemm_groups(cell_name) -> dict:
    """The cell's GEMM groups (operand -> its matrices); empty if the GEMM-only run cannot mimic
    them: it multiplies x and h_prev, each with stacked H-row blocks."""
    import symlstm
    from symlstm.ir.derive import derive
    from symlstm.ir.plan import StoragePlan

    cell = symlstm.cell(cell_name)
    groups = StoragePlan(derive(cell.spec)).groups
    return dict(groups) if sorted(groups) == ["h_prev", "x"] and cell.size_names == ("D", "H") else {}


def gemm_reference(cells) -> str | None:
    """The first of ``cells`` whose GEMMs the GEMM-only run can mimic (None: none of them)."""
    return next((cell for cell in cells if _gemm_groups(cell)), None)


def _gemm_step(cell_name, size, dtype):
    """The cell's matrix products alone, with the same shapes and calls as its kernels."""
    T, B, D, H = size
    groups = _gemm_groups(cell_name)
    if not groups:
        raise ValueError(f"the GEMM-only run supports cells whose products multiply x and h_prev, not {cell_name!r}")
    rng = np.random.default_rng(0)
    nx, nh = len(groups["x"]) * H, len(groups["h_prev"]) * H
    arrays = (
        rng.standard_normal((T, B, D)),
        rng.standard_normal((nx, D)),
        rng.standard_normal((nh, H)),
        rng.standard_normal((T + 1, B, H)),
        rng.standard_normal((T, B, nx)),
        rng.standard_normal((T, B, nh)),
    )
    x, w, r, seq_h, delta_x, delta_h = (a.astype(dtype) for a in arrays)
    w_t, r_t = np.ascontiguousarray(w.T), np.ascontiguousarray(r.T)
    # outputs allocated once, as the runtime's reused buffers are
    outputs = (
        np.empty((T * B, nx), dtype),
        np.empty((B, nh), dtype),
        np.empty((B, H), dtype),
        np.empty_like(w),
        np.empty_like(r),
        np.empty((T * B, D), dtype),
    )
    return (lambda: _gemm_only(x, w_t, w, r_t, r, seq_h, delta_x, delta_h, *outputs)), 0


def _gemm_only(*args):
    """Compiled on first use, so importing this module does not need Numba's compiler."""
    global _gemm_only
    import numba

    from symlstm.backends.numba.blas import gemm

    @numba.njit(cache=True)
    def gemm_only(x, w_t, w, r_t, r, seq_h, delta_x, delta_h, proj_x, step, back, grad_w, grad_r, dx):
        """The kernels' GEMMs, one thread calling BLAS (which uses its own threads)."""
        T, B, D = x.shape
        H = seq_h.shape[2]
        gemm(x.reshape(T * B, D), w_t, proj_x)
        for t in range(T):
            gemm(seq_h[t], r_t, step)
        for t in range(T):
            gemm(delta_h[t], r, back)
        flat_x, flat_h = delta_x.reshape(T * B, w.shape[0]), delta_h.reshape(T * B, r.shape[0])
        gemm(flat_x.T, x.reshape(T * B, D), grad_w)
        gemm(flat_h.T, seq_h[:T].reshape(T * B, H), grad_r)
        gemm(flat_x, w, dx)

    _gemm_only = gemm_only
    return gemm_only(*args)


def _saved_bytes(forward) -> int:
    """Bytes of the tensors autograd saves for the backward of ``forward()``."""
    import torch

    seen: dict[int, int] = {}

    def pack(tensor):
        seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(seen.values())


STEPS = {"symlstm": _symlstm_step, "torch-nn": _torch_nn_step, "torch-loop": _torch_loop_step, "gemm": _gemm_step}


def worker(label: str, sizes, repeats: int, budget: float, steps=None) -> dict:
    """Time ``label`` at every size; runs inside its own process. ``steps``: kind -> the function
    making the timed call (this module's ``STEPS`` by default)."""
    impl = Impl.parse(label)
    out = {}
    for size in sizes:
        run, stored = (steps or STEPS)[impl.kind](impl.cell, tuple(size), impl.dtype)
        t0 = time.perf_counter()
        run()  # warm up: compile or load kernels, allocate
        first = time.perf_counter() - t0
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < repeats and (len(times) < 2 or time.perf_counter() - start < budget):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        out[",".join(map(str, size))] = {"times": times, "stored_bytes": stored, "first_seconds": first}
    return out


# -- the driver ----------------------------------------------------------------------------------


def _run_worker(impl: Impl, sizes, repeats, budget, module: str) -> dict:
    """Run ``python -m module --worker ...``: the suite's module times one side."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    cmd = [
        sys.executable,
        "-m",
        module,
        "--worker",
        impl.label,
        "--sizes",
        json.dumps(sizes),
        "--repeats",
        str(repeats),
        "--budget",
        str(budget),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {impl.label} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def implementations(cells, dtypes, with_torch: bool) -> list[Impl]:
    impls = []
    for cell in cells:
        for dtype in dtypes:
            impls.append(Impl("symlstm", cell, dtype))
            if with_torch and cell in TORCH_MODULES:
                impls.append(Impl("torch-nn", cell, dtype))
        if with_torch:
            impls.append(Impl("torch-loop", cell, "float32"))
    reference = gemm_reference(cells)
    impls += [Impl("gemm", reference, dtype) for dtype in dtypes] if reference else []
    return impls


def machine_info() -> dict:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        import numba
        import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls SciPy's BLAS)
        from threadpoolctl import threadpool_info

        from symlstm.backends.numba import blas

        blas.load()  # the kernels' BLAS

        info["numba"] = numba.__version__
        info["blas"] = sorted(
            {
                f"{i['internal_api']} {i['version']} ({i.get('architecture')}, {i['num_threads']} threads)"
                for i in threadpool_info()
            }
        )
    except ImportError:
        info["blas"] = ["threadpoolctl not installed: BLAS unknown"]
    from symlstm.backends.numba import parallel

    info["symlstm_threads"] = parallel.num_threads()
    try:
        import torch

        info["torch"] = f"{torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        info["torch"] = "not installed"
    return info


def run(cells, dtypes, grid, rounds: int, repeats: int, budget: float, out_dir: Path, with_torch=True, suite=None):
    """Run every side of ``suite`` (a module with ``implementations``, ``format_report`` and
    optionally ``chart``, whose ``__main__`` runs ``worker``; this module by default) and write
    bench.md, bench.json and bench.png into ``out_dir``."""
    from tqdm import tqdm

    suite = suite or sys.modules[__name__]
    impls = suite.implementations(cells, dtypes, with_torch)
    sizes = [list(s) for s in grid]
    times: dict[tuple[str, str], list[float]] = {}
    stored: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], float] = {}  # the first call's time, in the first round
    with tqdm(total=rounds * len(impls), desc="benchmark", unit="process") as bar:
        for _ in range(rounds):  # alternate: every implementation once per round
            for impl in impls:
                bar.set_postfix_str(impl.label)
                for key, result in _run_worker(impl, sizes, repeats, budget, suite.__name__).items():
                    times.setdefault((impl.label, key), []).extend(result["times"])
                    stored[(impl.label, key)] = result["stored_bytes"]
                    first.setdefault((impl.label, key), result["first_seconds"])
                bar.update()
    medians = {k: float(np.median(v)) for k, v in times.items()}
    report = {
        "machine": machine_info(),
        "unset_env": list(UNSET_ENV),
        "grid": sizes,
        "median_seconds": {f"{a}@{b}": v for (a, b), v in medians.items()},
        "stored_bytes": {f"{a}@{b}": v for (a, b), v in stored.items()},
        "first_seconds": {f"{a}@{b}": v for (a, b), v in first.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    text = suite.format_report(report, cells, dtypes)
    (out_dir / "bench.md").write_text(text)
    if hasattr(suite, "chart"):
        suite.chart(report, cells, dtypes, out_dir / "bench.png")
    return text


def _med(report, label, size) -> float:
    return report["median_seconds"].get(f"{label}@{','.join(map(str, size))}", math.nan)


def machine_lines(report, what: str) -> list[str]:
    """The head of a report: the machine, the libraries, how the sides ran and what was timed."""
    from symlstm.backends.numba import parallel

    m = report["machine"]
    return [
        f"Machine: {m.get('cpu')} ({m.get('cpu_count')} cores), Python {m.get('python')}, "
        f"numba {m.get('numba', '?')}, torch {m.get('torch')}",
        f"BLAS: {'; '.join(m.get('blas', []))}",
        f"symlstm: {m.get('symlstm_threads', '?')} threads, each running a range of batch rows with "
        f"single-threaded BLAS while the step matrices are under "
        f"{parallel.MAX_SPLIT_STEP_BYTES >> 20} MiB, else one thread and BLAS's threads.",
        f"Workers ran with {' and '.join(report['unset_env'])} unset; each implementation in its own "
        f"process, alternating; times are medians, {what}.",
        "",
    ]


def table_head(grid) -> list[str]:
    """The header and rule of a table with one column per (T, B, D, H) of the grid."""
    header = "| T, B, D, H | " + " | ".join(f"{t},{b},{d},{h}" for t, b, d, h in grid) + " |"
    return [header, "|---" * (len(grid) + 1) + "|"]


def ratios(report, num: str, den: str) -> list[float]:
    """The median time of side ``num`` over that of ``den``, per size (NaN where one did not run)."""
    return [_med(report, num, s) / _med(report, den, s) for s in report["grid"]]


def ratio_row(name: str, values: list[float]) -> list[str]:
    """One table row of ratios, or none when no size has one."""
    if all(math.isnan(v) for v in values):
        return []
    return [f"| {name} | " + " | ".join("–" if math.isnan(v) else f"{v:.2f}" for v in values) + " |"]


def geomean(values) -> float:
    """The geometric mean of the values that are numbers (NaN if none is)."""
    values = [v for v in values if not math.isnan(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def format_report(report, cells, dtypes) -> str:
    grid = report["grid"]
    lines = machine_lines(report, "forward + backward over the whole sequence")
    lines += ["Times (ms):", "", *table_head(grid)]
    labels = sorted(
        {k.split("@")[0] for k in report["median_seconds"]},
        key=lambda s: (s.split(":")[1], s.split(":")[0], s.split(":")[2]),
    )
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(f"{_med(report, label, s) * 1e3:.3g}" for s in grid) + " |")

    def row(name, num, den):
        return ratio_row(name, ratios(report, num, den))

    lines += ["", "Ratios (time / time; below 1 means the first is faster):", "", *table_head(grid)]
    for dtype in dtypes:
        lines += row(f"symlstm lstm / torch nn.LSTM ({dtype})", f"symlstm:lstm:{dtype}", f"torch-nn:lstm:{dtype}")
        for cell in cells:
            if cell in TORCH_MODULES and cell != "lstm":
                lines += row(
                    f"symlstm {cell} / torch nn ({dtype})", f"symlstm:{cell}:{dtype}", f"torch-nn:{cell}:{dtype}"
                )
    for cell in cells:
        lines += row(
            f"torch loop / symlstm, {cell} (float32; speed-up)", f"torch-loop:{cell}:float32", f"symlstm:{cell}:float32"
        )
    reference = gemm_reference(cells)
    for dtype in dtypes:
        for cell in cells:
            if cell != "lstm":
                lines += row(f"{cell} / lstm, symlstm ({dtype})", f"symlstm:{cell}:{dtype}", f"symlstm:lstm:{dtype}")
        if reference:
            lines += row(
                f"symlstm {reference} / its GEMMs alone ({dtype})",
                f"symlstm:{reference}:{dtype}",
                f"gemm:{reference}:{dtype}",
            )
    geo = []
    for cell in cells:
        mean = geomean(ratios(report, f"torch-loop:{cell}:float32", f"symlstm:{cell}:float32"))
        if not math.isnan(mean):
            geo.append(f"{cell} {mean:.1f}x")
    if geo:
        lines += [
            "",
            "Speed-up over the PyTorch Python loop, geometric mean over the grid (float32): " + ", ".join(geo),
        ]
    lines += ["", "Bytes stored for the backward per step per hidden unit (per batch row):", ""]
    for label in labels:
        if label.startswith(("symlstm", "torch")) and ":lstm:" in label:
            vals = [
                report["stored_bytes"].get(f"{label}@{','.join(map(str, s))}", 0) / (s[0] * s[1] * s[3]) for s in grid
            ]
            lines.append(f"- {label}: " + ", ".join(f"{v:.0f}" for v in vals))
    return "\n".join(lines) + "\n"


def chart(report, cells, dtypes, path: Path) -> None:
    """Two panels: the times of every implementation of the first cell (log scale), and symlstm's
    time relative to torch.nn and to its own GEMMs alone (1 = as fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = report["grid"]
    cell = cells[0]
    labels = sorted({k.split("@")[0] for k in report["median_seconds"] if k.split(":")[1] == cell})
    positions = np.arange(len(grid))
    fig, (times, ratios) = plt.subplots(1, 2, figsize=(15, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(len(labels), 1)
    for k, label in enumerate(labels):
        times.bar(positions + k * width, [_med(report, label, s) * 1e3 for s in grid], width, label=label)
    times.set_yscale("log")
    times.set_ylabel("forward + backward time (ms, log scale)")
    times.set_title(f"{cell}: forward + backward over a sequence (lower is better)")
    times.legend(fontsize=8, ncol=2)
    pairs = [(f"vs torch.nn ({d})", f"symlstm:{cell}:{d}", f"torch-nn:{cell}:{d}") for d in dtypes]
    pairs += [(f"vs its GEMMs alone ({d})", f"symlstm:{cell}:{d}", f"gemm:{cell}:{d}") for d in dtypes]
    pairs = [p for p in pairs if any(not math.isnan(_med(report, p[2], s)) for s in grid)]
    width = 0.8 / max(len(pairs), 1)
    for k, (name, num, den) in enumerate(pairs):
        ratios.bar(
            positions + k * width,
            [_med(report, num, s) / _med(report, den, s) for s in grid],
            width,
            label=f"symlstm {name}",
        )
    ratios.axhline(1.0, color="black", linewidth=0.8)
    ratios.set_ylabel("time ratio (below 1: symlstm is faster)")
    ratios.set_title(f"symlstm {cell} relative to the others")
    ratios.legend(fontsize=8)
    for ax, step in ((times, len(labels)), (ratios, len(pairs))):
        ax.set_xticks(positions + 0.4 - 0.4 / max(step, 1))
        ax.set_xticklabels([f"T={t} B={b}\nD={d} H={h}" for t, b, d, h in grid], fontsize=8)
    fig.suptitle(f"{report['machine'].get('cpu')}, {report['machine'].get('cpu_count')} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None, suite=None, default_cells: str = "lstm,peephole,gru,rnn") -> int:
    """``symlstm bench``; ``suite``: another module's sides (``symlstm bench --inference``)."""
    suite = suite or sys.modules[__name__]
    parser = argparse.ArgumentParser(
        prog="symlstm bench", description=suite.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cells",
        default=default_cells,
        help="comma-separated cells; the first whose GEMMs it can mimic is the reference of the GEMM-only run "
        "(default: lstm,peephole,gru,rnn; 'all' for every built-in)",
    )
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--quick", action="store_true", help="two small sizes, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per process and size")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per size and process, at most")
    parser.add_argument("--no-torch", action="store_true", help="symlstm and GEMM-only runs only")
    parser.add_argument("--out", default="bench-out", help="folder for bench.md, bench.json, bench.png")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        steps = getattr(suite, "STEPS", STEPS)
        print(json.dumps(worker(args.worker, json.loads(args.sizes), args.repeats, args.budget, steps)))
        return 0
    import symlstm

    cells = symlstm.variants() if args.cells == "all" else args.cells.split(",")
    if "lstm" in cells:
        cells = ["lstm"] + [c for c in cells if c != "lstm"]
    grid = QUICK_GRID if args.quick else GRID
    rounds = 1 if args.quick else args.rounds
    text = run(
        cells,
        args.dtypes.split(","),
        grid,
        rounds,
        args.repeats,
        args.budget,
        Path(args.out),
        with_torch=not args.no_torch,
        suite=suite,
    )
    print(text)
    print(f"wrote {args.out}/bench.md, bench.json and bench.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
