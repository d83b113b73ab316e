"""What the ONNX tests share: a problem per cell, its reference from the runtime, and running an
exported model with onnxruntime.

The reference is ``cell.forward`` in float64, one kernel compile per cell; the float32 export runs
on the same (float32-representable) numbers, so a 1e-5 relative error bounds both the export's
rounding and the runtime's own float32 result, which agrees with float64 to ~1e-7.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

import symlstm
from conftest import ROOT
from symlstm.onnx import to_model

ort.set_default_logger_severity(3)  # onnxruntime's warnings about folded initializers are noise here

EXAMPLES = ROOT / "examples"
T, B, D, H, P = 5, 3, 4, 6, 3

#: a user's cell using what no built-in does: most primitives, sum, mean, a size P, an extra input
USER_SPEC = """
name = "mixer"
state = ["h", "c"]

[sizes]
c = "P"

[inputs]
gate = 1

[equations]
a = "W_a @ x + R_a @ h_prev + b_a"
s = "softsign(a) + hard_sigmoid(a) * elu(a) - leaky_relu(-a) + 0.1 * a ** 3"
n = "(s - mean(s)) / sqrt(mean((s - mean(s)) ** 2) + 1e-3)"
m = "silu(n) * cos(a) + sin(a) * abs(n) + minimum(a, n) + log(1 + softplus(a)) + logsigmoid(n)"
c = "gate * tanh(W_c @ m + R_c @ c_prev) + (1 - gate) * maximum(c_prev, -1)"
h = "sigmoid(W_h @ c + u * h_prev) * gelu(m) + sum(c) / 10 + exp(-relu(a))"
"""


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over max |want|."""
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


@dataclass
class Case:
    cell: symlstm.Cell
    params: dict[str, np.ndarray]  # float64 holding float32 values

    def problem(self, steps: int, batch: int, seed: int = 0, lengths: bool = False) -> dict[str, np.ndarray]:
        """x, the initial states and the extra inputs, rounded to float32, as the graph's feeds."""
        cell, rng = self.cell, np.random.default_rng(seed)
        feeds = {"x": rng.normal(size=(steps, batch, self.sizes["D"]))}
        for s, size in self.state_sizes.items():
            feeds[f"{s}0"] = rng.uniform(0.5, 1.0, size=(batch, size))  # positive: sLSTM's n divides
        for name, size in cell.spec.inputs.items():
            feeds[name] = rng.uniform(size=(steps, batch, self.sizes[size] if isinstance(size, str) else size))
        if lengths:
            feeds["lengths"] = rng.integers(1, steps + 1, size=batch).astype(np.int64)
            feeds["lengths"][0] = steps
        return {k: v.astype(np.float32).astype(np.float64) if v.dtype.kind == "f" else v for k, v in feeds.items()}

    @functools.cached_property
    def sizes(self) -> dict[str, int]:
        dim = H if self.cell.spec.requirements else D  # a cell using x elementwise needs D == H
        return {"D": dim, "H": H, **{s: P for s in self.cell.size_names if s not in ("D", "H")}}

    @functools.cached_property
    def state_sizes(self) -> dict[str, int]:
        sizes = dict(self.sizes)
        return self.cell.state_sizes(sizes.pop("D"), sizes.pop("H"), **sizes)

    def reference(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """ys and the final states from the runtime, in the graph's output order."""
        cell = self.cell
        ys, state, _ = cell.forward(
            feeds["x"],
            self.params,
            {s: feeds[f"{s}0"] for s in cell.state_names},
            inputs={name: feeds[name] for name in cell.spec.inputs},
            lengths=feeds.get("lengths"),
        )
        return [ys, *(state[s] for s in cell.state_names)]


def make_case(source: str | Path) -> Case:
    cell = symlstm.cell(source)
    case = Case(cell, {})
    sizes = dict(case.sizes)
    params = cell.init_params(sizes.pop("D"), sizes.pop("H"), dtype=np.float32, seed=1, **sizes)
    case.params = {k: v.astype(np.float64) for k, v in params.items()}
    return case


def session(case: Case, dtype: str, **options) -> ort.InferenceSession:
    model = to_model(case.cell, case.params, dtype=dtype, **options)
    return ort.InferenceSession(model.SerializeToString(), quiet_options(), providers=["CPUExecutionProvider"])


def quiet_options() -> ort.SessionOptions:
    """One thread that does not spin: onnxruntime's spinning pool threads would otherwise take the
    cores from the runtime's kernels that run next (and the problems are tiny)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def run(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], dtype: str) -> list[np.ndarray]:
    return sess.run(None, {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in feeds.items()})


def write_user_spec(folder: Path) -> Path:
    path = folder / "mixer.toml"
    path.write_text(USER_SPEC)
    return path
