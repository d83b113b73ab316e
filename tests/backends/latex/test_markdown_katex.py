"""``symlstm latex NAME --markdown``: every formula renders in KaTeX and in MathJax 3 (GitHub's
renderer), after the Markdown layer has done to it what GitHub's does.

GitHub reads the Markdown first and gives the math to MathJax 3 afterwards: CommonMark's
backslash escapes and entity references are applied inside ``$$`` too, and a blank line or a
line that opens a block (heading, list, quote) would end the display. ``github_math`` does those
steps to the page; the formulas it returns go to ``tests/js/render.cjs`` (one node process for
all of them), which renders each with KaTeX (``throwOnError``, ``strict: "error"``) and with
MathJax 3's TeX input (packages base, ams and boldsymbol, an unknown macro an error).

The renderers come from npm: ``npm ci --prefix tests/js`` (``.ci/run`` runs it); without node or
that install the tests skip and say so.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from symlstm.backends.latex.document import Layout
from symlstm.backends.latex.markdown import MARKDOWN_ESCAPE, markdown_page
from symlstm.backends.latex.notation import load_notation, preset_names
from symlstm.backends.latex.printer import LatexError
from symlstm.cells import builtin_names, builtin_spec
from symlstm.ir.derive import derive
from symlstm.tools.cli import main

JS = Path(__file__).resolve().parents[2] / "js"
LAYOUTS = {"compact": Layout(), "long": Layout(long=True), "steps": Layout(steps=True)}


@pytest.fixture(scope="module")
def render():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs npm)")
    if not (JS / "node_modules" / "katex").is_dir() or not (JS / "node_modules" / "mathjax-full").is_dir():
        pytest.skip(f"KaTeX and MathJax are not installed: npm ci --prefix {JS}")

    def run(formulas: list[tuple[str, bool]]) -> list[dict]:
        todo = [{"id": k, "tex": tex, "display": display} for k, (tex, display) in enumerate(formulas)]
        proc = subprocess.run(
            [node, str(JS / "render.cjs")], input=json.dumps(todo), capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    return run


# -- what GitHub's Markdown layer does to the math ---------------------------------------------------

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]*);")
#: a line that opens a Markdown block of its own (ATX heading, quote, list item, setext underline,
#: thematic break, indented code): inside a display it would cut the formula
_BLOCK_START = re.compile(r"^(?: {4}|\t| {0,3}(?:#{1,6}(?:\s|$)|>|[-+*](?:\s|$)|\d{1,9}[.)](?:\s|$)|=+\s*$|-{3,}))")


def commonmark_unescape(text: str) -> str:
    """CommonMark's inline layer on text that is not code: backslash escapes, then entities."""
    text = MARKDOWN_ESCAPE.sub(lambda m: m.group()[1], text)
    return _ENTITY.sub(lambda m: html.unescape(m.group()), text)


def github_math(page: str) -> list[tuple[str, bool, str]]:
    """Every formula of a Markdown page as GitHub's math renderer receives it: (TeX, display,
    the source it came from). Fails where Markdown would break a display apart."""
    out = []
    prose = []
    lines = page.split("\n")
    k = 0
    while k < len(lines):
        if lines[k].strip() != "$$":
            prose.append(lines[k])
            k += 1
            continue
        end = lines.index("$$", k + 1)
        body = lines[k + 1 : end]
        assert body, f"an empty display at line {k + 1}"
        for line in body:
            assert line.strip(), f"a blank line inside the display at line {k + 1} ends it in Markdown"
            assert not _BLOCK_START.match(line), f"{line!r} opens a Markdown block inside a display"
        source = "\n".join(body)
        out.append((commonmark_unescape(source), True, source))
        k = end + 1
    text = "\n".join(prose)
    text = re.sub(r"`[^`]*`", "", text)  # code spans hold no math
    for match in re.finditer(r"\$([^$\n]+)\$", text):
        out.append((commonmark_unescape(match.group(1)), False, match.group(1)))
    return out


OPEN, CLOSE, ROW_END = "\\begin{aligned}\n", "\n\\end{aligned}", " \\cr\n"


def rows_of(tex: str) -> list[str]:
    """A display's rows, each an ``aligned`` display of its own (the rows of the presets and
    layouts repeat: rendered once each, the check takes half the time)."""
    assert tex.startswith(OPEN) and tex.endswith(CLOSE), tex[:80]
    return [OPEN + row + CLOSE for row in tex[len(OPEN) : -len(CLOSE)].split(ROW_END)]


def check_renders(render, pages: dict[str, str], by_row: bool = False) -> int:
    """Render every formula of ``pages`` (label -> Markdown) once, or with ``by_row`` every row of
    a display; fail naming each formula that does not render."""
    where: dict[tuple[str, bool], list[str]] = {}
    eaten = []
    for label, page in pages.items():
        for tex, display, source in github_math(page):
            for piece in rows_of(tex) if display and by_row else [tex]:
                where.setdefault((piece, display), []).append(label)
            if tex != source:
                eaten.append(f"{label}: Markdown changes {source!r} to {tex!r}")
    assert not eaten, "\n".join(eaten[:5])
    formulas = list(where)
    failures = []
    for (tex, display), result in zip(formulas, render(formulas)):
        for renderer in ("katex", "mathjax"):
            if result[renderer] is not None:
                labels = ", ".join(where[tex, display][:3])
                failures.append(f"{renderer} on [{labels}]:\n{tex}\n-> {result[renderer]}")
    assert not failures, f"{len(failures)} formula(s) fail:\n\n" + "\n\n".join(failures[:6])
    return len(formulas)


def test_the_markdown_layer_is_emulated():
    display = "\\begin{aligned}\na &= b \\cr c &= d\n\\end{aligned}"
    page = f"# t\n\nx $a\\_b$ and `$c$`\n\n$$\n{display}\n$$\n"
    assert github_math(page) == [
        (display, True, display),
        ("a_b", False, "a\\_b"),
    ]
    assert commonmark_unescape(r"a \\ b \, c \{ &amp; \alpha") == r"a \ b , c { & \alpha"
    with pytest.raises(AssertionError, match="blank line"):
        github_math("$$\na\n\nb\n$$\n")
    with pytest.raises(AssertionError, match="opens a Markdown block"):
        github_math("$$\na\n+ b\n$$\n")


def test_markdown_keeps_no_pair_markdown_would_eat():
    from symlstm.backends.latex.markdown import md_tex

    assert md_tex(r"a \\ b \, c \{d\}") == r"a \cr b \thinspace  c \lbrace d\rbrace "
    with pytest.raises(LatexError, match="would be eaten by Markdown"):
        md_tex(r"a \; b")
    with pytest.raises(LatexError, match="no Markdown form"):
        markdown_page(derive(builtin_spec("rnn")), layout=Layout(numbered=True))


def test_the_renderers_reject_what_github_would_not_show(render):
    """The check can fail: LaTeX that pdflatex takes but the math renderers do not."""
    results = render([(r"\mathbbm{1}", True), (r"\left( a", True), ("é", False)])
    assert all(r["katex"] and r["mathjax"] for r in results[:2])  # a macro of no package; unbalanced
    assert "strict" in results[2]["katex"]  # text in math mode: KaTeX's strict mode refuses it
    # the rows the Markdown writes go through
    ok = render([(r"\begin{aligned} a &= \lbrace b \rbrace \thinspace c \cr d &= e \end{aligned}", True)])
    assert ok[0] == {"id": 0, "katex": None, "mathjax": None}


def test_every_cell_and_preset_renders(render):
    """``symlstm latex NAME --markdown`` in every preset, with --long and --steps: every formula
    renders in KaTeX and MathJax, and nothing in it is a Markdown escape."""
    pages = {}
    refused = []
    for name in builtin_names():
        d = derive(builtin_spec(name))
        for preset in preset_names():
            n = load_notation(preset)
            for mode, layout in LAYOUTS.items():
                try:
                    pages[f"{name} {preset} {mode}"] = markdown_page(d, n, layout)
                except LatexError as err:  # a preset that typesets two names of the cell alike
                    assert "typesets both" in str(err), (name, preset, err)
                    refused.append((name, preset))
    assert len(refused) < len(pages) // 10, refused
    count = check_renders(render, pages, by_row=True)
    assert count > 1000  # distinct rows and inline formulas: the pages are not empty


def test_the_site_markdown_renders(render, tmp_path):
    """The Markdown pages of ``symlstm docs`` (cell, derivation, index, Greff et al.), every
    display whole."""
    from symlstm.site.greff import greff_md
    from symlstm.site.markdown import cell_md, derivation_md, index_md
    from symlstm.site.pages import Plan, cell_doc

    n = load_notation(None)
    docs = [cell_doc(builtin_spec(name), n) for name in ("peephole", "gru")]
    plan = Plan(tmp_path, n, png_renderer="mathtext", pdf=False, diagrams=False, dpi=100, greff=True)
    pages = {"index.md": index_md(docs, plan), "greff.md": greff_md()}
    for doc in docs:
        pages[f"{doc.name}.md"] = cell_md(doc, plan)
        pages[f"{doc.name}-derivation.md"] = derivation_md(doc, plan)
    assert check_renders(render, pages) > 50


def test_cli_markdown(tmp_path, capsys):
    out = tmp_path / "lstm.md"
    assert main(["latex", "lstm", "--markdown", "-o", str(out)]) == 0
    text = out.read_text()
    assert text == markdown_page(derive(builtin_spec("lstm")))
    assert text.count("$$") == 6 and "## Forward pass" in text and "## Gradients" in text
    assert r"\mathbf{f}_t \odot \mathbf{c}_{t-1} + \mathbf{i}_t \odot \mathbf{g}_t" in text
    assert r"k \in \lbrace i, f, g, o\rbrace" in text  # compact gradients, braces Markdown keeps
    assert "align" not in text.replace("aligned", "") and "\\\\" not in text
    assert "Bold symbols are vectors" in text  # the legend

    assert main(["latex", "lstm", "--markdown", "--forward-only"]) == 0
    forward = capsys.readouterr().out
    assert forward.count("$$") == 2 and "Backward" not in forward
    assert main(["latex", "lstm", "--markdown", "--long"]) == 0
    long = capsys.readouterr().out
    assert r"\delta \mathbf{W}_{i} &=" in long and "lbrace" not in long
    assert main(["latex", "lstm", "--markdown", "--steps", "--notation", "pytorch"]) == 0
    steps = capsys.readouterr().out
    assert "step by step" in steps and steps.count("### $") == 6 and r"\partial" in steps
    assert "W_{hi}" in steps  # the preset's names

    for flag in ("--numbered", "--standalone"):
        with pytest.raises(SystemExit) as stop:
            main(["latex", "lstm", "--markdown", flag])
        assert stop.value.code == 2
        assert f"--markdown cannot be combined with {flag}" in capsys.readouterr().err
