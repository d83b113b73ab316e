"""``symlstm bench --inference``: running a trained cell, forward only, side by side.

The same driver as the training benchmark (``symlstm.tools.bench``: one process per side,
alternating rounds, medians). Sides, all float32, over the whole sequence unless said:

- ``infer``: ``cell.infer`` (its own kernel: nothing kept for a backward);
- ``infer-prepared``: ``cell.infer`` on ``cell.prepare(params)``, the parameters checked and
  packed once, as a service running the same weights call after call does;
- ``forward``: ``cell.forward``, which keeps what a backward needs;
- ``torch-infer``: ``torch.nn.LSTM``/``GRU``/``RNN`` under ``torch.inference_mode()``;
- ``ort``: onnxruntime on the exported graph (a Scan of standard operators), and ``ort-native``
  on ONNX's own LSTM/GRU/RNN operator; one intra-op thread per core, no spinning between runs;
- ``stream``: T calls of ``stream.step`` (one step each, at the size's B), and ``torch-cell``: T
  calls of ``torch.nn.LSTMCell``/``GRUCell``/``RNNCell`` under ``inference_mode``; reported per step.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from symlstm.tools.bench import TORCH_MODULES, other_sizes

TORCH_CELLS = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "RNNCell"}
#: the sides whose time is per step (T calls), not per sequence
PER_STEP = ("stream", "torch-cell")


def _cell_and_problem(cell_name, size, dtype):
    import symlstm

    T, B, D, H = size
    cell = symlstm.cell(cell_name)
    sizes = other_sizes(cell, H)
    params = cell.init_params(D, H, dtype=dtype, seed=0, **sizes)
    x = np.random.default_rng(0).standard_normal((T, B, D)).astype(dtype)
    return cell, params, x


def _kept_bytes(cell, size, dtype) -> int:
    """What infer keeps between steps: two rows of every state."""
    T, B, D, H = size
    kept = sum(np.prod(s) for s in cell.state_sizes(D, H, **other_sizes(cell, H)).values())
    return int(2 * B * kept * np.dtype(dtype).itemsize)


def _infer_step(cell_name, size, dtype):
    cell, params, x = _cell_and_problem(cell_name, size, dtype)
    return (lambda: cell.infer(x, params)), _kept_bytes(cell, size, dtype)


def _infer_prepared_step(cell_name, size, dtype):
    cell, params, x = _cell_and_problem(cell_name, size, dtype)
    prepared = cell.prepare(params)
    return (lambda: cell.infer(x, prepared)), _kept_bytes(cell, size, dtype)


def _forward_step(cell_name, size, dtype):
    cell, params, x = _cell_and_problem(cell_name, size, dtype)
    _, _, cache = cell.forward(x, params)
    return (lambda: cell.forward(x, params)), cache.nbytes


def _torch_infer_step(cell_name, size, dtype):
    import torch

    T, B, D, H = size
    projection = {"proj_size": H // 2} if cell_name == "lstmp" else {}
    module = getattr(torch.nn, TORCH_MODULES[cell_name])(D, H, **projection).to(getattr(torch, dtype))
    x = torch.tensor(np.random.default_rng(0).standard_normal((T, B, D)).astype(dtype))

    def run():
        with torch.inference_mode():
            module(x)

    return run, 0


def _ort_session(cell_name, size, dtype, native: bool):
    import onnxruntime

    from symlstm.onnx import export

    cell, params, x = _cell_and_problem(cell_name, size, dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = export(cell, params, os.path.join(folder, "model.onnx"), dtype=dtype, native=native)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    B = size[1]
    units = cell.state_sizes(size[2], size[3], **other_sizes(cell, size[3]))
    feeds = {"x": x} | {n: np.zeros((B, units[n[:-1]]), dtype) for n in names if n != "x"}
    return (lambda: session.run(None, feeds)), 0


def _ort_step(cell_name, size, dtype):
    return _ort_session(cell_name, size, dtype, native=False)


def _ort_native_step(cell_name, size, dtype):
    return _ort_session(cell_name, size, dtype, native=True)


def _stream_step(cell_name, size, dtype):
    cell, params, x = _cell_and_problem(cell_name, size, dtype)
    stream = cell.stream(params, batch=size[1])
    rows = list(x)

    def run():
        for x_t in rows:
            stream.step(x_t)

    return run, 0


def _torch_cell_step(cell_name, size, dtype):
    import torch

    T, B, D, H = size
    module = getattr(torch.nn, TORCH_CELLS[cell_name])(D, H).to(getattr(torch, dtype))
    rows = list(torch.tensor(np.random.default_rng(0).standard_normal((T, B, D)).astype(dtype)))
    zeros = torch.zeros(B, H, dtype=getattr(torch, dtype))

    def run():
        with torch.inference_mode():
            state = (zeros, zeros) if cell_name == "lstm" else zeros
            for x_t in rows:
                state = module(x_t, state)

    return run, 0


STEPS = {
    "infer": _infer_step,
    "infer-prepared": _infer_prepared_step,
    "forward": _forward_step,
    "torch-infer": _torch_infer_step,
    "ort": _ort_step,
    "ort-native": _ort_native_step,
    "stream": _stream_step,
    "torch-cell": _torch_cell_step,
}
#: the cells onnxruntime runs natively
NATIVE = ("lstm", "gru", "rnn")


def implementations(cells, dtypes, with_torch: bool):
    from symlstm.tools.bench import Impl

    impls = []
    for cell in cells:
        for dtype in dtypes:
            impls += [Impl(side, cell, dtype) for side in ("infer", "infer-prepared", "forward", "stream")]
            impls.append(Impl("ort", cell, dtype))
            if cell in NATIVE and dtype == "float32":  # onnxruntime has no float64 LSTM/GRU/RNN kernels
                impls.append(Impl("ort-native", cell, dtype))
            if with_torch and cell in TORCH_MODULES:
                impls.append(Impl("torch-infer", cell, dtype))
            if with_torch and cell in TORCH_CELLS:
                impls.append(Impl("torch-cell", cell, dtype))
    return impls


def format_report(report, cells, dtypes) -> str:
    from symlstm.tools.bench import _med, machine_lines, ratio_row, ratios, table_head

    grid = report["grid"]
    lines = machine_lines(report, "forward only (inference)")
    lines += ["Times (ms per sequence; µs per step for the per-step sides):", "", *table_head(grid)]
    labels = sorted({k.split("@")[0] for k in report["median_seconds"]}, key=lambda s: (s.split(":")[1], s))
    for label in labels:
        per_step = label.split(":")[0] in PER_STEP
        values = [_med(report, label, s) * (1e6 / s[0] if per_step else 1e3) for s in grid]
        unit = " (µs/step)" if per_step else ""
        lines.append(f"| {label}{unit} | " + " | ".join(f"{v:.3g}" for v in values) + " |")

    def ratio(name, num, den):
        return ratio_row(name, ratios(report, num, den))

    lines += ["", "Ratios (time / time; below 1 means the first is faster):", "", *table_head(grid)]
    for dtype in dtypes:
        for cell in cells:
            lines += ratio(f"{cell} infer / forward ({dtype})", f"infer:{cell}:{dtype}", f"forward:{cell}:{dtype}")
            prepared = f"infer-prepared:{cell}:{dtype}"
            lines += ratio(f"{cell} infer, prepared / forward ({dtype})", prepared, f"forward:{cell}:{dtype}")
            lines += ratio(f"{cell} infer, prepared / torch ({dtype})", prepared, f"torch-infer:{cell}:{dtype}")
            lines += ratio(f"{cell} infer / torch ({dtype})", f"infer:{cell}:{dtype}", f"torch-infer:{cell}:{dtype}")
            lines += ratio(f"{cell} infer / onnxruntime Scan ({dtype})", f"infer:{cell}:{dtype}", f"ort:{cell}:{dtype}")
            native = f"{cell} infer / onnxruntime {cell.upper()} op ({dtype})"
            lines += ratio(native, f"infer:{cell}:{dtype}", f"ort-native:{cell}:{dtype}")
            stream = f"{cell} stream.step / torch cell ({dtype})"
            lines += ratio(stream, f"stream:{cell}:{dtype}", f"torch-cell:{cell}:{dtype}")
    lines += ["", "Memory kept between steps or for a backward (MB):", ""]
    for label in labels:
        if label.split(":")[0] in ("infer", "infer-prepared", "forward"):
            values = [report["stored_bytes"].get(f"{label}@{','.join(map(str, s))}", 0) / 1e6 for s in grid]
            lines.append(f"- {label}: " + ", ".join(f"{v:.3g}" for v in values))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # a worker process of ``symlstm bench --inference``
    import sys

    from symlstm.tools.bench import main

    sys.exit(main(suite=sys.modules[__name__]))
