"""Render a cell's standalone LaTeX to PNG pages for the README (needs pdflatex and pdftoppm).

Usage: python scripts/render_readme_figure.py peephole docs/peephole
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from symlstm.backends.latex.document import latex_document
from symlstm.cells import resolve_spec
from symlstm.ir.derive import derive


def render(cell: str, prefix: Path, dpi: int = 110) -> list[Path]:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tex = Path(tmp) / "cell.tex"
        tex.write_text(latex_document(derive(resolve_spec(cell))))
        subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(tex.with_suffix(".pdf")), str(prefix)], check=True)
    return sorted(prefix.parent.glob(prefix.name + "-*.png"))


if __name__ == "__main__":
    for page in render(sys.argv[1], Path(sys.argv[2])):
        print(page)
