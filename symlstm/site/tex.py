"""TeX programs: pdflatex for the formula sheets and the equation PNGs, pdftoppm, cropping."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

from symlstm.site.build import DocsError

#: one page per display, each page sized to its equations (pdfTeX's page size registers), so
#: pdftoppm renders small pages; the PNGs are then cropped to the ink
PNG_PREAMBLE = r"""\documentclass[12pt]{article}
\usepackage{amsmath,amssymb}
\pagestyle{empty}
\setlength{\parindent}{0pt}
\hoffset=-1in \voffset=-1in \oddsidemargin=1cm \evensidemargin=1cm \topmargin=0pt
\headheight=0pt \headsep=0pt \textwidth=500cm \textheight=500cm
\newsavebox\eqbox
\newcommand\eqpage[1]{\sbox\eqbox{$\displaystyle #1$}%
  \pdfpagewidth=\dimexpr\wd\eqbox+2cm\relax
  \pdfpageheight=\dimexpr\ht\eqbox+\dp\eqbox+2cm\relax
  \vspace*{1cm}\leavevmode\usebox\eqbox\newpage}
"""


def png_document(blocks: list[list[str]]) -> str:
    """One tight page per block of ``align`` lines, to be rendered and cropped to PNGs."""
    pages = ["\\eqpage{\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}}" for lines in blocks]
    return PNG_PREAMBLE + "\\begin{document}\n" + "\n".join(pages) + "\n\\end{document}\n"


def run_pdflatex(tex: str, name: str) -> bytes:
    """Compile ``tex``; returns the PDF's bytes (reproducible: SOURCE_DATE_EPOCH is fixed)."""
    with tempfile.TemporaryDirectory(prefix="symlstm-tex-") as tmp:
        (Path(tmp) / f"{name}.tex").write_text(tex, encoding="utf-8")
        env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0"), "FORCE_SOURCE_DATE": "1"}
        run = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
            cwd=tmp,
            check=False,
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=300,
        )
        pdf = Path(tmp) / f"{name}.pdf"
        if run.returncode != 0 or not pdf.exists():
            raise DocsError(f"pdflatex failed on {name}.tex:\n{run.stdout[-3000:]}")
        return pdf.read_bytes()


def pdf_pages_to_png(pdf: bytes, dpi: int) -> list[bytes]:
    """Render every page with pdftoppm and crop it to its ink (with a small white margin)."""
    with tempfile.TemporaryDirectory(prefix="symlstm-png-") as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(pdf)
        run = subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-gray", "-png", str(path), str(Path(tmp) / "page")],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if run.returncode != 0:
            raise DocsError(f"pdftoppm failed: {run.stderr[-2000:]}")
        pages = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [crop_png(p.read_bytes(), margin=dpi // 10) for p in pages]


def crop_png(data: bytes, margin: int = 12) -> bytes:
    from PIL import Image, ImageOps

    image: Image.Image = Image.open(io.BytesIO(data))
    image = image.convert("L" if image.mode in ("L", "1", "LA") else "RGB")
    box = ImageOps.invert(image.convert("L")).getbbox()
    if box is not None:
        left, top, right, bottom = box
        image = image.crop(
            (
                max(left - margin, 0),
                max(top - margin, 0),
                min(right + margin, image.width),
                min(bottom + margin, image.height),
            )
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
