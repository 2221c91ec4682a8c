"""LLaRA adaptation: EBAE/EBAR pretraining data and the run that adapts an LLM before contrastive training.

Importing this package is cheap (the ``st-drama`` command reads :mod:`st_drama.llara.config` for its help); datasets,
torch and transformers load when one of the names below is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LlaraConfig": "config",
    "build_pretraining_dataset": "data",
    "chunk_document": "data",
    "pretrain": "adaptation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
