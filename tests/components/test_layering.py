"""The shape issue 25 gave the components, held by reading their source: Cluster is the one
reader of the settings, the node lifecycle has one loop, and no function is too long to
read at once."""

from __future__ import annotations

import ast
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
MAX_LINES = 60


def _modules() -> dict[str, ast.Module]:
    found = {p.stem: ast.parse(p.read_text()) for p in sorted(COMPONENTS.glob("*.py"))}
    assert {"cluster", "node_set", "control_plane", "discovery", "worker_pool"} <= set(found)
    return found


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _calls(tree: ast.Module, name: str) -> int:
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    )


def test_only_cluster_reads_the_settings():
    readers = {m for m, tree in _modules().items() if "settings" in _imports(tree)}
    assert readers == {"cluster"}


def test_the_node_lifecycle_loop_exists_once():
    """Every VM boots in NodeSet.boot, every node's step in NodeSet.run: boot_node, the
    ready gate and the step kit are called from node_set.py (and machine.py, where boot_node
    calls the ready gate) only."""
    modules = _modules()
    for name, allowed in (
        ("boot_node", {"node_set"}),
        ("ready_gate", {"machine"}),
        ("step_kit", {"node_set"}),
        ("machine_instance", {"machine"}),
        ("machine_port", {"node_set"}),
    ):
        callers = {m for m, tree in modules.items() if _calls(tree, name)}
        assert callers == allowed, (name, callers)


def test_no_function_is_longer_than_60_lines():
    long = [
        f"{m}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for m, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert long == []
