"""sentence-transformers modules: the Llama-family backbone and its pooling."""

from __future__ import annotations

from .llama_backbone import LLAMA_FAMILY_MODEL_TYPES, LlamaBackbone
from .task_formats import default_task_formats, ebae_format, ebar_format
from .token_pooling import POOLING_MODES, TokenPooling

__all__ = [
    "LLAMA_FAMILY_MODEL_TYPES",
    "POOLING_MODES",
    "LlamaBackbone",
    "TokenPooling",
    "default_task_formats",
    "ebae_format",
    "ebar_format",
]
