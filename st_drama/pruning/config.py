"""The pruning stage's settings: the single home of their defaults (``st-drama prune`` and the pipeline's prune
stage start from these). The target shape itself is a :class:`~st_drama.pruning.target.PruningTarget`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from st_drama.config_tools import nested
from st_drama.defaults import DEFAULT_SEED

from .target import PruningTarget

METHODS = ("importance", "learned", "random")
RECOVERY_MODES = ("distill", "lm")


@dataclass(frozen=True)
class RecoveryConfig:
    """How to train the pruned model back.

    Args:
        steps: Optimizer steps (0 = no recovery).
        mode: ``"distill"`` (KL divergence to the teacher's next-token distribution; needs the teacher) or
            ``"lm"`` (next-token cross-entropy on the text).
        learning_rate: Peak learning rate (constant after warmup).
        batch_size: Blocks per step.
        warmup_steps: Linear warmup steps.
        temperature: Distillation temperature (the loss is scaled by its square, as usual).
        save_steps: Checkpoint every this many steps (default: a quarter of ``steps``).
        max_tokens: Token budget of the recovery text (None: what the steps consume, twice over).
    """

    steps: int = 0
    mode: str = "distill"
    learning_rate: float = 2e-4
    batch_size: int = 4
    warmup_steps: int = 10
    temperature: float = 1.0
    save_steps: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in RECOVERY_MODES:
            raise ValueError(f"Recovery mode must be one of {RECOVERY_MODES}, got {self.mode!r}.")
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError("Recovery needs steps >= 0 and batch_size >= 1.")
        if self.temperature <= 0 or self.learning_rate <= 0:
            raise ValueError("Recovery needs a positive temperature and learning rate.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LearnedMaskConfig:
    """Training of Sheared-LLaMA's hard-concrete masks (``method="learned"``).

    Args:
        steps: Optimizer steps.
        batch_size: Blocks per step.
        learning_rate: Learning rate of the model's own weights (trained jointly, as in Sheared-LLaMA); 0 freezes
            them and trains only the masks.
        mask_learning_rate: Learning rate (AdamW) of the mask logits.
        lagrangian_learning_rate: Step of the multipliers' gradient ascent, per training forward pass.
        initial_penalty: Starting ``lambda2``. Adam moves the mask logits at about the same speed whatever the
            multipliers' size, so what matters is where ``lambda1 + 2 * lambda2 * gap`` changes sign: a strong
            quadratic term from the start puts that point near ``gap = 0`` and keeps the expected sizes from
            overshooting the target (with both multipliers starting at 0 they undershoot it badly).
        target_warmup: Fraction of the steps over which the target moves from the source shape to the final one.
        initial_log_alpha: Starting mask logit; 3.0 keeps nearly everything at first (the model starts intact).
        save_steps: Checkpoint every this many steps (default: a quarter of ``steps``).
    """

    steps: int = 200
    batch_size: int = 4
    learning_rate: float = 2e-5
    mask_learning_rate: float = 0.1
    lagrangian_learning_rate: float = 0.5
    initial_penalty: float = 50.0
    target_warmup: float = 0.5
    initial_log_alpha: float = 3.0
    save_steps: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("Learned-mask pruning needs steps >= 1 and batch_size >= 1.")
        if not 0 <= self.target_warmup <= 1:
            raise ValueError(f"target_warmup must be in [0, 1], got {self.target_warmup}.")
        if self.learning_rate < 0 or self.mask_learning_rate <= 0:
            raise ValueError("learning_rate must be >= 0 and mask_learning_rate > 0.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PruneConfig:
    """Structured pruning of a Llama checkpoint to a target shape, then optional recovery.

    Args:
        target: The shape or parameter budget to prune to (a :class:`PruningTarget` or a dict of its fields, e.g.
            ``{"params": "60M"}``).
        method: ``"importance"`` (forward-only, Minitron-style), ``"learned"`` (Sheared-LLaMA-style hard-concrete
            masks) or ``"random"`` (random pieces of the same shape: the baseline).
        calibration_tokens: Token budget of the calibration text.
        sequence_length: Tokens per calibration and training block.
        batch_size: Blocks per calibration forward pass.
        rescale_norms: Rescale RMSNorm weights for the removed hidden channels (importance pruning).
        recovery: Training the pruned model back (distillation from the unpruned model by default; 0 steps: none).
        learned: Settings of ``method="learned"``.
        bf16: bf16 autocast for every forward pass and training step; None uses it where it is fast.
        seed: Seed of random pruning, mask noise and data order.
    """

    target: PruningTarget = field(default_factory=PruningTarget)
    method: str = "importance"
    calibration_tokens: int = 32_768
    sequence_length: int = 256
    batch_size: int = 4
    rescale_norms: bool = True
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    learned: LearnedMaskConfig = field(default_factory=LearnedMaskConfig)
    bf16: bool | None = None
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", nested(self.target, PruningTarget))
        object.__setattr__(self, "recovery", nested(self.recovery, RecoveryConfig))
        object.__setattr__(self, "learned", nested(self.learned, LearnedMaskConfig))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}.")
        if self.calibration_tokens < 2 or self.sequence_length < 2 or self.batch_size < 1:
            raise ValueError("calibration_tokens and sequence_length must be >= 2 and batch_size >= 1.")
