"""The peephole cell's derived BPTT equations are Greff et al. 2017's, term by term.

Greff, Srivastava, Koutník, Steunebrink & Schmidhuber, "LSTM: A Search Space Odyssey" (IEEE TNNLS
2017), section 2 gives the vanilla LSTM's backward pass. It is written out below as SymPy, by hand
and independently of symlstm, in the paper's names (block input z, output y, time offsets as in
the paper). The derivation's assignments are expanded the way the LaTeX printer writes them (the
kernel's carry from step t+1 becomes the t+1 terms it stands for; a GEMM adjoint becomes the sum of
Rᵀδ), the paper's names are mapped to the spec's (z -> g, y -> h), and both sides are compared as
multisets of summands: each of the paper's terms must be one of ours and vice versa.

The paper writes activation derivatives σ'(ō^t), g'(z̄^t), h'(c^t); with σ the logistic function and
g = h = tanh these are o^t (1 - o^t), 1 - (z^t)² and 1 - tanh²(c^t), which is how symlstm writes
them (from stored outputs), so that identity is applied on the paper's side.
"""

from collections import Counter

import sympy

from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive
from symlstm.ir.nodes import Kind
from symlstm.lang import primitives as fn


def v(name, offset=0):
    """A per-step vector at time t + offset, e.g. v('c', -1) is c^{t-1}."""
    return sympy.Symbol(f"{name}@{offset:+d}")


def par(name):
    return sympy.Symbol(name)


RT = sympy.Function("RT")  # RT(M, d) is M^T d (a matrix transpose times a vector)
OUTER = sympy.Function("OUTER")  # OUTER(d, x) is the outer product <d, x> = d x^T

# -- Greff et al. 2017, vanilla LSTM, backward pass (paper's names) ---------------------------------
sig_prime = lambda g: v(g) * (1 - v(g))  # σ'(ḡ^t) = g^t (1 - g^t)
g_prime = lambda: 1 - v("z") ** 2  # g = tanh: g'(z̄^t) = 1 - (z^t)²
h = lambda: sympy.tanh(v("c"))  # h(c^t)
h_prime = lambda: 1 - sympy.tanh(v("c")) ** 2  # h'(c^t)

GREFF = {
    "dy": v("Delta")
    + RT(par("R_z"), v("dz_bar", 1))
    + RT(par("R_i"), v("di_bar", 1))
    + RT(par("R_f"), v("df_bar", 1))
    + RT(par("R_o"), v("do_bar", 1)),
    "do_bar": v("dy") * h() * sig_prime("o"),
    "dc": v("dy") * v("o") * h_prime()
    + par("p_o") * v("do_bar")
    + par("p_i") * v("di_bar", 1)
    + par("p_f") * v("df_bar", 1)
    + v("dc", 1) * v("f", 1),
    "df_bar": v("dc") * v("c", -1) * sig_prime("f"),
    "di_bar": v("dc") * v("z") * sig_prime("i"),
    "dz_bar": v("dc") * v("i") * g_prime(),
}
# δW_* = Σ_t <δ*^t, x^t>,  δR_* = Σ_{t=0}^{T-1} <δ*^{t+1}, y^t>,  δb_* = Σ_t δ*^t,
# δp_i = Σ_{t=0}^{T-1} c^t ⊙ δī^{t+1},  δp_f = Σ_{t=0}^{T-1} c^t ⊙ δf̄^{t+1},  δp_o = Σ_t c^t ⊙ δō^t
GREFF_GRADIENTS = {
    **{f"W_{k}": OUTER(v(f"d{k}_bar"), v("x")) for k in "zifo"},
    **{f"R_{k}": OUTER(v(f"d{k}_bar", 1), v("y")) for k in "zifo"},
    **{f"b_{k}": v(f"d{k}_bar") for k in "zifo"},
    "p_i": v("c") * v("di_bar", 1),
    "p_f": v("c") * v("df_bar", 1),
    "p_o": v("c") * v("do_bar"),
}
# δx^t = W_z^T δz̄^t + W_i^T δī^t + W_f^T δf̄^t + W_o^T δō^t
GREFF_DX = sum(RT(par(f"W_{k}"), v(f"d{k}_bar")) for k in "zifo")

PAPER_TO_SPEC = {"z": "g", "y": "h"}


def paper_name(name: str) -> str:
    """'dz_bar' -> 'dg_bar', 'R_z' -> 'R_g', 'y' -> 'h', 'Delta' stays."""
    for prefix in ("d", ""):
        for a, b in PAPER_TO_SPEC.items():
            if name == prefix + a or name.startswith(prefix + a + "_"):
                return prefix + b + name[len(prefix + a) :]
    if name.startswith(("W_", "R_", "b_", "p_")):
        return name[:2] + PAPER_TO_SPEC.get(name[2:], name[2:])
    return name


def to_spec_names(expr):
    mapping = {}
    for s in expr.free_symbols:
        name, at, offset = s.name.partition("@")
        mapping[s] = sympy.Symbol(paper_name(name) + at + offset)
    return expr.xreplace(mapping)


# -- symlstm's derivation, expanded as the printer writes it -----------------------------------------


def ours(d):
    """Derivation symbols -> the same per-step vectors as above (spec names, time offsets)."""

    def key(symbol, shift):
        q = d.quantities[symbol.name]
        if q.kind == Kind.PREV:
            return v(q.base, shift - 1)
        if q.kind == Kind.PARAM:
            return par(symbol.name)
        if q.kind == Kind.OUTPUT_GRAD:
            return v("Delta", shift)
        if q.kind == Kind.DELTA:  # d_i_bar -> di_bar, d_h -> dh
            return v("d" + q.of, shift)
        return v(symbol.name, shift)

    def expand(expr, shift=0):
        out = []
        for term in sympy.Add.make_args(expr):
            q = d.quantities.get(term.name) if isinstance(term, sympy.Symbol) else None
            if q is not None and q.kind == Kind.CARRY:  # what step t+1 sends back to this state
                out.append(expand(d.prev_adjoints[q.base], shift + 1))
            elif q is not None and q.kind == Kind.GEMM_T:
                out += [
                    RT(par(p.matrix), key(d.product_deltas[p.name], shift)) for p in d.products_with_operand(q.operand)
                ]
            else:
                out.append(
                    term.xreplace({s: key(s, shift) for s in term.free_symbols}).replace(
                        lambda e: isinstance(e, fn.Tanh), lambda e: sympy.tanh(e.args[0])
                    )
                )
        return sympy.Add(*out)

    backward = {
        "d" + d.quantities[a.name].base.replace("_bar", "") + ("_bar" if a.name.endswith("_bar") else ""): expand(
            a.expr
        )
        for a in d.backward
    }
    gradients = {}
    for matrix in d.spec.matrices:
        terms = [
            OUTER(key(d.product_deltas[p.name], 0), v("x") if p.operand == "x" else key(sympy.Symbol(p.operand), 0))
            for p in d.products
            if p.matrix == matrix
        ]
        gradients[matrix] = sympy.Add(*terms)
    for name, expr in d.param_grads.items():
        gradients[name] = expand(expr)
    dx = sympy.Add(*[RT(par(p.matrix), key(d.product_deltas[p.name], 0)) for p in d.products_with_operand("x")])
    return backward, gradients, dx


def normalise_time(term):
    """Shift a term in time so its adjoint factor sits at offset 0 (a sum over all t is unchanged
    by re-indexing: Σ_{t=0}^{T-1} <δ^{t+1}, y^t> = Σ_{t=1}^{T} <δ^t, y^{t-1}>)."""
    deltas = [s for s in term.free_symbols if s.name.startswith("d") and "@" in s.name]
    assert len(deltas) == 1, term
    by = -int(deltas[0].name.split("@")[1])
    return term.xreplace(
        {
            s: sympy.Symbol(f"{s.name.split('@')[0]}@{int(s.name.split('@')[1]) + by:+d}")
            for s in term.free_symbols
            if "@" in s.name
        }
    )


def summands(expr):
    return Counter(sympy.Add.make_args(sympy.expand(expr, mul=False, multinomial=False)))


def test_peephole_backward_is_greff_term_by_term():
    backward, _, _ = ours(derive(builtin_spec("peephole")))
    paper = {paper_name(k): to_spec_names(e) for k, e in GREFF.items()}
    assert set(paper) == set(backward), (sorted(paper), sorted(backward))
    for lhs, expr in paper.items():
        assert summands(backward[lhs]) == summands(expr), (
            f"δ{lhs}: ours has {sorted(map(str, summands(backward[lhs])))}, "
            f"Greff et al. have {sorted(map(str, summands(expr)))}"
        )
        assert len(summands(expr)) == len(sympy.Add.make_args(expr))


def test_peephole_gradients_are_greff_term_by_term():
    _, gradients, dx = ours(derive(builtin_spec("peephole")))
    paper = {paper_name(k): to_spec_names(e) for k, e in GREFF_GRADIENTS.items()}
    assert set(paper) == set(gradients)
    for name, expr in paper.items():
        theirs = Counter(normalise_time(t) for t in sympy.Add.make_args(expr))
        mine = Counter(normalise_time(t) for t in sympy.Add.make_args(gradients[name]))
        assert mine == theirs, (name, mine, theirs)
    assert summands(dx) == summands(to_spec_names(GREFF_DX))


def test_the_comparison_is_not_vacuous():
    """A cell without peepholes does not match the paper's δc (the p ⊙ δ terms are missing)."""
    backward, _, _ = ours(derive(builtin_spec("lstm")))
    assert summands(backward["dc"]) != summands(to_spec_names(GREFF["dc"]))
    assert summands(backward["do_bar"]) == summands(to_spec_names(GREFF["do_bar"]))
