"""``symlstm demo adding``: the adding problem, where LSTMs keep long-term memory and RNNs lose it.

Two forms of the task, both with inputs of two components per step (a value and a marker) and one
target at the end of the sequence:

- ``hochreiter`` (Hochreiter & Schmidhuber 1997, Experiment 4): values uniform in [-1, 1]; exactly
  two pairs are marked with 1: one of the first ten (X1), then one of the other pairs among the
  first T/2 (X2). The first and last pairs carry the marker -1 unless marked; a marked first pair
  has its value set to 0 (the paper's "rare case", read here for either mark). Each minibatch draws
  its length uniformly from [T, T + T/10], as the paper's sequences do. Target 0.5 + (X1 + X2)/4.
  Predicting the mean gives MSE ≈ 0.039 (a little under 1/24, for the zeroed first pairs);
  remembering only the later marked value, ≈ 0.019.
- ``simple`` (the common simplified form, e.g. Le, Jaitly & Hinton 2015): values uniform in [0, 1],
  one mark in the first half and one in the second, fixed length T, target X1 + X2. Predicting the
  mean gives MSE 1/6 ≈ 0.167; remembering only the later value, 1/12.

A sequence counts as solved when the absolute error of the prediction at its end is below 0.04 (the
paper's criterion; for ``simple`` the same threshold on its four-times-wider target range). The
model is one recurrent layer, its last output and a dense readout, trained with Adam on the MSE
and gradient-norm clipping; every cell sees the same data, in the same order. The bias of the gate
that keeps the state (b_f in the LSTMs, b_z in the GRU) starts at +3 (``--forget-bias``; Gers et
al. 2000 and Keras use +1, Tallec & Ollivier 2018 up to log T): with PyTorch's plain uniform
initialisation, or +1, neither the LSTM nor the GRU solved T = 100 within 6000 steps here, while
with +3 both did. The RNN has no such gate.

The vanishing-gradient plot shows ||dL/dh_t|| for a unit error at the end (dL/dŷ = 1, so it is
||dŷ/dh_t||: how much the state at step t can still move the prediction), averaged over a batch.
It is computed with the cells' public API only: the state h_t comes from running the sequence one
step at a time, then the tail t+1..T runs forward from it and backward, and dstate0["h"] is
dL/dh_t (an O(T²) amount of work, fine for T of a few hundred).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from symlstm.train import nn

SOLVED_ERROR = 0.04  # |error| at the end below this: the sequence is processed correctly (H&S 1997)
SOLVED_FRACTION = 0.95  # "steps to solve": first evaluation with this fraction of the test set solved
DEFAULT_CELLS = ("rnn", "lstm", "peephole", "gru")
KEEP_GATE_BIASES = ("b_f", "b_z")  # the bias of the gate that keeps the state: LSTMs' f, the GRU's z


# -- the task ------------------------------------------------------------------------------------


TASKS = {"hochreiter": "adding problem (Hochreiter & Schmidhuber 1997)", "simple": "adding problem, simplified form"}


def baseline_mse(task: str, batches) -> list[tuple[str, float]]:
    """(label, MSE) on these batches of two predictors that remember little: the mean of the
    target, and the best guess from the later marked value alone (what a memory that is
    overwritten at every mark keeps)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    errors_mean, errors_later = [], []
    for x, y in batches:
        marked = x[..., 1] == 1.0
        later = marked.shape[0] - 1 - np.argmax(marked[::-1], axis=0)
        value = x[later, np.arange(x.shape[1]), 0].astype(np.float64)
        target = y[:, 0].astype(np.float64)
        # The other value has mean 0 in [-1, 1] (scaled by 1/4), mean 0.5 in [0, 1].
        guess = 0.5 + value / 4 if task == "hochreiter" else value + 0.5
        errors_mean.append(target - (0.5 if task == "hochreiter" else 1.0))
        errors_later.append(target - guess)
    return [
        ("predict the mean", float(np.mean(np.concatenate(errors_mean) ** 2))),
        ("remember only the later value", float(np.mean(np.concatenate(errors_later) ** 2))),
    ]


def adding_batch(
    task: str, T: int, B: int, rng: np.random.Generator, length: int | None = None, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``x`` (L, B, 2) time-major, ``y`` (B, 1). ``length`` fixes L (``hochreiter``
    otherwise draws it from [T, T + T//10]; ``simple`` always uses T)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < (20 if task == "hochreiter" else 2):
        raise ValueError(f"T must be an integer >= {20 if task == 'hochreiter' else 2} for the {task} task, got {T!r}")
    rows = np.arange(B)
    if task == "simple":
        L = T
        values = rng.uniform(0.0, 1.0, (L, B))
        first = rng.integers(0, T // 2, B)
        second = rng.integers(T // 2, T, B)
        markers = np.zeros((L, B))
    else:
        L = int(length) if length is not None else int(rng.integers(T, T + T // 10 + 1))
        values = rng.uniform(-1.0, 1.0, (L, B))
        first = rng.integers(0, 10, B)
        # One of the other T/2 - 1 pairs among the first T/2: draw from T/2 - 1 slots, skip X1's.
        second = rng.integers(0, T // 2 - 1, B)
        second += second >= first
        markers = np.zeros((L, B))
        markers[0], markers[-1] = -1.0, -1.0
        values[0, (first == 0) | (second == 0)] = 0.0
    markers[first, rows] = 1.0
    markers[second, rows] = 1.0
    total = values[first, rows] + values[second, rows]
    target = total if task == "simple" else 0.5 + total / 4.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    return x, target[:, None].astype(dtype)


# -- settings and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    task: str = "hochreiter"
    T: int = 100
    steps: int = 6000
    batch: int = 32
    hidden: int = 32
    lr: float = 3e-3
    clip: float = 1.0
    forget_bias: float = 3.0
    eval_every: int = 100
    test_size: int = 1024
    seed: int = 0


QUICK = Settings(T=30, steps=1200, eval_every=50, test_size=512)


@dataclass
class Run:
    cell: str
    eval_steps: list[int] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)
    solved: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    steps_to_solve: int | None = None
    diverged_at: int | None = None
    seconds: float = 0.0
    grad_profile_init: list[float] = field(default_factory=list)
    grad_profile_trained: list[float] = field(default_factory=list)

    @property
    def final_mse(self) -> float:
        return self.test_mse[-1] if self.test_mse else math.nan

    @property
    def final_solved(self) -> float:
        return self.solved[-1] if self.solved else math.nan


def make_model(cell: str, hidden: int, seed: int, forget_bias: float = 0.0) -> nn.Sequential:
    """One recurrent layer, its output at the last step, a dense readout to one number.
    ``forget_bias`` is added to the bias of the gate that keeps the state: b_f in the LSTMs, b_z in
    the GRU (z weighs h_{t-1}); a cell with neither (the RNN) has nothing to add it to."""
    from symlstm.cells import cell as load_cell

    recurrent_cell = load_cell(cell)
    keep = next((n for n in KEEP_GATE_BIASES if n in recurrent_cell.param_names), None)
    recurrent = nn.Recurrent(
        recurrent_cell, 2, hidden, dtype=np.float32, seed=seed, bias_init={keep: forget_bias} if keep else None
    )
    return nn.Sequential(recurrent, nn.LastStep(), nn.Dense(hidden, 1, dtype=np.float32, seed=seed))


def evaluate(model: nn.Sequential, test: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(MSE, fraction of sequences with |error| < SOLVED_ERROR) over the test batches."""
    errors = np.concatenate([(model.forward(x)[0] - y).ravel() for x, y in test]).astype(np.float64)
    return float(np.mean(errors**2)), float(np.mean(np.abs(errors) < SOLVED_ERROR))


def gradient_profile(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """Mean over the batch of ||dL/dh_t||, t = 0..T, for dL/dŷ = 1 at the end (see the module doc)."""
    recurrent, _, readout = model.layers
    assert isinstance(recurrent, nn.Recurrent) and isinstance(readout, nn.Dense), "a model of make_model"
    T, B, _ = x.shape
    states: list[dict[str, np.ndarray] | None] = [None]
    for t in range(T):  # h_t for every t, one step at a time
        _, state, _ = recurrent.forward(x[t : t + 1], state0=states[-1])
        states.append(state)
    # The readout is linear, so dL/dh_T does not depend on h_T.
    last = states[T]
    assert last is not None
    dh_T, _ = readout.backward(np.ones((B, 1), x.dtype), readout.forward(last["h"][0])[1])
    norms = np.empty(T + 1)
    norms[T] = np.mean(np.linalg.norm(dh_T.astype(np.float64), axis=1))
    for t in range(T):
        ys, _, cache = recurrent.forward(x[t:], state0=states[t])
        dys = np.zeros_like(ys)
        dys[-1] = dh_T
        _, _, dstate0 = recurrent.backward(dys, cache, input_grad=False)  # only dL/dh_t is wanted
        norms[t] = np.mean(np.linalg.norm(dstate0["h"][0].astype(np.float64), axis=1))
    return norms


def _seeds(s: Settings) -> list[np.random.SeedSequence]:
    """Independent streams: training data, test set, gradient probe, model initialisation."""
    return np.random.SeedSequence(s.seed).spawn(4)


def make_test_set(s: Settings) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed test batches (for ``hochreiter``, each batch has its own length)."""
    rng = np.random.default_rng(_seeds(s)[1])
    per_batch = min(128, s.test_size)
    return [adding_batch(s.task, s.T, per_batch, rng) for _ in range(max(1, s.test_size // per_batch))]


def train(cell: str, s: Settings, progress: bool = True) -> Run:
    """Train one cell on the task; every cell gets the same data stream and test set."""
    from tqdm import tqdm

    data_seed, _, probe_seed, model_seed = _seeds(s)
    test = make_test_set(s)
    probe, _ = adding_batch(s.task, s.T, 64, np.random.default_rng(probe_seed), length=s.T)
    model = make_model(cell, s.hidden, int(model_seed.generate_state(1)[0]), s.forget_bias)
    optimizer = nn.Adam(model.params, lr=s.lr, clip_norm=s.clip or None)  # clip 0: no clipping
    run = Run(cell)
    run.grad_profile_init = gradient_profile(model, probe).tolist()  # also compiles the kernels

    def record(step: int) -> None:
        mse, solved = evaluate(model, test)
        run.eval_steps.append(step)
        run.test_mse.append(mse)
        run.solved.append(solved)
        if run.steps_to_solve is None and solved >= SOLVED_FRACTION:
            run.steps_to_solve = step

    rng = np.random.default_rng(data_seed)
    start = time.perf_counter()
    record(0)
    bar = tqdm(
        range(1, s.steps + 1),
        desc=f"{cell:>10}",
        disable=not progress,
        leave=True,
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for step in bar:
        x, y = adding_batch(s.task, s.T, s.batch, rng)
        loss, norm = nn.train_step(model, nn.mse, optimizer, x, y)
        run.train_loss.append(loss)
        run.grad_norm.append(norm)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            run.diverged_at = step
            bar.set_postfix_str(f"diverged at step {step}")
            break
        if step % s.eval_every == 0 or step == s.steps:
            record(step)
            bar.set_postfix(test_mse=f"{run.test_mse[-1]:.4f}", solved=f"{run.solved[-1]:.0%}")
    bar.close()
    run.seconds = time.perf_counter() - start
    if run.diverged_at is None:
        run.grad_profile_trained = gradient_profile(model, probe).tolist()
    return run


# -- outputs -------------------------------------------------------------------------------------


def results_table(runs: list[Run], s: Settings) -> str:
    """The results as a Markdown table."""
    lines = [
        "| cell | final test MSE | solved (abs. error < 0.04) | steps to solve "
        f"({SOLVED_FRACTION:.0%} solved) | max grad norm | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        solve = f"{r.steps_to_solve}" if r.steps_to_solve is not None else f"not in {s.steps}"
        if r.diverged_at is not None:
            solve = f"diverged at step {r.diverged_at}"
        finite = [g for g in r.grad_norm if math.isfinite(g)]
        lines.append(
            f"| {r.cell} | {r.final_mse:.2e} | {r.final_solved:.1%} | {solve} | "
            f"{max(finite) if finite else math.nan:.3g} | {r.seconds:.0f} s |"
        )
    return "\n".join(lines)


def _smooth(values, window: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_curves(runs: list[Run], s: Settings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    window = max(1, s.eval_every)
    for k, r in enumerate(runs):
        color = f"C{k}"
        axes[0].plot(r.eval_steps, r.test_mse, color=color, lw=2, label=f"{r.cell} (test)")
        if r.train_loss:
            smooth = _smooth(r.train_loss, window)
            axes[0].plot(
                np.arange(len(smooth)) + len(r.train_loss) - len(smooth) + 1, smooth, color=color, lw=0.8, alpha=0.4
            )
        axes[1].plot(r.eval_steps, np.asarray(r.solved) * 100, color=color, lw=2, label=r.cell)
        if r.grad_norm:
            norms = np.where(np.isfinite(r.grad_norm), r.grad_norm, np.nan)
            axes[2].plot(np.arange(1, len(norms) + 1), norms, color=color, lw=0.5, alpha=0.25)
            smooth = _smooth(norms, window)
            axes[2].plot(
                np.arange(len(smooth)) + len(norms) - len(smooth) + 1, smooth, color=color, lw=1.5, label=r.cell
            )
        if r.diverged_at is not None:
            for ax in axes:
                ax.axvline(r.diverged_at, color=color, ls=":", lw=1)
    lines = baseline_mse(s.task, make_test_set(s))
    for (label, value), ls in zip(lines, ("--", "-.")):
        axes[0].axhline(value, color="gray", ls=ls, lw=1, label=f"{label}: {value:.3f}")
    # Keep the interesting range visible when a run's error explodes; say so on the plot.
    top = 30 * lines[0][1]
    off = [f"{r.cell} up to {max(r.test_mse):.0e}" for r in runs if r.test_mse and max(r.test_mse) > top]
    if off:
        axes[0].set_yscale("log")
        axes[0].set_ylim(0.5 * min(min(r.test_mse) for r in runs if r.test_mse), top)
        axes[0].text(
            0.02, 0.02, "off the chart: " + ", ".join(off), transform=axes[0].transAxes, va="bottom", fontsize=8
        )
    axes[0].set(
        yscale="log", xlabel="training step", ylabel="MSE", title="Test MSE (thick) and training loss (thin, smoothed)"
    )
    axes[1].axhline(SOLVED_FRACTION * 100, color="gray", ls="--", lw=1)
    axes[1].set(
        ylim=(-2, 102),
        xlabel="training step",
        ylabel="% of test sequences",
        title=f"Solved: |error at the end| < {SOLVED_ERROR}",
    )
    axes[2].set(
        yscale="log",
        xlabel="training step",
        ylabel="||dL/dθ|| (before clipping)",
        title=f"Gradient norm (raw and smoothed; {f'clipped to {s.clip:g}' if s.clip else 'no clipping'})",
    )
    if s.clip:
        axes[2].axhline(s.clip, color="gray", ls="--", lw=1)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"{TASKS[s.task]}, T = {s.T}: H = {s.hidden}, batch {s.batch}, Adam lr {s.lr:g}, seed {s.seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gradients(runs: list[Run], s: Settings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, attr, when in (
        (axes[0], "grad_profile_init", "at initialisation"),
        (axes[1], "grad_profile_trained", "after training"),
    ):
        for k, r in enumerate(runs):
            profile = np.asarray(getattr(r, attr))
            if profile.size:
                label = r.cell
                if np.any(profile == 0):  # underflow: below float32's smallest number, 1.4e-45
                    label += f" (exactly 0 for t < {int(np.nonzero(profile)[0][0])})"
                ax.plot(
                    np.arange(profile.size), np.where(profile > 0, profile, np.nan), color=f"C{k}", lw=2, label=label
                )
            elif attr == "grad_profile_trained":
                ax.plot([], [], color=f"C{k}", label=f"{r.cell} (diverged)")
        ax.set(yscale="log", xlabel="t (step of the state h_t)", title=f"{when}")
        ax.axvspan(0, s.T // 2, color="0.92", zorder=0)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("||dL/dh_t||  (mean over 64 sequences)")
    fig.suptitle(
        f"Vanishing gradient, T = {s.T}: how much the state h_t can still move the prediction at the end\n"
        f"(dL/dh_t for a unit error, dL/dŷ = 1; shaded: the first half, where the first marked value lies)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_adding(cells, s: Settings, out: Path, progress: bool = True) -> list[Run]:
    """Train every cell, write the plots, the table and the raw numbers into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    runs = [train(cell, s, progress) for cell in cells]
    stem = f"adding-{s.task}-T{s.T}"
    table = results_table(runs, s)
    plot_curves(runs, s, out / f"{stem}-loss.png")
    plot_gradients(runs, s, out / f"{stem}-gradients.png")
    (out / f"{stem}-results.md").write_text(f"{TASKS[s.task]}, T = {s.T}, {s.steps} steps\n\n{table}\n", "utf-8")
    (out / f"{stem}-results.json").write_text(
        json.dumps({"settings": asdict(s), "runs": [asdict(r) for r in runs]}, indent=1), "utf-8"
    )
    print(table)
    print(f"wrote {out / stem}-loss.png, -gradients.png, -results.md, -results.json")
    return runs


# -- command line --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", choices=["adding"], help="the demo to run")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short version (T={QUICK.T}, {QUICK.steps} steps): under two minutes on 2 cores",
    )
    parser.add_argument(
        "--cells",
        nargs="+",
        default=list(DEFAULT_CELLS),
        metavar="CELL",
        help=f"built-in names or .toml spec paths (default: {' '.join(DEFAULT_CELLS)})",
    )
    parser.add_argument("--task", choices=sorted(TASKS), help="hochreiter (default) or simple")
    for name, kind in (
        ("T", int),
        ("steps", int),
        ("batch", int),
        ("hidden", int),
        ("lr", float),
        ("clip", float),
        ("forget-bias", float),
        ("eval-every", int),
        ("test-size", int),
        ("seed", int),
    ):
        field_name = name.replace("-", "_")
        parser.add_argument(
            f"--{name}",
            type=kind,
            dest=field_name,
            help=f"default {getattr(Settings(), field_name)}, {getattr(QUICK, field_name)} with --quick"
            + (" (0: no clipping)" if name == "clip" else ""),
        )
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from(args: argparse.Namespace) -> Settings:
    s = QUICK if args.quick else Settings()
    given = {
        name: getattr(args, name) for name in Settings.__dataclass_fields__ if getattr(args, name, None) is not None
    }
    s = replace(s, **given)
    for name in ("T", "steps", "batch", "hidden", "eval_every", "test_size"):
        if getattr(s, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(s, name)}")
    if not s.lr > 0:
        raise ValueError(f"--lr must be positive, got {s.lr}")
    if not s.clip >= 0:
        raise ValueError(f"--clip must be positive, or 0 for no clipping; got {s.clip}")
    return s


def main(args: argparse.Namespace) -> int:
    s = settings_from(args)
    run_adding(args.cells, s, Path(args.out), progress=not args.no_progress)
    return 0
