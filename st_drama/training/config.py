"""The contrastive training stage's settings: the single home of their defaults (``st-drama train`` and the
pipeline's presets start from these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from st_drama.defaults import DEFAULT_SEED, DEFAULT_STYLE, check_style

# DRAMA's Matryoshka sizes below the full one.
DRAMA_MATRYOSHKA_DIMS = (512, 256)
# Learning rates when none is given: LoRA adapters train at a higher rate than all weights.
LORA_LEARNING_RATE = 2e-4
FULL_LEARNING_RATE = 5e-5


@dataclass(frozen=True)
class TrainConfig:
    """Single-stage contrastive training (InfoNCE over in-batch and hard negatives, Matryoshka dimensions).

    Args:
        style: ``"drama"`` or ``"llara"`` framing when the model is built from an LLM.
        steps: Optimisation steps (overrides ``epochs``).
        epochs: Passes over the data when ``steps`` is not given.
        batch_size: Queries per step (each with its positive and hard negatives).
        learning_rate: None for 2e-4 with LoRA and 5e-5 for full fine-tuning (meant for long runs; runs of a few
            dozen steps train better at 2e-4).
        num_negatives: Hard negatives used per row (the first ones); None uses every ``negative_*`` column.
        temperature: InfoNCE temperature (the loss scale is its inverse).
        matryoshka_dims: ``"auto"`` (the full size, then 512 and 256 where smaller), sizes such as ``(512, 256)``,
            or None for no Matryoshka loss.
        cached: GradCache (``CachedMultipleNegativesRankingLoss``) for batches larger than memory.
        mini_batch_size: Chunk size of the cached loss.
        max_seq_length: Maximum tokens per text, framing included.
        lora: Train LoRA adapters instead of all weights (merged into the saved model).
        lora_rank: LoRA rank.
        bf16: bf16 autocast; None uses it where it is fast (see ``st_drama.precision``).
        save_steps: Checkpoint interval.
        wise_alpha: WiSE-FT: the saved weights are ``(1 - wise_alpha) * start + wise_alpha * trained``; 1 keeps the
            trained weights. Moving part of the way back keeps what a long run learned and undoes some of its drift
            towards the pseudo-queries.
        distill_weight: Weight of a KL-divergence term towards a teacher's scores, read from the rows' ``scores``
            column (the teacher's score for the positive, then each hard negative; see
            :class:`~st_drama.losses.ContrastiveDistillationLoss`); 0 trains InfoNCE alone and ignores the column.
        teacher_temperature: Divides the teacher's scores before their softmax (1 for log-likelihoods).
        loss_options: Further arguments of sentence-transformers' InfoNCE loss, passed as they are (e.g.
            ``{"directions": ["query_to_doc", "doc_to_query"]}``).
        seed: Random seed.
    """

    style: str = DEFAULT_STYLE
    steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float | None = None
    num_negatives: int | None = None
    temperature: float = 0.05
    matryoshka_dims: tuple[int, ...] | str | None = "auto"
    cached: bool = False
    mini_batch_size: int = 8
    max_seq_length: int = 256
    lora: bool = False
    lora_rank: int = 16
    bf16: bool | None = None
    save_steps: int = 100
    wise_alpha: float = 1.0
    distill_weight: float = 0.0
    teacher_temperature: float = 1.0
    loss_options: dict[str, Any] = field(default_factory=dict)
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        check_style(self.style, "TrainConfig.style")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"TrainConfig.steps must be at least 1 (or None for epochs), got {self.steps}.")
        if self.epochs <= 0 or self.batch_size < 1 or self.mini_batch_size < 1 or self.save_steps < 1:
            raise ValueError("TrainConfig: epochs must be positive; batch_size, mini_batch_size, save_steps >= 1.")
        if self.num_negatives is not None and self.num_negatives < 0:
            raise ValueError(f"TrainConfig.num_negatives must be >= 0, got {self.num_negatives}.")
        if self.temperature <= 0:
            raise ValueError(f"TrainConfig.temperature must be positive, got {self.temperature}.")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate}.")
        if self.max_seq_length < 8:
            raise ValueError(f"TrainConfig.max_seq_length must be at least 8 tokens, got {self.max_seq_length}.")
        check_wise_alpha(self.wise_alpha)
        if self.distill_weight < 0 or self.teacher_temperature <= 0:
            raise ValueError(
                f"TrainConfig: distill_weight must be >= 0 and teacher_temperature positive, got "
                f"{self.distill_weight} and {self.teacher_temperature}."
            )
        if self.distill_weight > 0 and self.cached:
            raise ValueError(
                "TrainConfig: distill_weight needs the plain InfoNCE loss (cached=False): the cached loss embeds in "
                "its own mini-batches, so the teacher's term could not share its pass."
            )
        if isinstance(self.matryoshka_dims, list):
            object.__setattr__(self, "matryoshka_dims", tuple(self.matryoshka_dims))
        if isinstance(self.matryoshka_dims, str) and self.matryoshka_dims != "auto":
            raise ValueError(
                f"TrainConfig.matryoshka_dims must be 'auto', sizes or None, got {self.matryoshka_dims!r}"
            )

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return LORA_LEARNING_RATE if self.lora else FULL_LEARNING_RATE


def check_wise_alpha(wise_alpha: float) -> None:
    if not 0.0 < wise_alpha <= 1.0:
        raise ValueError(
            f"wise_alpha is the fine-tuned weights' share in (0, 1] (1 keeps them as trained), got {wise_alpha}"
        )
