"""The module files shipped inside saved model folders must import nothing from st_drama."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from st_drama.models import portable_code

MODELS_DIR = Path(portable_code.__file__).parent
SHIM = Path(__file__).resolve().parents[2] / "st_drama_modules.py"
ALLOWED_TOP_LEVEL = {"__future__", "torch", "transformers", "sentence_transformers"}


def absolute_imports_outside_try(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside_try = {
        id(node) for try_node in ast.walk(tree) if isinstance(try_node, ast.Try) for node in ast.walk(try_node)
    }
    names = []
    for node in ast.walk(tree):
        if id(node) in inside_try:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("file_name", portable_code.PORTABLE_FILES)
def test_portable_files_import_only_allowed_packages(file_name):
    import sys

    imported = set(absolute_imports_outside_try(MODELS_DIR / file_name))
    not_allowed = {name for name in imported if name not in ALLOWED_TOP_LEVEL and name not in sys.stdlib_module_names}
    assert not not_allowed, f"{file_name} imports {not_allowed} outside a try block"


def test_relative_imports_stay_within_the_portable_files():
    shipped = {name.removesuffix(".py") for name in portable_code.PORTABLE_FILES}
    for path in [SHIM, *(MODELS_DIR / name for name in portable_code.PORTABLE_FILES)]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module in shipped, f"{path.name}: from {'.' * node.level}{node.module}"


def test_write_portable_code_ships_the_shim_and_every_portable_file(tmp_path):
    portable_code.write_portable_code(tmp_path)
    assert (tmp_path / "st_drama_modules.py").read_text() == SHIM.read_text()
    for name in portable_code.PORTABLE_FILES:
        assert (tmp_path / name).read_bytes() == (MODELS_DIR / name).read_bytes()
