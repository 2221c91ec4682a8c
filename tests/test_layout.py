"""The package's layout rules: imports run one way, and DEVELOPERS.md's layout table names every package folder and
top-level module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "st_drama"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The st_drama modules ``path`` imports anywhere in it (function-level imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # "from . import stages" imports the submodule; "from .presets import X" imports the module itself.
            targets = submodules if any(target in modules for target in submodules) else [base]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) for name, path in paths.items()}


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the import graph (depth-first search), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_imports_run_one_way():
    assert import_cycle(import_graph()) is None


def test_the_cycle_check_finds_a_cycle():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_developers_layout_table_lists_every_package_and_top_level_module():
    table = (REPO_ROOT / "DEVELOPERS.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+)`", table, flags=re.MULTILINE))
    expected = {f"st_drama/{path.name}/" for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    expected |= {f"st_drama/{path.name}" for path in PACKAGE.glob("*.py") if path.name != "__init__.py"}
    assert expected - listed == set(), "DEVELOPERS.md's layout table misses these"
    unknown = {entry for entry in listed if entry.startswith("st_drama/") and not (REPO_ROOT / entry).exists()}
    assert unknown == set(), "DEVELOPERS.md's layout table names paths that do not exist"
