"""A cell's picture, drawn from its spec: inputs, gates, state, products and activations as a graph.

``diagram_dot(spec)`` writes Graphviz ``dot`` source (deterministic text); ``render(dot, path)``
runs Graphviz to make an SVG or PNG. Reading the graph left to right:

- blue ellipses are the step's inputs: ``x_t`` and last step's states ``h_{t-1}``, ``c_{t-1}``...;
- yellow boxes are gates (sigmoid-like activations), orange boxes other activations (tanh, ReLU);
  each box sums its inputs, so an edge labelled ``W_i`` means ``W_i x_t`` enters that sum, a
  dashed blue edge labelled ``p_i ⊙`` is a peephole (a per-unit weight times a cell state), and the
  small text under the function names the bias; a function of two arguments (max, min) has one
  edge from each;
- ``⊙`` and ``+`` circles are elementwise products and sums, an edge labelled ``−`` is subtracted;
- green double ellipses are the states the step hands to the next one (``h_t`` is the output).

Nothing here knows about LSTMs: any spec is drawn the same way.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

import sympy

from symlstm.lang import primitives as fn
from symlstm.lang.spec import INPUT, PREV_SUFFIX, CellSpec, MatVec

FONT = "DejaVu Sans"
COLORS = {
    "input": "#dbeafe",
    "state": "#dcfce7",
    "gate": "#fef3c7",
    "activation": "#ffedd5",
    "op": "#ffffff",
    "peephole": "#2563eb",
    "edge": "#374151",
}


class DiagramError(RuntimeError):
    """Graphviz is missing or failed."""


def name_label(name: str, time: str | None = None) -> str:
    """``W_i`` -> ``W<SUB>i</SUB>``; with a time, ``c`` -> ``<I>c</I><SUB>t−1</SUB>`` (HTML-like)."""
    base, _, sub = name.partition("_")
    if time is None:
        return html.escape(base) + (f"<SUB>{html.escape(sub)}</SUB>" if sub else "")
    index = ",".join(x for x in (sub, time.replace("-", "−")) if x)
    return f"<I>{html.escape(base)}</I><SUB>{html.escape(index)}</SUB>"


class _Graph:
    def __init__(self, spec: CellSpec):
        self.spec = spec
        self.lines: list[str] = []
        self.values: dict[str, str] = {}
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def operator(self, node: str, label: str) -> str:
        """A small round node for + or ⊙."""
        return self.node(
            node, label, shape="circle", width="0.35", margin="0", fontsize="14", style="filled", fillcolor=COLORS["op"]
        )

    def node(self, node_id: str, label: str, **attrs: str) -> str:
        attrs = {"label": f"<{label}>", **attrs}
        body = ", ".join(f'{k}="{v}"' if k != "label" else f"{k}={v}" for k, v in attrs.items())
        self.lines.append(f'  "{node_id}" [{body}];')
        return node_id

    def edge(self, a: str, b: str, label: str | None = None, **attrs: str) -> None:
        if label is not None:
            attrs = {"label": f"<{label}>", **attrs}
        body = ", ".join(f'{k}="{v}"' if k != "label" else f"{k}={v}" for k, v in attrs.items())
        self.lines.append(f'  "{a}" -> "{b}"' + (f" [{body}]" if body else "") + ";")

    # -- values --------------------------------------------------------------------------------
    def source(self, expr: sympy.Expr) -> str:
        """The node that holds the value of ``expr`` (building operator nodes as needed)."""
        if isinstance(expr, sympy.Symbol):
            name = expr.name
            if name in self.values:
                return self.values[name]
            # a parameter vector used outside a sum: a small label of its own
            return self.node(self.fresh("param"), name_label(name), shape="plaintext", fontsize="11")
        if isinstance(expr, sympy.Add):
            node = self.fresh("sum")
            extras = self.connect_sum(expr, node)
            label = "+" + (f'<BR/><FONT POINT-SIZE="9">{" ".join(extras)}</FONT>' if extras else "")
            return self.operator(node, label)
        if isinstance(expr, sympy.Mul):
            node = self.fresh("mul")
            coeff, factors = expr.as_coeff_mul()
            label = "⊙" if coeff == 1 else f"{html.escape(str(coeff))}⊙"
            self.operator(node, label)
            for factor in factors:
                self.edge(self.source(factor), node)
            return node
        if isinstance(expr, fn.Activation):
            node = self.fresh("act")
            return self.activation(node, expr, None)
        if isinstance(expr, sympy.Pow):
            node = self.node(
                self.fresh("pow"),
                f"(·)<SUP>{html.escape(str(expr.exp))}</SUP>",
                shape="circle",
                width="0.35",
                margin="0",
                style="filled",
                fillcolor=COLORS["op"],
            )
            self.edge(self.source(expr.base), node)
            return node
        if isinstance(expr, MatVec):
            node = self.node(self.fresh("prod"), "·", shape="point", width="0.08")
            self.edge(self.source(expr.operand), node, name_label(expr.matrix.name), fontsize="10")
            return node
        if isinstance(expr, sympy.Function):  # maximum(a, b), sum(e), ...: a box fed by each argument
            primitive = fn.primitive_of(expr)
            node = self.node(
                self.fresh("fn"),
                html.escape(primitive.label if primitive else type(expr).__name__),
                shape="box",
                style="rounded,filled",
                fillcolor=COLORS["activation"],
            )
            for argument in expr.args:
                self.edge(self.source(argument), node)
            return node
        if expr.is_number:
            return self.node(self.fresh("const"), html.escape(str(expr)), shape="plaintext")
        raise TypeError(f"cannot draw {type(expr).__name__}")

    def connect_sum(self, expr: sympy.Expr, node: str) -> list[str]:
        """Edges for the summands of ``expr`` into ``node``; returns labels for biases/constants."""
        extras = []
        for term in sympy.Add.make_args(expr):
            if isinstance(term, MatVec):
                self.edge(self.source(term.operand), node, name_label(term.matrix.name), fontsize="10")
            elif isinstance(term, sympy.Symbol) and term.name in self.spec.vectors:
                extras.append("+" + name_label(term.name))
            elif term.is_number:
                extras.append(html.escape(str(term)))
            elif self.peephole(term):
                param, other = self.peephole(term)
                self.edge(
                    self.source(other),
                    node,
                    f"{name_label(param)} ⊙",
                    fontsize="10",
                    style="dashed",
                    color=COLORS["peephole"],
                    fontcolor=COLORS["peephole"],
                )
            elif term.could_extract_minus_sign():
                self.edge(self.source(-term), node, "−", fontsize="12")
            else:
                self.edge(self.source(term), node)
        return extras

    def peephole(self, term: sympy.Expr):
        """``p * v`` with ``p`` a parameter vector and ``v`` one value: (p, v), else None."""
        if not isinstance(term, sympy.Mul) or len(term.args) != 2:
            return None
        a, b = term.args
        for p, other in ((a, b), (b, a)):
            if (
                isinstance(p, sympy.Symbol)
                and p.name in self.spec.vectors
                and isinstance(other, sympy.Symbol)
                and other.name not in self.spec.vectors
            ):
                return p.name, other
        return None

    def activation(self, node: str, expr: fn.Activation, target: str | None) -> str:
        primitive = fn.primitive_of(expr)
        kind = "gate" if primitive is not None and primitive.gate else "activation"
        extras = self.connect_sum(expr.args[0], node)
        label = f'<FONT POINT-SIZE="16">{primitive.label if primitive else type(expr).__name__}</FONT>'
        if target is not None:
            label += f"  {name_label(target, 't')}"
        if extras:
            label += f'<BR/><FONT POINT-SIZE="9">{" ".join(extras)}</FONT>'
        return self.node(node, label, shape="box", style="rounded,filled", fillcolor=COLORS[kind])

    # -- the whole cell ------------------------------------------------------------------------
    def build(self) -> str:
        spec = self.spec
        inputs = [self.node(INPUT, name_label("x", "t"), shape="ellipse", style="filled", fillcolor=COLORS["input"])]
        self.values[INPUT] = INPUT
        for s in spec.states:
            node = self.node(
                s + PREV_SUFFIX, name_label(s, "t-1"), shape="ellipse", style="filled", fillcolor=COLORS["input"]
            )
            self.values[s + PREV_SUFFIX] = node
            inputs.append(node)
        outputs = []
        for eq in spec.equations:
            is_state = eq.target in spec.states
            if isinstance(eq.expr, fn.Activation):
                node = self.activation(
                    f"{eq.target}__op" if is_state else eq.target, eq.expr, None if is_state else eq.target
                )
            else:
                node = self.source(eq.expr)
            if is_state:
                out = self.node(
                    eq.target,
                    name_label(eq.target, "t"),
                    shape="ellipse",
                    style="filled",
                    fillcolor=COLORS["state"],
                    peripheries="2",
                )
                self.edge(node, out)
                node = out
                outputs.append(out)
            elif node != eq.target:  # a plain value: name it
                named = self.node(eq.target, name_label(eq.target, "t"), shape="ellipse")
                self.edge(node, named)
                node = named
            self.values[eq.target] = node
        title = html.escape(spec.title)
        head = [
            f'digraph "{spec.name}" {{',
            f'  graph [rankdir=LR, nodesep=0.25, ranksep=0.45, fontname="{FONT}", fontsize=14, '
            f'labelloc=t, label=<<B>{title}</B>>, pad=0.2, bgcolor="white"];',
            f'  node [fontname="{FONT}", fontsize=13, color="{COLORS["edge"]}", penwidth=1.2];',
            f'  edge [fontname="{FONT}", color="{COLORS["edge"]}", arrowsize=0.7];',
            "  { rank=source; " + " ".join(f'"{n}";' for n in inputs) + " }",
        ]
        return "\n".join(head + self.lines + ["}"]) + "\n"


def diagram_dot(spec: CellSpec) -> str:
    """Graphviz source of the cell's picture (deterministic)."""
    return _Graph(spec).build()


def dot_available() -> bool:
    return shutil.which("dot") is not None


INSTALL_HINT = "install Graphviz for the cell diagrams (Debian/Ubuntu: apt-get install graphviz)"


def render(dot_source: str, fmt: str, dpi: int = 110) -> bytes:
    """Run Graphviz: ``fmt`` is ``svg`` or ``png``; returns the file's bytes."""
    if not dot_available():
        raise DiagramError(f"Graphviz 'dot' is not installed: {INSTALL_HINT}")
    args = ["dot", f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
    run = subprocess.run(args, input=dot_source.encode(), capture_output=True, timeout=120)
    if run.returncode != 0:
        raise DiagramError(f"dot failed: {run.stderr.decode(errors='replace')[-2000:]}")
    return run.stdout


def write_diagram(spec: CellSpec, path: Path) -> Path:
    """Write the cell's diagram; the format follows the suffix (.dot, .svg or .png)."""
    source = diagram_dot(spec)
    data = source.encode() if path.suffix == ".dot" else render(source, path.suffix[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
