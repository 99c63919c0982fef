"""Layers point one way: no import cycle anywhere in src/ (function-level imports included: a lazy import
that only dodges a cycle is still a cycle), the study runner does not import the analyses, and the
analyses that give advice stay pure (no torch)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports anywhere in its body (``from pkg import sub`` names the
    submodule when ``sub`` is one, else the package)."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != this}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imported_modules(path, root, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_finder_sees_cycles_through_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import x\n    return x\n")
    (pkg / "c.py").write_text("import pkg.a\nx = 1\n")
    (pkg / "d.py").write_text("from pkg import c\n")
    assert cycles(import_graph(tmp_path)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_import_cycles_in_src():
    graph = import_graph(SRC)
    assert "specdyn.rundir.reader" in graph["specdyn.budget.acceptance"]  # the graph is really built
    assert cycles(graph) == []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for m in graph[todo.pop()] - seen:
            seen.add(m)
            todo.append(m)
    return seen


def test_study_does_not_reach_the_analyses():
    graph = import_graph(SRC)
    analyses = {m for m in graph if m.startswith(("specdyn.budget", "specdyn.report"))}
    assert not reachable(graph, "specdyn.study") & analyses
    assert not reachable(graph, "specdyn.engine.decoder") & ({m for m in graph if m.startswith("specdyn.rundir")} | analyses)


def loads_module(code: str, module: str) -> bool:
    """Whether running ``code`` in a fresh interpreter (src/ on the path) loads ``module``."""
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print({module!r} in sys.modules)"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    return out.stdout.strip() == "True"


def test_budget_advice_and_the_run_folder_import_no_torch():
    assert not loads_module("import specdyn.budget, specdyn.budget.compare, specdyn.rundir.reader, "
                            "specdyn.rundir.writer, specdyn.specs, specdyn.config", "torch")


def test_ray_is_imported_only_when_asked_for():
    """specdyn works without Ray: the study, the sweep and the CLI import it only for --ray."""
    assert not loads_module("import specdyn.study, specdyn.cli, specdyn.sweep.runner, specdyn.sweep.report; "
                            "specdyn.cli.build_parser()", "ray")
    assert loads_module("import specdyn.executors.ray_pool", "ray")  # the check can fail
