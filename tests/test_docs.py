"""Documentation that runs: every Python example in the README and in the package's docstrings is executed here,
on the bundled data and the embedded default LLM (the scripts in examples/ run in tests/test_examples.py)."""

from __future__ import annotations

import ast
import re
import textwrap

import pytest
from conftest import REPO_ROOT

FENCED = re.compile(r"```python\n(.*?)```", re.DOTALL)


def literal_blocks(docstring: str) -> list[str]:
    """The reST literal blocks of a docstring (opened by a line ending in ``::`` that is not a directive such as
    ``.. math::``), each up to the first non-blank line indented no deeper than its opening line."""
    lines = docstring.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.endswith("::") or stripped.startswith(".."):
            continue
        indent = len(line) - len(line.lstrip())
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip())
    return blocks


def readme_blocks() -> list[str]:
    return FENCED.findall((REPO_ROOT / "README.md").read_text(encoding="utf-8"))


def docstring_examples() -> dict[str, str]:
    """``{"module:object": code}`` for every literal block in a docstring of the package that looks like Python."""
    examples = {}
    for path in sorted((REPO_ROOT / "st_drama").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owners = [tree, *(node for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef)))]
        for owner in owners:
            docstring = ast.get_docstring(owner, clean=False) or ""
            for number, code in enumerate(literal_blocks(docstring)):
                if "import " in code:  # Python examples, not command lines
                    name = f"{path.relative_to(REPO_ROOT)}:{getattr(owner, 'name', 'module')}:{number}"
                    examples[name] = code
    return examples


def test_the_readme_and_the_docstrings_have_examples_to_run():
    assert len(readme_blocks()) >= 2
    names = set(docstring_examples())
    assert any("ebae_ebar_loss" in name for name in names) and any("augmenter" in name for name in names)


@pytest.mark.real_model
def test_readme_python_examples_run_in_order(smollm2_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in readme_blocks():
        exec(compile(block, "README.md", "exec"), namespace)  # the documentation's own code


@pytest.mark.real_model
@pytest.mark.parametrize("name", sorted(docstring_examples()))
def test_docstring_examples_run(name, smollm2_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = docstring_examples()[name]
    exec(compile(code, name, "exec"), {})  # the documentation's own code
