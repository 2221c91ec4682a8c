"""LLaRA adaptation: EBAE/EBAR pretraining data and the run that adapts an LLM before contrastive training."""

from __future__ import annotations

from .data import build_pretraining_dataset, chunk_document
from .pretrain import pretrain

__all__ = ["build_pretraining_dataset", "chunk_document", "pretrain"]
