"""Run mechanics shared by ``st-drama pretrain`` and ``st-drama train``: precision, devices, LoRA, checkpoints."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

from st_drama.precision import resolve_bf16

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def precision_arguments(bf16: bool | None) -> dict[str, Any]:
    """TrainingArguments for the precision; ``None`` means bf16 where supported."""
    return {"bf16": resolve_bf16(bf16), "use_cpu": not torch.cuda.is_available()}


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> str | None:
    """The Trainer checkpoint with the highest step in ``checkpoint_dir``, if any."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    steps = [
        (int(match.group(1)), path) for path in folder.iterdir() if (match := CHECKPOINT_PATTERN.match(path.name))
    ]
    return str(max(steps)[1]) if steps else None


def resume_checkpoint(checkpoint_dir: str | os.PathLike, resume: bool) -> str | None:
    """The checkpoint to resume from. Without ``resume``, existing checkpoints are an error rather than being
    silently overwritten by a fresh run."""
    checkpoint = latest_checkpoint(checkpoint_dir)
    if checkpoint and not resume:
        raise ValueError(
            f"{checkpoint_dir} already holds checkpoints ({os.path.basename(checkpoint)}); pass resume=True "
            "(--resume) to continue that run, or choose another output directory."
        )
    if resume and not checkpoint:
        logger.info(f"No checkpoint in {checkpoint_dir} yet; starting from scratch.")
    return checkpoint


def add_lora(
    model: SentenceTransformer,
    rank: int = 16,
    alpha: int | None = None,
    dropout: float = 0.05,
    train_token_ids: list[int] | None = None,
) -> None:
    """Attach LoRA adapters to every projection of the decoder (sentence-transformers' ``add_adapter``);
    ``train_token_ids`` (e.g. LLaRA's new prompt tokens) get trainable embedding rows."""
    import transformers
    from peft import LoraConfig

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or 2 * rank,
        lora_dropout=dropout,
        target_modules=list(LORA_TARGET_MODULES),
        trainable_token_indices={"embed_tokens": list(train_token_ids)} if train_token_ids else None,
    )
    try:
        model.add_adapter(config)
    except ValueError as error:
        if "version of PEFT" not in str(error):
            raise
        raise ImportError(
            f"LoRA through transformers {transformers.__version__} needs a newer peft than the installed one "
            f"({error}); upgrade peft, or install transformers<5.24 as st-drama's requirements pin it."
        ) from error
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(f"LoRA rank {rank}: {trainable:,} trainable parameters")


def merge_lora(model: SentenceTransformer) -> None:
    """Fold any LoRA adapters of ``model``'s backbone into its weights."""
    backbone = model[0]
    if getattr(backbone, "has_adapters", False):
        backbone.merge_adapters()


def save_final_model(model: SentenceTransformer, path: str | os.PathLike, metadata: dict[str, Any]) -> str:
    """Merge any LoRA adapters into the weights and save a self-contained SentenceTransformer folder, with the run's
    metadata in ``st_drama_run.json``."""
    merge_lora(model)
    model.save(str(path))
    with open(Path(path) / "st_drama_run.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2, default=str)
    return str(path)
