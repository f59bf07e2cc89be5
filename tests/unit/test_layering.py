"""The layers of the server and which may import which (docs/architecture.md).

Imports point down only: pageledger (the composition root) and tools on top; api and workers;
commands and projections side by side; adapters; domain at the bottom. The agent stands apart
(tests/unit/test_agent_boundary.py). Every import counts, also one inside a function: an import
hidden in a function is still an arrow, and a circle of them is still a circle.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pageledger", "tools", "api", "workers", "commands", "projections", "migrations", "adapters",
            "domain", "agent")
BELOW_THE_ROOT = {"api", "workers", "commands", "projections", "adapters", "domain"}
MAY_IMPORT = {
    "pageledger": {"api", "workers", "commands", "projections", "migrations", "adapters", "domain"},
    "tools": {"pageledger", "api", "workers", "commands", "projections", "adapters", "domain"},
    "api": {"commands", "projections", "adapters", "domain"},
    "workers": {"commands", "projections", "adapters", "domain"},
    "commands": {"adapters", "domain"},
    "projections": {"adapters", "domain"},
    "migrations": {"projections", "adapters"},
    "adapters": {"domain"},
    "domain": set(),
    "agent": set(),
}
# The domain is pure: besides the standard library, only the event-sourcing library itself.
DOMAIN_THIRD_PARTY = {"eventsourcing"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, resolved to a module of ours where it names one."""
    out = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.append((node.lineno, full if full in known else node.module))
    return out


def top(name: str) -> str:
    return name.split(".")[0]


def test_every_import_points_down_the_layers():
    mods = modules()
    offenders = []
    for name, path in sorted(mods.items()):
        layer = top(name)
        for line, target in imports(path, set(mods)):
            other = top(target)
            if other in MAY_IMPORT and other != layer and other not in MAY_IMPORT[layer]:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {layer} may not import {target}")
    assert offenders == []


def test_nothing_below_the_composition_root_imports_it():
    mods = modules()
    offenders = [f"{path.relative_to(ROOT)}:{line}: {target}"
                 for name, path in mods.items() if top(name) in BELOW_THE_ROOT
                 for line, target in imports(path, set(mods)) if top(target) in ("pageledger", "tools")]
    assert offenders == []


def test_the_domain_imports_no_framework_and_no_io():
    mods = modules()
    stdlib = set(sys.stdlib_module_names)
    offenders = [f"{path.relative_to(ROOT)}:{line}: {target}"
                 for name, path in mods.items() if top(name) == "domain"
                 for line, target in imports(path, set(mods))
                 if top(target) not in stdlib | DOMAIN_THIRD_PARTY | {"domain"}
                 or top(target) in {"os", "socket", "sqlite3", "subprocess", "urllib", "http", "pathlib"}]
    assert offenders == []


def test_there_are_no_import_circles():
    mods = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for _, target in imports(path, set(mods)):
            if target in mods and target != name:
                graph[name].add(target)
    assert _circles(graph) == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checks_see_a_circle_and_an_upward_import():
    # The checks above would pass on a tree they cannot read: prove they can fail.
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert "pageledger" not in MAY_IMPORT["commands"] and "projections" not in MAY_IMPORT["commands"]
