"""The package's layers import only downward: an import graph read from the source.

Every ``import`` counts, also inside functions and under ``TYPE_CHECKING``: a circle
hidden in a function body is still a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hotglue_webhooks

PACKAGE = Path(hotglue_webhooks.__file__).parent
# fakes/__init__.py re-exports FakeHotGlue and FakeSlack, whose modules take the shared
# FakeServer from it: a package and its own parts, not two layers.
PACKAGE_REEXPORTS = {"hotglue_webhooks.fakes"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Return each of our modules and the modules of ours it imports."""
    sources = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & sources.keys()
                # ``from pkg import submodule`` imports the submodule (and runs pkg/__init__,
                # which is not a dependency of the importer's layer).
                imported.update(submodules or {node.module})
        graph[name] = {target for target in imported if target in sources and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_level_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "hotglue_webhooks.storage.migrate" in graph["hotglue_webhooks.runtime"]  # inside Runtime.migrate
    assert "hotglue_webhooks.environment" in graph["hotglue_webhooks.effects"]  # under TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_upward() -> None:
    found = [component for component in cycles(import_graph()) if not set(component) <= _with_parts(PACKAGE_REEXPORTS)]
    assert found == []


def _with_parts(packages: set[str]) -> set[str]:
    return {name for name in import_graph() if any(name == p or name.startswith(p + ".") for p in packages)}


# Pure leaf modules the rules may share with the rest: the one redaction rule set and the
# escaping of invisible characters. They import nothing of ours (checked below).
PURE_SHARED = {"hotglue_webhooks.redaction", "hotglue_webhooks.display"}


def test_rules_import_nothing_of_ours_but_rules() -> None:
    outside = {
        (name, target)
        for name, targets in import_graph().items()
        if name.startswith("hotglue_webhooks.rules")
        for target in targets
        if not target.startswith("hotglue_webhooks.rules") and target not in PURE_SHARED
    }
    assert outside == set()


def test_the_pure_shared_modules_import_nothing_of_ours() -> None:
    graph = import_graph()
    assert {name: graph[name] for name in PURE_SHARED if graph[name]} == {}


def test_the_web_layer_and_the_worker_do_not_import_what_builds_them() -> None:
    graph = import_graph()
    # web/server.py is the gunicorn process: it sits above the app it loads in each worker.
    web = {name for name in graph if name.startswith("hotglue_webhooks.web")} - {"hotglue_webhooks.web.server"}
    assert {name for name in web if "hotglue_webhooks.app" in graph[name]} == set()
    built = ("hotglue_webhooks.effects", "hotglue_webhooks.worker")
    assert {name for name in built if "hotglue_webhooks.runtime" in graph[name]} == set()
