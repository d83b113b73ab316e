"""``symlstm bench --torch``: a full PyTorch training step (forward, backward, Adam) side by side.

The same driver as ``symlstm bench`` (one process per side, alternating rounds, medians). Sides,
float32, each one training step over the whole sequence of a loss ``sum(output * g)``:

- ``module``: ``symlstm.torch.Recurrent(cell, D, H)``, the cell's kernels inside PyTorch, on
  PyTorch's OpenMP threads (``symlstm.torch.set_threads("torch")``, the default), and
  ``module-own``: on the kernels' own threads (``set_threads("symlstm")``);
- ``module-fb``: the same without the optimizer step; ``raw``: ``cell.forward`` +
  ``cell.backward`` on NumPy arrays (without dx, as the module, whose input needs no
  gradient); ``loss``: the loss alone (its product, sum and their backward) on a tensor of the
  output's shape. ``(module-fb - loss) / raw`` is the wrapper's overhead, ``module-fb / raw``
  that with the loss, which ``raw`` does not compute; ``raw-loss``: what a user without the
  wrapper writes for the same step, ``cell.forward``, the loss by autograd on a tensor over its
  output, ``cell.backward`` of that gradient, on the threads the module uses: ``module-fb /
  raw-loss`` is the wrapper's overhead with everything else equal. (Run between the kernels, the
  loss's product and sum take ~6x as long as on tensors in cache, which ``loss`` times: the
  kernels' arrays push them and torch's own code out, so ``module-fb - loss`` counts that too.);
- ``torch-nn``: ``torch.nn.LSTM``/``GRU``/``RNN`` (oneDNN's fused primitive in float32);
- ``module-fused`` and ``torch-nn-fused``: ``module`` and ``torch-nn`` with ``Adam(fused=True)``
  (first cell only). PyTorch's default Adam on CPU updates one tensor after the other, ~15 us of
  operator calls each: a module with the spec's 12 LSTM tensors pays for 12 where ``nn.LSTM``'s
  stacked weights are 4; the fused Adam is one kernel call per step;
- ``torch-loop``: the cell written as PyTorch code with a Python loop over time
  (``symlstm.verify.torch_reference``), autograd for the backward: what a new cell costs without
  symlstm; ``torch-compile``: that loop under ``torch.compile``, whose first call (the compile) is
  reported apart. ``--no-torch`` leaves this side out (its compiling takes minutes per size).
"""

from __future__ import annotations

import numpy as np

from symlstm.tools.bench import TORCH_MODULES, _med, geomean, machine_lines, ratio_row, ratios, table_head

#: the user spec the benchmark trains besides the built-ins (examples/mut1.toml)
USER_SPEC = "mut1"
CUSTOM = ("peephole", USER_SPEC)  # cells PyTorch has no module for


def _cell_name(name: str) -> str:
    """A built-in name, or the path of the example spec ``name`` in examples/."""
    import os

    import symlstm

    if name in symlstm.cells.builtin_names():
        return name
    return os.path.join(os.path.dirname(symlstm.__file__), os.pardir, "examples", f"{name}.toml")


def _problem(size, dtype, H_out):
    T, B, D, _ = size
    rng = np.random.default_rng(0)
    return rng.standard_normal((T, B, D)).astype(dtype), rng.standard_normal((T, B, H_out)).astype(dtype)


def _training_step(module, params, x, g, adam: bool = True, fused: bool = False):
    """One step: forward, the backward of ``sum(output * g)``, and (``adam``) an Adam update,
    ``fused`` or PyTorch's default (a loop over the tensors on CPU)."""
    import torch

    params = list(params)
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused or None) if adam else None
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def run():
        for p in params:
            p.grad = None
        (module(xt)[0] * gt).sum().backward()
        if optimizer is not None:
            optimizer.step()

    return run


def _module_step(cell_name, size, dtype, adam=True, threads="torch", fused=False):
    import torch

    import symlstm.torch

    symlstm.torch.set_threads(threads)
    T, B, D, H = size
    torch.manual_seed(0)
    module = symlstm.torch.Recurrent(_cell_name(cell_name), D, H, dtype=getattr(torch, dtype))
    x, g = _problem(size, dtype, H)
    return _training_step(module, module.parameters(), x, g, adam, fused), 0


def _module_fused_step(cell_name, size, dtype):
    return _module_step(cell_name, size, dtype, fused=True)


def _module_fb_step(cell_name, size, dtype):
    return _module_step(cell_name, size, dtype, adam=False)


def _module_own_step(cell_name, size, dtype):
    return _module_step(cell_name, size, dtype, threads="symlstm")


def _raw_problem(cell_name, size, dtype):
    """The cell, its parameters, x and g of the sides that call ``cell.forward``/``backward``."""
    import symlstm

    T, B, D, H = size
    cell = symlstm.cell(_cell_name(cell_name))
    return (cell, cell.init_params(D, H, dtype=dtype, seed=0), *_problem(size, dtype, H))


def _raw_step(cell_name, size, dtype):
    cell, params, x, g = _raw_problem(cell_name, size, dtype)

    def run():
        _, _, cache = cell.forward(x, params)
        cell.backward(g, cache, input_grad=False)  # as the module, whose input needs no gradient

    return run, 0


def _raw_loss_step(cell_name, size, dtype):
    """``raw`` with the loss between, as a user without the wrapper runs it (module docstring)."""
    import torch

    from symlstm.torch.threads import kernel_threads

    cell, params, x, g = _raw_problem(cell_name, size, dtype)
    gt = torch.from_numpy(g)

    def run():
        with kernel_threads():  # torch's OpenMP team, as the module's kernels
            ys, _, cache = cell.forward(x, params)
        output = torch.from_numpy(ys).requires_grad_()
        (output * gt).sum().backward()
        with kernel_threads():
            cell.backward(output.grad.numpy(), cache, input_grad=False)

    return run, 0


def _loss_step(cell_name, size, dtype):
    """What module-fb does besides the module: the loss and its backward, on a leaf of the
    output's shape."""
    import torch

    x, g = _problem(size, dtype, size[3])
    output = torch.zeros(g.shape, dtype=getattr(torch, dtype), requires_grad=True)
    return _training_step(lambda _: (output,), [output], x, g, adam=False), 0


def _torch_nn_step(cell_name, size, dtype, fused=False):
    import torch

    T, B, D, H = size
    torch.manual_seed(0)
    module = getattr(torch.nn, TORCH_MODULES[cell_name])(D, H).to(getattr(torch, dtype))
    x, g = _problem(size, dtype, H)
    return _training_step(module, module.parameters(), x, g, fused=fused), 0


def _torch_nn_fused_step(cell_name, size, dtype):
    return _torch_nn_step(cell_name, size, dtype, fused=True)


class _Loop:
    """The reference step of a cell (``torch_reference``) looped over time: a module-like callable."""

    def __init__(self, cell_name, size, dtype):
        import torch

        import symlstm
        from symlstm.verify.torch_reference import EXAMPLES, REFERENCE

        T, B, D, H = size
        cell = symlstm.cell(_cell_name(cell_name))
        arrays = cell.init_params(D, H, dtype=dtype, seed=0)
        self.params = {k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in arrays.items()}
        self.step = REFERENCE.get(cell_name) or EXAMPLES[cell_name]
        units = cell.state_sizes(D, H)
        self.state0 = {s: torch.zeros(B, units[s], dtype=getattr(torch, dtype)) for s in cell.state_names}

    def __call__(self, x):
        from symlstm.verify.torch_reference import run_reference

        return run_reference(self.step, x, self.params, self.state0)


def _torch_loop_step(cell_name, size, dtype, compiled=False):
    import torch

    loop = _Loop(cell_name, size, dtype)
    module = torch.compile(loop) if compiled else loop
    x, g = _problem(size, dtype, size[3])
    return _training_step(module, loop.params.values(), x, g), 0


def _torch_compile_step(cell_name, size, dtype):
    return _torch_loop_step(cell_name, size, dtype, compiled=True)


STEPS = {
    "module": _module_step,
    "module-fb": _module_fb_step,
    "module-own": _module_own_step,
    "module-fused": _module_fused_step,
    "raw": _raw_step,
    "raw-loss": _raw_loss_step,
    "loss": _loss_step,
    "torch-nn": _torch_nn_step,
    "torch-nn-fused": _torch_nn_fused_step,
    "torch-loop": _torch_loop_step,
    "torch-compile": _torch_compile_step,
}


def implementations(cells, dtypes, with_torch: bool):
    from symlstm.tools.bench import Impl

    impls = []
    for cell in cells:
        for dtype in dtypes:
            impls += [Impl("module", cell, dtype), Impl("torch-loop", cell, dtype)]
            if cell in CUSTOM and with_torch:  # compiling takes minutes per size: the cells PyTorch lacks
                impls.append(Impl("torch-compile", cell, dtype))
            if cell in TORCH_MODULES:
                impls.append(Impl("torch-nn", cell, dtype))
            if cell == cells[0]:  # the wrapper's overhead, the threads' policy and Adam's kind, on the first cell
                impls += [Impl(side, cell, dtype) for side in ("module-fb", "raw", "raw-loss", "loss", "module-own")]
                if cell in TORCH_MODULES:
                    impls += [Impl("module-fused", cell, dtype), Impl("torch-nn-fused", cell, dtype)]
    return impls


def format_report(report, cells, dtypes) -> str:
    grid = report["grid"]
    lines = machine_lines(report, "one training step (forward, backward, Adam) over the whole sequence")
    lines += ["Times (ms):", "", *table_head(grid)]
    labels = sorted({k.split("@")[0] for k in report["median_seconds"]}, key=lambda s: (s.split(":")[1], s))
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(f"{_med(report, label, s) * 1e3:.3g}" for s in grid) + " |")
    first = report.get("first_seconds", {})
    compiles = [
        f"{k.split('@')[0]} at {k.split('@')[1]}: {v:.1f} s" for k, v in sorted(first.items()) if "compile" in k
    ]
    if compiles:
        lines += ["", "First call of the compiled loop (tracing and compiling): " + "; ".join(compiles)]

    lines += ["", "Ratios (time / time; below 1 means the first is faster):", "", *table_head(grid)]
    summary = []
    for dtype in dtypes:
        for cell in cells:
            module = f"module:{cell}:{dtype}"
            if cell in TORCH_MODULES:
                versus_nn = ratios(report, module, f"torch-nn:{cell}:{dtype}")
                lines += ratio_row(f"symlstm.torch {cell} / torch.nn ({dtype})", versus_nn)
            for side in ("torch-loop", "torch-compile") if cell in CUSTOM else ("torch-loop",):
                speedup = ratios(report, f"{side}:{cell}:{dtype}", module)
                lines += ratio_row(f"{side} / symlstm.torch, {cell} ({dtype}; speed-up)", speedup)
                if ratio_row("", speedup):  # a side that ran (--no-torch leaves the compiled one out)
                    summary.append(f"{cell} vs {side} {geomean(speedup):.1f}x")
        fb, raw, loss = (f"{side}:{cells[0]}:{dtype}" for side in ("module-fb", "raw", "loss"))
        name = f"symlstm.torch forward+backward / raw cell.forward+backward, {cells[0]} ({dtype})"
        lines += ratio_row(name, ratios(report, fb, raw))
        wrapper = [(_med(report, fb, s) - _med(report, loss, s)) / _med(report, raw, s) for s in grid]
        lines += ratio_row(f"the same without the loss's own time (the wrapper alone), {cells[0]} ({dtype})", wrapper)
        by_hand = ratios(report, fb, f"raw-loss:{cells[0]}:{dtype}")
        name = f"symlstm.torch forward+backward / the same by hand (raw-loss), {cells[0]} ({dtype})"
        lines += ratio_row(name, by_hand)
        own = ratios(report, f"module-own:{cells[0]}:{dtype}", f"module:{cells[0]}:{dtype}")
        lines += ratio_row(f"kernels on their own threads / on torch's, {cells[0]} ({dtype})", own)
        fused = ratios(report, f"module-fused:{cells[0]}:{dtype}", f"torch-nn-fused:{cells[0]}:{dtype}")
        lines += ratio_row(f"symlstm.torch {cells[0]} / torch.nn, both with Adam(fused=True) ({dtype})", fused)
    lines += ["", "Speed-ups of symlstm.torch, geometric mean over the grid: " + ", ".join(summary)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # a worker process of ``symlstm bench --torch``
    import sys

    from symlstm.tools.bench import main

    sys.exit(main(suite=sys.modules[__name__]))
