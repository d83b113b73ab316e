"""The ``symlstm`` command: list, latex, generate, gradcheck, export, cache, demo, docs, bench."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from symlstm.backends import generated_files
from symlstm.cells import builtin_names, builtin_spec, resolve_spec
from symlstm.files import write_atomic
from symlstm.ir.derive import derive
from symlstm.ir.summary import Poly, summarize
from symlstm.lang.spec import SpecError
from symlstm.version import __version__


def param_formula(spec) -> str:
    """Number of parameters as a formula in the sizes, e.g. ``4(DH + H² + H) + 3H``: the gates
    with an input matrix, a recurrent matrix and a bias each are written as one term."""
    coefficients = summarize(derive(spec)).params.coefficients
    gate = (("D", "H"), ("H", "H"), ("H",))
    common = min(coefficients.get(m, 0) for m in gate)
    terms = []
    if common:
        terms.append("DH + H² + H" if common == 1 else f"{common}(DH + H² + H)")
    rest = Poly(tuple((m, k - (common if m in gate else 0)) for m, k in coefficients.items()))
    terms += [str(rest + Poly())] if rest + Poly() != Poly() else []
    return " + ".join(terms)


def cmd_list(args) -> int:
    rows = [("name", "title", "states", "parameters", "reference")]
    for name in builtin_names():
        spec = builtin_spec(name)
        rows.append(
            (
                name,
                spec.title,
                ", ".join(spec.states),
                param_formula(spec),
                spec.references[0] if spec.references else "",
            )
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(col.ljust(w) for col, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def cmd_latex(args) -> int:
    from symlstm.backends.latex.document import Layout, header, latex_document, latex_equations
    from symlstm.ir.derive import derive

    if args.markdown and (args.standalone or args.numbered):
        # a Markdown page is whole already; its formulas are separate $$ blocks that GitHub's
        # math neither numbers reliably (\tag) nor cross-references (\label, \ref)
        args.parser.error(f"--markdown cannot be combined with --{'standalone' if args.standalone else 'numbered'}")
    d = derive(resolve_spec(args.cell))
    n = args.notation
    layout = Layout(long=args.long, numbered=args.numbered, steps=args.steps)
    if args.markdown:
        from symlstm.backends.latex.markdown import markdown_page

        text = markdown_page(d, n, layout, backward=not args.forward_only)
    elif args.standalone:
        text = latex_document(d, n, layout)
    else:
        text = header(d, n) + latex_equations(d, not args.forward_only, notation=n, layout=layout)
    if args.output:
        write_atomic(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_generate(args) -> int:
    out = Path(args.out)
    specs = [resolve_spec(args.spec)] if args.spec else [builtin_spec(n) for n in builtin_names()]
    expected: dict[str, str] = {}
    for spec in specs:
        expected.update(generated_files(spec))
    if not args.check:
        for name, text in expected.items():
            changed = write_atomic(out / name, text)
            print(f"{'wrote' if changed else 'unchanged'} {out / name}")
        return 0
    stale = []
    for name, text in expected.items():
        path = out / name
        current = path.read_text("utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            diff = difflib.unified_diff(
                (current or "").splitlines(),
                text.splitlines(),
                f"{path} (on disk)",
                f"{path} (generator)",
                lineterm="",
                n=1,
            )
            print("\n".join(list(diff)[:40]))
    if not args.spec:
        known = set(expected)
        stale += [
            f"{p.name} (no longer generated)" for p in sorted(out.glob("*")) if p.is_file() and p.name not in known
        ]
    if stale:
        print(f"{out} is out of date: {', '.join(stale)}; run `symlstm generate`", file=sys.stderr)
        return 1
    print(f"{out} matches the generator ({len(expected)} files)")
    return 0


def cmd_gradcheck(args) -> int:
    from symlstm.cells import cell as load_cell
    from symlstm.verify.gradcheck import gradcheck

    names = builtin_names() if args.all else [args.cell]
    if not names or names == [None]:
        print("give a cell name or --all", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        cell = load_cell(name)
        sizes = {k: v for k, v in args.size if k in cell.size_names}
        report = gradcheck(cell, T=args.T, B=args.B, D=args.D, H=args.H, sizes=sizes, seed=args.seed)
        print(f"== {cell.name}: {'passed' if report.passed else 'FAILED'} (max rel. error {report.max_rel_error:.1e})")
        print(report.table())
        print()
        if not report.passed:
            failed.append(cell.name)
    if failed:
        print(f"gradient check failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(names)} cell(s) passed")
    return 0


def cmd_export(args) -> int:
    import zipfile

    import numpy as np

    from symlstm.onnx import export  # onnx loads only for this command

    try:
        with np.load(args.params, allow_pickle=False) as npz:
            params = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read the parameters {args.params} (a .npz file of name -> array): {err}") from None
    path = export(args.cell, params, args.output, dtype=args.dtype, native=args.native, lengths=args.lengths)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a cell with trained parameters as an ONNX model",
        description="Export a cell as an ONNX graph (a Scan over time of standard operators, or with "
        "--native ONNX's own LSTM/GRU/RNN operator) with the parameters of an .npz file "
        "(one array per parameter name, e.g. from np.savez(path, **params)) as initializers.",
    )
    p.add_argument("cell", help="built-in name or path of a .toml spec")
    p.add_argument("--params", required=True, metavar="FILE.npz", help="the parameters, one array per name")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="the file to write")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="default float32")
    p.add_argument("--native", action="store_true", help="ONNX's LSTM/GRU/RNN operator (lstm, peephole, gru, rnn)")
    p.add_argument("--lengths", action="store_true", help="add an input lengths (B,) int64 for variable lengths")
    p.set_defaults(func=cmd_export)


def _size_binding(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=N with N a positive integer, e.g. P=2; got {text!r}")
    return name, int(value)


def cmd_demo(args) -> int:
    from symlstm.train.demo import main as demo_main  # matplotlib and tqdm load only for the demo

    return demo_main(args)


def _size(nbytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return ""  # pragma: no cover


def cmd_cache(args) -> int:
    import json

    from symlstm.backends.numba.cache import cache_info, clear_cache

    if args.action == "clear":
        removed, freed = clear_cache()
        folders = ", ".join(f["path"] for f in cache_info()["folders"])
        print(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'} ({_size(freed)}) from {folders}")
        return 0
    info = cache_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for folder in info["folders"]:
        source = f" (from ${info['env']})" if folder["role"] == "cache" and info["env_set"] else ""
        state = {True: "writable", False: "NOT writable", None: "not created yet"}[folder["writable"]]
        print(
            f"{folder['role']}: {folder['path']}{source}, {state}; {len(folder['entries'])} entries, "
            f"{_size(folder['bytes'])}"
        )
        for e in folder["entries"]:
            status = "ok" if e["intact"] else "DAMAGED (rebuilt on next use)"
            print(f"  {e['name']:<40} {_size(e['bytes']):>9}  {e['compiled']} compiled function(s)  {status}")
    return 0


def _add_cache_parser(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or empty the kernel cache",
        description="The generated kernel modules and Numba's compiled code live in "
        "a cache folder ($SYMLSTM_CACHE_DIR, else ~/.cache/symlstm). "
        "'info' lists it, 'clear' deletes its entries (they are rebuilt "
        "on next use).",
    )
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--json", action="store_true", help="info as JSON")
    p.set_defaults(func=cmd_cache)


def cmd_docs(args) -> int:
    import time

    from symlstm.site.docs import DocsError, build_docs

    start = time.perf_counter()
    try:
        report = build_docs(
            args.out,
            cells=args.cells or None,
            notation=args.notation,
            png=args.png,
            pdf=not args.no_pdf,
            tex=not args.no_tex,
            diagrams=not args.no_diagrams,
            dpi=args.dpi,
            force=args.force,
            progress=not args.quiet,
            jobs=args.jobs,
        )
    except DocsError as err:
        print(f"symlstm docs: error: {err}", file=sys.stderr)
        return 2
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for error in report.errors:
        print(f"symlstm docs: error: {error}", file=sys.stderr)
    print(
        f"{args.out}: {len(report.written)} file(s) written, {len(report.reused)} up to date "
        f"({time.perf_counter() - start:.1f} s); open {Path(args.out) / 'index.html'}"
    )
    return 0 if report.ok else 1


def _add_docs_parser(sub) -> None:
    p = sub.add_parser(
        "docs",
        help="build formula sheets (LaTeX/PDF), PNGs, Markdown, HTML pages and diagrams",
        description="Build, for every built-in cell (or the cells given), a LaTeX formula sheet and "
        "its PDF, PNG pictures of the equations, a Markdown page, a static HTML page "
        "with MathML equations, a Graphviz diagram, and a comparison table of all "
        "cells. Files whose inputs did not change are reused.",
    )
    p.add_argument(
        "cells", nargs="*", metavar="CELL", help="built-in names or .toml spec paths (default: all built-ins)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--notation",
        default=None,
        metavar="PRESET",
        help="symlstm (default), greff, pytorch, d2l, colah, or a notation .toml file",
    )
    p.add_argument(
        "--png",
        choices=["auto", "latex", "mathtext"],
        default="auto",
        help="how to draw the equation PNGs: pdflatex+pdftoppm, matplotlib's mathtext, "
        "or auto (pdflatex when installed; the default)",
    )
    p.add_argument("--dpi", type=int, default=150, help="resolution of the equation PNGs (default 150)")
    p.add_argument("--no-pdf", action="store_true", help="do not compile the LaTeX sheets")
    p.add_argument("--no-tex", action="store_true", help="build as if TeX were not installed")
    p.add_argument("--no-diagrams", action="store_true", help="do not run Graphviz")
    p.add_argument("--force", action="store_true", help="rebuild every file")
    p.add_argument("--jobs", type=int, default=None, help="parallel pdflatex/dot/matplotlib jobs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_docs)


def cmd_bench(args) -> int:
    from symlstm.tools.bench import main as bench_main  # its options are its own: symlstm bench --help

    if "--inference" in args.bench_args:  # forward only: infer, stream, onnxruntime, torch inference
        from symlstm.tools import bench_inference

        rest = [a for a in args.bench_args if a != "--inference"]
        return bench_main(rest, suite=bench_inference, default_cells="lstm,gru")
    if "--torch" in args.bench_args:  # training steps inside PyTorch
        from symlstm.tools import bench_torch

        rest = [a for a in args.bench_args if a != "--torch"]
        return bench_main(rest, suite=bench_torch, default_cells=f"lstm,peephole,gru,{bench_torch.USER_SPEC}")
    return bench_main(args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symlstm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"symlstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the built-in cells")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("latex", help="print a cell's forward and backward equations as LaTeX")
    p.add_argument("cell", help="built-in name or path of a .toml spec")
    p.add_argument("--standalone", action="store_true", help="a complete document for pdflatex")
    p.add_argument("--forward-only", action="store_true", help="leave out the backward pass")
    p.add_argument(
        "--long",
        action="store_true",
        help="one gradient sum per parameter (default: one line per group of parameters sharing a pattern)",
    )
    p.add_argument(
        "--steps",
        action="store_true",
        help="derive the backward pass step by step: the chain rule over each quantity's uses, "
        "every partial derivative, then the result",
    )
    p.add_argument(
        "--numbered",
        action="store_true",
        help="numbered equations (align), each labelled symlstm:<cell>:<quantity>, for papers",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="a Markdown page with $$ math that GitHub renders (headings, the notation's legend); "
        "not with --standalone or --numbered",
    )
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument(
        "--notation",
        default=None,
        metavar="PRESET",
        help="symbol names and style: symlstm (default), greff, pytorch, d2l, colah, "
        "or the path of a notation .toml file",
    )
    p.set_defaults(func=cmd_latex, parser=p)

    p = sub.add_parser("generate", help="write the kernels and LaTeX of the built-in cells")
    p.add_argument("--out", default="generated", help="output folder (default: ./generated)")
    p.add_argument("--spec", help="generate for this spec file instead of the built-ins")
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the folder differs from what would be written"
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("gradcheck", help="check backward against finite differences (float64)")
    p.add_argument("cell", nargs="?", help="built-in name or path of a .toml spec")
    p.add_argument("--all", action="store_true", help="check every built-in cell")
    for dim, default in (("T", 5), ("B", 2), ("H", 4)):
        p.add_argument(f"--{dim}", type=int, default=default, help=f"problem size {dim} (default {default})")
    p.add_argument("--D", type=int, default=None, help="input size (default 3, or H for a cell that needs D = H)")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        type=_size_binding,
        help="a size of the cell's own, e.g. --size P=2 (default 2, 3, ... in order)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gradcheck)
    _add_export_parser(sub)
    _add_cache_parser(sub)

    p = sub.add_parser("demo", help="train cells on a task and plot what they learn (demo adding --quick)")
    from symlstm.train.demo import add_arguments as add_demo_arguments

    add_demo_arguments(p)
    p.set_defaults(func=cmd_demo)
    _add_docs_parser(sub)

    p = sub.add_parser(
        "bench", add_help=False, help="time the kernels against PyTorch, side by side (symlstm bench --help)"
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options, --help included
        return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    parser = build_parser()
    if not argv:  # no command: the full help, not argparse's one-line complaint
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, OSError, ValueError) as err:
        print(f"symlstm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
