"""The package's shape: imports point one way (no cycles, deferred imports included), no module
re-exports through ``__getattr__``, and only softreg.training.distributed asks how many processes run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "softreg"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _skipped(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (annotations only: never run)."""
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}


def import_graph() -> dict[str, set[str]]:
    """Module -> the softreg modules it imports anywhere in its body (function-level imports too)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _skipped(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == "softreg" else None
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_added_later():
    graph = import_graph()
    graph["softreg.system.io"].add("softreg.runs.folder")  # infrastructure importing the run folder
    found = cycles(graph)
    assert any("softreg.system.io" in c and "softreg.runs.folder" in c for c in found), found


def test_the_layers_import_only_what_stands_below_them():
    below = {  # a package may import these (and itself); the foundation modules are open to all
        "system": {"system"},
        "models": {"system", "models"},
        "data": {"system", "models", "data"},
        "training": {"system", "models", "data", "training"},
        "runs": {"system", "models", "data", "training", "runs"},
        "report": {"system", "models", "data", "training", "runs", "inference", "report"},
    }
    foundation = {"softreg", "softreg.errors", "softreg.settings", "softreg._version"}  # softreg: the lazy API
    graph = import_graph()
    wrong = [(module, target) for module, targets in graph.items() for target in targets
             if module.count(".") >= 1 and module.split(".")[1] in below and target not in foundation
             and target.split(".")[1] not in below[module.split(".")[1]]]
    assert wrong == []


def test_no_module_reexports_through_getattr_but_the_lazy_top_level_api():
    offenders = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body) and module != "softreg":
            offenders.append(module)
    assert offenders == []


@pytest.mark.parametrize("pattern", ["world > 1", "world == 1", "world != 1", "WORLD_SIZE", '"RANK"'])
def test_only_the_distributed_layer_asks_how_many_processes_run(pattern):
    allowed = {"softreg.training.distributed", "softreg.system.processes"}
    found = [m for m, path in _modules().items() if pattern in path.read_text() and m not in allowed]
    assert found == []
