"""What the mask-learning and recovery loops share: token-block datasets, Trainer arguments, and checkpoints that
resume only the run that wrote them."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from .calibration import TokenBlocks

logger = logging.getLogger(__name__)


class BlockDataset(torch.utils.data.Dataset):
    """Token blocks as ``{"input_ids": tensor}`` items for a ``Trainer``."""

    def __init__(self, blocks: TokenBlocks) -> None:
        self.blocks = [block for block in blocks.blocks if block.numel() >= 2]
        if not self.blocks:
            raise ValueError(f"The texts from {blocks.source} hold no block of 2 or more tokens to train on.")

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.blocks[index]}


class BlockCollator:
    """Pads blocks to the longest in the batch; labels are the inputs with padding set to -100."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        length = max(item["input_ids"].numel() for item in items)
        input_ids = torch.full((len(items), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            ids = item["input_ids"]
            input_ids[row, : ids.numel()] = ids
            attention_mask[row, : ids.numel()] = 1
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def training_arguments(
    output_dir: str | os.PathLike,
    steps: int,
    batch_size: int,
    learning_rate: float,
    save_steps: int | None,
    seed: int,
    bf16: bool,
    show_progress: bool,
    **overrides: Any,
) -> Any:
    """``TrainingArguments`` for a fixed number of steps with periodic checkpoints (enough to resume)."""
    from transformers import TrainingArguments

    settings: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant_with_warmup",
        weight_decay=0.0,
        save_strategy="steps",
        save_steps=save_steps or max(1, steps // 4),
        save_total_limit=2,
        logging_steps=max(1, min(25, steps // 10)),
        report_to=[],
        seed=seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not show_progress,
        remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    settings.update(overrides)
    return TrainingArguments(**settings)
