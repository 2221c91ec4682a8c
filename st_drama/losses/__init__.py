"""Losses for SentenceTransformerTrainer: LLaRA's EBAE and EBAR pretext tasks."""

from __future__ import annotations

from .ebae_ebar_loss import EBAEEBARLoss
from .ebae_loss import EBAELoss
from .ebar_loss import EBARLoss

__all__ = ["EBAEEBARLoss", "EBAELoss", "EBARLoss"]
