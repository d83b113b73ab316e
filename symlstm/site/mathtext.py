"""PNG pictures of the equations drawn with matplotlib's mathtext: no TeX installation needed."""

from __future__ import annotations

import io

from symlstm.backends.latex.equations import Row

#: LaTeX the printer may write -> what mathtext understands
#: (mathtext's \left( \right) around a short argument draws undersized parentheses)
MATHTEXT_REWRITES = [
    (r"\tfrac", r"\frac"),
    (r"\left\lvert", "|"),
    (r"\right\rvert", "|"),
    (r"\lvert", "|"),
    (r"\rvert", "|"),
    (r"\left(", "("),
    (r"\right)", ")"),
    (r"\left[", "["),
    (r"\right]", "]"),
    # the invisible delimiters around a line break inside parentheses
    (r"\left.", ""),
    (r"\right.", ""),
]


def to_mathtext(latex: str) -> str:
    for old, new in MATHTEXT_REWRITES:
        latex = latex.replace(old, new)
    return latex


def matplotlib_version() -> str:
    from importlib.metadata import version

    return version("matplotlib")


def mathtext_png(rows: list[Row], dpi: int = 150, fontsize: float = 15) -> bytes:
    """The aligned equations drawn with matplotlib's mathtext: lhs right-aligned, ``=``, rhs."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # one (left side or None, right side) per line drawn
    lines = [(row.lhs if k == 0 else None, line) for row in rows for k, line in enumerate(row.lines)]
    line_height = 2.0 * fontsize / 72  # inches
    height = line_height * (len(lines) + 0.6)
    with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.hashsalt": "symlstm"}):
        fig = Figure(figsize=(30, height), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        renderer = canvas.get_renderer()
        lefts = []
        for k, (lhs, _) in enumerate(lines):
            if lhs is not None:
                text = fig.text(0, 0, f"${to_mathtext(lhs)}$", fontsize=fontsize, ha="right", va="baseline")
                lefts.append((k, text))
        widest = max((t.get_window_extent(renderer).width for _, t in lefts), default=0) / dpi  # inches
        x0 = (widest + 0.3) / 30
        for k, text in lefts:
            text.set_position((x0, 1 - (k + 1) * line_height / height))
        for k, (lhs, rhs) in enumerate(lines):
            y = 1 - (k + 1) * line_height / height
            body = f"$= {to_mathtext(rhs)}$" if lhs is not None else f"$\\qquad {to_mathtext(rhs)}$"
            fig.text(x0 + 0.15 / 30, y, body, fontsize=fontsize, ha="left", va="baseline")
        out = io.BytesIO()
        fig.savefig(
            out,
            format="png",
            dpi=dpi,
            bbox_inches="tight",
            pad_inches=0.12,
            facecolor="white",
            metadata={"Software": None},
        )
    return out.getvalue()


def mathtext_pngs(blocks: list[list[Row]], paths: tuple[str, ...], dpi: int) -> dict[str, bytes]:
    return {path: mathtext_png(rows, dpi) for path, rows in zip(paths, blocks)}
