"""st-drama: small, fast dense retrievers from LLMs (DRAMA and LLaRA) on sentence-transformers."""

from __future__ import annotations

from typing import Any

from .default_llm import default_llm_path, resolve_model_path, st_drama_home
from .defaults import DEFAULT_LLM_NAME

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LLM_NAME",
    "__version__",
    "build_model",
    "default_llm_path",
    "resolve_model_path",
    "st_drama_home",
]


def __getattr__(name: str) -> Any:
    # Keep `import st_drama` (and the CLI's --help) fast: sentence-transformers loads on first use.
    if name == "build_model":
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'st_drama' has no attribute {name!r}")
