"""The Markdown pages (``md/``): ``$$`` math that GitHub, MkDocs, MathJax and KaTeX all read.

Markdown treats a backslash before ASCII punctuation as an escape, and GitHub applies that inside
``$$`` blocks too (``\\\\`` arrives as ``\\``, ``\\,`` as ``,``). The Markdown pages therefore
use TeX without such pairs: ``\\cr`` ends a row, ``\\thinspace`` is the thin space. MathJax, KaTeX
and MkDocs' arithmatex read both spellings alike.
"""

from __future__ import annotations

import re

from symlstm.backends.latex.equations import BLOCKS
from symlstm.site.build import DocsError
from symlstm.site.pages import (
    BACKWARD_NOTE,
    BLOCK_TITLES,
    TABLE_NOTE,
    CellDoc,
    Plan,
    summary_math,
    tex_text,
)

MD_REWRITES = [("\\\\[8pt]", "\\cr"), ("\\\\", "\\cr"), ("\\,", "\\thinspace ")]
_ESCAPABLE = re.compile(r"\\[!-/:-@\[-`{-~]")


def md_tex(latex: str) -> str:
    for old, new in MD_REWRITES:
        latex = latex.replace(old, new)
    bad = _ESCAPABLE.search(latex)
    if bad:
        raise DocsError(f"{bad.group()!r} in {latex!r} would be eaten by Markdown's escapes")
    return latex


def md_math(lines: list[str]) -> str:
    return "$$\n\\begin{aligned}\n" + md_tex(" \\\\\n".join(lines)) + "\n\\end{aligned}\n$$\n"


def md_inline(latex: str) -> str:
    return f"${md_tex(latex)}$"


def md_text(text: str) -> str:
    """LaTeX text with ``$...$`` math as Markdown (the math kept as ``$...$``)."""
    return tex_text(text, md_inline)


def cell_md(doc: CellDoc, plan: Plan) -> str:
    spec = doc.spec
    refs = "; ".join(spec.references)
    states = ", ".join(md_inline(plan.notation.vector(s, "t")) for s in spec.states)
    out = [
        f"# {spec.title}\n",
        f"Cell `{spec.name}`. State carried between steps: {states}" + (f". References: {refs}.\n" if refs else ".\n"),
        md_text(plan.notation.legend_text()) + "\n",
    ]
    if plan.diagrams:
        out.append(f"![Diagram of the cell {spec.name}](../diagrams/{spec.name}.svg)\n")
    s = doc.summary
    rows = [(label, md_inline(v) if v is not None else "none") for label, v in summary_math(s)]
    label, stored = rows.pop()
    rows.append((label, stored + " values"))
    out.append("| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows))
    for block in BLOCKS:
        out.append(f"## {BLOCK_TITLES[block]}\n")
        if block == "backward":
            out.append(BACKWARD_NOTE + "\n")
        out.append(md_math(doc.blocks[block]))
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
        out.append(f"| [`{s.name}`]({s.name}.md) | " + " | ".join(cells) + " |")
    out.append("\n" + md_text(TABLE_NOTE) + "\n")
    if plan.greff:
        out.append("[The peephole cell's backward pass beside Greff et al. 2017](greff.md)\n")
    return "\n".join(out)
