"""The LLaRA adaptation stage's settings: the single home of their defaults (``st-drama pretrain`` and the
pipeline's llara stage start from these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from st_drama.defaults import DEFAULT_SEED

LORA_LEARNING_RATE = 1e-4
FULL_LEARNING_RATE = 2e-5


@dataclass(frozen=True)
class LlaraConfig:
    """LLaRA adaptation: EBAE (a text's embedding predicts the text) and EBAR (it predicts the next passage).

    Args:
        steps: Optimisation steps.
        batch_size: Text chunks per step.
        chunk_tokens: Tokens per text chunk (each paired with the chunk after it).
        learning_rate: None for 1e-4 with LoRA and 2e-5 for full fine-tuning.
        lora: Train LoRA adapters (plus the new prompt-token embeddings) instead of all weights.
        lora_rank: LoRA rank.
        bf16: bf16 autocast; None uses it where it is fast.
        save_steps: Checkpoint interval.
        max_documents: Use only the first documents of the corpus.
        loss_options: Arguments of :class:`~st_drama.losses.EBAEEBARLoss` (``lm_head``, ``prediction``, ...).
        seed: Random seed.
    """

    steps: int = 200
    batch_size: int = 16
    chunk_tokens: int = 128
    learning_rate: float | None = None
    lora: bool = False
    lora_rank: int = 16
    bf16: bool | None = None
    save_steps: int = 50
    max_documents: int | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.save_steps < 1:
            raise ValueError("LlaraConfig: steps, batch_size and save_steps must be at least 1.")
        if self.chunk_tokens < 8:
            raise ValueError(f"LlaraConfig.chunk_tokens must be at least 8, got {self.chunk_tokens}.")
        if self.max_documents is not None and self.max_documents < 1:
            raise ValueError(f"LlaraConfig.max_documents must be positive, got {self.max_documents}.")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"LlaraConfig.learning_rate must be positive, got {self.learning_rate}.")

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return LORA_LEARNING_RATE if self.lora else FULL_LEARNING_RATE
