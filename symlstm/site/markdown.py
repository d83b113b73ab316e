"""The Markdown pages (``md/``): ``$$`` math that GitHub, MkDocs, MathJax and KaTeX all read,
written by ``symlstm.backends.latex.markdown`` (the same as ``symlstm latex NAME --markdown``)."""

from __future__ import annotations

from symlstm.backends.latex.equations import BLOCKS
from symlstm.backends.latex.markdown import md_head, md_inline, md_section, md_steps_section, md_text
from symlstm.site.pages import TABLE_NOTE, CellDoc, Plan, derivation_title, summary_math


def cell_md(doc: CellDoc, plan: Plan) -> str:
    spec = doc.spec
    out = md_head(spec, plan.notation)
    if plan.diagrams:
        out.append(f"![Diagram of the cell {spec.name}](../diagrams/{spec.name}.svg)\n")
    s = doc.summary
    rows = [(label, md_inline(v) if v is not None else "none") for label, v in summary_math(s)]
    label, stored = rows.pop()
    rows.append((label, stored + " values"))
    out.append("| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows))
    out.append(f"[The backward pass derived step by step]({spec.name}-derivation.md)\n")
    out += [md_section(block, doc.rows[block]) for block in BLOCKS]
    return "\n".join(out)


def derivation_md(doc: CellDoc, plan: Plan) -> str:
    """The forward pass, then every adjoint of the backward pass derived by the chain rule."""
    out = md_head(doc.spec, plan.notation, title=derivation_title(doc))
    out.append(f"[The cell's page]({doc.name}.md)\n")
    out += [md_section("forward", doc.rows["forward"]), md_steps_section(doc.steps)]
    return "\n".join(out)


def index_md(docs: list[CellDoc], plan: Plan) -> str:
    out = [
        "# symlstm: the cells' equations\n",
        f"Notation `{plan.notation.name}`: {plan.notation.description}.\n",
        "| cell | states | gates | peepholes | parameters | FLOPs forward | FLOPs backward | stored |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        s = doc.summary
        cells = [md_inline(v) if v is not None else "–" for _, v in summary_math(s)]
        name = f"[`{s.name}`]({s.name}.md) ([derivation]({s.name}-derivation.md))"
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("\n" + md_text(TABLE_NOTE) + "\n")
    if plan.greff:
        out.append("[The peephole cell's backward pass beside Greff et al. 2017](greff.md)\n")
    return "\n".join(out)
