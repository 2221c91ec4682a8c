"""Losses for SentenceTransformerTrainer: LLaRA's EBAE and EBAR pretext tasks; InfoNCE with a teacher's scores."""

from __future__ import annotations

from .contrastive_distillation_loss import ContrastiveDistillationLoss
from .ebae_ebar_loss import EBAEEBARLoss
from .ebae_loss import EBAELoss
from .ebar_loss import EBARLoss

__all__ = ["ContrastiveDistillationLoss", "EBAEEBARLoss", "EBAELoss", "EBARLoss"]
