"""Ship st-drama's module code inside every saved model folder, so the folder loads without st_drama installed.

Portable: standard library only. A saved folder's ``modules.json`` names our classes ``st_drama_modules.<Class>``;
sentence-transformers (with ``trust_remote_code=True``) loads ``st_drama_modules.py`` from the folder, which takes
the classes from the installed st_drama when there is one and from the copies next to it otherwise.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

SHIM_FILE = "st_drama_modules.py"
PORTABLE_FILES = (
    "attention_mask.py",
    "llama_backbone.py",
    "portable_code.py",
    "task_formats.py",
    "token_pooling.py",
)


def write_portable_code(model_dir: str | Path) -> None:
    """Copy the shim and the portable module files into ``model_dir`` (a saved model's root folder)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    source_dir = Path(__file__).parent
    shutil.copyfile(_shim_source(source_dir), model_dir / SHIM_FILE)
    for name in PORTABLE_FILES:
        shutil.copyfile(source_dir / name, model_dir / name)


def _shim_source(source_dir: Path) -> Path:
    # Loaded from a model folder, the shim sits beside us; in an installed st_drama it is the top-level module.
    beside = source_dir / SHIM_FILE
    if beside.is_file():
        return beside
    spec = importlib.util.find_spec("st_drama_modules")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("Cannot find st_drama_modules.py to ship with the model; reinstall st-drama.")
    return Path(spec.origin)
