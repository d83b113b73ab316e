"""`symlstm docs`: the site with and without TeX, reuse on rebuild, every artifact readable.

Tests needing pdflatex/pdftoppm, Graphviz or Chromium skip with the reason when the tool is missing
(.ci/run installs them).
"""

import html
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import symlstm
from symlstm.backends.latex.equations import BLOCKS, backward_lines, equation_rows, forward_lines, gradient_lines
from symlstm.backends.latex.notation import load_notation, preset_names
from symlstm.cells import builtin_names, builtin_spec
from symlstm.ir.derive import derive
from symlstm.ir.summary import Poly, elementwise_ops, summarize
from symlstm.site.diagram import diagram_dot
from symlstm.site.docs import build_docs
from symlstm.site.mathml import mathml_block
from symlstm.site.mathtext import to_mathtext
from symlstm.site.pages import cell_doc
from symlstm.tools.cli import main

CELLS = ["lstm", "peephole", "gru"]


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        hints = {
            "pdflatex": "apt-get install texlive-latex-base texlive-latex-recommended",
            "pdftoppm": "apt-get install poppler-utils",
            "dot": "apt-get install graphviz",
            "chromium": "apt-get install chromium",
        }
        pytest.skip(f"{', '.join(missing)} not installed ({'; '.join(hints[t] for t in missing)})")


def links(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"#:]+)"', page.read_text())


def png_ink(path: Path) -> float:
    from PIL import Image

    image = np.asarray(Image.open(path).convert("L"), dtype=float)
    return float((image < 128).mean())


def check_site(out: Path, cells, pdf: bool, diagrams: bool):
    for name in cells:
        tex = (out / "tex" / f"{name}.tex").read_text()
        assert r"\begin{align*}" in tex and "Backward pass through time" in tex
        for block in BLOCKS:
            png = out / "png" / f"{name}-{block}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert 0.005 < png_ink(png) < 0.5, f"{png} looks blank or black"
        md = (out / "md" / f"{name}.md").read_text()
        assert md.count("$$") == 6 and md.count(r"\begin{aligned}") == 3
        # no backslash before ASCII punctuation: Markdown (GitHub too, inside $$) would eat it
        assert not re.search(r"\\[!-/:-@\[-`{-~]", md), re.search(r"\\[!-/:-@\[-`{-~]", md)
        page = out / f"{name}.html"
        text = page.read_text()
        assert "<script" not in text and text.count('<div class="eqs">') == 3
        ET.fromstring(re.search(r"(<math.*?</math>)", text, re.S).group(1))  # well-formed MathML
        assert (out / "diagrams" / f"{name}.dot").exists()
        assert (out / "pdf" / f"{name}.pdf").exists() == pdf
        assert (out / "pdf" / f"{name}-derivation.pdf").exists() == pdf
        assert f"{name}-derivation.html" in links(page)
        assert (out / "diagrams" / f"{name}.svg").exists() == diagrams
        for link in links(page):
            assert (out / link).exists(), f"{page.name} links to missing {link}"
    for link in links(out / "index.html"):
        assert (out / link).exists(), f"index.html links to missing {link}"
    assert ("pdf/all.pdf" in links(out / "index.html")) == pdf
    assert (out / "index.html").stat().st_mode & 0o044 == 0o044, "pages must be readable by a web server"
    csv = (out / "comparison.csv").read_text().splitlines()
    assert len(csv) == 1 + len(cells)


def test_site_with_tex_and_graphviz(tmp_path):
    need("pdflatex", "pdftoppm", "dot")
    out = tmp_path / "site"
    start = time.perf_counter()
    report = build_docs(out, CELLS, progress=False)
    first = time.perf_counter() - start
    assert report.ok, report.errors
    assert not report.notes
    check_site(out, CELLS, pdf=True, diagrams=True)
    for pdf in [*(out / "pdf").glob("*.pdf")]:
        assert pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(out / "pdf" / "all.pdf")], capture_output=True, text=True)
    if info.returncode == 0:
        pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
        assert pages >= 1 + len(CELLS) + 1  # table, one or more pages per cell, Greff side by side
    assert "Greff et al." in (out / "greff.html").read_text()
    assert (out / "diagrams" / "peephole.svg").read_text().lstrip().startswith(("<?xml", "<svg", "<!--"))

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".symlstm-docs.json"}
    start = time.perf_counter()
    again = build_docs(out, CELLS, progress=False)
    assert again.ok and again.written == [] and len(again.reused) == len(report.written)
    assert time.perf_counter() - start < max(0.5 * first, 2.0)
    # reproducible: rebuilding everything gives the same bytes (PDFs too: SOURCE_DATE_EPOCH)
    forced = build_docs(out, CELLS, progress=False, force=True)
    assert forced.ok
    changed = [str(p.relative_to(out)) for p, data in before.items() if p.read_bytes() != data]
    assert changed == []


def test_rebuild_redoes_only_what_changed(tmp_path):
    out = tmp_path / "site"
    first = build_docs(out, ["rnn"], tex=False, diagrams=False, progress=False)
    assert first.ok
    spec = tmp_path / "rnn2.toml"
    spec.write_text(builtin_spec("rnn").source.replace('name = "rnn"', 'name = "rnn2"'))
    second = build_docs(out, ["rnn", str(spec)], tex=False, diagrams=False, progress=False)
    assert second.ok
    assert not any(p.startswith(("png/rnn-", "md/rnn.md", "rnn.html", "tex/rnn.tex")) for p in second.written)
    assert {"png/rnn2-forward.png", "rnn2.html", "index.html"} <= set(second.written)
    (out / "png" / "rnn-forward.png").unlink()
    third = build_docs(out, ["rnn", str(spec)], tex=False, diagrams=False, progress=False)
    assert set(third.written) == {f"png/rnn-{b}.png" for b in BLOCKS}


def test_site_without_tex_on_a_fresh_machine(tmp_path):
    """PATH without pdflatex/pdftoppm (Graphviz kept if present): PNGs come from mathtext, no PDF,
    and the command says how to install TeX."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if shutil.which("dot"):
        (bin_dir / "dot").symlink_to(shutil.which("dot"))
    out = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "symlstm", "docs", "--out", str(out), "lstm", "peephole"],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "pdflatex not found" in run.stderr and "apt-get install texlive-latex-base" in run.stderr
    assert "mathtext" in run.stderr
    check_site(out, ["lstm", "peephole"], pdf=False, diagrams=shutil.which("dot") is not None)
    assert not (out / "pdf").exists()
    assert r"\documentclass" in (out / "tex" / "all.tex").read_text()
    assert "symlstm docs" in run.stderr  # the progress bar
    rerun = subprocess.run(
        [sys.executable, "-m", "symlstm", "docs", "-q", "--out", str(out), "lstm", "peephole"],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert rerun.returncode == 0 and " 0 file(s) written" in rerun.stdout, rerun.stdout


def test_notation_reaches_every_artifact(tmp_path):
    out = tmp_path / "site"
    assert build_docs(out, ["peephole"], notation="greff", tex=False, diagrams=False, progress=False).ok
    assert r"\mathbf{y}^t" in (out / "tex" / "peephole.tex").read_text()
    assert r"\mathbf{y}^t" in (out / "md" / "peephole.md").read_text()
    assert "notation <code>greff</code>" in (out / "peephole.html").read_text()


def test_cli_docs_errors(tmp_path, capsys):
    assert main(["docs", "--out", str(tmp_path / "s"), "nosuchcell"]) == 2
    assert "unknown cell 'nosuchcell'" in capsys.readouterr().err
    assert main(["docs", "--out", str(tmp_path / "s"), "lstm", "--notation", "nope", "-q"]) == 2


# -- the renderers accept everything the printer writes ----------------------------------------------


def _all_rows(presets_for):
    for name in builtin_names():
        for preset in presets_for(name):
            doc = cell_doc(builtin_spec(name), load_notation(preset))
            for block in BLOCKS:
                yield name, preset, block, doc.rows[block]


PRESET_SUBSET = lambda name: ["symlstm"] + (["greff", "pytorch", "d2l"] if name in ("peephole", "gru") else [])


def test_mathtext_parses_every_equation():
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("path")
    for *_, rows in _all_rows(PRESET_SUBSET):
        for row in rows:
            for part in (row.lhs, *row.lines):
                parser.parse(f"${to_mathtext(part)}$", dpi=72)


def test_mathml_is_clean_for_every_cell_and_preset():
    for name, preset, block, rows in _all_rows(lambda n: ["symlstm", "greff", "pytorch", "d2l"]):
        try:
            out = mathml_block(rows)
        except Exception as err:  # the greff preset cannot print a cell with both g and z
            assert "typesets both" in str(err), (name, preset, err)
            continue
        # latex2mathml leaves commands it does not know as text: none may survive
        assert "\\" not in html.unescape(re.sub(r"<[^>]+>", "", out)), (name, preset, block)
        ET.fromstring(out)


def test_rows_are_the_printers_lines():
    """The site's rows (HTML tables, mathtext) are the equations the LaTeX printer writes, line
    breaks included, for every cell in every preset."""
    continued = 0
    for name in builtin_names():
        d = derive(builtin_spec(name))
        for preset in preset_names():
            rows = equation_rows(d, preset)
            for block, lines in zip(BLOCKS, (forward_lines, backward_lines, gradient_lines)):
                assert [row.latex() for row in rows[block]] == lines(d, preset), (name, preset, block)
                continued += sum(len(row.lines) > 1 for row in rows[block])
    assert continued > 0  # some right sides do continue on a second line


# -- the comparison table --------------------------------------------------------------------------


def test_counts_by_hand():
    lstm = summarize(derive(builtin_spec("lstm")))
    assert lstm.gates == ("i", "f", "o") and lstm.peepholes == () and lstm.states == ("h", "c")
    assert str(lstm.params) == "4DH + 4H² + 4H"
    # 8 GEMVs of 2DH or 2H²; elementwise: 4 pre-activations (2 adds each), 4 activations,
    # c = f c' + i g (3), h = o tanh(c) (2): 8 + 4 + 3 + 2 = 17
    assert str(lstm.forward_flops) == "8DH + 8H² + 17H"
    backward = lstm.backward_flops.coefficients
    assert backward[("D", "H")] == 16 and backward[("H", "H")] == 16
    peephole = summarize(derive(builtin_spec("peephole")))
    assert peephole.peepholes == ("p_i", "p_f", "p_o") and str(peephole.params) == "4DH + 4H² + 7H"
    assert summarize(derive(builtin_spec("cifg"))).gates == ("i", "o")
    assert summarize(derive(builtin_spec("rnn"))).forward_flops == Poly.of("D", "H", coefficient=2) + Poly.of(
        "H", "H", coefficient=2
    ) + Poly.of("H", coefficient=3)
    lstmp = summarize(derive(builtin_spec("lstmp")))
    # stored: h; c, i, f, g, o, and m (which W_hr multiplies)
    assert str(lstmp.params) == "4DH + 5HP + 4H" and str(lstmp.stored) == "6H + P"
    import sympy

    a, b = sympy.symbols("a b")
    assert elementwise_ops(a * (1 - b) ** 2 - a) == 4  # 1 - b, the square, a *, - a


@pytest.mark.parametrize("name", CELLS + ["fgr", "lstmp"])
def test_stored_bytes_match_the_runtime(name):
    cell = symlstm.cell(name)
    B, D, H = 3, 2, 5
    others = {size: 3 for size in cell.size_names if size not in ("D", "H")}
    params = cell.init_params(D, H, dtype=np.float32, seed=0, **others)
    nbytes = {}
    for T in (4, 5):
        x = np.zeros((T, B, D), np.float32)
        _, _, cache = cell.forward(x, params)
        nbytes[T] = cache.nbytes
    per_step = (nbytes[5] - nbytes[4]) // B
    assert per_step == summarize(derive(cell.spec)).stored_bytes(itemsize=4, D=D, H=H, **others)


# -- diagrams ------------------------------------------------------------------------------------------


def test_diagrams_show_the_structure():
    peephole = diagram_dot(builtin_spec("peephole"))
    assert peephole == diagram_dot(builtin_spec("peephole"))  # deterministic
    assert peephole.count('style="dashed"') == 3  # three peepholes
    assert peephole.count('fillcolor="#fef3c7"') == 3  # three gates
    assert "W<SUB>i</SUB>" in peephole and "R<SUB>o</SUB>" in peephole
    lstm = diagram_dot(builtin_spec("lstm"))
    assert "dashed" not in lstm
    assert 'peripheries="2"' in lstm  # h_t and c_t are handed on


def test_every_diagram_renders():
    need("dot")
    from symlstm.site.diagram import render

    for name in builtin_names():
        svg = render(diagram_dot(builtin_spec(name)), "svg").decode()
        assert "<svg" in svg and "<title>" in svg


# -- the browser ---------------------------------------------------------------------------------------


def test_html_renders_in_headless_chromium(tmp_path):
    need("chromium")
    out = tmp_path / "site"
    assert build_docs(out, ["peephole"], tex=False, progress=False).ok
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,1600",
            f"--screenshot={shot}",
            (out / "peephole.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), run.stderr[-2000:]
    assert png_ink(shot) > 0.01
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", (out / "peephole.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.stdout.count("<math") > 50 and "<mtable" not in dom.stdout
