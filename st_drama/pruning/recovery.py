"""Recovery after pruning: a few steps of logit distillation from the unpruned teacher (Minitron) or of plain
continued pretraining, with a transformers ``Trainer``, periodic checkpoints and resume."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from st_drama.defaults import DEFAULT_SEED
from st_drama.precision import resolve_bf16
from st_drama.runs import checkpoint_step, checkpoint_to_resume

from .calibration import TokenBlocks
from .config import RecoveryConfig
from .importance import autocast_context
from .training import BlockCollator, BlockDataset, training_arguments

logger = logging.getLogger(__name__)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Mean over the masked positions of ``KL(teacher || student)`` on temperature-softened distributions,
    times ``temperature ** 2``."""
    student_log_probs = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_position = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)
    weights = mask.to(per_position.dtype)
    return (per_position * weights).sum() / weights.sum().clamp_min(1) * temperature**2


class RecoveryTrainer(Trainer):
    """A ``Trainer`` whose loss is distillation from a frozen teacher or next-token cross-entropy."""

    def __init__(self, *args: Any, teacher: nn.Module | None, mode: str, temperature: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if mode == "distill" and teacher is None:
            raise ValueError("Distillation needs the unpruned teacher model.")
        self.teacher = teacher.to(self.args.device).eval() if teacher is not None else None
        if self.teacher is not None:
            self.teacher.requires_grad_(False)
        self.mode = mode
        self.temperature = temperature
        # The loss below is a per-batch mean: let the Trainer scale it for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits = outputs.logits[:, :-1]
        targets = inputs["labels"][:, 1:]
        predicted = targets != -100
        if self.mode == "lm":
            loss = nn.functional.cross_entropy(logits[predicted].float(), targets[predicted])
        else:
            with torch.no_grad(), autocast_context(input_ids.device, self.args.bf16):
                teacher_logits = self.teacher(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            loss = distillation_loss(logits, teacher_logits.logits[:, :-1], predicted, self.temperature)
        return (loss, outputs) if return_outputs else loss


def recover(
    student: nn.Module,
    train_blocks: TokenBlocks,
    checkpoint_dir: str | os.PathLike,
    config: RecoveryConfig,
    teacher: nn.Module | None = None,
    pad_token_id: int | None = None,
    resume: bool = True,
    run_settings: dict[str, Any] | None = None,
    callbacks: list[TrainerCallback] | None = None,
    show_progress: bool = True,
    seed: int = DEFAULT_SEED,
    bf16: bool | None = None,
) -> nn.Module:
    """Train ``student`` (in place) for ``config.steps`` steps on ``train_blocks``; return it in eval mode.

    Args:
        student: The pruned ``LlamaForCausalLM``.
        train_blocks: Training text as token blocks.
        checkpoint_dir: Where Trainer checkpoints go; a rerun of the same run continues from the latest one.
        config: Steps, mode, learning rate, ...
        teacher: The unpruned model (needed for ``mode="distill"``); frozen.
        pad_token_id: Padding for ragged batches (default: the student's config).
        resume: Continue from a checkpoint of the same run in ``checkpoint_dir`` (otherwise one is an error).
        run_settings: What identifies this run beyond ``config`` (source model, target, ...); a checkpoint
            folder written with other settings is refused.
        callbacks: Extra ``TrainerCallback`` objects.
        show_progress: Show the Trainer's progress bar.
        seed: Data order and dropout seed.
        bf16: bf16 autocast (default: where it is fast).
    """
    if config.steps == 0:
        return student.eval()
    bf16 = resolve_bf16(bf16)
    settings = {"recovery": config.to_dict(), "seed": seed, "bf16": bf16, **(run_settings or {})}
    checkpoint = checkpoint_to_resume(checkpoint_dir, settings, resume)
    if pad_token_id is None:
        pad_token_id = student.config.pad_token_id if student.config.pad_token_id is not None else 0
    arguments = training_arguments(
        checkpoint_dir,
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        save_steps=config.save_steps,
        seed=seed,
        bf16=bf16,
        show_progress=show_progress,
        warmup_steps=min(config.warmup_steps, max(0, config.steps - 1)),
    )
    trainer = RecoveryTrainer(
        model=student,
        args=arguments,
        train_dataset=BlockDataset(train_blocks),
        data_collator=BlockCollator(pad_token_id),
        teacher=teacher,
        mode=config.mode,
        temperature=config.temperature,
        callbacks=callbacks,
    )
    if checkpoint is not None and checkpoint_step(checkpoint) >= config.steps:
        # The run had finished training; resuming would take one step too many.
        logger.info(f"{checkpoint} holds the finished recovery; loading it.")
        trainer._load_from_checkpoint(checkpoint)
        return trainer.model.eval()
    student.train()
    trainer.train(resume_from_checkpoint=checkpoint)
    logger.info(f"Recovery finished after {trainer.state.global_step} steps ({config.mode}).")
    return trainer.model.eval()
