"""The package's shape: modules stay short, and no two modules import each other, directly or
through others (every import counts: module level, inside functions, relative ones)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "symlstm"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()  # a package is its __init__
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str | None, level: int, importer: str) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    if level == 0:
        return module
    base = importer.split(".")
    if not _is_package(importer):
        base.pop()  # relative to the importer's package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None


def _known(name: str | None) -> str | None:
    """``name`` if it is a module of the package, else None."""
    return name if name in MODULES else None


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its code."""
    tree = ast.parse(MODULES[module].read_text("utf-8"), filename=str(MODULES[module]))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import symlstm.a.b` runs symlstm.a.b; count the deepest module of ours it names.
                parts = alias.name.split(".")
                for end in range(len(parts), 0, -1):
                    if target := _known(".".join(parts[:end])):
                        found.add(target)
                        break
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, module)
            if base is None or not (base == "symlstm" or base.startswith("symlstm.")):
                continue
            for alias in node.names:
                # `from symlstm.x import name`: the module symlstm.x.name when there is one, else symlstm.x.
                target = _known(f"{base}.{alias.name}") or _known(base)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: imports_of(m) for m in MODULES}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path through the component, from its first module back to it (breadth first,
    so the shortest)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")  # pragma: no cover


def describe_cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []
    for component in strongly_connected_components(graph):
        if len(component) > 1:
            cycles.append(f"{len(component)} modules {component}, e.g. " + " -> ".join(_cycle_in(component, graph)))
    return sorted(cycles)


def test_modules_are_short():
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES.values()
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules longer than {MAX_LINES} lines (split them): {long}"


def test_no_import_cycles():
    cycles = describe_cycles(import_graph())
    assert not cycles, "import cycles among symlstm's modules:\n  " + "\n  ".join(cycles)


def test_interop_does_not_depend_on_train():
    """train builds on interop (symlstm.nn.Recurrent.from_torch/to_torch), never the reverse."""
    graph = import_graph()
    wrong = {
        m: sorted(t for t in graph[m] if t.startswith("symlstm.train"))
        for m in graph
        if m.startswith("symlstm.interop")
    }
    assert not any(wrong.values()), f"interop imports train: {wrong}"


# -- the checker itself --------------------------------------------------------------------------


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    # Inside functions and relative or not, the interop and the command line are seen importing.
    assert "symlstm.runtime" in graph["symlstm.interop.pytorch"]
    assert "symlstm.tools.bench" in graph["symlstm.tools.cli"]  # imported inside cmd_bench
    assert "symlstm.version" in graph["symlstm"]


@pytest.mark.parametrize(
    ("importer", "module", "level", "expected"),
    [
        ("symlstm.train.nn", "runtime", 2, "symlstm.runtime"),
        ("symlstm.train.nn", None, 1, "symlstm.train"),
        ("symlstm.train", "nn", 1, "symlstm.train.nn"),
        ("symlstm.train.nn", "symlstm.cells", 0, "symlstm.cells"),
    ],
)
def test_relative_imports_resolve(importer, module, level, expected):
    assert _resolve(module, level, importer) == expected


def test_tarjan_finds_cycles_and_only_them():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(map(sorted, strongly_connected_components(graph))) == [["a", "b", "c"], ["d"], ["e"]]
    assert describe_cycles(graph) == ["3 modules ['a', 'b', 'c'], e.g. a -> b -> c -> a"]
    assert describe_cycles({"a": {"b"}, "b": set()}) == []
