"""The derivation pages of ``symlstm docs`` (the backward pass step by step, as ``symlstm latex
--steps``) and the compact gradients on the cell pages, as ``symlstm latex`` prints them."""

import html
import re
import xml.etree.ElementTree as ET

import pytest

from symlstm.backends.latex.document import Layout, latex_document
from symlstm.backends.latex.equations import backward_rows
from symlstm.backends.latex.markdown import MARKDOWN_ESCAPE, markdown_page
from symlstm.backends.latex.notation import load_notation
from symlstm.backends.latex.steps import steps_rows
from symlstm.cells import builtin_names, builtin_spec
from symlstm.ir.derive import derive
from symlstm.site.docs import build_docs
from symlstm.site.mathml import mathml_block

CELLS = ["lstm", "gru"]


def links(page):
    return re.findall(r'(?:href|src)="([^"#:]+)"', page.read_text())


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of its level or above."""
    start = markdown.index(heading)
    end = re.search(r"^#{1,2} ", markdown[start + len(heading) :], re.M)
    return markdown[start : start + len(heading) + end.start()] if end else markdown[start:]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    report = build_docs(out, CELLS, tex=False, diagrams=False, progress=False, png="mathtext")
    assert report.ok, report.errors
    return out


@pytest.mark.parametrize("name", CELLS)
def test_derivation_pages(site, name):
    d = derive(builtin_spec(name))
    adjoints = len(backward_rows(d))  # one heading per adjoint the backward pass computes
    page = site / f"{name}-derivation.html"
    text = page.read_text()
    assert text.count("<h3>") == adjoints and "step by step" in text
    assert text.count("&#x02202;") >= 2 * adjoints  # ∂: the chain rule's partials
    for block in re.findall(r'<div class="eqs">.*?</div>', text, re.S):
        ET.fromstring(block)  # well-formed MathML in an HTML table
    assert "\\" not in html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<style>.*?</style>", "", text, flags=re.S)))
    for link in links(page):
        assert (site / link).exists(), f"{page.name} links to missing {link}"
    md = (site / "md" / f"{name}-derivation.md").read_text()
    assert md.count("### $") == adjoints and "\\partial" in md and not MARKDOWN_ESCAPE.search(md)
    assert (site / "tex" / f"{name}-derivation.tex").read_text() == latex_document(d, None, Layout(steps=True))
    # linked from the cell's pages and the indexes
    assert f"{name}-derivation.html" in links(site / f"{name}.html")
    assert f"{name}-derivation.html" in links(site / "index.html")
    assert f"]({name}-derivation.md)" in (site / "md" / f"{name}.md").read_text()
    assert f"]({name}-derivation.md)" in (site / "md" / "index.md").read_text()
    assert f"]({name}.md)" in md


def test_cell_pages_show_the_compact_gradients(site):
    """The site's gradients are ``symlstm latex``'s: compact by default."""
    cli = markdown_page(derive(builtin_spec("lstm")))
    page = (site / "md" / "lstm.md").read_text()
    assert section(page, "## Gradients") == section(cli, "## Gradients")
    assert r"k \in \lbrace i, f, g, o\rbrace" in page
    assert (site / "tex" / "lstm.tex").read_text() == latex_document(derive(builtin_spec("lstm")))
    # the HTML gradients table: one row per compact line (lstm: the group, δx, δh_0, δc_0)
    gradients = re.findall(r'<div class="eqs">.*?</div>', (site / "lstm.html").read_text(), re.S)[2]
    assert gradients.count("<tr>") == 4


@pytest.mark.parametrize("preset", ["symlstm", "pytorch"])
def test_every_derivation_is_clean_mathml(preset):
    n = load_notation(preset)
    for name in builtin_names():
        out = mathml_block(list(steps_rows(derive(builtin_spec(name)), n).values()))
        # latex2mathml leaves commands it does not know as text: none may survive
        assert "\\" not in html.unescape(re.sub(r"<[^>]+>", "", out)), (name, preset)
        ET.fromstring(out)
