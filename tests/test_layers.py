"""The layers point one way: ``playground`` <- ``demos.common`` <- ``demos.<tab>``.

Read from the source (``ast``), so an import inside a function counts as much as one at the top:
- a tab imports only ``playground``, ``demos.common`` and itself;
- ``demos.common`` imports only ``playground`` and itself; ``playground`` imports no ``demos``
  module (it finds the tabs by name, ``playground/tabs.py``);
- no private name (``_x``) is imported from, or read off, a module of another package;
- the modules of the project import each other without a cycle;
- a tab's package declares ``TAB`` as ``playground.tabs`` expects, and the list names every tab.
No exceptions are listed: a new violation fails here.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

from playground import tabs

ROOT = Path(__file__).resolve().parents[1]
LAYERED = ("playground", "demos")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def project_modules() -> dict[str, Path]:
    return {module_name(p): p for top in LAYERED for p in sorted((ROOT / top).rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The project module an import names (``a.b.c`` -> ``a.b.c`` or its package ``a.b``)."""
    modules = project_modules()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) of every import in ``module``'s source."""
    path = project_modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".strip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub, None) if sub in project_modules() else (node.lineno, base, alias.name))
    return found


def layer(module: str) -> str:
    """``playground``, ``common``, a tab id, or ``demos`` (the package itself)."""
    parts = module.split(".")
    if parts[0] == "playground":
        return "playground"
    return parts[1] if len(parts) > 1 else "demos"


def allowed(importer: str, imported: str) -> bool:
    mine, theirs = layer(importer), layer(imported)
    if theirs == "playground" or mine == theirs:
        return True
    if mine == "playground":
        return False
    return theirs == "common"


def test_every_import_points_down_the_layers():
    wrong = sorted({f"{project_modules()[m].relative_to(ROOT)}:{line} imports {target}"
                    for m in project_modules() for line, name, _ in imports(m)
                    if (target := resolve(name)) and not allowed(m, target)})
    assert not wrong, "\n".join(wrong)


def private_reads(module: str) -> list[str]:
    """Private names of another package's modules used in ``module``: imported, or read as ``alias._x``."""
    path = project_modules()[module]
    tree = ast.parse(path.read_text(), str(path))
    found, aliases = [], {}
    for line, name, attr in imports(module):
        target = resolve(name)
        if target and layer(target) != layer(module):
            if attr and attr.startswith("_") and not attr.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target}.{attr}")
    for node in ast.walk(tree):
        for alias in getattr(node, "names", []) if isinstance(node, (ast.Import, ast.ImportFrom)) else []:
            base = node.module if isinstance(node, ast.ImportFrom) else None
            full = f"{base}.{alias.name}" if base else alias.name
            if full in project_modules() and layer(full) != layer(module):
                aliases[alias.asname or alias.name.split(".")[-1]] = full
    for node in ast.walk(tree):
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        if (isinstance(node, ast.Attribute) and isinstance(root, ast.Name) and root.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {aliases[root.id]}: .{node.attr}")
    return found


def test_no_private_name_crosses_a_package():
    wrong = [line for m in project_modules() for line in private_reads(m)]
    assert not wrong, "\n".join(wrong)


def import_graph() -> dict[str, set[str]]:
    graph = {m: set() for m in project_modules()}
    for m in graph:
        for _, name, _ in imports(m):
            target = resolve(name)
            # importing a.b.c runs a and a.b first: a package's own __init__ is not an edge back
            if target and target != m and not m.startswith(target + "."):
                graph[m].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_layer_rules_on_hand_made_cases():
    assert allowed("demos.flows.ui", "playground.ui_helpers")
    assert allowed("demos.flows.ui", "demos.common.toy_data")
    assert allowed("demos.flows.ui", "demos.flows.compute")
    assert not allowed("demos.controlnet.train", "demos.guidance.train")
    assert not allowed("demos.common.shapes_ldm", "demos.guidance.sampler")
    assert not allowed("playground.models", "demos.common.language_model")


@pytest.mark.parametrize("tab_id", tabs.TAB_IDS)
def test_each_tab_package_declares_itself(tab_id):
    tab = tabs.get(tab_id)
    assert tab.id == tab_id and tab.title and tab.summary
    assert tab.build == f"demos.{tab_id}.ui:build"
    assert callable(tab.build_function())
    assert all(spec.load.split(":")[0].split(".")[1] in (tab_id, "common") for spec in tab.models)


def test_the_tab_list_names_every_tab_package():
    packages = {p.parent.name for p in (ROOT / "demos").glob("*/__init__.py")} - {"common"}
    assert packages == set(tabs.TAB_IDS)


LONG_OK = "in one piece"  # a docstring saying so: a paper's algorithm that reads better unsplit


def test_functions_stay_under_40_lines():
    """Longer ones say in their docstring why they read better "in one piece" (a paper's algorithm)."""
    long = []
    for module, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 40:
                if LONG_OK not in (ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "\n".join(long)


def test_no_module_defines_a_top_level_name_twice():
    """A second ``def run_views`` silently replaced the first (a split build shadowed a helper)."""
    twice = []
    for path in project_modules().values():
        seen = set()
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in seen:
                    twice.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
                seen.add(node.name)
    assert not twice, "\n".join(twice)
