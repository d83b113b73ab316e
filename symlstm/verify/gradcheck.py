"""Stage 6: verify a cell's backward against finite differences of its forward.

The scalar checked is L = <wy, ys> + sum_s <ws, state_s> with random weights, so every output and
every final state contributes. For each parameter, the input and each initial state, a random
direction v gives the directional derivative two ways: <grad, v> from ``backward`` and a
fourth-order central difference of L along v, [-L(2e) + 8 L(e) - 8 L(-e) + L(-2e)] / (12 e), whose
truncation error (~e^4) and rounding error (~1e-16 |L| / e) are both ~1e-12 at e = 1e-4. A check
passes when the two agree to ``rtol`` relative to the larger, or differ by less than the rounding
noise of the difference itself, 64 * 2.2e-16 * max(|L|, 1) / e (so an exactly zero gradient, such as
that of an initial state the loss does not depend on, is not failed for its ~1e-12 noise). A
Taylor test then checks, over all arguments at once, that the remainder
|L(p + e v) - L(p) - e <grad, v>| shrinks like e^2 as e -> 0 (a wrong gradient leaves ~e).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from symlstm.lang.sizes import evaluate
from symlstm.runtime import Cell


@dataclass(frozen=True)
class Check:
    """One row of the report: ``<grad, v>`` from ``backward`` (``analytic``) against the finite
    difference along v (``numeric``) for one argument (``quantity``: ``x``, a parameter, ``h0``)."""

    quantity: str
    analytic: float
    numeric: float
    rel_error: float
    passed: bool


@dataclass
class GradcheckReport:
    """What ``gradcheck`` found: a ``Check`` per argument and the Taylor test's observed orders."""

    cell: str
    checks: list[Check] = field(default_factory=list)
    taylor_orders: list[float] = field(default_factory=list)
    taylor_passed: bool = False

    @property
    def passed(self) -> bool:
        """Every check and the Taylor test passed."""
        return bool(self.checks) and all(c.passed for c in self.checks) and self.taylor_passed

    @property
    def max_rel_error(self) -> float:
        """The largest relative error of the checks (NaN when there are none)."""
        return max((c.rel_error for c in self.checks), default=math.nan)

    @property
    def nonfinite(self) -> list[str]:
        """Quantities whose gradient or finite difference is NaN or infinite (never a pass)."""
        return [c.quantity for c in self.checks if not (math.isfinite(c.analytic) and math.isfinite(c.numeric))]

    def table(self) -> str:
        """The report as text, one row per check and a line for the Taylor test (as printed by
        ``symlstm gradcheck``)."""
        rows = [f"{'quantity':<14} {'<grad, v>':>22} {'finite difference':>22} {'rel. error':>10}  ok"]
        for c in self.checks:
            rows.append(
                f"{c.quantity:<14} {c.analytic:>22.15e} {c.numeric:>22.15e} {c.rel_error:>10.2e}  "
                f"{'yes' if c.passed else 'NO'}"
            )
        if self.nonfinite:
            rows.append(
                f"NaN or Inf in the gradient or the finite difference of: {', '.join(self.nonfinite)} "
                "(the cell overflows or is undefined at this point; this is a failure)"
            )
        orders = ", ".join(f"{o:.2f}" for o in self.taylor_orders)
        rows.append(
            f"Taylor remainder orders (expect >= 2; 1 means a wrong gradient): {orders}  "
            f"{'yes' if self.taylor_passed else 'NO'}"
        )
        return "\n".join(rows)


def _loss(cell: Cell, x, params, state0, inputs, wy, wstate) -> float:
    ys, state, _ = cell.forward(x, params, state0, inputs=inputs)
    return float(np.sum(wy * ys) + sum(np.sum(wstate[s] * state[s]) for s in cell.state_names))


def gradcheck(
    cell: Cell,
    *,
    T: int = 5,
    B: int = 2,
    D: int | None = None,
    H: int = 4,
    sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    eps: float = 1e-4,
    rtol: float = 1e-7,
    checkpoint: int | None = None,
) -> GradcheckReport:
    """Check ``cell.backward`` in float64 on a random small problem; see the module docstring.

    D defaults to 3, or to H where the cell uses x elementwise (which needs D == H); the cell's
    other size names (e.g. P) default to 2, 3, ... unless ``sizes`` gives them. The extra
    per-step inputs are drawn uniformly from (0.1, 0.9), which suits masks and time steps; they
    are data, not checked. ``checkpoint=k`` checks the gradients of a ``forward(...,
    checkpoint=k)`` run instead. NaN or Inf anywhere makes the check fail, and the report names
    the quantities.
    """
    if D is None:
        D = H if cell.spec.requirements else 3
    others = [name for name in cell.size_names if name not in ("D", "H")]
    sizes = {name: 2 + k for k, name in enumerate(others)} | dict(sizes or {})
    for label, value in (("T", T), ("B", B), ("D", D), ("H", H), *sizes.items()):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"gradcheck: {label} must be a positive integer, got {value!r}")
    for label, number in (("eps", eps), ("rtol", rtol)):
        if not (isinstance(number, (int, float)) and math.isfinite(number) and number > 0):
            raise ValueError(f"gradcheck: {label} must be a positive number, got {number!r}")
    rng = np.random.default_rng(seed)
    params = {k: v * 2.0 for k, v in cell.init_params(D, H, np.float64, seed=seed, **sizes).items()}
    units = cell.state_sizes(D, H, **sizes)
    x = rng.standard_normal((T, B, D))
    state0 = {s: rng.standard_normal((B, units[s])) * 0.5 for s in cell.state_names}
    bindings = cell.spec.bind_sizes(D, H, **sizes)
    inputs = {name: rng.uniform(0.1, 0.9, (T, B, evaluate(size, bindings))) for name, size in cell.spec.inputs.items()}
    wy = rng.standard_normal((T, B, units[cell.state_names[0]]))
    wstate = {s: rng.standard_normal((B, units[s])) for s in cell.state_names}

    _, _, cache = cell.forward(x, params, state0, inputs=inputs, checkpoint=checkpoint)
    dx, dparams, dstate0 = cell.backward(wy, cache, wstate)

    # every differentiable argument, as (label, getter of a perturbed copy, gradient)
    arguments = [("x", dx)] + [(n, dparams[n]) for n in cell.param_names]
    arguments += [(f"{s}0", dstate0[s]) for s in cell.state_names]
    directions = {label: rng.standard_normal(grad.shape) for label, grad in arguments}

    def loss_at(step: float, only: str | None = None) -> float:
        def moved(label, value):
            if only is not None and label != only:
                return value
            return value + step * directions[label]

        return _loss(
            cell,
            moved("x", x),
            {n: moved(n, v) for n, v in params.items()},
            {s: moved(f"{s}0", v) for s, v in state0.items()},
            inputs,
            wy,
            wstate,
        )

    report = GradcheckReport(cell.name)
    base = loss_at(0.0)
    noise = 64 * np.finfo(np.float64).eps * max(abs(base), 1.0) / eps  # rounding error of the stencil
    for label, grad in arguments:
        analytic = float(np.sum(grad * directions[label]))
        numeric = (
            -loss_at(2 * eps, label) + 8 * loss_at(eps, label) - 8 * loss_at(-eps, label) + loss_at(-2 * eps, label)
        ) / (12 * eps)
        scale = max(abs(analytic), abs(numeric), noise / rtol)
        rel = abs(analytic - numeric) / scale
        ok = bool(np.isfinite(analytic) and np.isfinite(numeric) and rel <= rtol)
        report.checks.append(Check(label, analytic, numeric, rel, ok))

    slope = sum(float(np.sum(g * directions[label])) for label, g in arguments)
    steps = [1e-3 / 2**k for k in range(9)]
    remainders = [abs(loss_at(h) - base - h * slope) for h in steps]
    # rates between successive halvings, where the remainder is well above rounding noise
    floor = 1e-12 * max(abs(base), 1.0)
    report.taylor_orders = [
        math.log2(r0 / r1) for r0, r1 in zip(remainders, remainders[1:]) if r0 > floor and r1 > floor
    ]
    # Judge the asymptotic rate (the last three): at the larger steps the cubic term can still
    # compete with a small quadratic one, and the remainder may even change sign there.
    report.taylor_passed = (
        np.isfinite(slope) and len(report.taylor_orders) >= 3 and all(o >= 1.8 for o in report.taylor_orders[-3:])
    )
    return report
