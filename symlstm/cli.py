"""The ``symlstm`` command: list, latex, generate, gradcheck."""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from .build import builtin_names, builtin_spec, generated_files, resolve_spec, write_atomic
from .spec import SpecError


def param_formula(spec) -> str:
    """Number of parameters as a formula in D and H, e.g. ``4(DH + H² + H) + 3H``."""
    nx = sum(1 for k in spec.matrices.values() if k == "x")
    nh = len(spec.matrices) - nx
    nv = len(spec.vectors)
    common = min(nx, nh, nv)  # gates with an input matrix, a recurrent matrix and a bias each
    terms = []
    if common:
        terms.append("DH + H² + H" if common == 1 else f"{common}(DH + H² + H)")
    for n, unit in ((nx - common, "DH"), (nh - common, "H²"), (nv - common, "H")):
        if n:
            terms.append(f"{n if n > 1 else ''}{unit}")
    return " + ".join(terms)


def cmd_list(args) -> int:
    rows = [("name", "title", "states", "parameters", "reference")]
    for name in builtin_names():
        spec = builtin_spec(name)
        rows.append((name, spec.title, ", ".join(spec.states), param_formula(spec),
                     spec.references[0] if spec.references else ""))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(col.ljust(w) for col, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def cmd_latex(args) -> int:
    from .derive import derive
    from .latex import header, latex_document, latex_equations

    d = derive(resolve_spec(args.cell))
    text = latex_document(d) if args.standalone else header(d) + latex_equations(d, not args.forward_only)
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
            diff = difflib.unified_diff((current or "").splitlines(), text.splitlines(),
                                        f"{path} (on disk)", f"{path} (generator)", lineterm="", n=1)
            print("\n".join(list(diff)[:40]))
    if not args.spec:
        known = set(expected)
        stale += [f"{p.name} (no longer generated)" for p in sorted(out.glob("*"))
                  if p.is_file() and p.name not in known]
    if stale:
        print(f"{out} is out of date: {', '.join(stale)}; run `symlstm generate`", file=sys.stderr)
        return 1
    print(f"{out} matches the generator ({len(expected)} files)")
    return 0


def cmd_gradcheck(args) -> int:
    from . import cell as load_cell
    from .gradcheck import gradcheck

    names = builtin_names() if args.all else [args.cell]
    if not names or names == [None]:
        print("give a cell name or --all", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        cell = load_cell(name)
        report = gradcheck(cell, T=args.T, B=args.B, D=args.D, H=args.H, seed=args.seed)
        print(f"== {cell.name}: {'passed' if report.passed else 'FAILED'} "
              f"(max rel. error {report.max_rel_error:.1e})")
        print(report.table())
        print()
        if not report.passed:
            failed.append(cell.name)
    if failed:
        print(f"gradient check failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(names)} cell(s) passed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symlstm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the built-in cells")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("latex", help="print a cell's forward and backward equations as LaTeX")
    p.add_argument("cell", help="built-in name or path of a .toml spec")
    p.add_argument("--standalone", action="store_true", help="a complete document for pdflatex")
    p.add_argument("--forward-only", action="store_true", help="leave out the backward pass")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_latex)

    p = sub.add_parser("generate", help="write the kernels and LaTeX of the built-in cells")
    p.add_argument("--out", default="generated", help="output folder (default: ./generated)")
    p.add_argument("--spec", help="generate for this spec file instead of the built-ins")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if the folder differs from what would be written")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("gradcheck", help="check backward against finite differences (float64)")
    p.add_argument("cell", nargs="?", help="built-in name or path of a .toml spec")
    p.add_argument("--all", action="store_true", help="check every built-in cell")
    for dim, default in (("T", 5), ("B", 2), ("D", 3), ("H", 4)):
        p.add_argument(f"--{dim}", type=int, default=default, help=f"problem size {dim} (default {default})")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, FileNotFoundError, ValueError) as err:
        print(f"symlstm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
