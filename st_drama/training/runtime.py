"""Run mechanics shared by ``st-drama pretrain`` and ``st-drama train``: precision, devices, LoRA, the final save
(checkpoints and resuming: :mod:`st_drama.runs`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

from st_drama.precision import resolve_bf16

logger = logging.getLogger(__name__)

LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def precision_arguments(bf16: bool | None) -> dict[str, Any]:
    """TrainingArguments for the precision; ``None`` means bf16 where supported."""
    return {"bf16": resolve_bf16(bf16), "use_cpu": not torch.cuda.is_available()}


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
    """Fold any LoRA adapters of ``model``'s backbone (st-drama's or sentence-transformers' own) into its weights."""
    from st_drama.models.llama_backbone import merge_peft_adapters

    merge_peft_adapters(model[0].auto_model)


def save_final_model(model: SentenceTransformer, path: str | os.PathLike, metadata: dict[str, Any]) -> str:
    """Merge any LoRA adapters into the weights and save a self-contained SentenceTransformer folder, with the run's
    metadata in ``st_drama_run.json``."""
    merge_lora(model)
    model.save(str(path))
    with open(Path(path) / "st_drama_run.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2, default=str)
    return str(path)
